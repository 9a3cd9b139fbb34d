//! The storage layer's error type.
//!
//! Area code returns [`StoreError`]; the HTTP edge maps it to a status and a stable code. A record
//! outside the caller's scope is [`StoreError::NotFound`], exactly like a missing one: the real
//! reason goes only to the log. Database constraint names are mapped to codes in one place,
//! [`constraint_code`].

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Missing, or outside the caller's scope: the two are never told apart.
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule of the database refused the write.
    #[error("conflict: {code}")]
    Conflict { code: &'static str, detail: String },
    /// Input the domain refused; `field` names what was wrong.
    #[error("invalid {field}: {code}")]
    Invalid { code: &'static str, field: String },
    /// The caller may see the record but may not do this to it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("crypto: {0}")]
    Crypto(String),
    /// The database or its connection failed.
    #[error("backend: {0}")]
    Backend(String),
    /// The store is shutting down or its writer is gone.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub fn invalid(code: &'static str, field: impl Into<String>) -> Self {
        StoreError::Invalid {
            code,
            field: field.into(),
        }
    }
}

/// Map a backend's constraint message to a stable code. SQLite names the table and columns
/// (`UNIQUE constraint failed: users.username`), PostgreSQL the constraint (`users_username_key`);
/// both spellings of each rule sit side by side here.
pub fn constraint_code(message: &str) -> Option<&'static str> {
    const RULES: &[(&[&str], &str)] = &[
        (
            &["users.username", "users_username_key"],
            "user.username_taken",
        ),
        (
            &["node_codes.code", "node_codes_active_code"],
            "division.code_taken",
        ),
        (
            &["grants_unique", "grants.user_id, grants.role"],
            "grant.duplicate",
        ),
        (
            &[
                "grids.community_id, grids.name",
                "grids_community_id_name_key",
            ],
            "grid.name_taken",
        ),
        (
            &[
                "memberships_open",
                "memberships.person_id, memberships.household_id",
            ],
            "membership.duplicate",
        ),
        (
            &[
                "vulnerable.person_id, vulnerable.category_bidx",
                "vulnerable_person_category",
            ],
            "vulnerable.duplicate",
        ),
        (&["jobs.unique_key", "jobs_unique_key"], "job.duplicate"),
        (
            &["FOREIGN KEY", "foreign key", "_fkey"],
            "record.reference_invalid",
        ),
    ];
    RULES
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| message.contains(n)))
        .map(|(_, code)| *code)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let msg = e.to_string();
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation {
                return StoreError::Conflict {
                    code: constraint_code(&msg).unwrap_or("record.conflict"),
                    detail: msg,
                };
            }
        }
        StoreError::Backend(msg)
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let class = &db.code().code()[..2];
            if class == "23" {
                let name = db.constraint().unwrap_or_default().to_owned();
                let detail = format!("{name}: {}", db.message());
                return StoreError::Conflict {
                    code: constraint_code(&name)
                        .or_else(|| constraint_code(db.message()))
                        .unwrap_or("record.conflict"),
                    detail,
                };
            }
            return StoreError::Backend(format!("{}: {}", db.code().code(), db.message()));
        }
        StoreError::Backend(e.to_string())
    }
}

impl From<anxin_crypto::CryptoError> for StoreError {
    fn from(e: anxin_crypto::CryptoError) -> Self {
        StoreError::Crypto(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

//! Forward-only migrations, one list per backend, embedded in the binary.
//!
//! Applied migrations are recorded with a checksum; changing an applied file is an error, never a
//! silent re-run. Both lists must have the same versions (a test checks it), so a release has one
//! schema version whatever the backend.

use sha2::{Digest, Sha256};

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::params;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! m {
    ($v:expr, $name:expr, $dir:expr) => {
        Migration {
            version: $v,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")),
        }
    };
}

pub const SQLITE: &[Migration] = &[
    m!(1, "0001_base", "sqlite"),
    m!(2, "0002_platform", "sqlite"),
    m!(3, "0003_auth", "sqlite"),
    m!(4, "0004_platform2", "sqlite"),
    m!(5, "0005_search", "sqlite"),
    m!(6, "0006_maps", "sqlite"),
    m!(7, "0007_monitor", "sqlite"),
    m!(8, "0008_warnings", "sqlite"),
    m!(9, "0009_channels", "sqlite"),
    m!(10, "0010_operations", "sqlite"),
    m!(11, "0011_people_on_ground", "sqlite"),
    m!(12, "0012_incident_ops", "sqlite"),
    m!(13, "0013_access", "sqlite"),
    m!(14, "0014_hazards", "sqlite"),
    m!(15, "0015_calendar_risks", "sqlite"),
    m!(16, "0016_supervision", "sqlite"),
    m!(17, "0017_reserves", "sqlite"),
    m!(18, "0018_campaigns", "sqlite"),
    m!(19, "0019_providers", "sqlite"),
    m!(20, "0020_funds", "sqlite"),
    m!(21, "0021_resident_channels", "sqlite"),
    m!(22, "0022_warning_trust", "sqlite"),
];
pub const POSTGRES: &[Migration] = &[
    m!(1, "0001_base", "postgres"),
    m!(2, "0002_platform", "postgres"),
    m!(3, "0003_auth", "postgres"),
    m!(4, "0004_platform2", "postgres"),
    m!(5, "0005_search", "postgres"),
    m!(6, "0006_maps", "postgres"),
    m!(7, "0007_monitor", "postgres"),
    m!(8, "0008_warnings", "postgres"),
    m!(9, "0009_channels", "postgres"),
    m!(10, "0010_operations", "postgres"),
    m!(11, "0011_people_on_ground", "postgres"),
    m!(12, "0012_incident_ops", "postgres"),
    m!(13, "0013_access", "postgres"),
    m!(14, "0014_hazards", "postgres"),
    m!(15, "0015_calendar_risks", "postgres"),
    m!(16, "0016_supervision", "postgres"),
    m!(17, "0017_reserves", "postgres"),
    m!(18, "0018_campaigns", "postgres"),
    m!(19, "0019_providers", "postgres"),
    m!(20, "0020_funds", "postgres"),
    m!(21, "0021_resident_channels", "postgres"),
    m!(22, "0022_warning_trust", "postgres"),
];

/// The schema version each release shipped, newest last (the newest is this build's latest
/// migration): the upgrade test starts from a database made by the one before.
pub const RELEASES: &[(&str, i64)] = &[
    ("0.0.1", 2),
    ("0.1.0", 4),
    ("0.2.0", 6),
    ("0.3.0", 9),
    ("0.4.0", 13),
    ("0.5.0", 16),
    ("0.6.0", 20),
    ("0.7.0", 21),
    ("0.8.0", 22),
];

pub fn list(d: Dialect) -> &'static [Migration] {
    match d {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

pub fn latest() -> i64 {
    SQLITE.last().map_or(0, |m| m.version)
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Apply pending migrations up to `upto` (all when `None`). Returns the versions applied.
pub fn migrate(conn: &mut dyn Conn, upto: Option<i64>) -> Result<Vec<i64>> {
    let d = conn.dialect();
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let mut applied = Vec::new();
    for m in list(d) {
        if upto.is_some_and(|u| m.version > u) {
            break;
        }
        let begin = match d {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            // Two servers starting at once must not both migrate.
            Dialect::Postgres => "BEGIN; SELECT pg_advisory_xact_lock(2026112301)",
        };
        conn.batch(begin)?;
        let done = conn.query_one(
            "SELECT checksum FROM schema_migrations WHERE version = $1",
            &params![m.version],
        );
        let result = match done {
            Ok(Some(row)) => {
                let sum: String = row.get("checksum")?;
                if sum == checksum(m.sql) {
                    Ok(false)
                } else {
                    Err(StoreError::Backend(format!(
                        "migration {} was changed after it was applied; migrations are append-only",
                        m.name
                    )))
                }
            }
            Ok(None) => conn.batch(m.sql).and_then(|()| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    &params![m.version, m.name, checksum(m.sql), chrono::Utc::now().to_rfc3339()],
                )
                .map(|_| true)
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(ran) => {
                conn.batch("COMMIT")?;
                if ran {
                    tracing::info!(migration = m.name, backend = d.name(), "migration applied");
                    applied.push(m.version);
                }
            }
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(applied)
}

/// The schema version of a database (0 when empty).
pub fn current_version(conn: &mut dyn Conn) -> Result<i64> {
    conn.query_i64("SELECT max(version) FROM schema_migrations", &[])
}

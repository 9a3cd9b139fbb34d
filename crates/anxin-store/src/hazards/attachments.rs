//! Photos and other evidence (owner: inspections), shared by every capability.
//!
//! An attachment belongs to an owner (`owner_kind` + `owner_id`: an inspection, an inspection
//! answer, a hazard, a hazard event, …) and sits at the owner's node, which scopes it. The bytes
//! live in the `attachments` table so both stores back them up alike; they are never in the
//! change log. Only images (JPEG, PNG, WebP) and PDF are accepted, recognised by their magic
//! bytes (whatever the file name or the client's content type say), up to [`MAX_BYTES`]; each
//! carries its SHA-256.
//!
//! Who may read one: whoever works with inspections or hazards where it sits (its node within
//! reach of `Inspect`, `ManageInspections` or `HandleHazards`, or a grid grant on the grid of its
//! owner); the readers of the ledger (`ReadHazards`, `AcceptHazards`: the third-party inspector)
//! see it only when it is evidence of a hazard; whoever stored one sees it while they still
//! work with inspections or hazards. Anyone else gets `NotFound`, like a missing one.

use anxin_domain::roles::Permission;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach};
use crate::tx::Tx;
use crate::value::Row;

/// The largest accepted file: 8 MiB.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// The longest file name kept (longer ones are cut, keeping the extension out of it).
const FILENAME_MAX: usize = 120;

/// Owner kinds whose attachments are evidence of a hazard (readable by the ledger's readers).
const HAZARD_OWNERS: &[&str] = &["hazard", "hazard_event"];

/// An attachment's description (without its bytes).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub id: Uuid,
    pub node_id: Uuid,
    /// inspection, answer, hazard, hazard_event, …
    pub owner_kind: String,
    pub owner_id: Uuid,
    pub filename: String,
    /// image/jpeg, image/png, image/webp or application/pdf (sniffed from the bytes).
    pub mime: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            owner_kind: r.get("owner_kind")?,
            owner_id: r.get("owner_id")?,
            filename: r.get("filename")?,
            mime: r.get("mime")?,
            size: r.get("size")?,
            sha256: r.get("sha256")?,
            created_by: r.get("created_by")?,
            created_at: r.get("created_at")?,
        })
    }
}

const COLS: &str =
    "id, node_id, owner_kind, owner_id, filename, mime, size, sha256, created_by, created_at";

/// The type of a file from its first bytes: JPEG, PNG, WebP or PDF; `None` for anything else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// A file name safe to show and to send back in `Content-Disposition`: no path, no control or
/// quote characters, not empty, not too long.
pub fn clean_filename(raw: &str, mime: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut s: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '\\' | '/'))
        .take(FILENAME_MAX)
        .collect();
    s = s.trim().to_owned();
    if s.is_empty() || s.starts_with('.') {
        let ext = match mime {
            "image/jpeg" => "jpg",
            "image/png" => "png",
            "image/webp" => "webp",
            _ => "pdf",
        };
        s = format!("attachment.{ext}");
    }
    s
}

/// The bytes' SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the caller may put or read attachments that are not hazard evidence.
fn work_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::Inspect);
    r.merge(caller.reach(Permission::ManageInspections));
    r.merge(caller.reach(Permission::HandleHazards));
    r
}

/// Where the caller may read hazard evidence.
fn evidence_reach(caller: &Caller) -> Reach {
    let mut r = work_reach(caller);
    r.merge(caller.reach(Permission::ReadHazards));
    r.merge(caller.reach(Permission::AcceptHazards));
    r
}

/// The grid of an attachment's owner, for callers whose grant is a grid.
fn owner_grid(conn: &mut dyn Conn, owner_kind: &str, owner_id: Uuid) -> Result<Option<Uuid>> {
    let sql = match owner_kind {
        "inspection" => "SELECT grid_id FROM inspections WHERE id = $1",
        "answer" => {
            "SELECT i.grid_id FROM inspection_answers a JOIN inspections i ON i.id = a.inspection_id \
             WHERE a.id = $1"
        }
        "hazard" => "SELECT grid_id FROM hazards WHERE id = $1",
        "hazard_event" => {
            "SELECT h.grid_id FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id WHERE e.id = $1"
        }
        _ => return Ok(None),
    };
    Ok(match conn.query_one(sql, &params![owner_id])? {
        Some(r) => r.get("grid_id")?,
        None => None,
    })
}

/// Whether `reach` covers an attachment at `node` whose owner is `owner_kind`/`owner_id`.
fn covers(
    conn: &mut dyn Conn,
    reach: &Reach,
    node: Uuid,
    owner_kind: &str,
    owner_id: Uuid,
) -> Result<bool> {
    if reach.contains_node(conn, node)? {
        return Ok(true);
    }
    if reach.grids.is_empty() {
        return Ok(false);
    }
    Ok(owner_grid(conn, owner_kind, owner_id)?.is_some_and(|g| reach.grids.contains(&g)))
}

/// Whether an attachment is evidence of a hazard: owned by a hazard or its event, or by an
/// inspection answer that reported one.
fn is_evidence(conn: &mut dyn Conn, owner_kind: &str, owner_id: Uuid) -> Result<bool> {
    if HAZARD_OWNERS.contains(&owner_kind) {
        return Ok(true);
    }
    if owner_kind == "answer" {
        return Ok(conn.query_i64(
            "SELECT count(*) FROM inspection_answers WHERE id = $1 AND hazard_id IS NOT NULL",
            &params![owner_id],
        )? > 0);
    }
    Ok(false)
}

/// Store `bytes` as an attachment of `owner_kind`/`owner_id` at `node_id`, inside `tx`. The
/// caller of this function has already checked that the owner is within the caller's reach;
/// here the node must be too (node grants, or a grid grant on the owner's grid, or a grid of
/// that community for an owner not yet written). Refused: empty or over [`MAX_BYTES`]
/// (`attachment.too_large`), not JPEG/PNG/WebP/PDF (`attachment.type`); the field is `file`.
pub fn store(
    tx: &mut Tx<'_>,
    caller: &Caller,
    node_id: Uuid,
    owner_kind: &str,
    owner_id: Uuid,
    filename: &str,
    bytes: &[u8],
) -> Result<Uuid> {
    if bytes.is_empty() {
        return Err(StoreError::invalid("attachment.empty", "file"));
    }
    if bytes.len() > MAX_BYTES {
        return Err(StoreError::invalid("attachment.too_large", "file"));
    }
    let mime = sniff(bytes).ok_or_else(|| StoreError::invalid("attachment.type", "file"))?;
    if owner_kind.is_empty()
        || owner_kind.len() > 40
        || !owner_kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(StoreError::invalid("value.invalid", "owner_kind"));
    }
    if !caller.is_system() {
        let reach = work_reach(caller);
        let in_list = tx.dialect().in_json_list("id", 2);
        let ok = covers(tx.conn(), &reach, node_id, owner_kind, owner_id)?
            || (!reach.grids.is_empty()
                && tx.conn().query_i64(
                    &format!("SELECT count(*) FROM grids WHERE community_id = $1 AND {in_list}"),
                    &[
                        crate::value::Value::Uuid(node_id),
                        crate::value::Value::Json(serde_json::json!(reach
                            .grids
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>())),
                    ],
                )? > 0);
        if !ok {
            return Err(StoreError::NotFound);
        }
    }
    let id = tx.new_id();
    let now = tx.now();
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    tx.execute_unlogged(
        "INSERT INTO attachments (id, node_id, owner_kind, owner_id, filename, mime, size, sha256, \
         data, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &params![
            id,
            node_id,
            owner_kind,
            owner_id,
            clean_filename(filename, mime),
            mime,
            size,
            sha256_hex(bytes),
            bytes.to_vec(),
            caller.user_id,
            now
        ],
    )?;
    Ok(id)
}

/// An attachment's description and bytes, when the caller may read it (else `NotFound`).
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<(Attachment, Vec<u8>)> {
    let r = conn
        .query_one(
            &format!("SELECT {COLS}, data FROM attachments WHERE id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    let a = Attachment::from_row(&r)?;
    if !may_read(conn, caller, &a)? {
        return Err(StoreError::NotFound);
    }
    Ok((a, r.get("data")?))
}

fn may_read(conn: &mut dyn Conn, caller: &Caller, a: &Attachment) -> Result<bool> {
    if caller.is_system() {
        return Ok(true);
    }
    let work = work_reach(caller);
    if covers(conn, &work, a.node_id, &a.owner_kind, a.owner_id)? {
        return Ok(true);
    }
    // Whoever took a photo sees it while it still works there (a photo of an item not yet
    // answered has no owner row to place it on a grid).
    if a.created_by.is_some() && a.created_by == caller.user_id && !work.is_empty() {
        return Ok(true);
    }
    Ok(is_evidence(conn, &a.owner_kind, a.owner_id)?
        && covers(
            conn,
            &evidence_reach(caller),
            a.node_id,
            &a.owner_kind,
            a.owner_id,
        )?)
}

/// The attachments of one owner (descriptions only), oldest first. The caller checks the owner
/// is within its reach first.
pub fn list_for(conn: &mut dyn Conn, owner_kind: &str, owner_id: Uuid) -> Result<Vec<Attachment>> {
    conn.query(
        &format!(
            "SELECT {COLS} FROM attachments WHERE owner_kind = $1 AND owner_id = $2 \
             ORDER BY created_at, id"
        ),
        &params![owner_kind, owner_id],
    )?
    .iter()
    .map(Attachment::from_row)
    .collect()
}

/// The attachments of several owners of one kind, oldest first.
pub fn list_for_many(
    conn: &mut dyn Conn,
    owner_kind: &str,
    owner_ids: &[Uuid],
) -> Result<Vec<Attachment>> {
    if owner_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::json!(owner_ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>());
    conn.query(
        &format!(
            "SELECT {COLS} FROM attachments WHERE owner_kind = $1 AND {} ORDER BY created_at, id",
            conn.dialect().in_json_list("owner_id", 2)
        ),
        &[
            crate::value::Value::Text(owner_kind.to_owned()),
            crate::value::Value::Json(ids),
        ],
    )?
    .iter()
    .map(Attachment::from_row)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_only_images_and_pdf() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"MZ\x90\0"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn file_names_lose_paths_and_quotes() {
        assert_eq!(
            clean_filename("C:\\x\\燃气表.jpg", "image/jpeg"),
            "燃气表.jpg"
        );
        assert_eq!(clean_filename("../../etc/passwd", "image/png"), "passwd");
        assert_eq!(clean_filename("a\"b;c\r\n.png", "image/png"), "abc.png");
        assert_eq!(clean_filename("", "application/pdf"), "attachment.pdf");
        assert_eq!(clean_filename(".hidden", "image/webp"), "attachment.webp");
    }
}

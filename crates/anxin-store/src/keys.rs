//! Key management on top of `anxin-crypto`: data keys live in the database wrapped by the master
//! key from configuration; the blind-index key is stored the same way.
//!
//! Each personal record gets its own data key (`key_id` column). Rotating the master key re-wraps
//! the data keys and touches no record. Deleting a data key (crypto-shredding) makes every
//! ciphertext under it unreadable, the change-log history included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anxin_crypto::{Algorithm, BlindIndexKey, DataKey, KeyRing, WrappedKey};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;

/// The well-known id under which the blind-index key is stored in `keyring`.
const BLIND_INDEX_NAME: &str = "blind_index";
/// Unwrapped data keys kept in memory; cleared when full rather than tracking recency.
const CACHE_MAX: usize = 200_000;

pub struct Keys {
    ring: KeyRing,
    alg: Algorithm,
    blind: BlindIndexKey,
    cache: Mutex<HashMap<Uuid, Arc<DataKey>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("current_master", &self.ring.current().id())
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Load the blind-index key, creating it on a new database.
    pub(crate) fn bootstrap(
        conn: &mut dyn Conn,
        ring: KeyRing,
        alg: Algorithm,
        now: chrono::DateTime<chrono::Utc>,
        new_id: Uuid,
    ) -> Result<Self> {
        let row = conn.query_one(
            "SELECT key_id, kek_id, wrapped FROM keyring WHERE name = $1",
            &params![BLIND_INDEX_NAME],
        )?;
        let blind = match row {
            Some(r) => {
                let id: Uuid = r.get("key_id")?;
                let w = WrappedKey {
                    kek_id: r.get("kek_id")?,
                    bytes: r.get("wrapped")?,
                };
                ring.unwrap_blind_index_key(id, &w)?
            }
            None => {
                let id = new_id;
                let key = BlindIndexKey::generate();
                let w = ring.wrap_blind_index_key(id, &key)?;
                conn.execute(
                    "INSERT INTO keyring (name, key_id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
                    &params![BLIND_INDEX_NAME, id, w.kek_id.clone(), w.bytes.clone(), now],
                )?;
                key
            }
        };
        Ok(Self {
            ring,
            alg,
            blind,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// A new data key for a new personal record, stored wrapped. Returns its id.
    pub fn new_data_key(
        &self,
        conn: &mut dyn Conn,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Uuid> {
        let dk = DataKey::generate(id, self.alg);
        let w = self.ring.wrap(&dk)?;
        conn.execute(
            "INSERT INTO data_keys (id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4)",
            &params![id, w.kek_id, w.bytes, now],
        )?;
        self.remember(Arc::new(dk));
        Ok(id)
    }

    fn remember(&self, dk: Arc<DataKey>) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(dk.id(), dk);
    }

    /// The data key `id`, from memory or unwrapped from the database. A shredded key is
    /// `Crypto("key shredded")`: its data is gone for good.
    pub fn data_key(&self, conn: &mut dyn Conn, id: Uuid) -> Result<Arc<DataKey>> {
        if let Some(k) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(k.clone());
        }
        let row = conn
            .query_one(
                "SELECT kek_id, wrapped FROM data_keys WHERE id = $1",
                &params![id],
            )?
            .ok_or_else(|| StoreError::Crypto(format!("data key {id} shredded")))?;
        let w = WrappedKey {
            kek_id: row.get("kek_id")?,
            bytes: row.get("wrapped")?,
        };
        let dk = Arc::new(self.ring.unwrap(id, &w)?);
        self.remember(dk.clone());
        Ok(dk)
    }

    /// Encrypt `plaintext` for the field `field` (e.g. "people.doc_number") under data key `key_id`.
    pub fn seal(
        &self,
        conn: &mut dyn Conn,
        key_id: Uuid,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let dk = self.data_key(conn, key_id)?;
        Ok(anxin_crypto::encrypt(&dk, plaintext, field.as_bytes())?)
    }

    pub fn open(&self, conn: &mut dyn Conn, field: &str, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let (_, key_id) = anxin_crypto::peek_key_id(ciphertext)?;
        let dk = self.data_key(conn, key_id)?;
        Ok(anxin_crypto::decrypt(&dk, ciphertext, field.as_bytes())?)
    }

    pub fn open_string(
        &self,
        conn: &mut dyn Conn,
        field: &str,
        ciphertext: &[u8],
    ) -> Result<String> {
        String::from_utf8(self.open(conn, field, ciphertext)?)
            .map_err(|_| StoreError::Crypto(format!("{field}: not text")))
    }

    /// The blind index of a normalised value in a context (e.g. "people.doc_number").
    pub fn blind(&self, context: &str, normalized: &str) -> Vec<u8> {
        self.blind.index(context, normalized).to_vec()
    }

    /// Delete a data key: everything sealed under it becomes unreadable.
    pub fn shred(&self, conn: &mut dyn Conn, id: Uuid) -> Result<()> {
        conn.execute("DELETE FROM data_keys WHERE id = $1", &params![id])?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        Ok(())
    }

    /// Re-wrap every data key and the blind-index key under the current master key. Records are
    /// not touched. Returns how many keys were re-wrapped.
    pub fn rotate(&self, conn: &mut dyn Conn) -> Result<u64> {
        let current = self.ring.current().id().to_owned();
        let mut n = 0;
        for (table, idcol) in [("data_keys", "id"), ("keyring", "key_id")] {
            let rows = conn.query(
                &format!("SELECT {idcol} AS kid, kek_id, wrapped FROM {table} WHERE kek_id <> $1"),
                &params![current.clone()],
            )?;
            for r in rows {
                let id: Uuid = r.get("kid")?;
                let w = WrappedKey {
                    kek_id: r.get("kek_id")?,
                    bytes: r.get("wrapped")?,
                };
                let nw = self.ring.rewrap(id, &w)?;
                conn.execute(
                    &format!("UPDATE {table} SET kek_id = $1, wrapped = $2 WHERE {idcol} = $3"),
                    &params![nw.kek_id, nw.bytes, id],
                )?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }
}

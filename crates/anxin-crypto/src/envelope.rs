//! Envelope encryption of personal-data fields.
//!
//! # Design
//!
//! Two levels of keys:
//!
//! * **Master keys (KEKs)** live only in configuration (`"<id>:<alg>:<base64>"`
//!   strings, see [`MasterKey`]), never in the database. A [`KeyRing`] holds
//!   the current one plus any older ones still needed for reading.
//! * **Data keys (DEKs)** are random per-purpose keys ([`DataKey`]). They
//!   encrypt field values and are stored in the database only *wrapped*
//!   (encrypted) by a master key, as a [`WrappedKey`].
//!
//! Rotating a master key therefore re-encrypts a handful of wrapped DEKs
//! ([`KeyRing::rewrap`]), never the data itself; once no wrapped key names an
//! old master key it can be removed from configuration.
//!
//! Both levels use an AEAD: AES-256-GCM, or SM4-GCM (GB/T 32907 block
//! cipher in GCM mode as in RFC 8998, 128-bit key) where national algorithms
//! are required. Nonces are 96-bit and random per message.
//!
//! # Byte formats
//!
//! Field ciphertext, from [`encrypt`] (48 bytes of overhead):
//!
//! ```text
//! "AX" | 0x01 | alg u8 | DEK id (16 bytes, UUID big-endian) | nonce (12) | ciphertext | tag (16)
//! AEAD associated data = the 20 header bytes (magic..DEK id) || caller's aad
//! ```
//!
//! Wrapped key, [`WrappedKey::bytes`] from [`KeyRing::wrap`] (65 bytes for an
//! AES-256 DEK, 49 for SM4):
//!
//! ```text
//! "AW" | 0x01 | KEK alg u8 | nonce (12) | AEAD_KEK( kind u8 | key bytes ) | tag (16)
//! AEAD associated data = the 4 header bytes (magic..KEK alg) || DEK id (16 bytes)
//! kind: 1 = AES-256-GCM data key, 2 = SM4-GCM data key,
//!       0x80 = blind-index HMAC-SHA256 key (see crate::blind)
//! ```
//!
//! Binding the DEK id into the wrapping means a wrapped key copied onto
//! another key id's row no longer opens; binding the caller's `aad` (the
//! field name, e.g. `b"people.doc_number"`) into field ciphertexts means a
//! ciphertext moved to another column no longer opens. The `kind` byte keeps
//! a blind-index key from ever being unwrapped as an encryption key.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::blind::BlindIndexKey;
use crate::error::CryptoError;
use crate::rng;
use crate::secret::Secret;

/// SM4 in GCM mode with a 96-bit nonce, as specified by RFC 8998.
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

const FIELD_MAGIC: [u8; 2] = *b"AX";
const FIELD_VERSION: u8 = 1;
/// Magic, version, algorithm and DEK id.
const FIELD_HEADER_LEN: usize = 2 + 1 + 1 + 16;
/// Bytes a field ciphertext adds to its plaintext.
pub const FIELD_OVERHEAD: usize = FIELD_HEADER_LEN + NONCE_LEN + TAG_LEN;

const WRAP_MAGIC: [u8; 2] = *b"AW";
const WRAP_VERSION: u8 = 1;
/// Magic, version and KEK algorithm.
const WRAP_HEADER_LEN: usize = 2 + 1 + 1;
const KIND_BLIND_INDEX: u8 = 0x80;

const MAX_KEY_ID_LEN: usize = 64;

/// AEAD algorithms for both master keys and data keys. The discriminant is
/// the byte written into ciphertext headers and must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Algorithm {
    /// AES-256-GCM, 32-byte key.
    Aes256Gcm = 1,
    /// SM4-GCM (GB/T 32907, RFC 8998), 16-byte key.
    Sm4Gcm = 2,
}

impl Algorithm {
    /// Configuration name: `"aes-256-gcm"` or `"sm4-gcm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes-256-gcm",
            Algorithm::Sm4Gcm => "sm4-gcm",
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Aes256Gcm => 32,
            Algorithm::Sm4Gcm => 16,
        }
    }

    /// The byte used in ciphertext headers.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Algorithm::to_byte`].
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Algorithm::Aes256Gcm),
            2 => Some(Algorithm::Sm4Gcm),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "aes-256-gcm" => Ok(Algorithm::Aes256Gcm),
            "sm4-gcm" => Ok(Algorithm::Sm4Gcm),
            // The input is not echoed: a mis-ordered master key string would
            // put key material here.
            _ => Err(CryptoError::UnknownAlgorithm),
        }
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| de::Error::custom("expected \"aes-256-gcm\" or \"sm4-gcm\""))
    }
}

// ---------------------------------------------------------------------------
// AEAD plumbing

fn seal_with<C>(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    out: &mut Vec<u8>,
    body_start: usize,
) -> Result<(), CryptoError>
where
    C: KeyInit + AeadInPlace<NonceSize = U12, TagSize = U16>,
{
    let cipher = C::new_from_slice(key).map_err(|_| CryptoError::EncryptFailed)?;
    let body = out
        .get_mut(body_start..)
        .ok_or(CryptoError::EncryptFailed)?;
    let tag = cipher
        .encrypt_in_place_detached(&(*nonce).into(), aad, body)
        .map_err(|_| CryptoError::EncryptFailed)?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Encrypts `out[body_start..]` in place and appends the tag, so the
/// plaintext is never copied into a second buffer.
fn seal(
    alg: Algorithm,
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    out: &mut Vec<u8>,
    body_start: usize,
) -> Result<(), CryptoError> {
    let result = match alg {
        Algorithm::Aes256Gcm => seal_with::<Aes256Gcm>(key, nonce, aad, out, body_start),
        Algorithm::Sm4Gcm => seal_with::<Sm4Gcm>(key, nonce, aad, out, body_start),
    };
    if result.is_err() {
        // The buffer still holds plaintext.
        out.zeroize();
    }
    result
}

fn open_with<C>(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError>
where
    C: KeyInit + AeadInPlace<NonceSize = U12, TagSize = U16>,
{
    let cipher = C::new_from_slice(key).map_err(|_| CryptoError::DecryptFailed)?;
    let split = ct_and_tag
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::BadCiphertext)?;
    let (ct, tag) = ct_and_tag.split_at(split);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| CryptoError::BadCiphertext)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_in_place_detached(&(*nonce).into(), aad, &mut buf, &tag.into())
        .map_err(|_| CryptoError::DecryptFailed)?;
    Ok(buf)
}

fn open(
    alg: Algorithm,
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    match alg {
        Algorithm::Aes256Gcm => open_with::<Aes256Gcm>(key, nonce, aad, ct_and_tag),
        Algorithm::Sm4Gcm => open_with::<Sm4Gcm>(key, nonce, aad, ct_and_tag),
    }
}

fn random_key(alg: Algorithm) -> Secret<Vec<u8>> {
    let mut key = Secret::new(vec![0u8; alg.key_len()]);
    // Filled in place so no copy of the key is left on the stack.
    rng::fill(key.expose_mut());
    key
}

// ---------------------------------------------------------------------------
// Master keys

fn validate_key_id(id: &str) -> Result<(), CryptoError> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !ok_chars {
        return Err(CryptoError::BadMasterKey {
            reason: format!("id must be 1-{MAX_KEY_ID_LEN} characters of A-Z a-z 0-9 . _ -"),
        });
    }
    Ok(())
}

/// Accepts keys with or without `=` padding, as people paste both.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A key-encryption key from configuration.
///
/// Configuration form: `"<id>:<alg>:<base64 key>"`, e.g.
/// `"2025a:aes-256-gcm:q83v...="`, or (when deserialized) a map
/// `{ id = "2025a", alg = "sm4-gcm", key = "<base64>" }`. The id is 1-64
/// characters of `A-Z a-z 0-9 . _ -`; it is stored next to every wrapped
/// key, so it must never be reused for different key bytes.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    alg: Algorithm,
    key: Secret<Vec<u8>>,
}

impl MasterKey {
    /// Builds a master key from raw bytes, checking the id and key length.
    pub fn new(id: impl Into<String>, alg: Algorithm, key: Vec<u8>) -> Result<Self, CryptoError> {
        let key = Secret::new(key);
        let id = id.into();
        validate_key_id(&id)?;
        if key.expose().len() != alg.key_len() {
            return Err(CryptoError::BadMasterKey {
                reason: format!(
                    "key '{id}' must be {} bytes for {alg}, got {}",
                    alg.key_len(),
                    key.expose().len()
                ),
            });
        }
        Ok(MasterKey { id, alg, key })
    }

    /// Builds a master key from a base64 (standard alphabet) key.
    pub fn from_base64(
        id: impl Into<String>,
        alg: Algorithm,
        key_b64: &str,
    ) -> Result<Self, CryptoError> {
        let id = id.into();
        let bytes = B64_LENIENT
            .decode(key_b64.trim())
            .map_err(|_| CryptoError::BadMasterKey {
                reason: format!("key '{id}' is not valid base64"),
            })?;
        MasterKey::new(id, alg, bytes)
    }

    /// A fresh random master key.
    pub fn generate(id: impl Into<String>, alg: Algorithm) -> Result<Self, CryptoError> {
        let id = id.into();
        validate_key_id(&id)?;
        Ok(MasterKey {
            id,
            alg,
            key: random_key(alg),
        })
    }

    /// The key id, as written in [`WrappedKey::kek_id`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `"<id>:<alg>:<base64 key>"` form, for putting into configuration.
    pub fn to_config_string(&self) -> Secret<String> {
        let b64 = Zeroizing::new(STANDARD.encode(self.key.expose()));
        Secret::new(format!("{}:{}:{}", self.id, self.alg, b64.as_str()))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("alg", &self.alg)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl FromStr for MasterKey {
    type Err = CryptoError;

    /// Parses `"<id>:<alg>:<base64 key>"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().splitn(3, ':');
        let (Some(id), Some(alg), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::BadMasterKey {
                reason: "expected \"<id>:<alg>:<base64 key>\"".into(),
            });
        };
        validate_key_id(id)?;
        let alg = alg
            .parse::<Algorithm>()
            .map_err(|_| CryptoError::BadMasterKey {
                reason: format!("key '{id}': algorithm must be \"aes-256-gcm\" or \"sm4-gcm\""),
            })?;
        MasterKey::from_base64(id, alg, key)
    }
}

impl<'de> Deserialize<'de> for MasterKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MasterKeyVisitor)
    }
}

struct MasterKeyVisitor;

impl<'de> Visitor<'de> for MasterKeyVisitor {
    type Value = MasterKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<id>:<alg>:<base64 key>\" or a map with id, alg and key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MasterKey, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<MasterKey, E> {
        let v = Zeroizing::new(v);
        v.parse().map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MasterKey, A::Error> {
        let mut id: Option<String> = None;
        let mut alg: Option<Algorithm> = None;
        let mut key: Option<Secret<String>> = None;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "id" => id = Some(map.next_value()?),
                "alg" => alg = Some(map.next_value()?),
                "key" => key = Some(map.next_value()?),
                other => {
                    return Err(de::Error::unknown_field(other, &["id", "alg", "key"]));
                }
            }
        }
        let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        let alg = alg.ok_or_else(|| de::Error::missing_field("alg"))?;
        let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
        MasterKey::from_base64(id, alg, key.expose()).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Data keys

/// A data-encryption key. Create with [`DataKey::generate`] (or
/// [`KeyRing::new_data_key`]), persist only as [`KeyRing::wrap`] output.
#[derive(Clone)]
pub struct DataKey {
    id: Uuid,
    alg: Algorithm,
    key: Secret<Vec<u8>>,
}

impl DataKey {
    /// A fresh random key from the OS CSPRNG under the caller-chosen id.
    pub fn generate(id: Uuid, alg: Algorithm) -> Self {
        DataKey {
            id,
            alg,
            key: random_key(alg),
        }
    }

    /// Rebuilds a key from raw bytes (imports, migrations, tests).
    pub fn from_bytes(id: Uuid, alg: Algorithm, key: Vec<u8>) -> Result<Self, CryptoError> {
        let key = Secret::new(key);
        if key.expose().len() != alg.key_len() {
            return Err(CryptoError::BadDataKey {
                reason: "key length does not match algorithm",
            });
        }
        Ok(DataKey { id, alg, key })
    }

    /// The id written into every ciphertext made with this key.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The key's algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("alg", &self.alg)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A data key (or blind-index key) encrypted under the master key `kek_id`.
/// Both fields are safe to store and log; see the module docs for `bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Id of the master key that wrapped it.
    pub kek_id: String,
    /// The self-describing wrapped blob.
    pub bytes: Vec<u8>,
}

// ---------------------------------------------------------------------------
// Key ring

/// The configured master keys: one current key that wraps new data keys,
/// plus older keys kept only to unwrap until [`KeyRing::rewrap`] has moved
/// everything to the current one.
#[derive(Clone)]
pub struct KeyRing {
    current: usize,
    keys: Vec<MasterKey>,
}

impl KeyRing {
    /// Checks that `current_id` is among `keys` and that ids are unique.
    /// Key lengths were already checked when each [`MasterKey`] was built.
    pub fn new(current_id: &str, keys: Vec<MasterKey>) -> Result<Self, CryptoError> {
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|other| other.id == k.id) {
                return Err(CryptoError::BadKeyRing {
                    reason: format!("master key id '{}' appears more than once", k.id),
                });
            }
        }
        let current = keys
            .iter()
            .position(|k| k.id == current_id)
            .ok_or_else(|| CryptoError::BadKeyRing {
                reason: format!(
                    "current master key '{current_id}' is not among the configured keys"
                ),
            })?;
        Ok(KeyRing { current, keys })
    }

    /// A new random master key and its configuration string, for
    /// `anxin admin` to print once.
    pub fn generate_master_key(
        id: &str,
        alg: Algorithm,
    ) -> Result<(MasterKey, Secret<String>), CryptoError> {
        let key = MasterKey::generate(id, alg)?;
        let config = key.to_config_string();
        Ok((key, config))
    }

    /// The key that wraps new data keys.
    pub fn current(&self) -> &MasterKey {
        // `current` is a checked index and `keys` is never modified.
        &self.keys[self.current]
    }

    /// A key by id.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// All configured key ids, current one included.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Generates a data key and wraps it with the current master key.
    pub fn new_data_key(
        &self,
        id: Uuid,
        alg: Algorithm,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        let dek = DataKey::generate(id, alg);
        let wrapped = self.wrap(&dek)?;
        Ok((dek, wrapped))
    }

    /// Wraps `dek` with the current master key.
    pub fn wrap(&self, dek: &DataKey) -> Result<WrappedKey, CryptoError> {
        self.wrap_raw(dek.id, dek.alg.to_byte(), dek.key.expose())
    }

    /// Unwraps the data key `dek_id` with whichever master key `w` names.
    pub fn unwrap(&self, dek_id: Uuid, w: &WrappedKey) -> Result<DataKey, CryptoError> {
        let (kind, key) = self.unwrap_raw(dek_id, w)?;
        let alg = Algorithm::from_byte(kind).ok_or(CryptoError::BadCiphertext)?;
        if key.len() != alg.key_len() {
            return Err(CryptoError::BadCiphertext);
        }
        Ok(DataKey {
            id: dek_id,
            alg,
            key: Secret::new(key.to_vec()),
        })
    }

    /// Wraps a blind-index key (see [`crate::blind`]) under `id`.
    pub fn wrap_blind_index_key(
        &self,
        id: Uuid,
        key: &BlindIndexKey,
    ) -> Result<WrappedKey, CryptoError> {
        self.wrap_raw(id, KIND_BLIND_INDEX, key.expose_bytes())
    }

    /// Unwraps a blind-index key stored under `id`.
    pub fn unwrap_blind_index_key(
        &self,
        id: Uuid,
        w: &WrappedKey,
    ) -> Result<BlindIndexKey, CryptoError> {
        let (kind, key) = self.unwrap_raw(id, w)?;
        if kind != KIND_BLIND_INDEX {
            return Err(CryptoError::BadCiphertext);
        }
        let bytes = Zeroizing::new(
            <[u8; 32]>::try_from(key.as_slice()).map_err(|_| CryptoError::BadCiphertext)?,
        );
        Ok(BlindIndexKey::from_bytes(*bytes))
    }

    /// Re-wraps with the current master key (key rotation). Works for data
    /// keys and blind-index keys alike; returns a clone when `w` already
    /// uses the current key.
    pub fn rewrap(&self, key_id: Uuid, w: &WrappedKey) -> Result<WrappedKey, CryptoError> {
        if w.kek_id == self.current().id {
            return Ok(w.clone());
        }
        let (kind, key) = self.unwrap_raw(key_id, w)?;
        self.wrap_raw(key_id, kind, &key)
    }

    fn wrap_raw(&self, key_id: Uuid, kind: u8, key: &[u8]) -> Result<WrappedKey, CryptoError> {
        let kek = self.current();
        let nonce: [u8; NONCE_LEN] = rng::bytes();
        let mut out = Vec::with_capacity(WRAP_HEADER_LEN + NONCE_LEN + 1 + key.len() + TAG_LEN);
        out.extend_from_slice(&WRAP_MAGIC);
        out.push(WRAP_VERSION);
        out.push(kek.alg.to_byte());
        let aad = wrap_aad(&out, key_id);
        out.extend_from_slice(&nonce);
        let body_start = out.len();
        out.push(kind);
        out.extend_from_slice(key);
        seal(
            kek.alg,
            kek.key.expose(),
            &nonce,
            &aad,
            &mut out,
            body_start,
        )?;
        Ok(WrappedKey {
            kek_id: kek.id.clone(),
            bytes: out,
        })
    }

    fn unwrap_raw(
        &self,
        key_id: Uuid,
        w: &WrappedKey,
    ) -> Result<(u8, Zeroizing<Vec<u8>>), CryptoError> {
        let kek = self.get(&w.kek_id).ok_or_else(|| CryptoError::UnknownKey {
            id: w.kek_id.clone(),
        })?;
        let b = &w.bytes;
        if b.len() < WRAP_HEADER_LEN + NONCE_LEN + 1 + TAG_LEN
            || b[..2] != WRAP_MAGIC
            || b[2] != WRAP_VERSION
        {
            return Err(CryptoError::BadCiphertext);
        }
        if Algorithm::from_byte(b[3]) != Some(kek.alg) {
            return Err(CryptoError::BadCiphertext);
        }
        let aad = wrap_aad(&b[..WRAP_HEADER_LEN], key_id);
        let nonce: [u8; NONCE_LEN] = b[WRAP_HEADER_LEN..WRAP_HEADER_LEN + NONCE_LEN]
            .try_into()
            .map_err(|_| CryptoError::BadCiphertext)?;
        let mut plain = open(
            kek.alg,
            kek.key.expose(),
            &nonce,
            &aad,
            &b[WRAP_HEADER_LEN + NONCE_LEN..],
        )?;
        if plain.is_empty() {
            return Err(CryptoError::BadCiphertext);
        }
        let kind = plain.remove(0);
        Ok((kind, plain))
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current().id)
            .field("keys", &self.keys)
            .finish()
    }
}

fn wrap_aad(header: &[u8], key_id: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 16);
    aad.extend_from_slice(header);
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

// ---------------------------------------------------------------------------
// Field encryption

/// Encrypts one field value. `aad` names the field (e.g.
/// `b"people.doc_number"`, optionally plus the row id) and must be passed
/// again, byte for byte, to [`decrypt`].
pub fn encrypt(dek: &DataKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce: [u8; NONCE_LEN] = rng::bytes();
    // Sized for the tag too, so the buffer never reallocates and leaves a
    // stray plaintext copy in freed memory.
    let mut out = Vec::with_capacity(FIELD_OVERHEAD + plaintext.len());
    out.extend_from_slice(&FIELD_MAGIC);
    out.push(FIELD_VERSION);
    out.push(dek.alg.to_byte());
    out.extend_from_slice(dek.id.as_bytes());
    let full_aad = field_aad(&out, aad);
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    seal(
        dek.alg,
        dek.key.expose(),
        &nonce,
        &full_aad,
        &mut out,
        body_start,
    )?;
    Ok(out)
}

/// Decrypts a value from [`encrypt`]. Fails with `crypto.wrong_key` if it
/// was made with another data key (use [`peek_key_id`] first to pick the
/// right one), `crypto.decrypt_failed` on wrong `aad` or tampering.
pub fn decrypt(dek: &DataKey, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (alg, id) = peek_key_id(ciphertext)?;
    if id != dek.id {
        return Err(CryptoError::WrongKey {
            expected: dek.id,
            found: id,
        });
    }
    if alg != dek.alg {
        return Err(CryptoError::BadCiphertext);
    }
    let full_aad = field_aad(&ciphertext[..FIELD_HEADER_LEN], aad);
    let nonce: [u8; NONCE_LEN] = ciphertext[FIELD_HEADER_LEN..FIELD_HEADER_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| CryptoError::BadCiphertext)?;
    let mut plain = open(
        alg,
        dek.key.expose(),
        &nonce,
        &full_aad,
        &ciphertext[FIELD_HEADER_LEN + NONCE_LEN..],
    )?;
    // The caller owns the plaintext from here on.
    Ok(std::mem::take(&mut *plain))
}

/// Reads the algorithm and data-key id from a field ciphertext header
/// without decrypting, so a reader can fetch and unwrap the right key.
pub fn peek_key_id(ciphertext: &[u8]) -> Result<(Algorithm, Uuid), CryptoError> {
    if ciphertext.len() < FIELD_OVERHEAD
        || ciphertext[..2] != FIELD_MAGIC
        || ciphertext[2] != FIELD_VERSION
    {
        return Err(CryptoError::BadCiphertext);
    }
    let alg = Algorithm::from_byte(ciphertext[3]).ok_or(CryptoError::BadCiphertext)?;
    let id = Uuid::from_slice(&ciphertext[4..FIELD_HEADER_LEN])
        .map_err(|_| CryptoError::BadCiphertext)?;
    Ok((alg, id))
}

fn field_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    // The header is fixed-length, so header || aad is unambiguous.
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

#[cfg(test)]
mod tests;

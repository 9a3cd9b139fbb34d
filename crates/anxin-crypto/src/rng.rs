//! The single source of randomness for keys, nonces, salts and tokens.

use rand::rngs::OsRng;
use rand::RngCore;

/// Fills `buf` from the operating system's CSPRNG.
///
/// Draws straight from the OS rather than a userspace generator so a forked
/// or snapshotted process can never repeat a nonce. `OsRng` panics only if
/// the OS has no entropy source at all, in which case no key could be made
/// safely and stopping is the right outcome.
pub(crate) fn fill(buf: &mut [u8]) {
    OsRng.fill_bytes(buf);
}

/// `N` random bytes from the OS CSPRNG.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

//! Random identifiers in the reference's two spellings: dashed UUID4 strings for
//! conversation events and conversations, 32-hex strings for bash events.
//!
//! Randomness comes from the kernel (`getrandom(2)`), so ids are unguessable
//! and never collide across processes or restarts.

#![allow(unsafe_code)]

use std::fmt::Write as _;

/// Fills `buf` with random bytes from the operating system.
///
/// Falls back to a time-and-counter mix only if the kernel refuses, which on
/// Linux happens only before the entropy pool is initialised at boot.
pub fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            fallback_bytes(rest);
            return;
        }
    }
}

fn fallback_bytes(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut state = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    for byte in buf {
        // splitmix64 step
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        *byte = (z ^ (z >> 31)) as u8;
    }
}

fn uuid4_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A new random UUID4 with dashes, e.g. `caabb3c2-582b-4caa-959c-cda5296ac7c7`.
pub fn uuid4() -> String {
    let h = hex(&uuid4_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A new random UUID4 as 32 lowercase hex digits without dashes.
pub fn uuid4_hex() -> String {
    hex(&uuid4_bytes())
}

/// Parses a UUID in either spelling (dashed or 32 hex digits, any case) and
/// returns it as 32 lowercase hex digits; `None` if it is not a UUID.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let s = s.trim();
    let compact: String = match s.len() {
        32 => s.to_string(),
        36 => {
            let dashes = [8, 13, 18, 23];
            if dashes.iter().any(|&i| s.as_bytes()[i] != b'-') {
                return None;
            }
            s.chars().filter(|&c| c != '-').collect()
        }
        _ => return None,
    };
    if compact.len() == 32 && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(compact.to_ascii_lowercase())
    } else {
        None
    }
}

/// Formats 32 hex digits as a dashed UUID (the input must come from
/// [`normalize_uuid`] or [`uuid4_hex`]).
pub fn dashed(hex32: &str) -> String {
    if hex32.len() != 32 {
        return hex32.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex32[0..8],
        &hex32[8..12],
        &hex32[12..16],
        &hex32[16..20],
        &hex32[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shapes() {
        let a = uuid4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid4());
        let h = uuid4_hex();
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn normalize_accepts_both_spellings() {
        let d = "BADF1CE6-4a34-48ef-a96e-908b75397233";
        let n = normalize_uuid(d).unwrap();
        assert_eq!(n, "badf1ce64a3448efa96e908b75397233");
        assert_eq!(normalize_uuid(&n).unwrap(), n);
        assert_eq!(dashed(&n), d.to_ascii_lowercase());
        assert!(normalize_uuid("not-a-uuid").is_none());
        assert!(normalize_uuid("../../../../etc/passwd/aaaaaaaaaaaa").is_none());
    }
}

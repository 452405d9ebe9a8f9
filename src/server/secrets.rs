//! Credentials at rest: LLM API keys and conversation secrets are persisted
//! only encrypted (XChaCha20-Poly1305, a random 24-byte nonce per value), with
//! a key derived from `OH_SECRET_KEY`, or else from the first session API key,
//! as the reference does. Without either, credentials are kept in memory only
//! and a conversation reloaded after a restart cannot run until its settings
//! are given again (the run fails with an error saying so).
//!
//! The stored form is `ohs1:` followed by hex(nonce || ciphertext). The key is
//! SHA-256 over a domain tag and the configured secret, which should itself be
//! a long random string.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "ohs1:";

/// Encrypts and decrypts stored credentials.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box keyed by `secret` (any non-empty string).
    pub fn new(secret: &str) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mut h = Sha256::new();
        h.update(b"openhands-sync secret box v1\0");
        h.update(secret.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let key = Key::from(digest);
        Some(SecretBox {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// Seals a value.
    pub fn seal(&self, plaintext: &str) -> Option<String> {
        let mut nonce = [0u8; 24];
        crate::util::id::random_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext.as_bytes())
            .ok()?;
        let mut out = String::with_capacity(PREFIX.len() + 2 * (24 + sealed.len()));
        out.push_str(PREFIX);
        for b in nonce.iter().chain(sealed.iter()) {
            out.push_str(&format!("{b:02x}"));
        }
        Some(out)
    }

    /// Opens a sealed value; `None` if it was not sealed with this key or was
    /// tampered with.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let hex = sealed.strip_prefix(PREFIX)?;
        if hex.len() % 2 != 0 || hex.len() < 2 * 24 {
            return None;
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        let (nonce, body) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&XNonce::from(nonce), body).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let b = SecretBox::new("correct horse battery staple").unwrap();
        let sealed = b.seal("sk-live-123").unwrap();
        assert!(sealed.starts_with("ohs1:") && !sealed.contains("sk-live"));
        assert_ne!(
            sealed,
            b.seal("sk-live-123").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(b.open(&sealed).as_deref(), Some("sk-live-123"));
        let other = SecretBox::new("another key").unwrap();
        assert!(other.open(&sealed).is_none());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('0');
        assert!(b.open(&tampered).is_none() || tampered == sealed);
        assert!(b.open("garbage").is_none());
        assert!(SecretBox::new("").is_none());
    }
}

//! Session-key authentication, as the reference does it: keys come from
//! `SESSION_API_KEY` and `OH_SESSION_API_KEYS_0`, `_1`, ... (or a JSON list in
//! `OH_SESSION_API_KEYS`); with no key every route is open, otherwise `/api/*`
//! needs the header `X-Session-API-Key` and the event socket the key in its
//! first message or query. Comparison takes the same time wherever the first
//! differing byte is, so timing does not leak the key.

/// The accepted session keys; empty means authentication is off.
#[derive(Clone, Default)]
pub struct SessionKeys(Vec<String>);

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({} configured)", self.0.len())
    }
}

impl SessionKeys {
    /// Keys from explicit values (blank ones are ignored).
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> Self {
        SessionKeys(keys.into_iter().filter(|k| !k.trim().is_empty()).collect())
    }

    /// Keys from the environment, as the reference reads them.
    pub fn from_env() -> Self {
        let mut keys = Vec::new();
        if let Ok(list) = std::env::var("OH_SESSION_API_KEYS") {
            if let Ok(v) = serde_json::from_str::<Vec<String>>(&list) {
                keys.extend(v);
            }
        }
        for i in 0.. {
            match std::env::var(format!("OH_SESSION_API_KEYS_{i}")) {
                Ok(k) => keys.push(k),
                Err(_) => break,
            }
        }
        if let Ok(k) = std::env::var("SESSION_API_KEY") {
            keys.push(k);
        }
        SessionKeys::new(keys)
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The first key (the reference's fallback secret-encryption key).
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// Whether `candidate` is accepted (always true when auth is off).
    pub fn accepts(&self, candidate: Option<&str>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(candidate) = candidate else {
            return false;
        };
        // Check every key so the time taken does not say which one matched.
        self.0.iter().fold(false, |ok, key| {
            constant_time_eq(key.as_bytes(), candidate.as_bytes()) | ok
        })
    }
}

/// Compares in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let open = SessionKeys::new(vec![" ".to_string()]);
        assert!(!open.enabled());
        assert!(open.accepts(None));
        let k = SessionKeys::new(vec!["alpha".into(), "beta".into()]);
        assert!(k.accepts(Some("beta")));
        assert!(!k.accepts(Some("bet")));
        assert!(!k.accepts(Some("betaa")));
        assert!(!k.accepts(None));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(&[0u8; 256], &[]));
    }
}

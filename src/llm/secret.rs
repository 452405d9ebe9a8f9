//! [`Secret`]: a string that never shows itself by accident. `Debug`,
//! `Display` and serialisation print `**********` (the reference's mask);
//! only [`Secret::expose`] gives the value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The mask the reference uses for secrets in responses and events.
pub const MASK: &str = "**********";

/// A secret string (API keys, tokens).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value. Call it only where the value must leave the process
    /// (an `Authorization` header, an encrypted store).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty or is itself the mask (what a client gets
    /// back from a server, which cannot be used as a key).
    pub fn is_unusable(&self) -> bool {
        self.0.is_empty() || self.0 == MASK
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), "********** **********");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"**********\"");
        assert_eq!(s.expose(), "sk-live-123");
        let back: Secret = serde_json::from_str("\"**********\"").unwrap();
        assert!(back.is_unusable());
    }
}

//! Confirmation policies: which actions wait for the user before they run.

use serde::{Deserialize, Serialize};

use crate::wire::SecurityRisk;

/// When actions need the user's approval (`{"kind": "NeverConfirm"}`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind")]
pub enum ConfirmationPolicy {
    /// Run everything without asking (the default).
    #[default]
    NeverConfirm,
    /// Ask before every action.
    AlwaysConfirm,
    /// Ask when the model rated an action at least `threshold` risky (and,
    /// with `confirm_unknown`, when it gave no rating).
    ConfirmRisky {
        /// The lowest risk that needs approval (default `HIGH`).
        #[serde(default = "high")]
        threshold: SecurityRisk,
        /// Ask when the risk is `UNKNOWN` (default true).
        #[serde(default = "yes")]
        confirm_unknown: bool,
    },
}

fn high() -> SecurityRisk {
    SecurityRisk::High
}
fn yes() -> bool {
    true
}

fn rank(r: SecurityRisk) -> u8 {
    match r {
        SecurityRisk::Unknown => 0,
        SecurityRisk::Low => 1,
        SecurityRisk::Medium => 2,
        SecurityRisk::High => 3,
    }
}

impl ConfirmationPolicy {
    /// Whether an action rated `risk` needs approval.
    pub fn should_confirm(&self, risk: SecurityRisk) -> bool {
        match self {
            ConfirmationPolicy::NeverConfirm => false,
            ConfirmationPolicy::AlwaysConfirm => true,
            ConfirmationPolicy::ConfirmRisky {
                threshold,
                confirm_unknown,
            } => {
                if risk == SecurityRisk::Unknown {
                    *confirm_unknown
                } else {
                    rank(risk) >= rank(*threshold)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let risky: ConfirmationPolicy =
            serde_json::from_str(r#"{"kind":"ConfirmRisky","threshold":"MEDIUM"}"#).unwrap();
        assert!(risky.should_confirm(SecurityRisk::High));
        assert!(risky.should_confirm(SecurityRisk::Medium));
        assert!(!risky.should_confirm(SecurityRisk::Low));
        assert!(risky.should_confirm(SecurityRisk::Unknown));
        assert!(ConfirmationPolicy::AlwaysConfirm.should_confirm(SecurityRisk::Low));
        assert!(!ConfirmationPolicy::NeverConfirm.should_confirm(SecurityRisk::High));
        assert_eq!(
            serde_json::to_string(&ConfirmationPolicy::NeverConfirm).unwrap(),
            r#"{"kind":"NeverConfirm"}"#
        );
    }
}

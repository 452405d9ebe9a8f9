//! openhands-sync: a synchronous OpenHands agent server, agent runtime and
//! blocking client, wire-compatible with the reference Python packages.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod util;
pub mod wire;

pub use error::{Error, Result};
pub mod bash;
pub mod client;
pub mod logging;
pub mod server;

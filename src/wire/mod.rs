//! The protocol's JSON types, defined once and shared by server and client.
//!
//! Nothing here does I/O. Polymorphic objects follow the reference's `"kind"`
//! convention (see [`Event`], [`Action`], [`Observation`], [`BashEvent`]);
//! kinds this crate does not model are preserved in an `Unknown` variant, and
//! unknown fields of known kinds in an `extra` map, so a newer peer never breaks
//! parsing and nothing is lost when a value is written back.

pub(crate) mod macros;

mod action;
mod bash;
mod common;
mod conversation;
mod event;
mod workspace;

pub use action::*;
pub use bash::*;
pub use common::*;
pub use conversation::*;
pub use event::*;
pub use workspace::*;

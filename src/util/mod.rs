//! Small helpers with no domain of their own: random ids, timestamps, secret
//! masking and atomic file writes.

pub mod fs;
pub mod id;
pub mod process;
pub mod time;

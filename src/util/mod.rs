//! Small helpers with no domain of their own: random ids, timestamps, secret
//! masking, atomic file writes, child processes and their guardian.

pub mod fs;
pub mod guardian;
pub mod id;
pub mod process;
pub mod time;

//! The default tools: `terminal`, `file_editor`, `task_tracker`, `finish`,
//! `think`, with the reference's names and parameter schemas.

mod pty;
pub mod terminal;

//! Blocking clients of an agent server (ours or the reference's).

pub mod http;
mod workspace;

pub use workspace::{
    CommandOptions, RemoteWorkspace, RemoteWorkspaceBuilder, DEFAULT_COMMAND_TIMEOUT,
};

//! Blocking clients of an agent server (ours or the reference's).

pub mod http;
mod managed;
mod workspace;

pub use managed::{ManagedServer, ManagedServerBuilder, ServerCommand, CHILD_MARKER_ENV};
pub use workspace::{
    CommandOptions, RemoteWorkspace, RemoteWorkspaceBuilder, DEFAULT_COMMAND_TIMEOUT,
};

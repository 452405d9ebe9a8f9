//! Blocking clients of an agent server (ours or the reference's).

mod conversation;
pub mod http;
mod managed;
pub mod socket;
mod workspace;

pub use conversation::{
    RemoteConversation, RemoteConversationBuilder, RemoteState, DEFAULT_RUN_TIMEOUT,
};
pub use managed::{ManagedServer, ManagedServerBuilder, ServerCommand, CHILD_MARKER_ENV};
pub use workspace::{
    CommandOptions, RemoteWorkspace, RemoteWorkspaceBuilder, DEFAULT_COMMAND_TIMEOUT,
};

//! # openhands-sync
//!
//! A synchronous, dependency-light re-implementation of the OpenHands agent
//! server and its client, wire-compatible with the reference Python packages
//! (`openhands-sdk`, `openhands-agent-server`, `openhands-tools` 1.58.2).
//! No async runtime: a thread per connection on the server, blocking calls on
//! the client.
//!
//! Start a server in your process and run a command in its workspace:
//!
//! ```
//! use openhands_sync::client::RemoteWorkspace;
//! use openhands_sync::server::{Server, ServerConfig};
//!
//! # fn main() -> openhands_sync::Result<()> {
//! # let state = std::env::temp_dir().join(format!("ohs-doc-{}", std::process::id()));
//! let mut config = ServerConfig::new("127.0.0.1", 0); // port 0: any free port
//! # config.state_dir = state.clone();
//! let server = Server::bind(config)?;
//! let url = format!("http://{}", server.local_addr());
//! let handle = server.handle();
//! let thread = std::thread::spawn(move || server.run());
//!
//! let workspace = RemoteWorkspace::new(&url);
//! let result = workspace.execute_command("echo hello")?;
//! assert_eq!((result.exit_code, result.stdout.as_str()), (0, "hello\n"));
//!
//! handle.shutdown();
//! thread.join().expect("server thread")?;
//! # std::fs::remove_dir_all(&state).ok();
//! # Ok(())
//! # }
//! ```
//!
//! For a server in its own process, use [`client::ManagedServer`] (it is what
//! `examples/local_server.rs` does) or run the `openhands-sync serve` binary.
//!
//! ## Modules
//! - [`wire`]: the protocol's JSON types, shared by server and client.
//! - [`server`]: the HTTP server and its routes.
//! - [`bash`]: workspace commands behind `/api/bash`.
//! - [`client`]: [`client::RemoteWorkspace`] and [`client::ManagedServer`].
//! - [`cli`]: the `serve` command line.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod bash;
pub mod cli;
pub mod client;
pub mod conversation;
pub mod error;
pub mod llm;
pub mod logging;
pub mod server;
pub mod tool;
pub mod util;
pub mod wire;

pub use error::{Error, Result};

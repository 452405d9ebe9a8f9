//! The "Local Agent Server" flow in Rust: start an agent server as a child
//! process, wait for `/health`, and use its workspace.
//!
//! ```text
//! cargo run --release --example local_server
//! AGENT_SERVER_URL=http://127.0.0.1:8000 cargo run --release --example local_server
//! ```
//!
//! Without `AGENT_SERVER_URL` the example re-runs itself as the server
//! (`<example> serve --host 127.0.0.1 --port P`, `LOG_JSON=true`), so it works
//! on a fresh clone without building anything else.

use std::process::ExitCode;

use openhands_sync::client::{ManagedServer, RemoteWorkspace, ServerCommand};

fn main() -> ExitCode {
    openhands_sync::cli::serve_if_requested();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> openhands_sync::Result<()> {
    // 1. A server: an existing one, or our own child process.
    let managed;
    let url = match std::env::var("AGENT_SERVER_URL") {
        Ok(url) => {
            println!("Using the agent server at {url}");
            url
        }
        Err(_) => {
            println!("Starting an agent server ...");
            managed = ManagedServer::builder()
                .command(ServerCommand::CurrentExe)
                .start()?;
            println!("Agent server is healthy at {}", managed.url());
            managed.url().to_string()
        }
    };

    // 2. Its workspace: where does a command run?
    let workspace = RemoteWorkspace::new(&url);
    let result = workspace.execute_command("pwd")?;
    println!(
        "Command '{}' completed with exit code {}",
        result.command, result.exit_code
    );
    println!("Output: {}", result.stdout.trim());
    if result.exit_code != 0 {
        return Err(openhands_sync::Error::Process(format!(
            "pwd failed: {}",
            result.stderr
        )));
    }
    println!("Done.");
    Ok(())
}

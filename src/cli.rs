//! The `serve` command line, shared by the `openhands-sync` binary and by
//! programs that re-execute themselves as a server ([`serve_if_requested`]).
//!
//! ```text
//! openhands-sync serve [--host HOST] [--port PORT]
//! openhands-sync [--host HOST] [--port PORT]      (like python -m openhands.agent_server)
//! ```

use std::process::ExitCode;

use crate::server::{Server, ServerConfig};

/// The help text.
pub const USAGE: &str = "usage: openhands-sync [serve] [--host HOST] [--port PORT]

Runs the OpenHands-compatible agent server.

options:
  --host HOST   interface to bind (default 127.0.0.1)
  --port PORT   port to bind, 0 for any free port (default 8000)
  -h, --help    show this help
  -V, --version show the version

environment:
  LOG_JSON=true            one JSON object per log line
  LOG_LEVEL=debug|info|... log level (default info)
  SESSION_API_KEY, OH_SESSION_API_KEYS_0..N   require X-Session-API-Key on /api
  OH_STATE_DIR             state directory (default ./workspace)
  OH_FILE_ROOT             confine the file routes to this directory";

/// Parsed `serve` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// Interface to bind.
    pub host: String,
    /// Port to bind.
    pub port: u16,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print this text and exit successfully (help, version).
    Print(String),
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut parsed = ServeArgs {
        host: "127.0.0.1".into(),
        port: 8000,
    };
    let mut first = true;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "serve" if first => {}
            "--host" => parsed.host = value("--host")?,
            "--port" => {
                let v = value("--port")?;
                parsed.port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "-h" | "--help" => return Ok(Command::Print(USAGE.to_string())),
            "-V" | "--version" => {
                return Ok(Command::Print(format!(
                    "openhands-sync {}",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            other => return Err(format!("unknown argument: {other}")),
        }
        first = false;
    }
    Ok(Command::Serve(parsed))
}

/// Runs the server until SIGINT/SIGTERM; logs per `LOG_JSON`/`LOG_LEVEL`.
pub fn serve(args: ServeArgs) -> ExitCode {
    limit_malloc_arenas();
    crate::logging::init_from_env();
    let config = ServerConfig::from_env(args.host, args.port);
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = server.handle();
    if let Err(e) = ctrlc::set_handler(move || handle.shutdown()) {
        log::warn!("cannot install the signal handler: {e}");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A thread per connection would otherwise give glibc a malloc arena per
/// thread, each keeping its freed memory: two arenas keep the server small.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The whole `openhands-sync` program.
pub fn main_with_args<I: IntoIterator<Item = String>>(args: I) -> ExitCode {
    match parse(args) {
        Ok(Command::Serve(a)) => serve(a),
        Ok(Command::Print(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("openhands-sync: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// If this process was started as `<program> serve ...`, runs the server and
/// exits; otherwise returns. Call it first thing in `main` of a program that
/// uses [`ManagedServer`](crate::client::ManagedServer) with
/// [`ServerCommand::CurrentExe`](crate::client::ServerCommand::CurrentExe).
pub fn serve_if_requested() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        let code = main_with_args(args);
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_both_spellings() {
        let want = Command::Serve(ServeArgs {
            host: "0.0.0.0".into(),
            port: 9,
        });
        assert_eq!(
            parse(args("serve --host 0.0.0.0 --port 9")),
            Ok(want.clone())
        );
        assert_eq!(parse(args("--host=0.0.0.0 --port=9")), Ok(want));
        assert_eq!(
            parse(args("")),
            Ok(Command::Serve(ServeArgs {
                host: "127.0.0.1".into(),
                port: 8000
            }))
        );
        assert!(parse(args("--port 99999")).is_err());
        assert!(parse(args("--port")).is_err());
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("--port 1 serve")).is_err());
        assert!(matches!(parse(args("--help")), Ok(Command::Print(_))));
    }
}

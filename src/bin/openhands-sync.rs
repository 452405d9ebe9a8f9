//! `openhands-sync`: runs the agent server.
//!
//! ```text
//! openhands-sync serve [--host HOST] [--port PORT]
//! openhands-sync [--host HOST] [--port PORT]      (same, like python -m openhands.agent_server)
//! ```

use std::process::ExitCode;

use openhands_sync::server::{Server, ServerConfig};

const USAGE: &str = "usage: openhands-sync [serve] [--host HOST] [--port PORT]

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

struct Args {
    host: String,
    port: u16,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
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
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("openhands-sync {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
        first = false;
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openhands-sync: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    openhands_sync::logging::init_from_env();
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

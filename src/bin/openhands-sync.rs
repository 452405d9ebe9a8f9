//! `openhands-sync`: runs the agent server (see [`openhands_sync::cli`]).

fn main() -> std::process::ExitCode {
    openhands_sync::cli::main_with_args(std::env::args().skip(1))
}

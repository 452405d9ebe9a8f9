//! The `terminal` tool: a persistent shell with the reference's semantics.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempDir;
use openhands_sync::tool::terminal::{llm_text, Terminal, TerminalConfig};
use openhands_sync::util::process::ProcessGroups;
use openhands_sync::wire::TerminalAction;

fn action(command: &str) -> TerminalAction {
    TerminalAction {
        command: command.into(),
        is_input: false,
        timeout: None,
        reset: false,
        extra: Default::default(),
    }
}

fn input(keys: &str) -> TerminalAction {
    TerminalAction {
        is_input: true,
        ..action(keys)
    }
}

fn text(obs: &openhands_sync::wire::TerminalObservation) -> String {
    obs.content.iter().filter_map(|c| c.as_text()).collect()
}

fn terminal(dir: &TempDir, quiet: Duration) -> Terminal {
    Terminal::new(
        TerminalConfig {
            working_dir: dir.path().to_path_buf(),
            no_change_timeout: quiet,
            env: Vec::new(),
        },
        Arc::new(ProcessGroups::default()),
    )
}

#[test]
fn cwd_and_environment_persist_between_calls() {
    let dir = TempDir::new("term");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let mut t = terminal(&dir, Duration::from_secs(10));
    let o = t.execute(&action("pwd")).unwrap();
    assert_eq!(text(&o), dir.path().to_str().unwrap());
    assert_eq!(o.exit_code, Some(0));
    t.execute(&action("cd sub && export GREETING=hello"))
        .unwrap();
    let o = t.execute(&action("pwd; echo $GREETING")).unwrap();
    assert_eq!(text(&o), format!("{}/sub\nhello", dir.path().display()));
    assert_eq!(
        o.metadata.working_dir.as_deref(),
        Some(dir.path().join("sub").to_str().unwrap())
    );
    let o = t.execute(&action("false")).unwrap();
    assert_eq!(o.exit_code, Some(1));
    assert!(llm_text(&o).contains("exit code 1"), "{}", llm_text(&o));
    let o = t
        .execute(&action("for i in 1 2 3; do\n  echo line $i\ndone"))
        .unwrap();
    assert_eq!(text(&o), "line 1\nline 2\nline 3");
}

#[test]
fn hard_timeout_returns_and_c_c_interrupts() {
    let dir = TempDir::new("term");
    let mut t = terminal(&dir, Duration::from_secs(30));
    let started = Instant::now();
    let o = t
        .execute(&TerminalAction {
            timeout: Some(1.0),
            ..action("echo started; sleep 100")
        })
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(o.timeout);
    assert_eq!(o.exit_code, Some(-1));
    assert_eq!(text(&o), "started");
    // A new command is refused while the old one runs.
    let refused = t.execute(&action("echo no")).unwrap();
    assert!(refused.is_error);
    let o = t.execute(&input("C-c")).unwrap();
    assert_eq!(o.exit_code, Some(130), "{o:?}");
    let o = t.execute(&action("echo after")).unwrap();
    assert_eq!(text(&o), "after");
}

#[test]
fn interactive_read_is_answered_with_is_input() {
    let dir = TempDir::new("term");
    let mut t = terminal(&dir, Duration::from_millis(800));
    let o = t
        .execute(&action(
            "read -p 'Your name? ' name && echo \"Hello, $name\"",
        ))
        .unwrap();
    assert_eq!(o.exit_code, Some(-1), "the prompt waits for input: {o:?}");
    assert!(text(&o).contains("Your name?"));
    let o = t.execute(&input("Ada")).unwrap();
    assert_eq!(o.exit_code, Some(0));
    assert!(text(&o).contains("Hello, Ada"), "{o:?}");
    let o = t.execute(&input("x")).unwrap();
    assert!(o.is_error, "no running command to send input to");
}

#[test]
fn no_output_timeout_and_more_output_later() {
    let dir = TempDir::new("term");
    let mut t = terminal(&dir, Duration::from_millis(500));
    let o = t.execute(&action("echo one; sleep 1.5; echo two")).unwrap();
    assert_eq!((o.exit_code, text(&o).as_str()), (Some(-1), "one"));
    assert!(!o.timeout);
    std::thread::sleep(Duration::from_millis(1200));
    let o = t.execute(&action("")).unwrap();
    assert_eq!((o.exit_code, text(&o).as_str()), (Some(0), "two"));
}

#[test]
fn reset_starts_a_new_shell_and_close_kills_jobs() {
    let dir = TempDir::new("term");
    let mut t = terminal(&dir, Duration::from_secs(5));
    t.execute(&action("export KEEP=1")).unwrap();
    let o = t
        .execute(&TerminalAction {
            reset: true,
            ..action("echo ${KEEP:-gone}")
        })
        .unwrap();
    assert_eq!(text(&o), "gone");
    let marker = format!("ohs_term_job_{}", std::process::id());
    t.execute(&action(&format!("(exec -a {marker} sleep 300) &")))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let running = common::processes_matching(&marker);
    assert!(!running.is_empty(), "the background job started");
    t.close();
    std::thread::sleep(Duration::from_millis(200));
    let left = common::processes_matching(&marker);
    assert!(left.is_empty(), "a background job outlived the terminal");
}

#[test]
fn long_output_is_truncated_in_the_middle() {
    let dir = TempDir::new("term");
    let mut t = terminal(&dir, Duration::from_secs(10));
    let o = t.execute(&action("seq 1 20000")).unwrap();
    let out = text(&o);
    assert!(out.chars().count() <= 30_000);
    assert!(out.starts_with("1\n2\n3\n") && out.ends_with("19999\n20000"));
    assert!(out.contains("<response clipped>"));
}

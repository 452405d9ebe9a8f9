//! Our `RemoteWorkspace` against the reference Python agent server.
//!
//! Needs a running reference server, so it is ignored by plain `cargo test`;
//! `tests/interop/run.sh` starts one and runs this with `--ignored`, passing
//! `OHS_REFERENCE_URL` and `OHS_REFERENCE_CWD`.

use std::time::Duration;

use openhands_sync::client::{CommandOptions, RemoteWorkspace};

fn reference() -> (String, String) {
    let url = std::env::var("OHS_REFERENCE_URL")
        .expect("OHS_REFERENCE_URL must name a running reference server");
    let cwd = std::env::var("OHS_REFERENCE_CWD")
        .expect("OHS_REFERENCE_CWD must name its working directory");
    (url, cwd)
}

#[test]
#[ignore = "needs the reference server; run by tests/interop/run.sh"]
fn remote_workspace_drives_the_reference_server() {
    let (url, cwd) = reference();
    let ws = RemoteWorkspace::new(&url);
    assert!(ws.alive());

    let r = ws.execute_command("pwd").unwrap();
    assert_eq!(r.exit_code, 0, "{r:?}");
    let real = std::fs::canonicalize(&cwd).unwrap();
    assert_eq!(r.stdout.trim(), real.to_str().unwrap());

    let r = ws.execute_command("echo err >&2; exit 3").unwrap();
    assert_eq!(r.exit_code, 3);
    assert_eq!(r.stderr, "err\n");

    let r = ws
        .execute_command_with(
            "sleep 30",
            &CommandOptions {
                cwd: None,
                timeout: Some(Duration::from_secs(2)),
            },
        )
        .unwrap();
    assert_eq!(r.exit_code, -1);
    assert!(r.timeout_occurred, "{r:?}");

    let r = ws.execute_command("seq 1 20000").unwrap();
    assert_eq!(r.stdout.lines().count(), 20000);

    let scratch = std::env::temp_dir().join(format!("ohs-ref-{}", std::process::id()));
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let remote = scratch.join("up/file.bin");
    let up = ws
        .file_upload_bytes(&data, remote.to_str().unwrap())
        .unwrap();
    assert_eq!(up.file_size, data.len() as u64);
    assert_eq!(
        ws.file_download_bytes(remote.to_str().unwrap()).unwrap(),
        data
    );
    let missing = ws
        .file_download_bytes(scratch.join("nope").to_str().unwrap())
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
    assert!(ws
        .git_changes(scratch.to_str().unwrap())
        .unwrap()
        .is_empty());
    let _ = std::fs::remove_dir_all(&scratch);
}

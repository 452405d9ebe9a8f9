//! The `file_editor` tool's commands and error cases.

mod common;

use common::TempDir;
use openhands_sync::tool::file_editor::FileEditor;
use openhands_sync::wire::{FileEditorAction, FileEditorObservation};

fn act(command: &str, path: &str) -> FileEditorAction {
    FileEditorAction {
        command: command.into(),
        path: path.into(),
        file_text: None,
        old_str: None,
        new_str: None,
        insert_line: None,
        view_range: None,
        extra: Default::default(),
    }
}

fn text(o: &FileEditorObservation) -> String {
    o.content.iter().filter_map(|c| c.as_text()).collect()
}

#[test]
fn create_view_replace_insert_undo() {
    let dir = TempDir::new("edit");
    let path = dir.path().join("notes.txt");
    let p = path.to_str().unwrap();
    let mut ed = FileEditor::new();
    let o = ed.execute(&FileEditorAction {
        file_text: Some("alpha\nbeta\ngamma\n".into()),
        ..act("create", p)
    });
    assert!(!o.is_error && !o.prev_exist, "{o:?}");
    let again = ed.execute(&FileEditorAction {
        file_text: Some("x".into()),
        ..act("create", p)
    });
    assert!(again.is_error && text(&again).contains("already exists"));

    let o = ed.execute(&act("view", p));
    assert!(
        text(&o).contains("     1\talpha\n     2\tbeta\n     3\tgamma"),
        "{}",
        text(&o)
    );
    let o = ed.execute(&FileEditorAction {
        view_range: Some(vec![2, -1]),
        ..act("view", p)
    });
    assert!(text(&o).contains("     2\tbeta") && !text(&o).contains("alpha"));

    let o = ed.execute(&FileEditorAction {
        old_str: Some("beta".into()),
        new_str: Some("BETA".into()),
        ..act("str_replace", p)
    });
    assert!(!o.is_error, "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "alpha\nBETA\ngamma\n"
    );
    assert_eq!(o.old_content.as_deref(), Some("alpha\nbeta\ngamma\n"));

    let o = ed.execute(&FileEditorAction {
        insert_line: Some(1),
        new_str: Some("inserted".into()),
        ..act("insert", p)
    });
    assert!(!o.is_error, "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "alpha\ninserted\nBETA\ngamma\n"
    );

    let o = ed.execute(&act("undo_edit", p));
    assert!(!o.is_error);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "alpha\nBETA\ngamma\n"
    );
    ed.execute(&act("undo_edit", p));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "alpha\nbeta\ngamma\n"
    );
    let o = ed.execute(&act("undo_edit", p));
    assert!(o.is_error && text(&o).contains("no edit to undo"));
}

#[test]
fn str_replace_needs_a_unique_match() {
    let dir = TempDir::new("edit");
    let path = dir.path().join("dup.txt");
    std::fs::write(&path, "x = 1\ny = 2\nx = 1\n").unwrap();
    let p = path.to_str().unwrap();
    let mut ed = FileEditor::new();
    let o = ed.execute(&FileEditorAction {
        old_str: Some("x = 1".into()),
        new_str: Some("x = 3".into()),
        ..act("str_replace", p)
    });
    assert!(o.is_error);
    assert!(
        text(&o).contains("2 times") && text(&o).contains("lines 1, 3"),
        "{}",
        text(&o)
    );
    let o = ed.execute(&FileEditorAction {
        old_str: Some("z = 9".into()),
        new_str: Some("z".into()),
        ..act("str_replace", p)
    });
    assert!(o.is_error && text(&o).contains("does not occur"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "x = 1\ny = 2\nx = 1\n",
        "file untouched"
    );
}

#[test]
fn errors_for_bad_paths_and_long_views_are_truncated() {
    let dir = TempDir::new("edit");
    let mut ed = FileEditor::new();
    assert!(text(&ed.execute(&act("view", "relative.txt"))).contains("not absolute"));
    let missing = dir.path().join("missing");
    assert!(ed.execute(&act("view", missing.to_str().unwrap())).is_error);
    assert!(
        ed.execute(&act("str_replace", dir.path().to_str().unwrap()))
            .is_error
    );

    let big = dir.path().join("big.txt");
    let content: String = (0..5000).map(|i| format!("line number {i}\n")).collect();
    std::fs::write(&big, &content).unwrap();
    let o = ed.execute(&act("view", big.to_str().unwrap()));
    let t = text(&o);
    assert!(
        t.chars().count() < 16_500 && t.contains("<response clipped>"),
        "{}",
        t.len()
    );
    assert!(t.contains("grep -n"));

    std::fs::create_dir_all(dir.path().join("sub/deeper/deepest")).unwrap();
    std::fs::write(dir.path().join(".hidden"), "").unwrap();
    let o = ed.execute(&act("view", dir.path().to_str().unwrap()));
    let t = text(&o);
    assert!(
        t.contains("sub/deeper/") && !t.contains("deepest") && !t.contains(".hidden/"),
        "{t}"
    );
    assert!(t.contains("1 hidden"));
}

use std::io::Cursor;

use ferry_engine::{ConflictPolicy, MutationState, Resolution, Side};
use serde_json::json;

use super::*;

/// One of each command.
fn samples() -> Vec<Request> {
    vec![
        Request::AppInfo,
        Request::Status,
        Request::QueuePage { filter: Some(MutationState::Failed), after: Some(7), limit: Some(50) },
        Request::Conflicts { limit: Some(50) },
        Request::Resolve {
            conflict_id: "c1".into(),
            resolution: Resolution { keep: Some(Side::Local), ..Default::default() },
        },
        Request::ResolveAll { keep: Side::Remote, ids: None },
        Request::History { before: Some(9), limit: None },
        Request::SyncRuns { limit: Some(10) },
        Request::Restore { history_id: 3 },
        Request::Retry { mutation_id: "m1".into() },
        Request::RetryAll,
        Request::Correct { mutation_id: "m3".into(), fields: json!({"amount": 150}).as_object().cloned().unwrap() },
        Request::Discard { mutation_id: "m2".into() },
        Request::SyncNow,
        Request::SetPaused { paused: true },
        Request::Settings,
        Request::SetServer { url: "https://example.org".into() },
        Request::SetPullInterval { secs: 60 },
        Request::SetNotifications { on: false },
        Request::SetAutostart { on: true },
        Request::SetPolicy { entity: "activity".into(), policy: ConflictPolicy::Manual },
        Request::SetLanguage { language: "nb".into() },
        Request::SetTitleField { entity: "expense".into(), field: Some("description".into()) },
        Request::SaveDiagnostics { include_records: false },
        Request::Login { user: "ann".into(), password: "hunter2".into() },
        Request::Logout,
    ]
}

#[test]
fn every_command_is_named_once_and_on_the_wire_by_that_name() {
    let samples = samples();
    assert_eq!(samples.len(), COMMANDS.len(), "one sample per command");
    let mut seen = std::collections::BTreeSet::new();
    for r in &samples {
        assert!(COMMANDS.contains(&r.name()), "{} is missing from COMMANDS", r.name());
        assert!(seen.insert(r.name()), "{} twice", r.name());
        let wire = serde_json::to_value(Call { id: 1, request: r.clone() }).unwrap();
        assert_eq!(wire["command"], r.name(), "{wire}");
    }
}

#[test]
fn calls_and_messages_survive_a_line_round_trip() {
    let mut buf = Vec::new();
    for (i, r) in samples().into_iter().enumerate() {
        write_line(&mut buf, &Call { id: i as u64, request: r }).unwrap();
    }
    let mut input = Cursor::new(buf);
    let mut line = String::new();
    let mut back = Vec::new();
    while let Some(call) = read_line::<_, Call>(&mut input, &mut line).unwrap() {
        back.push(call.request);
    }
    assert_eq!(back, samples());

    let msgs = vec![
        HostMessage::Reply { id: 9, answer: Ok(json!({"a": [1, 2]})) },
        HostMessage::Reply { id: 10, answer: Err("no such conflict".into()) },
        HostMessage::SettingsChanged,
        HostMessage::Focus,
        HostMessage::Close,
    ];
    let mut buf = Vec::new();
    for m in &msgs {
        write_line(&mut buf, m).unwrap();
    }
    assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), msgs.len(), "one line each");
    let mut input = Cursor::new(buf);
    let mut got = Vec::new();
    while let Some(m) = read_line::<_, HostMessage>(&mut input, &mut line).unwrap() {
        got.push(m);
    }
    assert_eq!(got, msgs);
}

/// The page's camelCase keys (`conflictId`) are Tauri's business: it maps
/// them to the window's command parameters, which become these snake_case
/// fields — a fixed, documented line format for the two processes.
#[test]
fn the_line_format_names_arguments_in_snake_case() {
    let c: Call = serde_json::from_value(json!({
        "id": 4, "command": "queue_page", "args": {"filter": "failed", "after": null, "limit": 20}
    }))
    .unwrap();
    assert_eq!(c.request, Request::QueuePage { filter: Some(MutationState::Failed), after: None, limit: Some(20) });
    let wire = serde_json::to_value(Call {
        id: 5,
        request: Request::Resolve { conflict_id: "c9".into(), resolution: Resolution::default() },
    })
    .unwrap();
    assert_eq!(wire["args"]["conflict_id"], "c9", "{wire}");
    assert!(wire["args"].get("conflictId").is_none());
    let c: Call = serde_json::from_value(json!({
        "id": 6, "command": "save_diagnostics", "args": {"include_records": true}
    }))
    .unwrap();
    assert_eq!(c.request, Request::SaveDiagnostics { include_records: true });
    // `field: null` is the way back to the default title rule.
    let c: Call = serde_json::from_value(json!({
        "id": 7, "command": "set_title_field", "args": {"entity": "expense", "field": null}
    }))
    .unwrap();
    assert_eq!(c.request, Request::SetTitleField { entity: "expense".into(), field: None });
}

#[test]
fn a_stray_line_is_an_error_not_a_panic_and_the_stream_goes_on() {
    let mut input = Cursor::new(b"Gtk-Message: hello\n{\"kind\":\"focus\"}\n".to_vec());
    let mut line = String::new();
    let e = read_line::<_, HostMessage>(&mut input, &mut line).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(read_line::<_, HostMessage>(&mut input, &mut line).unwrap(), Some(HostMessage::Focus));
    assert_eq!(read_line::<_, HostMessage>(&mut input, &mut line).unwrap(), None);
}

#[test]
fn debug_output_never_shows_a_password() {
    let call = Call { id: 1, request: Request::Login { user: "ann".into(), password: "hunter2".into() } };
    let text = format!("{call:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("login"), "{text}");
}

/// The UI's TypeScript types are generated from the Rust types (ts-rs),
/// never written by hand. Fails when ui/src/bindings/ is stale; refresh with
/// `FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-ipc bindings`.
#[test]
fn bindings_are_up_to_date() {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn read_dir(dir: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".ts") {
                out.insert(name, std::fs::read_to_string(e.path()).unwrap());
            }
        }
        out
    }

    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings");
    let fresh = tempfile::tempdir().unwrap();
    export_bindings(fresh.path()).unwrap();
    let want = read_dir(fresh.path());
    assert!(want.contains_key("Status.ts"), "ts-rs wrote {:?}", want.keys());
    if std::env::var_os("FERRY_UPDATE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).unwrap();
        for (name, text) in &want {
            std::fs::write(committed.join(name), text).unwrap();
        }
        return;
    }
    let have = read_dir(&committed);
    let hint = "run FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-ipc bindings";
    assert_eq!(have.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "ui/src/bindings is stale: {hint}");
    for (name, text) in &want {
        assert_eq!(&have[name], text, "ui/src/bindings/{name} is stale: {hint}");
    }
}

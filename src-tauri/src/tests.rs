//! The window's command list is written in several places that must agree:
//! ferry-ipc's COMMANDS (also the ACL manifest, via build.rs), the handler
//! list in main.rs, the capability file and the UI's api.ts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::sync::{Arc, Mutex};

use ferry_ipc::{Call, Request, COMMANDS};

use crate::host::HostLink;

fn repo_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn commands() -> BTreeSet<String> {
    COMMANDS.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_capability_grants_exactly_the_commands_and_event_listening() {
    let cap: serde_json::Value = serde_json::from_str(&repo_file("src-tauri/capabilities/main-window.json")).unwrap();
    let granted: BTreeSet<String> =
        cap["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    let mut want: BTreeSet<String> = COMMANDS.iter().map(|c| format!("allow-{}", c.replace('_', "-"))).collect();
    want.insert("core:event:allow-listen".into());
    want.insert("core:event:allow-unlisten".into());
    assert_eq!(granted, want, "capabilities/main-window.json");
    assert_eq!(cap["windows"], serde_json::json!(["main"]));
}

#[test]
fn main_registers_every_command() {
    let main = repo_file("src-tauri/src/main.rs");
    let handler = main.split("generate_handler![").nth(1).unwrap().split(']').next().unwrap();
    let registered: BTreeSet<String> = handler
        .split(',')
        .map(|s| s.trim().trim_start_matches("commands::").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(registered, commands());
}

#[test]
fn the_ui_invokes_only_known_commands_and_all_of_them() {
    let api = repo_file("ui/src/api.ts");
    // Every `invoke(` or `invoke<T>(`, typed or not, and the quoted name after it.
    let invoked: BTreeSet<String> = api
        .split("invoke")
        .skip(1)
        .filter(|s| s.starts_with('(') || s.starts_with('<'))
        .filter_map(|s| s.split_once("(\"").map(|(_, rest)| rest))
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    assert_eq!(invoked, commands(), "ui/src/api.ts");
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_call_goes_out_as_one_line_and_returns_its_answer() {
    let out = Shared::default();
    let link = HostLink::new(Box::new(out.clone()));
    let calling = {
        let link = link.clone();
        tokio::spawn(async move { link.call(Request::Retry { mutation_id: "m-1".into() }).await })
    };
    // Wait for the line, as ferry-app would read it.
    let call: Call = loop {
        let bytes = out.0.lock().unwrap().clone();
        if let Some(line) = BufReader::new(Cursor::new(bytes)).lines().next() {
            break serde_json::from_str(&line.unwrap()).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(call.request, Request::Retry { mutation_id: "m-1".into() });
    link.deliver(call.id, Err("no failed mutation m-1".into()));
    assert_eq!(calling.await.unwrap(), Err("no failed mutation m-1".to_string()));
}

#[tokio::test]
async fn a_gone_host_is_an_error_that_says_what_to_do() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let link = HostLink::new(Box::new(Broken));
    let e = link.call(Request::SyncNow).await.unwrap_err();
    assert!(e.contains("start Ferry again"), "{e}");
}

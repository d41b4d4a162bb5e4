//! The UI's TypeScript types are generated from the Rust types (ts-rs), never
//! written by hand. This test fails when ui/src/bindings/ is stale; refresh
//! with `FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-app bindings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ts_rs::TS;

use crate::commands::{AppInfo, PolicyRow, Settings};
use crate::engine_bridge::{
    ConflictPolicy, ConflictView, EngineEvent, LocalRecord, MutationState, QueueItem, Resolution, ResolutionEntry,
    Side, Status, SyncRun, SyncState,
};

fn export_all(dir: &Path) {
    macro_rules! export {
        ($($t:ty),* $(,)?) => { $( <$t as TS>::export_all_to(dir).expect(stringify!($t)); )* };
    }
    export!(
        Status, SyncState, EngineEvent, MutationState, QueueItem, LocalRecord, ConflictPolicy, Side,
        ConflictView, ResolutionEntry, SyncRun, Resolution, AppInfo, PolicyRow, Settings,
    );
}

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

#[test]
fn bindings_are_up_to_date() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings");
    let fresh = tempfile::tempdir().unwrap();
    export_all(fresh.path());
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
    assert_eq!(
        have.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "ui/src/bindings is stale: run FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-app bindings"
    );
    for (name, text) in &want {
        assert_eq!(&have[name], text, "ui/src/bindings/{name} is stale: run FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-app bindings");
    }
}

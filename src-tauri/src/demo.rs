//! `--demo`: the whole cycle in a minute, without touching a real setup.
//!
//! Own data dir (reset at every launch), an embedded reference server on
//! 127.0.0.1:0 with a demo account, tokens in the demo dir (never the user's
//! keyring), sample activities, expenses and contacts written through the
//! engine while it is paused ("on a train"), so the queue visibly fills and
//! then drains, and a second device — a coordinator in the same
//! organisation, a second engine with its own data dir — that edits some of
//! the same records while this device edits them too, so conflicts turn up:
//! `activity` is set to `manual` (parked for the user), `contact` to `merge`
//! and `expense` stays `lww` (settled automatically, kept in the history).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::engine_bridge::{Bridge, ConflictPolicy, Fields, Tokens};

pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-password";
pub const COLLEAGUE: &str = "sam";
const COLLEAGUE_PASSWORD: &str = "sam-password";
const ORG: &str = "sunrise-mentors";

/// `$XDG_DATA_HOME/ferry-demo` (usually ~/.local/share/ferry-demo), or
/// `FERRY_DEMO_DIR`.
pub fn data_root() -> PathBuf {
    if let Some(d) = std::env::var_os("FERRY_DEMO_DIR") {
        return PathBuf::from(d);
    }
    directories::BaseDirs::new()
        .map(|b| b.data_dir().join("ferry-demo"))
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-demo"))
}

/// Every demo starts from scratch, so it always shows the same story.
pub fn reset_data_root(root: &Path) -> std::io::Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    std::fs::create_dir_all(root)
}

/// The demo wants its conflict notification within the first minute.
pub fn notify_policy() -> crate::notify::Policy {
    crate::notify::Policy {
        quiet_after_start: Duration::from_secs(8),
        quiet_after_reconnect: Duration::from_secs(5),
        min_gap: Duration::from_secs(60),
        coalesce: Duration::from_secs(2),
    }
}

pub struct Demo {
    server: ferry_server::RunningServer,
    colleague: Bridge,
    root: PathBuf,
    pub url: String,
}

fn obj(v: Value) -> Fields {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("sample data is always an object"),
    }
}

/// Starts the server, creates both accounts, signs both devices in and sets
/// the demo's conflict policies. The app's engine is not running yet.
pub async fn start(this: &Bridge, root: &Path) -> anyhow::Result<Demo> {
    let db = root.join("server.db");
    {
        let db = db.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            ferry_server::add_user(&db, USER, ORG, PASSWORD)?;
            ferry_server::add_user(&db, COLLEAGUE, ORG, COLLEAGUE_PASSWORD)?;
            Ok(())
        })
        .await??;
    }
    let mut config = ferry_server::Config::new(&db);
    config.listen = "127.0.0.1:0".parse()?;
    let server = ferry_server::serve(config).await?;
    let url = server.url();
    tracing::info!(%url, "demo server running");

    this.init(&url).await.map_err(anyhow::Error::msg)?;
    this.login(USER, PASSWORD).await.map_err(anyhow::Error::msg)?;
    this.set_policy("activity", ConflictPolicy::Manual).map_err(anyhow::Error::msg)?;
    this.set_policy("contact", ConflictPolicy::Merge).map_err(anyhow::Error::msg)?;

    let colleague = Bridge::open(root.join("second-device"), Tokens::Memory)?;
    colleague.init(&url).await.map_err(anyhow::Error::msg)?;
    colleague.login(COLLEAGUE, COLLEAGUE_PASSWORD).await.map_err(anyhow::Error::msg)?;
    colleague.set_pull_interval(Duration::from_secs(5)).map_err(anyhow::Error::msg)?;
    colleague.start();

    // For tests and the curious: where the demo's server is. No secrets
    // beyond the demo's own throwaway passwords.
    let info = json!({
        "server": url,
        "server_db": db,
        "user": USER,
        "colleague": COLLEAGUE,
        "org": ORG,
        "phase": "started",
    });
    write_info(root, &info);
    Ok(Demo { server, colleague, root: root.to_path_buf(), url })
}

fn write_info(root: &Path, info: &Value) {
    let _ = std::fs::write(root.join("demo.json"), serde_json::to_vec_pretty(info).unwrap_or_default());
}

fn set_phase(root: &Path, phase: &str) {
    let path = root.join("demo.json");
    if let Ok(mut v) = std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ())) {
        v["phase"] = json!(phase);
        write_info(root, &v);
    }
    tracing::info!(phase, "demo");
}

const TITLES: &[&str] = &[
    "Walk & talk", "Peer group meeting", "Hospital visit", "Phone check-in", "Coffee meetup",
    "Training session", "Village hall drop-in", "Train companion", "Family afternoon", "Online group",
];
const NAMES: &[&str] = &[
    "Aisha Berg", "Jonas Lie", "Marit Dahl", "Ola Nordmann", "Sara Haugen", "Emil Strand", "Ingrid Moe",
    "Per Bakke", "Nora Vik", "Lars Eide",
];

fn activity(i: usize) -> Fields {
    obj(json!({
        "title": TITLES[i % TITLES.len()],
        "date": format!("2025-03-{:02}", 1 + i % 28),
        "hours": 1 + (i % 4),
        "participants": 2 + (i % 7),
        "mentor": NAMES[i % NAMES.len()],
        "notes": "",
    }))
}

fn expense(i: usize) -> Fields {
    let what = ["Train ticket", "Coffee", "Bus pass", "Parking", "Printing"][i % 5];
    obj(json!({
        "description": what,
        "amount": 40 + (i * 37) % 400,
        "currency": "NOK",
        "date": format!("2025-03-{:02}", 1 + i % 28),
    }))
}

fn contact(i: usize) -> Fields {
    let name = NAMES[i % NAMES.len()];
    obj(json!({
        "name": name,
        "phone": format!("+47 9{:07}", 1_234_567 + i * 7919),
        "email": format!("{}@example.org", name.to_lowercase().replace(' ', ".")),
        "role": if i % 3 == 0 { "coordinator" } else { "peer mentor" },
    }))
}

impl Demo {
    /// The story: fill the queue offline, upload, then a colleague's edits
    /// collide with ours. Runs until the app quits (the colleague keeps
    /// editing now and then, so downloads show in the history).
    pub fn script(&self, this: Bridge) -> impl std::future::Future<Output = ()> + Send + 'static {
        let player = Player { colleague: self.colleague.clone(), root: self.root.clone() };
        async move {
            if let Err(e) = player.play(&this).await {
                tracing::warn!("demo script stopped: {e}");
            }
        }
    }

    pub async fn stop(self) {
        self.colleague.stop().await;
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!("demo server shutdown: {e}");
        }
        tracing::info!(url = %self.url, "demo server stopped");
    }
}

/// What the script needs, detached from `Demo` so the app can keep `Demo`
/// (for a clean stop) while the script runs.
struct Player {
    colleague: Bridge,
    root: PathBuf,
}

impl Player {
    async fn play(&self, this: &Bridge) -> Result<(), String> {
        let ms = |n| tokio::time::sleep(Duration::from_millis(n));
        // 1. Work done "on a train": the engine is paused while entries pile up.
        this.set_paused(true);
        set_phase(&self.root, "queueing");
        for i in 0..24 {
            this.put("activity", &format!("act-{:03}", i + 1), activity(i))?;
            if i < 12 {
                this.put("expense", &format!("exp-{:03}", i + 1), expense(i))?;
            }
            if i < 10 {
                this.put("contact", &format!("con-{:03}", i + 1), contact(i))?;
            }
            ms(250).await;
        }
        ms(3000).await;
        // 2. Back online: the queue drains.
        set_phase(&self.root, "uploading");
        this.set_paused(false);
        this.sync_now();
        if !this.drained(Duration::from_secs(60)).await {
            return Err("the first upload did not finish within a minute".into());
        }
        // 3. The colleague's device pulls the new records.
        self.colleague.sync_now();
        for _ in 0..120 {
            if matches!(self.colleague.get("activity", "act-002"), Ok(Some(_))) {
                break;
            }
            ms(250).await;
            self.colleague.sync_now();
        }
        // 4. Both edit the same records while this device is off the network.
        set_phase(&self.root, "colliding");
        this.set_paused(true);
        ms(500).await;
        this.patch("activity", "act-001", obj(json!({"hours": 3, "notes": "Two new participants joined"})))?;
        this.patch("activity", "act-002", obj(json!({"participants": 9, "notes": "Rain: moved indoors"})))?;
        this.patch("expense", "exp-003", obj(json!({"amount": 180})))?;
        this.patch("contact", "con-001", obj(json!({"phone": "+47 98 76 54 32"})))?;
        let c = &self.colleague;
        c.patch("activity", "act-001", obj(json!({"hours": 2, "title": "Walk & talk (moved to the park)"})))?;
        c.patch("activity", "act-002", obj(json!({"participants": 7, "date": "2025-03-04"})))?;
        c.patch("expense", "exp-003", obj(json!({"amount": 175, "description": "Bus pass (monthly)"})))?;
        c.patch("contact", "con-001", obj(json!({"email": "aisha.berg@sunrise.example.org"})))?;
        c.sync_now();
        if !c.drained(Duration::from_secs(30)).await {
            return Err("the colleague's edits did not upload".into());
        }
        ms(1000).await;
        // 5. Reconnect: our stale edits meet the colleague's.
        this.set_paused(false);
        this.sync_now();
        set_phase(&self.root, "conflict");
        // 6. The colleague keeps working now and then.
        let mut n = 0usize;
        loop {
            tokio::time::sleep(Duration::from_secs(45)).await;
            n += 1;
            let id = format!("act-{:03}", 100 + n);
            c.put("activity", &id, activity(n + 3))?;
            c.sync_now();
        }
    }
}

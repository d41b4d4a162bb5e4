//! `--demo`: the whole cycle in a minute, without touching a real setup.
//!
//! Own data dir (reset at every launch), an embedded reference server on
//! 127.0.0.1:0 with a demo account, tokens in process memory (never the
//! user's keyring), sample activities, expenses and contacts written through
//! the engine while this device's network is unplugged ("on a train"), so
//! the queue visibly fills, the tray says offline, and the backlog drains
//! when the network returns; and a second device — a coordinator in the same
//! organisation, a second engine with its own data dir — that edits some of
//! the same records while this device edits them too, so conflicts turn up:
//! `activity` is set to `manual` (parked for the user), `contact` to `merge`
//! and `expense` stays `lww` (settled automatically, kept in the history).
//! The server checks expenses against a schema (`demo-schemas/`), and one
//! sample expense breaks it (a minus typed before the amount), so a new
//! user sees a refused change, corrects it in the window and watches it go.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::demo_network::DemoNetwork;
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

/// Every demo starts from scratch, so it always shows the same story. The
/// single-instance socket of this very launch is kept.
pub fn reset_data_root(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_name() == crate::instance::SOCKET {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The demo running in the background: its server, second device and
/// script. Started by [`launch`], ended by [`Running::stop`].
pub struct Running {
    demo: std::sync::Arc<tokio::sync::Mutex<Option<Demo>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the demo's server, signs this device in, then starts the engine
/// and plays the script. If the demo cannot start, the engine still runs.
pub fn launch(this: Bridge, root: PathBuf) -> Running {
    let slot = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let demo = slot.clone();
    let task = tokio::spawn(async move {
        match start(&this, &root).await {
            Ok(d) => {
                this.start();
                let script = d.script(this.clone());
                *demo.lock().await = Some(d);
                script.await;
            }
            Err(e) => {
                tracing::error!("demo could not start: {e:#}");
                this.start();
            }
        }
    });
    Running { demo: slot, task }
}

impl Running {
    pub async fn stop(self) {
        self.task.abort();
        if let Some(d) = self.demo.lock().await.take() {
            d.stop().await;
        }
    }
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
    network: DemoNetwork,
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
    let db_path = root.join("server.db");
    let db = ferry_server::DbLocation::Sqlite(db_path.clone());
    let storage = ferry_server::storage::open(&db).await?;
    ferry_server::users::add_user(&*storage, USER, ORG, PASSWORD).await?;
    ferry_server::users::add_user(&*storage, COLLEAGUE, ORG, COLLEAGUE_PASSWORD).await?;
    let mut config = ferry_server::Config::new(db);
    config.listen = "127.0.0.1:0".parse()?;
    config.schemas = std::sync::Arc::new(schemas()?);
    let server = ferry_server::serve_with(config, storage).await?;
    let url = server.url();
    tracing::info!(%url, "demo server running");
    // This device reaches it through a network the script can unplug; the
    // colleague's device is elsewhere and always online.
    let network = DemoNetwork::start(server.addr()).await?;

    this.init(&network.url()).await.map_err(anyhow::Error::msg)?;
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
        "network": network.url(),
        "server_db": db_path,
        "user": USER,
        "colleague": COLLEAGUE,
        "org": ORG,
        "phase": "started",
    });
    write_info(root, &info);
    Ok(Demo { server, network, colleague, root: root.to_path_buf(), url })
}

/// The demo server's content rules, shipped in the binary.
fn schemas() -> anyhow::Result<ferry_server::Schemas> {
    let mut schemas = ferry_server::Schemas::none();
    let expense: Value = serde_json::from_str(include_str!("../demo-schemas/expense.json"))?;
    schemas.add("expense", &expense, "demo-schemas/expense.json")?;
    Ok(schemas)
}

/// The sample expense that breaks the demo's rules: the amount was typed
/// with a minus. The user fixes it in the Failures view.
pub const BROKEN_EXPENSE: &str = "exp-013";

fn broken_expense() -> Fields {
    obj(json!({
        "description": "Taxi to the hospital visit",
        "amount": -250,
        "currency": "NOK",
        "date": "2025-03-14",
    }))
}

fn write_info(root: &Path, info: &Value) {
    let _ = std::fs::write(root.join("demo.json"), serde_json::to_vec_pretty(info).unwrap_or_default());
}

fn set_phase(root: &Path, phase: &str) {
    let path = root.join("demo.json");
    if let Ok(mut v) =
        std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
    {
        v["phase"] = json!(phase);
        write_info(root, &v);
    }
    tracing::info!(phase, "demo");
}

const TITLES: &[&str] = &[
    "Walk & talk",
    "Peer group meeting",
    "Hospital visit",
    "Phone check-in",
    "Coffee meetup",
    "Training session",
    "Village hall drop-in",
    "Train companion",
    "Family afternoon",
    "Online group",
];
const NAMES: &[&str] = &[
    "Aisha Berg",
    "Jonas Lie",
    "Marit Dahl",
    "Ola Nordmann",
    "Sara Haugen",
    "Emil Strand",
    "Ingrid Moe",
    "Per Bakke",
    "Nora Vik",
    "Lars Eide",
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
        "role": if i.is_multiple_of(3) { "coordinator" } else { "peer mentor" },
    }))
}

impl Demo {
    /// The story: fill the queue offline, upload, then a colleague's edits
    /// collide with ours. Runs until the app quits (the colleague keeps
    /// editing now and then, so downloads show in the history).
    pub fn script(&self, this: Bridge) -> impl std::future::Future<Output = ()> + Send + 'static {
        let player =
            Player { colleague: self.colleague.clone(), network: self.network.clone(), root: self.root.clone() };
        async move {
            if let Err(e) = player.play(&this).await {
                tracing::warn!("demo script stopped: {e}");
            }
        }
    }

    pub async fn stop(self) {
        self.colleague.stop().await;
        self.network.stop();
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
    network: DemoNetwork,
    root: PathBuf,
}

impl Player {
    async fn play(&self, this: &Bridge) -> Result<(), String> {
        let ms = |n| tokio::time::sleep(Duration::from_millis(n));
        // 1. Work done "on a train": no network while entries pile up; the
        // engine notices, shows "offline" and backs off.
        self.network.set_online(false);
        set_phase(&self.root, "queueing");
        for i in 0..24 {
            this.put("activity", &format!("act-{:03}", i + 1), activity(i))?;
            if i < 12 {
                this.put("expense", &format!("exp-{:03}", i + 1), expense(i))?;
            }
            if i == 12 {
                this.put("expense", BROKEN_EXPENSE, broken_expense())?;
            }
            if i < 10 {
                this.put("contact", &format!("con-{:03}", i + 1), contact(i))?;
            }
            ms(250).await;
        }
        ms(3000).await;
        // 2. Back online: the engine hears of it and the queue drains.
        set_phase(&self.root, "uploading");
        self.network.set_online(true);
        this.network_changed();
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
        self.network.set_online(false);
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
        self.network.set_online(true);
        this.network_changed();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo shows exactly one refused change: every other sample
    /// expense keeps the rules, the broken one does not, and the correction
    /// the user is expected to make (the minus removed) does.
    #[test]
    fn one_sample_expense_breaks_the_demo_rules_and_its_correction_keeps_them() {
        let rules = schemas().unwrap();
        for i in 0..12 {
            assert_eq!(rules.check("expense", &Value::Object(expense(i))), Ok(()), "exp-{:03}", i + 1);
        }
        assert!(rules.check("expense", &json!({"amount": 180})).is_err(), "a lone field is no expense");
        let err = rules.check("expense", &Value::Object(broken_expense())).unwrap_err();
        assert!(err.starts_with("amount: ") && err.contains("(rule: exclusiveMinimum)"), "{err}");
        let mut fixed = broken_expense();
        fixed.insert("amount".into(), json!(250));
        assert_eq!(rules.check("expense", &Value::Object(fixed)), Ok(()));
    }
}

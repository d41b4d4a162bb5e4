//! `ferry`: the command line over the Ferry sync engine.

mod args;
mod print;

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use ferry_engine::{
    ConflictPolicy, Engine, EngineConfig, EngineError, Fields, MutationState, Resolution, Side, TokenStoreChoice,
};

use args::{Cli, Command};

/// Exit codes scripts can rely on.
mod exit {
    pub const ERROR: u8 = 1;
    /// `sync` finished but changes are left pending, failed or in conflict.
    pub const INCOMPLETE: u8 = 3;
    /// Not signed in, or the sign-in must be renewed.
    pub const SIGN_IN: u8 = 4;
    /// The server could not be reached; everything stays queued.
    pub const OFFLINE: u8 = 5;
}

/// An error with a chosen exit code.
#[derive(Debug)]
struct Exit(u8, String);
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Daemon));
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("ferry: {}", chain(&e));
            ExitCode::from(code)
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(Exit(code, _)) = e.downcast_ref::<Exit>() {
        return *code;
    }
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::NotSignedIn | EngineError::NeedsSignIn(_)) => exit::SIGN_IN,
        Some(EngineError::Transport(t)) if t.is_transient() => exit::OFFLINE,
        _ => exit::ERROR,
    }
}

fn init_logging(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for people; log files and pipes get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn data_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Ferry", "ferry")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| anyhow!("cannot find a home directory: pass --data-dir DIR or set FERRY_DATA_DIR"))
}

fn open(cli: &Cli) -> Result<Engine> {
    let dir = data_dir(cli)?;
    let token_store = match &cli.token_file {
        Some(p) => TokenStoreChoice::File(p.clone()),
        None => TokenStoreChoice::Keyring,
    };
    let mut config = EngineConfig { token_store, ..EngineConfig::new(&dir) };
    if let Some(secs) = std::env::var("FERRY_STALL_AFTER_SECS").ok().and_then(|v| v.parse().ok()) {
        config.stall_after = std::time::Duration::from_secs(secs);
    }
    if let Some(secs) = std::env::var("FERRY_PULL_INTERVAL_SECS").ok().and_then(|v| v.parse::<f64>().ok()) {
        config.pull_interval = std::time::Duration::from_secs_f64(secs.max(0.1));
    }
    if let Some(n) = std::env::var("FERRY_BATCH_MAX").ok().and_then(|v| v.parse().ok()) {
        config.batch_max_count = n;
    }
    Engine::open(config).with_context(|| format!("cannot open Ferry data in {}", dir.display()))
}

fn parse_object(json: &str) -> Result<Fields> {
    // `-` reads the record from stdin (records can exceed the OS's limit
    // on one command-line argument).
    let owned;
    let json = if json == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the record from stdin")?;
        owned = s;
        owned.as_str()
    } else {
        json
    };
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(other) => {
            bail!("the record must be a JSON object like '{{\"title\":\"Visit\"}}', got {}", print::kind_of(&other))
        }
        Err(e) => bail!("the record is not valid JSON ({e}); give an object like '{{\"title\":\"Visit\"}}'"),
    }
}

/// How far back `resolve` looks for the history entry it just wrote (newest
/// first; only a flood of automatic resolutions in between could push it out).
const RECENT_HISTORY: u32 = 1000;

fn parse_side(s: &str) -> Result<Side> {
    match s {
        "local" | "mine" => Ok(Side::Local),
        "remote" | "theirs" | "server" => Ok(Side::Remote),
        other => bail!("{other:?} is not a side: use local or remote"),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let engine = open(&cli)?;
    match &cli.command {
        Command::Init { server } => {
            let reached = engine.init(server).await?;
            if reached {
                println!("server set to {}", engine.server()?.unwrap_or_default());
            } else {
                println!(
                    "server set to {} (not reachable now; changes will queue until it is)",
                    engine.server()?.unwrap_or_default()
                );
            }
        }
        Command::Login { user, .. } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!("no password on stdin: pipe it in, e.g. `printf %s \"$PW\" | ferry login --user {user} --password-stdin`");
            }
            engine.login(user, password).await?;
            println!("signed in as {user}");
        }
        Command::Logout => {
            engine.logout().await?;
            println!("signed out; queued changes are kept and sync after the next sign-in");
        }
        Command::Put { entity, id, json } => {
            let m = engine.put(entity, id, parse_object(json)?)?;
            println!("{m}");
        }
        Command::Patch { entity, id, json } => {
            let m = engine.patch(entity, id, parse_object(json)?)?;
            println!("{m}");
        }
        Command::Delete { entity, id } => {
            let m = engine.delete(entity, id)?;
            println!("{m}");
        }
        Command::Get { entity, id, meta } => {
            let rec = engine
                .get(entity, id)?
                .ok_or_else(|| anyhow!("no record {entity}/{id} here (try `ferry sync` to fetch the latest)"))?;
            if *meta {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else if rec.deleted {
                bail!("record {entity}/{id} is deleted (`ferry get --meta` shows its state)");
            } else {
                println!("{}", serde_json::to_string(&rec.data.unwrap_or_default())?);
            }
        }
        Command::List { entity, json } => {
            let rows = engine.list(entity, 0, i64::MAX as u64)?;
            print::records(&rows, *json)?;
        }
        Command::Import { file } => import(&engine, file)?,
        Command::Sync => sync(&engine).await?,
        Command::Status { json } => print::status(&engine.refresh_status(), *json)?,
        Command::Queue { json, state, after, limit } => {
            let state = match state {
                Some(s) => Some(
                    MutationState::parse(s)
                        .ok_or_else(|| anyhow!("{s:?} is not a queue state: use pending, failed or conflict"))?,
                ),
                None => None,
            };
            print::queue(&engine.queue(state, *after, *limit)?, *json, *limit)?;
        }
        Command::Conflicts { json, history } => {
            if *history {
                print::history(&engine.history(1000)?, *json)?;
            } else {
                print::conflicts(&engine.conflicts()?, *json)?;
            }
        }
        Command::Resolve { conflict_id, keep, fields, json } => {
            let keep = keep.as_deref().map(parse_side).transpose()?;
            let mut choice = Resolution { keep, ..Default::default() };
            for f in fields {
                let (name, side) = f
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--field {f:?} must look like NAME=local or NAME=remote"))?;
                choice.fields.insert(name.to_string(), parse_side(side)?);
            }
            if choice.keep.is_none() && choice.fields.is_empty() {
                bail!("say what to keep: --keep local|remote and/or --field NAME=local|remote");
            }
            engine.resolve(conflict_id, choice)?;
            // The history entry that closed this conflict names the mutation
            // it queued (scripts use it to account for every upload).
            let entry =
                engine.history(RECENT_HISTORY)?.into_iter().find(|h| h.conflict_id.as_ref() == Some(conflict_id));
            print::resolved(conflict_id, entry.as_ref(), *json)?;
        }
        Command::Restore { history_id, json } => {
            let m = engine.restore(*history_id)?;
            print::restored(*history_id, &m.to_string(), *json)?;
        }
        Command::Retry { mutation_id, all } => match (mutation_id, all) {
            (Some(id), false) => {
                engine.retry(id)?;
                println!("queued again");
            }
            (None, true) => println!("{} queued again", engine.retry_all()?),
            _ => bail!("give a mutation id (see `ferry queue --state failed`) or --all"),
        },
        Command::Discard { mutation_id } => {
            engine.discard(mutation_id)?;
            println!("discarded");
        }
        Command::Policy { entity, policy } => match policy {
            Some(p) => {
                let p = ConflictPolicy::parse(p).ok_or_else(|| {
                    anyhow!("{p:?} is not a policy: use lww, server-wins, client-wins, merge or manual")
                })?;
                engine.set_policy(entity, p)?;
                println!("{entity}: {}", p.as_str());
            }
            None => println!("{entity}: {}", engine.policy(entity)?.as_str()),
        },
        Command::Pause => {
            engine.set_paused(true)?;
            println!("paused");
        }
        Command::Resume => {
            engine.set_paused(false)?;
            println!("resumed");
        }
        Command::Daemon => daemon(engine).await?,
    }
    Ok(())
}

fn import(engine: &Engine, file: &std::path::Path) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Item {
        entity: String,
        id: String,
        data: serde_json::Value,
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let name = file.display().to_string();
    // Streamed into one transaction: all or nothing, flat memory.
    let items = std::io::BufReader::new(f)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(n, line)| {
            let bad = |m: String| EngineError::Invalid(format!("{name} line {}: {m}", n + 1));
            let line = line.map_err(|e| bad(format!("cannot read: {e}")))?;
            let item: Item = serde_json::from_str(&line)
                .map_err(|e| bad(format!("{e}; each line must be {{\"entity\":...,\"id\":...,\"data\":{{...}}}}")))?;
            match item.data {
                serde_json::Value::Object(data) => Ok((item.entity, item.id, data)),
                _ => Err(bad("\"data\" must be a JSON object".into())),
            }
        });
    let n = engine.put_stream(items).map_err(|e| anyhow!("{e}; nothing was imported"))?;
    println!("imported {n} records");
    Ok(())
}

async fn sync(engine: &Engine) -> Result<()> {
    let report = match engine.sync_once().await {
        Ok(r) => r,
        Err(EngineError::Transport(t)) if t.is_transient() => {
            let s = engine.refresh_status();
            return Err(Exit(
                exit::OFFLINE,
                format!(
                    "{t}; {} change(s) stay queued and will be sent when the server answers",
                    s.pending + s.in_flight
                ),
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let s = engine.refresh_status();
    let left = s.pending + s.in_flight;
    if left > 0 || s.failed > 0 || s.conflicts > 0 {
        return Err(Exit(
            exit::INCOMPLETE,
            format!(
                "sync incomplete: {left} pending, {} failed, {} in conflict; see `ferry queue` and `ferry conflicts`",
                s.failed, s.conflicts
            ),
        )
        .into());
    }
    println!("synced: {} uploaded, {} downloaded", report.uploaded, report.downloaded);
    Ok(())
}

async fn daemon(engine: Engine) -> Result<()> {
    tracing::info!(data_dir = %engine.data_dir().display(), server = ?engine.server()?, "ferry daemon starting");
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = tokio::signal::ctrl_c() => {},
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stopping");
    };
    engine.run(shutdown).await?;
    Ok(())
}

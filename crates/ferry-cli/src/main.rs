//! `ferry`: the command line over the Ferry sync engine.

mod args;
mod exact_numbers;
mod out;
mod print;

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use ferry_engine::store::WriteOp;
use ferry_engine::transport::TransportError;
use ferry_engine::{
    ConflictPolicy, Engine, EngineConfig, EngineError, Fields, MutationState, Resolution, Side, TokenStoreChoice,
};
use ferry_protocol::Op;
use tracing_appender::non_blocking::WorkerGuard;

use args::{Cli, Command};
use out::outln;

/// Exit codes scripts can rely on.
mod exit {
    pub const ERROR: u8 = 1;
    /// The command line asks for something that cannot be (as clap's own).
    pub const USAGE: u8 = 2;
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

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Exit(exit::USAGE, msg.into()).into()
}

/// Settings that may come from the environment; an empty value means unset
/// (`FERRY_TOKEN_FILE= ferry ...`), as it does for most Unix tools.
const PATH_ENV: [&str; 2] = ["FERRY_DATA_DIR", "FERRY_TOKEN_FILE"];

fn main() -> ExitCode {
    for key in PATH_ENV {
        if std::env::var_os(key).is_some_and(|v| v.is_empty()) {
            // Single-threaded still: nothing else reads the environment yet.
            std::env::remove_var(key);
        }
    }
    let cli = Cli::parse();
    // The daemon runs all day: it also logs to a file in its data dir, for
    // `ferry diagnostics` (kept flushing until main returns).
    let log_file = matches!(cli.command, Command::Daemon).then(|| data_dir(&cli).ok()).flatten();
    let _log_guard = init_logging(matches!(cli.command, Command::Daemon), log_file.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ferry: cannot start: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed stdout (`| head -1`): it has what it wanted.
        Err(e) if out::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "ferry: {}", chain(&e));
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

/// Logs to stderr, and with `file_in` (a data dir) also to the daily log
/// file there ([`ferry_engine::logs`]); the guard flushes that one.
fn init_logging(daemon: bool, file_in: Option<&std::path::Path>) -> Option<WorkerGuard> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let default = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for people; log files and pipes get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    let mut file_error = None;
    let (file, guard) = match file_in.map(ferry_engine::logs::file_writer) {
        Some(Ok((writer, guard))) => {
            (Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false)), Some(guard))
        }
        Some(Err(e)) => {
            file_error = Some(e);
            (None, None)
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(filter).with(stderr).with(file).init();
    if let (Some(e), Some(dir)) = (file_error, file_in) {
        // Syncing matters more than the log file: go on without it.
        tracing::warn!(error = %e, dir = %ferry_engine::logs::log_dir(dir).display(), "cannot write the log file; logging to stderr only");
    }
    guard
}

fn data_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Ferry", "ferry")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| anyhow!("cannot find a home directory: pass --data-dir DIR or set FERRY_DATA_DIR"))
}

/// Fails early, naming the path and the fix, when the token file cannot be
/// created because its folder is missing (the OS error alone says only
/// "No such file or directory").
fn check_token_file(path: &std::path::Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    if !folder.is_dir() {
        bail!(
            "the token file {} cannot be created: its folder {} does not exist; create it \
             (`mkdir -p {}`) or pass another --token-file / FERRY_TOKEN_FILE",
            path.display(),
            folder.display(),
            folder.display()
        );
    }
    Ok(())
}

fn open(cli: &Cli) -> Result<Engine> {
    let dir = data_dir(cli)?;
    if let (Some(p), Command::Login { .. } | Command::Logout | Command::Sync | Command::Daemon) =
        (&cli.token_file, &cli.command)
    {
        check_token_file(p)?;
    }
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
    if let Some(n) = std::env::var("FERRY_PUSH_DEPTH").ok().and_then(|v| v.parse().ok()) {
        config.push_depth = n;
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
        Ok(serde_json::Value::Object(m)) => {
            exact_numbers::check(json).map_err(|e| anyhow!("{e}; nothing was saved"))?;
            Ok(m)
        }
        Ok(other) => {
            bail!("the record must be a JSON object like '{{\"title\":\"Visit\"}}', got {}", print::kind_of(&other))
        }
        Err(e) => bail!("the record is not valid JSON ({e}); give an object like '{{\"title\":\"Visit\"}}'"),
    }
}

/// Rows `ferry queue` shows people at once (then a "more" line).
const HUMAN_QUEUE_PAGE: u32 = 1000;

/// How far back `resolve` looks for the history entry it just wrote (newest
/// first; only a flood of automatic resolutions in between could push it out).
const RECENT_HISTORY: u32 = 1000;

fn parse_side(s: &str) -> Result<Side> {
    match s {
        "local" | "mine" => Ok(Side::Local),
        "remote" | "theirs" | "server" => Ok(Side::Remote),
        other => Err(usage(format!("{other:?} is not a side: use local or remote"))),
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Before anything else: a SIGTERM that comes while the daemon starts
    // (opening the database can take a moment) must stop it cleanly, not
    // kill it with the default action.
    let stop = matches!(cli.command, Command::Daemon).then(StopSignals::listen).transpose()?;
    let engine = open(&cli)?;
    match &cli.command {
        Command::Init { server, ca_cert, allow_insecure_http } => {
            let options = ferry_engine::ServerOptions {
                allow_insecure_http: *allow_insecure_http,
                ca_cert_pem: ca_cert.as_deref().map(ferry_engine::read_ca_cert).transpose()?,
            };
            let reached = engine.init_with(server, options).await?;
            if reached {
                outln!("server set to {}", engine.server()?.unwrap_or_default())?;
            } else {
                outln!(
                    "server set to {} (not reachable now; changes will queue until it is)",
                    engine.server()?.unwrap_or_default()
                )?;
            }
        }
        Command::Login { user, .. } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!("no password on stdin: pipe it in, e.g. `printf %s \"$PW\" | ferry login --user {user} --password-stdin`");
            }
            engine.login(user, password).await.map_err(|e| match e {
                // Nothing retries a sign-in: say how to make the next one work.
                EngineError::Transport(TransportError::Transient { reason, .. }) => Exit(
                    exit::OFFLINE,
                    format!(
                        "cannot reach the server at {} ({reason}): check the server URL (`ferry init --server URL`) \
                         and that the server is running, then run `ferry login` again",
                        engine.server().ok().flatten().unwrap_or_default()
                    ),
                )
                .into(),
                EngineError::TokenStore(msg) => anyhow!(
                    "signed in, but the tokens could not be saved ({msg}); fix the token store (or pass \
                     --token-file PATH in a writable folder) and run `ferry login` again"
                ),
                other => other.into(),
            })?;
            outln!("signed in as {user}")?;
        }
        Command::Logout => {
            engine.logout().await?;
            outln!("signed out; queued changes are kept and sync after the next sign-in")?;
        }
        Command::Put { entity, id, json } => {
            let m = engine.put(entity, id, parse_object(json)?)?;
            outln!("{m}")?;
        }
        Command::Patch { entity, id, json } => {
            let m = engine.patch(entity, id, parse_object(json)?)?;
            outln!("{m}")?;
        }
        Command::Delete { entity, id } => {
            let m = engine.delete(entity, id)?;
            outln!("{m}")?;
        }
        Command::Get { entity, id, meta } => {
            let rec = engine
                .get(entity, id)?
                .ok_or_else(|| anyhow!("no record {entity}/{id} here (try `ferry sync` to fetch the latest)"))?;
            if *meta {
                outln!("{}", serde_json::to_string_pretty(&rec)?)?;
            } else if rec.deleted {
                bail!("record {entity}/{id} is deleted (`ferry get --meta` shows its state)");
            } else {
                outln!("{}", serde_json::to_string(&rec.data.unwrap_or_default())?)?;
            }
        }
        Command::List { entity, json } => {
            print::records(|after, n| Ok(engine.list(entity, after.as_deref(), n)?), *json)?;
        }
        Command::Import { file } => import(&engine, file)?,
        Command::Sync => sync(&engine).await?,
        Command::Status { json } => print::status(&engine.refresh_status(), *json)?,
        Command::Queue { json, state, after, limit } => {
            let state = match state {
                Some(s) => Some(MutationState::parse(s).ok_or_else(|| {
                    usage(format!("{s:?} is not a queue state: use pending, in-flight, failed or conflict"))
                })?),
                None => None,
            };
            if *json {
                print::queue_json(|after, n| Ok(engine.queue(state, after, n)?), *after, *limit)?;
            } else {
                let limit = limit.unwrap_or(HUMAN_QUEUE_PAGE);
                print::queue(&engine.queue(state, *after, limit)?, limit)?;
            }
        }
        Command::Conflicts { json, history } => {
            if *history {
                print::history(|before, n| Ok(engine.history_before(before, n)?), *json)?;
            } else {
                print::conflicts(|after, n| Ok(engine.conflicts(after, n)?), *json)?;
            }
        }
        Command::Resolve { conflict_id, keep, fields, json } => {
            let keep = keep.as_deref().map(parse_side).transpose()?;
            let mut choice = Resolution { keep, ..Default::default() };
            for f in fields {
                let (name, side) = f
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--field {f:?} must look like NAME=local or NAME=remote")))?;
                choice.fields.insert(name.to_string(), parse_side(side)?);
            }
            if choice.keep.is_none() && choice.fields.is_empty() {
                return Err(usage("say what to keep: --keep local|remote and/or --field NAME=local|remote"));
            }
            let queued = engine.resolve(conflict_id, choice)?;
            // The history entry that closed this conflict, for its id.
            let entry =
                engine.history(RECENT_HISTORY)?.into_iter().find(|h| h.conflict_id.as_ref() == Some(conflict_id));
            print::resolved(conflict_id, entry.as_ref(), queued.map(|m| m.to_string()), *json)?;
        }
        Command::Restore { history_id, json } => {
            let m = engine.restore(*history_id)?;
            print::restored(*history_id, &m.to_string(), *json)?;
        }
        Command::Retry { mutation_id, all, with } => match (mutation_id, all) {
            (Some(id), false) => match with {
                Some(json) => outln!("{}", engine.correct(id, parse_object(json)?)?)?,
                None => {
                    engine.retry(id)?;
                    outln!("queued again")?;
                }
            },
            (None, true) => outln!("{} queued again", engine.retry_all()?)?,
            _ => return Err(usage("give a mutation id (see `ferry queue --state failed`) or --all")),
        },
        Command::Discard { mutation_id } => {
            engine.discard(mutation_id)?;
            outln!("discarded")?;
        }
        Command::Policy { entity, policy } => match policy {
            Some(p) => {
                let p = ConflictPolicy::parse(p).ok_or_else(|| {
                    usage(format!("{p:?} is not a policy: use lww, server-wins, client-wins, merge or manual"))
                })?;
                engine.set_policy(entity, p)?;
                outln!("{entity}: {}", p.as_str())?;
            }
            None => outln!("{entity}: {}", engine.policy(entity)?.as_str())?,
        },
        Command::Title { entity, field, default } => {
            if *default {
                engine.set_title_field(entity, None)?;
            } else if let Some(field) = field {
                engine.set_title_field(entity, Some(field))?;
            }
            let set = engine.title_fields()?.into_iter().find(|(e, _)| e == entity).map(|(_, f)| f);
            print::title_field(entity, set.as_deref())?;
        }
        Command::Diagnostics { to, include_records } => {
            let options = ferry_engine::DiagnosticsOptions { include_records: *include_records };
            print::diagnostics(&engine.save_diagnostics(to, options)?, *include_records)?;
        }
        Command::Pause => {
            engine.set_paused(true)?;
            outln!("paused")?;
        }
        Command::Resume => {
            engine.set_paused(false)?;
            outln!("resumed")?;
        }
        Command::Daemon => daemon(engine, stop.expect("listening since the start")).await?,
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
    let f = std::fs::File::open(file)
        .with_context(|| format!("cannot open {} (check the path; nothing was imported)", file.display()))?;
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
            let serde_json::Value::Object(data) = item.data else {
                return Err(bad("\"data\" must be a JSON object".into()));
            };
            exact_numbers::check(&line).map_err(|e| bad(e.to_string()))?;
            // Checked here, where the line number is known (the engine only
            // counts items, and blank lines make those differ).
            let write = WriteOp { entity: item.entity, record_id: item.id, op: Op::Upsert, payload: Some(data) };
            write.validate().map_err(|e| bad(e.to_string()))?;
            Ok((write.entity, write.record_id, write.payload.unwrap_or_default()))
        });
    let n = engine.put_stream(items).map_err(|e| anyhow!("{e}; nothing was imported"))?;
    outln!("imported {n} record{}", if n == 1 { "" } else { "s" })?;
    Ok(())
}

async fn sync(engine: &Engine) -> Result<()> {
    let report = match engine.sync_once().await {
        Ok(r) => r,
        Err(EngineError::Transport(t)) if t.is_transient() => {
            let s = engine.refresh_status();
            let reason = match &t {
                TransportError::Transient { reason, .. } => format!("cannot reach the server ({reason})"),
                other => other.to_string(),
            };
            return Err(Exit(
                exit::OFFLINE,
                format!(
                    "{reason}; {} change(s) stay queued: run `ferry sync` again when the server is reachable \
                     (a running `ferry daemon` retries by itself)",
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
                "sync incomplete: {left} pending, {} failed, {} in conflict; see `ferry queue` (then `ferry retry` \
                 or `ferry discard`) and `ferry conflicts` (then `ferry resolve`)",
                s.failed, s.conflicts
            ),
        )
        .into());
    }
    outln!("synced: {} uploaded, {} downloaded", report.uploaded, report.downloaded)?;
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment this is made.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
            let int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
            Ok(StopSignals { term, int })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn daemon(engine: Engine, stop: StopSignals) -> Result<()> {
    tracing::info!(data_dir = %engine.data_dir().display(), server = ?engine.server()?, "ferry daemon starting");
    let shutdown = async {
        stop.received().await;
        tracing::info!("stopping");
    };
    engine.run(shutdown).await?;
    Ok(())
}

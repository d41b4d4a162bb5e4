//! `ferry-server`: the command line over the `ferry_server` library.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ferry_server::{Config, DbLocation, Storage};

#[derive(Debug, Parser)]
#[command(name = "ferry-server", version, about = "Ferry's reference sync backend")]
struct Cli {
    /// The database: a SQLite file (created if missing), or a PostgreSQL URL
    /// (postgres://USER@HOST[:PORT]/DATABASE) shared by several nodes.
    #[arg(long, global = true, env = "FERRY_SERVER_DB", default_value = "ferry-server.db", value_parser = parse_db)]
    db: DbLocation,

    /// Log lines on stderr as text for people, or as one JSON object per
    /// line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(flatten)]
    serve: ServeArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, global = true, default_value_t = ferry_server::DEFAULT_ACCESS_TTL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    access_token_ttl: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, global = true, default_value_t = ferry_server::DEFAULT_REFRESH_TTL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    refresh_token_ttl: u64,
    /// Largest record (serialized JSON) to accept, in bytes; bigger ones are
    /// rejected as payload_too_large. At most the protocol's 262144.
    #[arg(long, global = true, default_value_t = ferry_protocol::limits::MAX_PAYLOAD_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..=ferry_protocol::limits::MAX_PAYLOAD_BYTES as u64))]
    max_payload_bytes: u64,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key). On
    /// SIGHUP both files are read again: new connections get the renewed
    /// certificate, open ones are kept.
    #[arg(long, global = true, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, global = true, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// A proxy (address or CIDR; repeatable) whose X-Forwarded-For names the
    /// client, for login throttling by address. Others' headers are ignored.
    #[arg(long, global = true, value_name = "CIDR", value_parser = parse_cidr)]
    trust_forwarded_for: Vec<ipnet::IpNet>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default;
    /// keep it off the internet, e.g. 127.0.0.1:9464).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// A directory of JSON Schemas, one per entity (expense.json for
    /// `expense`): a mutation whose record would break its entity's schema
    /// is rejected with code `validation`. Entities without one take any
    /// object. Every node of a deployment should load the same directory.
    #[arg(long, global = true, value_name = "DIR", env = "FERRY_SERVER_SCHEMAS")]
    schemas: Option<PathBuf>,
}

fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR, e.g. 10.0.0.0/24 or 127.0.0.1"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the sync API until SIGTERM or SIGINT (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Record counts and mutation counters.
    Stats {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every record as one JSON line, sorted by org, entity, record id.
    Dump {
        /// Only this organisation's records.
        #[arg(long)]
        org: Option<String>,
    },
    /// A consistent copy of a SQLite server database, taken while it serves
    /// (pushes carry on); checked with `PRAGMA integrity_check` before it
    /// is put at FILE. Back up PostgreSQL with pg_dump (docs/protocol.md).
    Backup {
        /// Where the copy goes (must not exist yet).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Put a backup made by `backup` in place of a stopped SQLite server's
    /// database (the database that was there is kept beside it, renamed),
    /// and start a new generation: clients then upload again whatever they
    /// hold that the backup lacks. PostgreSQL: restore with pg_restore, then
    /// run `mark-restored`.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Start a new generation in a database just restored by other means
    /// (pg_restore, a file copy), so clients reconcile with it. Run it before
    /// the servers start again.
    MarkRestored,
    /// Move a SQLite server's data into an empty PostgreSQL database: users,
    /// sessions, signing key, records, applied mutation ids and counters, so
    /// clients keep syncing without signing in again. Stop the SQLite server
    /// first.
    Copy {
        /// The SQLite database file.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (postgres://USER@HOST[:PORT]/DATABASE).
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_db(text: &str) -> Result<DbLocation, String> {
    if text.is_empty() {
        return Err("empty: give a SQLite file path or a postgres:// URL".into());
    }
    Ok(DbLocation::parse(text))
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        name: String,
        /// Organisation the user belongs to.
        #[arg(long, default_value = "default")]
        org: String,
        /// Read the password from standard input (required: passwords never
        /// go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Every user: name, organisation, whether enabled.
    List {
        /// One JSON line per user instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop a user from signing in and end all their sessions at once (their
    /// devices keep their queued changes and ask for a sign-in).
    Disable { name: String },
    /// Let a disabled user sign in again.
    Enable { name: String },
    /// Delete a user and their sessions; the organisation's records stay,
    /// with their `edited_by`.
    Remove { name: String },
    /// Set a new password, read from standard input, and end all the user's
    /// sessions.
    Passwd {
        name: String,
        /// Read the password from standard input (required: passwords never
        /// go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line for people, never anyhow's Debug form with its
            // backtrace: the message, then what to do about it.
            match hint(&e) {
                Some(hint) => eprintln!("ferry-server: {}; {hint}", one_line(&e)),
                None => eprintln!("ferry-server: {}", one_line(&e)),
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", without the repetitions of
/// messages that already include their cause.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        match parts.last_mut() {
            // A cause that repeats its context and adds to it replaces it.
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// What to do about the errors an operator can fix.
fn hint(e: &anyhow::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    let error = e.chain().find_map(|c| c.downcast_ref::<ferry_server::Error>())?;
    Some(match error {
        ferry_server::Error::Bind { source, .. } => match source.kind() {
            ErrorKind::AddrInUse => {
                "another program already listens there: choose another --listen ADDR (port 0 picks a free one)"
            }
            ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: choose another --listen ADDR, e.g. 127.0.0.1:8080"
            }
            _ => "choose a --listen ADDR that belongs to this machine, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
        },
        ferry_server::Error::UserExists(_) => "choose another name; the existing user keeps its password",
        ferry_server::Error::NoSuchUser(_) => "`ferry-server user list` shows the users there are",
        ferry_server::Error::Tls(_) => {
            "give --tls-cert the PEM certificate chain and --tls-key its PEM private key (e.g. Let's Encrypt's \
             fullchain.pem and privkey.pem)"
        }
        ferry_server::Error::Open { .. } => {
            "check --db (or FERRY_SERVER_DB): a SQLite file path and its permissions, or a PostgreSQL URL, \
             its server, user and database"
        }
        ferry_server::Error::Unavailable(_) => "check that the database server runs and can be reached, then try again",
        _ => return None,
    })
}

fn run(cli: Cli) -> Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Serve = command {
        return serve(cli.db, cli.serve);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            Command::Serve => unreachable!("handled above"),
            Command::User(UserCommand::Add { name, org, password_stdin: _ }) => {
                let password = read_password()?;
                let db = open(&cli.db).await?;
                ferry_server::users::add_user(&*db, &name, &org, &password)
                    .await
                    .with_context(|| format!("cannot add user {name:?}"))?;
                eprintln!("added user {name:?} to organisation {org:?}");
                Ok(())
            }
            Command::User(UserCommand::List { json }) => {
                let users = open_existing(&cli.db).await?.list_users().await?;
                let mut out = std::io::stdout().lock();
                for u in &users {
                    if json {
                        let line = serde_json::json!({
                            "name": u.name, "org": u.org, "created_at": u.created_at, "disabled_at": u.disabled_at,
                        });
                        writeln!(out, "{line}")?;
                    } else {
                        let state = if u.disabled_at.is_some() { "disabled" } else { "enabled" };
                        writeln!(out, "{}\t{}\t{state}", u.name, u.org)?;
                    }
                }
                if users.is_empty() && !json {
                    eprintln!("no users yet: add one with `ferry-server user add NAME --password-stdin`");
                }
                Ok(())
            }
            Command::User(UserCommand::Disable { name }) => {
                let db = open_existing(&cli.db).await?;
                ferry_server::users::set_disabled(&*db, &name, true)
                    .await
                    .with_context(|| format!("cannot disable user {name:?}"))?;
                eprintln!("disabled user {name:?}: their sessions ended and signing in is refused");
                Ok(())
            }
            Command::User(UserCommand::Enable { name }) => {
                let db = open_existing(&cli.db).await?;
                ferry_server::users::set_disabled(&*db, &name, false)
                    .await
                    .with_context(|| format!("cannot enable user {name:?}"))?;
                eprintln!("enabled user {name:?}: they can sign in again");
                Ok(())
            }
            Command::User(UserCommand::Remove { name }) => {
                let db = open_existing(&cli.db).await?;
                ferry_server::users::remove(&*db, &name)
                    .await
                    .with_context(|| format!("cannot remove user {name:?}"))?;
                eprintln!("removed user {name:?}; the organisation's records stay");
                Ok(())
            }
            Command::User(UserCommand::Passwd { name, password_stdin: _ }) => {
                let password = read_password()?;
                let db = open_existing(&cli.db).await?;
                ferry_server::users::set_password(&*db, &name, &password)
                    .await
                    .with_context(|| format!("cannot change the password of {name:?}"))?;
                eprintln!("changed the password of {name:?}; their other sessions ended");
                Ok(())
            }
            Command::Stats { json } => {
                let stats = open_existing(&cli.db).await?.stats().await?;
                let mut out = std::io::stdout().lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
                } else {
                    writeln!(out, "records (live):")?;
                    if stats.records.is_empty() {
                        writeln!(out, "  (none)")?;
                    }
                    for (entity, n) in &stats.records {
                        writeln!(out, "  {entity}: {n}")?;
                    }
                    writeln!(out, "tombstones: {}", stats.tombstones)?;
                    writeln!(out, "mutations applied: {}", stats.mutations_applied)?;
                    writeln!(out, "distinct applied ids: {}", stats.distinct_applied_ids)?;
                    writeln!(out, "mutations duplicate: {}", stats.mutations_duplicate)?;
                    writeln!(out, "conflicts: {}", stats.conflicts)?;
                    writeln!(out, "rejected: {}", stats.rejected)?;
                }
                Ok(())
            }
            Command::Dump { org } => {
                let records = open_existing(&cli.db).await?.dump(org.as_deref()).await?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for record in &records {
                    writeln!(out, "{}", serde_json::to_string(record)?)?;
                }
                out.flush()?;
                Ok(())
            }
            Command::Backup { to } => {
                let DbLocation::Sqlite(source) = &cli.db else {
                    bail!(
                        "backup copies a SQLite database; back up PostgreSQL with its own tools, e.g. \
                         `pg_dump --format=custom --file FILE DATABASE`, while the nodes serve"
                    );
                };
                if !source.exists() {
                    bail!("no database at {}; pass --db PATH (or set FERRY_SERVER_DB)", source.display());
                }
                let (source, dest) = (source.clone(), to.clone());
                let report =
                    tokio::task::spawn_blocking(move || ferry_server::storage::sqlite::backup::backup(&source, &dest))
                        .await?
                        .with_context(|| format!("cannot back up to {}", to.display()))?;
                writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?)?;
                eprintln!(
                    "backed up to {} ({} bytes; the copy's read took {} ms, pushes went on meanwhile)",
                    report.path.display(),
                    report.bytes,
                    report.copy_ms
                );
                Ok(())
            }
            Command::Restore { from } => {
                let DbLocation::Sqlite(db) = &cli.db else {
                    bail!(
                        "restore replaces a SQLite database; restore PostgreSQL with its own tools (e.g. \
                         `pg_restore --clean --dbname DATABASE FILE`), then run `ferry-server mark-restored`"
                    );
                };
                let (from_path, db_path) = (from.clone(), db.clone());
                let report = tokio::task::spawn_blocking(move || {
                    ferry_server::storage::sqlite::backup::restore(&from_path, &db_path, ferry_server::now_ms())
                })
                .await?
                .with_context(|| format!("cannot restore {} from {}", db.display(), from.display()))?;
                writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?)?;
                eprintln!(
                    "restored {} from {} (generation {}{}); start the server: clients upload again what the backup lacks",
                    report.db.display(),
                    from.display(),
                    report.generation,
                    report.replaced.as_ref().map(|p| format!("; the database that was there is now {}", p.display())).unwrap_or_default()
                );
                Ok(())
            }
            Command::MarkRestored => {
                let generation = open_existing(&cli.db).await?.mark_restored(ferry_server::now_ms()).await?;
                writeln!(std::io::stdout(), "{}", serde_json::json!({ "generation": generation }))?;
                eprintln!("{} begins generation {generation}; clients reconcile on their next sync", cli.db);
                Ok(())
            }
            Command::Copy { from, to } => {
                if !to.starts_with("postgres://") && !to.starts_with("postgresql://") {
                    bail!("--to must be a PostgreSQL URL (postgres://USER@HOST[:PORT]/DATABASE), got {to:?}");
                }
                let target = DbLocation::parse(&to);
                let report = ferry_server::storage::copy::sqlite_to_postgres(&from, &to)
                    .await
                    .with_context(|| format!("cannot copy {} to {target}", from.display()))?;
                writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?)?;
                eprintln!(
                    "copied {} users, {} refresh tokens, {} organisations, {} records and {} applied mutation ids \
                     to {target}; start ferry-server with --db on it",
                    report.users, report.refresh_tokens, report.organisations, report.records, report.applied_mutations
                );
                Ok(())
            }
        }
    })
}

async fn open(db: &DbLocation) -> Result<std::sync::Arc<dyn Storage>> {
    ferry_server::storage::open(db).await.with_context(|| format!("cannot open database {db}"))
}

/// For read-only commands: a mistyped path must not create an empty
/// database and report zeros.
async fn open_existing(db: &DbLocation) -> Result<std::sync::Arc<dyn Storage>> {
    if let DbLocation::Sqlite(path) = db {
        if !path.exists() {
            bail!("no database at {}; pass --db PATH (or set FERRY_SERVER_DB)", path.display());
        }
    }
    open(db).await
}

/// The whole of standard input, minus one trailing newline.
fn read_password() -> Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("cannot read the password from standard input")?;
    let trimmed = password.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&password);
    if trimmed.is_empty() {
        bail!("empty password: pipe the password into standard input, e.g. `echo secret | ferry-server user add NAME --password-stdin`");
    }
    Ok(trimmed.to_owned())
}

fn serve(db: DbLocation, args: ServeArgs) -> Result<()> {
    let schemas = match &args.schemas {
        Some(dir) => {
            let schemas = ferry_server::Schemas::load_dir(dir).context("cannot load --schemas")?;
            tracing::info!(entities = ?schemas.entities().collect::<Vec<_>>(), "content rules loaded");
            schemas
        }
        None => ferry_server::Schemas::none(),
    };
    let config = Config {
        db,
        listen: args.listen,
        access_ttl: Duration::from_secs(args.access_token_ttl),
        refresh_ttl: Duration::from_secs(args.refresh_token_ttl),
        max_payload_bytes: args.max_payload_bytes as usize,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(ferry_server::TlsFiles { cert, key }),
            _ => None,
        },
        trusted_proxies: args.trust_forwarded_for,
        metrics_listen: args.metrics_listen,
        schemas: std::sync::Arc::new(schemas),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Caught from before the first connection: a SIGTERM (or SIGHUP)
        // that comes as soon as the start is announced must stop (or
        // reload) cleanly, not end the process by the default action.
        let stop = shutdown_signal()?;
        let server = ferry_server::serve(config).await?;
        let reloads = reload_tls_on_sighup(&server)?;
        // Scripts and tests wait for this exact line.
        println!("listening on {}", server.url());
        if let Some(at) = server.metrics_addr() {
            println!("metrics on http://{at}/metrics");
        }
        std::io::stdout().flush()?;
        stop.await;
        drop(reloads);
        server.shutdown().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Certificate renewal (certbot's deploy hook, `systemctl reload`) sends
/// SIGHUP: read the files again, keep serving either way. The task ends
/// when the returned guard drops.
#[cfg(unix)]
fn reload_tls_on_sighup(server: &ferry_server::RunningServer) -> Result<Option<AbortOnDrop>> {
    use tokio::signal::unix::{signal, SignalKind};
    let Some(certs) = server.certificates() else { return Ok(None) };
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(Some(AbortOnDrop(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded; new connections get it"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; still serving the old one")
                }
            }
        }
    }))))
}

#[cfg(not(unix))]
fn reload_tls_on_sighup(_server: &ferry_server::RunningServer) -> Result<Option<AbortOnDrop>> {
    Ok(None)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens for SIGTERM and SIGINT from now on; the future ends at the
/// first.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received"),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for Ctrl-C; stop the server another way");
                std::future::pending::<()>().await
            }
        }
    })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // One object per line: time, level, target, message and fields.
        LogFormat::Json => logs.json().flatten_event(true).init(),
        // Colours only for people at a terminal, not in log files.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

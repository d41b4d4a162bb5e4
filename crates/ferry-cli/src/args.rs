//! The `ferry` command line (a stable contract: see docs/cli.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "ferry", version, about = "Ferry: background sync for offline-first data")]
pub struct Cli {
    /// Where Ferry keeps its database (default: the platform's data dir).
    #[arg(long, global = true, env = "FERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep sign-in tokens in this private (0600) file instead of the OS
    /// keyring; for headless machines without a Secret Service.
    #[arg(long, global = true, env = "FERRY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_limit(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("--limit must be at least 1; leave it out to see the whole queue".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("--limit takes a whole number from 1 to {}", u32::MAX)),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Set the backend server.
    Init {
        /// The server's URL, e.g. https://sync.example.org. Plain http:// is
        /// accepted only to this machine (localhost, 127.0.0.1, ::1).
        #[arg(long)]
        server: String,
        /// Trust this certificate authority (a PEM file) for the server, as
        /// organisations with their own CA need. Kept with the server
        /// setting; the file itself is not needed afterwards.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Allow plain http:// to another machine, on a lab network you
        /// trust: the password and every change cross it unencrypted.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Sign in (the password is read from standard input, never stored).
    Login {
        /// Your user name on the server.
        #[arg(long)]
        user: String,
        /// Read the password from standard input (required: never an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Sign out and forget the tokens; queued changes are kept.
    Logout,
    /// Create or replace a record with a JSON object (`-`: read it from stdin).
    Put { entity: String, id: String, json: String },
    /// Merge fields into a record (a null field removes it; `-`: from stdin).
    Patch { entity: String, id: String, json: String },
    /// Delete a record.
    Delete { entity: String, id: String },
    /// Print a record's fields as JSON.
    Get {
        entity: String,
        id: String,
        /// Wrap the fields with version, updated time and pending changes.
        #[arg(long)]
        meta: bool,
    },
    /// List the records of an entity.
    List {
        entity: String,
        #[arg(long)]
        json: bool,
    },
    /// Bulk create/replace from JSON lines {"entity","id","data"}, in one transaction.
    Import { file: PathBuf },
    /// One full cycle (push all, then pull all); exit 0 only if nothing is left.
    Sync,
    /// Show what is queued, failed, in conflict, and when Ferry last synced.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show queued changes, oldest first.
    Queue {
        #[arg(long)]
        json: bool,
        /// pending, in-flight, failed or conflict
        #[arg(long)]
        state: Option<String>,
        /// Start after this outbox position (for paging).
        #[arg(long)]
        after: Option<i64>,
        /// Show at most this many (default: all with --json, 1000 otherwise).
        #[arg(long, value_parser = parse_limit)]
        limit: Option<u32>,
    },
    /// Show open conflicts, or (--history) how conflicts were settled.
    Conflicts {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        history: bool,
    },
    /// Settle an open conflict.
    Resolve {
        conflict_id: String,
        /// The side to keep for every field not picked with --field (needed
        /// unless every field the two sides disagree on is picked).
        #[arg(long)]
        keep: Option<String>,
        /// Pick one field's side: NAME=local or NAME=remote. Repeatable.
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Print {conflict_id, history_id, upload_mutation_id} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a losing local version from the resolution history again.
    Restore {
        history_id: i64,
        /// Print {history_id, upload_mutation_id} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed change again, as it was or corrected (--with).
    Retry {
        mutation_id: Option<String>,
        #[arg(long, conflicts_with = "mutation_id")]
        all: bool,
        /// Replace the failed change's fields with these before sending it
        /// again, in one step (`-`: from stdin). For a put, the whole
        /// record; for a patch, the fields to merge. Prints the new
        /// mutation id.
        #[arg(long, value_name = "JSON", requires = "mutation_id", conflicts_with = "all")]
        with: Option<String>,
    },
    /// Drop a failed change (the record returns to the server's version,
    /// with your other queued changes to it on top).
    Discard { mutation_id: String },
    /// Show or set the conflict policy of an entity.
    Policy {
        entity: String,
        /// lww, server-wins, client-wins, merge or manual
        policy: Option<String>,
    },
    /// Show or set the field whose value labels an entity's records in
    /// `ferry queue` and `ferry conflicts` (default: title, name or
    /// description, else the record id).
    Title {
        entity: String,
        /// The record field to show (leave out to see the current one).
        field: Option<String>,
        /// Go back to the default (title, name or description).
        #[arg(long, conflicts_with = "field")]
        default: bool,
    },
    /// Save a diagnostics archive (.tar.gz) to send to whoever helps you:
    /// status, settings, the queue, conflicts, history, sync runs and the
    /// recent logs. Never a password or token; record contents only with
    /// --include-records.
    Diagnostics {
        /// The archive to write; an existing file is never replaced.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Also include record ids, labels and contents (queued changes,
        /// conflict sides, resolutions).
        #[arg(long)]
        include_records: bool,
    },
    /// Stop syncing until `ferry resume`.
    Pause,
    /// Sync again after `ferry pause`.
    Resume,
    /// Sync in the background until SIGTERM or SIGINT.
    Daemon,
}

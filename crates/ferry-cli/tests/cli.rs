//! The `ferry` binary's input handling and output, without a server: closed
//! pipes, queue paging, bad input and the messages that say what to do.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli { dir: tempfile::tempdir().unwrap() }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.env("FERRY_DATA_DIR", self.dir.path().join("data"))
            .env("FERRY_TOKEN_FILE", self.dir.path().join("tokens.json"))
            .env_remove("FERRY_LOG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Imports `n` activities with some padding, so listings are large.
    fn import(&self, n: usize) {
        let path = self.dir.path().join("many.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        for i in 0..n {
            writeln!(f, r#"{{"entity":"activity","id":"r{i:05}","data":{{"n":{i},"pad":"{}"}}}}"#, "x".repeat(60))
                .unwrap();
        }
        ok(&self.run(&["import", path.to_str().unwrap()]));
    }
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "ferry failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ferry ARGS | head -1`: the reader takes one line and closes the pipe.
fn first_line_then_close(cli: &Cli, args: &[&str]) -> (String, Output) {
    let mut child = cli.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (line, child.wait_with_output().unwrap())
}

#[test]
fn a_closed_stdout_ends_quietly_instead_of_panicking() {
    let cli = Cli::new();
    cli.import(3000); // ~300 KB of listing: far more than a pipe holds
    for args in [&["list", "activity"][..], &["list", "activity", "--json"], &["queue", "--json"], &["queue"]] {
        let (line, out) = first_line_then_close(&cli, args);
        assert!(!line.is_empty(), "{args:?} printed something first");
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    // Closed before anything is written.
    let mut child =
        cli.command().args(["status", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn queue_json_prints_the_whole_queue_unless_limited() {
    let cli = Cli::new();
    cli.import(2500);
    let all: serde_json::Value = serde_json::from_str(&ok(&cli.run(&["queue", "--json"]))).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2500, "every queued change, past one page");
    let seqs: Vec<i64> = all.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first, no repeats");

    let page: serde_json::Value = serde_json::from_str(&ok(&cli.run(&["queue", "--json", "--limit", "1200"]))).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1200);
    let after = seqs[1999].to_string();
    let rest: serde_json::Value = serde_json::from_str(&ok(&cli.run(&["queue", "--json", "--after", &after]))).unwrap();
    assert_eq!(rest.as_array().unwrap().len(), 500);

    let empty = Cli::new();
    let none: serde_json::Value = serde_json::from_str(&ok(&empty.run(&["queue", "--json"]))).unwrap();
    assert_eq!(none, serde_json::json!([]));

    let out = cli.run(&["queue", "--limit", "0"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("at least 1"), "{}", stderr(&out));
    // People get one page and a pointer to the next.
    let human = ok(&cli.run(&["queue"]));
    assert!(human.contains("more: ferry queue --after"), "{}", human.lines().last().unwrap_or(""));
}

#[test]
fn import_errors_name_the_file_line() {
    let cli = Cli::new();
    let path = cli.dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "\n{\"entity\":\"activity\",\"id\":\"a\",\"data\":{}}\n\n\n{\"entity\":\"Bad Name\",\"id\":\"b\",\"data\":{}}\n",
    )
    .unwrap();
    let out = cli.run(&["import", path.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("line 5"), "blank lines count: {err}");
    assert!(!err.contains("item"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
}

#[test]
fn token_file_problems_say_what_to_do() {
    let cli = Cli::new();
    ok(&cli.run(&["init", "--server", &format!("http://127.0.0.1:{}", free_port())]));
    // An empty FERRY_TOKEN_FILE means "not set", not a usage error.
    let out = cli.command().args(["status"]).env("FERRY_TOKEN_FILE", "").output().unwrap();
    ok(&out);
    // A token file in a folder that does not exist: name it and the fix.
    let missing = cli.dir.path().join("nodir").join("x.tok");
    let mut child = cli
        .command()
        .args(["login", "--user", "u", "--password-stdin"])
        .env("FERRY_TOKEN_FILE", &missing)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()) && err.contains("mkdir -p"), "{err}");
}

#[test]
fn login_to_a_server_that_is_down_says_to_check_it_and_try_again() {
    let cli = Cli::new();
    ok(&cli.run(&["init", "--server", &format!("http://127.0.0.1:{}", free_port())]));
    let mut child = cli
        .command()
        .args(["login", "--user", "u", "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "server unreachable: exit 5");
    let err = stderr(&out);
    assert!(!err.contains("will retry"), "nothing retries a sign-in: {err}");
    assert!(err.contains("server URL") && err.contains("ferry login"), "{err}");
}

#[test]
fn numbers_that_cannot_be_kept_exactly_are_refused_at_the_door() {
    let cli = Cli::new();
    let out = cli.run(&["put", "activity", "n1", r#"{"title":"x","big":12345678901234567890123}"#]);
    assert_ne!(out.status.code(), Some(0), "a number that would change is refused");
    let err = stderr(&out);
    assert!(err.contains("field big") && err.contains("string"), "{err}");
    assert!(!cli.run(&["get", "activity", "n1"]).status.success(), "nothing was saved");

    ok(&cli.run(&["put", "activity", "n1", r#"{"amount":12.5,"count":9007199254740993,"rate":0.1}"#]));
    let got: serde_json::Value = serde_json::from_str(&ok(&cli.run(&["get", "activity", "n1"]))).unwrap();
    assert_eq!(got["count"].to_string(), "9007199254740993");
    assert_eq!(got["rate"].to_string(), "0.1");
    let out = cli.run(&["patch", "activity", "n1", r#"{"items":[1,{"price":1.2345678901234567890}]}"#]);
    assert!(stderr(&out).contains("field items[1].price"), "{}", stderr(&out));

    let path = cli.dir.path().join("nums.jsonl");
    std::fs::write(
        &path,
        "{\"entity\":\"activity\",\"id\":\"a\",\"data\":{\"n\":1}}\n{\"entity\":\"activity\",\"id\":\"b\",\"data\":{\"n\":1e-400}}\n",
    )
    .unwrap();
    let out = cli.run(&["import", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line 2") && err.contains("data.n"), "{err}");
}

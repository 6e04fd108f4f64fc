//! The shell examples of the README and of `docs/`, run as written against a fresh server and a
//! fresh database, so the documents cannot drift from what the binary does.
//!
//! Every `bash` or `sh` block is marked on the line before it:
//!
//! - `<!-- example: serve -->`: the command starts the server; it runs in the background (with
//!   `WADDLEBOT_BIND` set to a free loopback port) until the other examples are done, and the
//!   admin key it prints is in `$KEY` for them;
//! - `<!-- example: run -->`: the block runs in `bash -euo pipefail`, in the directory the
//!   server started in; every `# =>` comment (trailing a command, or a whole line, continued by
//!   the comment lines after it) is what it prints, `...` and `…` standing for anything, and the
//!   expectations must appear in order in the block's output;
//! - `<!-- example: not run (why) -->`: left out, with the reason written down.
//!
//! A block without a mark fails the test. Only two rewrites are made, both to run what the
//! reader runs: `cargo run [--release] -p waddlebot-cli --` is the test's `waddlebot` binary
//! (also on `PATH` as `waddlebot`), and the server's address `127.0.0.1:8000` is the free port.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A shell block of a document and its mark.
#[derive(Debug)]
struct Example {
    /// The document and the line its code starts on (for messages).
    place: String,
    mark: Mark,
    code: String,
}

#[derive(Debug, PartialEq)]
enum Mark {
    Serve,
    Run,
    NotRun,
}

/// The README's shell blocks, then those of `docs/*.md`.
fn all_examples() -> Vec<Example> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut documents = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    documents.extend(docs);
    let mut found = Vec::new();
    for path in documents {
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        found.extend(examples(&name, &text).unwrap_or_else(|err| panic!("{name}: {err}")));
    }
    found
}

/// The shell blocks of a Markdown text, each with the mark on the line before its fence.
fn examples(name: &str, markdown: &str) -> Result<Vec<Example>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .ok_or_else(|| format!("the block at line {start} is never closed"))?;
        if matches!(info.trim(), "bash" | "sh" | "shell" | "console") {
            let mark = match i.checked_sub(1).map(|j| lines[j].trim()) {
                Some("<!-- example: serve -->") => Mark::Serve,
                Some("<!-- example: run -->") => Mark::Run,
                Some(m) if m.starts_with("<!-- example: not run (") && m.ends_with(") -->") => {
                    Mark::NotRun
                }
                _ => {
                    return Err(format!(
                        "the shell block at line {start} has no mark: put `<!-- example: run -->`, \
                         `<!-- example: serve -->` or `<!-- example: not run (why) -->` on the line \
                         before it"
                    ));
                }
            };
            found.push(Example {
                place: format!("{name} line {}", start + 1),
                mark,
                code: lines[start..end].join("\n"),
            });
        }
        i = end + 1;
    }
    Ok(found)
}

/// What a block says it prints, in order: its `# =>` comments, each continued by the whole-line
/// comments right after it.
fn expectations(code: &str) -> Vec<String> {
    let mut expected: Vec<String> = Vec::new();
    let mut open = false;
    for line in code.lines() {
        let trimmed = line.trim_start();
        if open && trimmed.starts_with('#') && !trimmed.starts_with("# =>") {
            let more = trimmed.trim_start_matches('#').trim();
            if let Some(last) = expected.last_mut() {
                last.push_str(more);
            }
            continue;
        }
        open = false;
        if let Some((_, shown)) = line.split_once("# =>") {
            expected.push(shown.trim().to_owned());
            open = true;
        }
    }
    expected
}

/// Whether `output` holds every expectation in order, `...` and `…` matching anything.
fn shows(output: &str, expected: &[String]) -> Result<(), String> {
    let mut rest = output;
    for expectation in expected {
        for piece in expectation
            .split("...")
            .flat_map(|p| p.split('…'))
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return Err(format!("`{piece}` (of `{expectation}`) is not printed")),
            }
        }
    }
    Ok(())
}

/// The two rewrites: the binary for `cargo run`, the test's address for the default one.
fn as_run_here(code: &str, address: &str) -> String {
    code.replace("cargo run --release -p waddlebot-cli --", "waddlebot")
        .replace("cargo run -p waddlebot-cli --", "waddlebot")
        .replace("127.0.0.1:8000", address)
}

/// A directory holding `waddlebot`, for `PATH`.
fn binary_dir(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_waddlebot"), bin.join("waddlebot"))
        .expect("symlink");
    bin
}

/// The environment of every example: the reader's, without the settings this machine's tests
/// set, and with the test's binary first on `PATH`.
fn command(program: &str, dir: &Path, bin: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    command
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("LOG_LEVEL")
        .env_remove("MODULE_PORT")
        .env_remove("WADDLEBOT_CONFIG")
        .env_remove("WADDLEBOT_PUBLIC_URL")
        .env_remove("USER")
        .kill_on_drop(true);
    command
}

#[test]
fn every_shell_block_is_marked() {
    let found = all_examples();
    assert_eq!(
        found.iter().filter(|e| e.mark == Mark::Serve).count(),
        1,
        "one block starts the server"
    );
    assert!(found.iter().any(|e| e.mark == Mark::Run));
    // The checker itself: a mark is needed, and expectations read as documented.
    assert!(examples("x.md", "```bash\nls\n```\n").is_err());
    assert_eq!(
        expectations("a  # => one\nb\n# => two ...\n#   three\nc # plain comment"),
        ["one", "two ...three"]
    );
    assert!(shows("one two x three", &["one".into(), "two ...three".into()]).is_ok());
    assert!(shows("three two one", &["one".into(), "two ...three".into()]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_run_as_written() {
    let found = all_examples();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = binary_dir(dir.path());

    // The server, as the quick start starts it.
    let serve = found
        .iter()
        .find(|e| e.mark == Mark::Serve)
        .expect("a serve block");
    let code = as_run_here(&serve.code, "127.0.0.1:0");
    let mut server = command("bash", dir.path(), &bin)
        .args(["-c", &format!("exec {}", code.trim())])
        .env("WADDLEBOT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut out = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("the server says where it listens")
        .expect("readable")
        .and_then(|line| line.rsplit(' ').next().map(str::to_owned))
        .expect("an address")
        .trim_start_matches("http://")
        .to_owned();
    let mut errors = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let key = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = errors.next_line().await.expect("readable") {
            if let Some(key) = line.split_whitespace().find(|w| w.starts_with("wbot_")) {
                return key.to_owned();
            }
        }
        panic!("the first start shows no admin key, as the README says it does");
    })
    .await
    .expect("the key is shown at start");
    tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });

    for example in found.iter().filter(|e| e.mark == Mark::Run) {
        let code = as_run_here(&example.code, &address);
        let output = command("bash", dir.path(), &bin)
            .args(["-euo", "pipefail", "-c", &code])
            .env("KEY", &key)
            .env("WADDLEBOT_BIND", &address)
            .output()
            .await
            .expect("bash runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        let context = format!(
            "{}:\n{}\n--- printed:\n{printed}\n--- stderr:\n{}",
            example.place,
            example.code,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "the example fails: {context}");
        if let Err(why) = shows(&printed, &expectations(&code)) {
            panic!("{why}: {context}");
        }
    }
}

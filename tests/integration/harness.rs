//! A small builder for running `herald` against files in a temporary folder, in the
//! style of just's `tests/lib.rs`: write files, run, assert on what a user sees.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A minimal valid campaign; tests edit it to make it wrong. Line numbers matter: the
/// tests assert on whole messages, positions included.
pub const CAMPAIGN: &str = r#"apiVersion: herald/v1
kind: Campaign
metadata:
  name: welcome
spec:
  transport: outbox
  from: {email: news@example.com, name: Example}
  template:
    subject: "{{ t('subject') }}"
    html: templates/welcome.html.j2
    text: templates/welcome.txt.j2
  locales: {default: en, catalog: locales}
  audience:
    file: audiences/customers.csv
    suppress: [audiences/unsubscribed.csv]
  rate: {per_second: 50}
  batch:
    size: 100
    isolation: per-recipient
"#;

pub const TRANSPORTS: &str = "apiVersion: herald/v1
kind: Transport
metadata: {name: outbox}
spec: {type: outbox, dir: ../outbox}
";

/// A second outbox campaign beside `welcome`, sharing its templates and catalog: text only,
/// batches of one, reading `audiences/<audience>`.
pub fn another_campaign(name: &str, audience: &str, per_second: u32) -> String {
    format!(
        "apiVersion: herald/v1
kind: Campaign
metadata: {{name: {name}}}
spec:
  transport: outbox
  from: {{email: news@example.com}}
  template: {{subject: Other, text: templates/welcome.txt.j2}}
  locales: {{default: en, catalog: locales}}
  audience: {{file: audiences/{audience}}}
  rate: {{per_second: {per_second}}}
  batch: {{size: 1, isolation: per-recipient}}
"
    )
}

/// An audience (`email,name,locale`) of `n` synthetic recipients `user<i>@example.com`,
/// `i` zero-padded to `digits`, named `User <i>`, in English.
pub fn audience(n: usize, digits: usize) -> String {
    use std::fmt::Write as _;
    let mut csv = String::from("email,name,locale\n");
    for i in 0..n {
        let _ = writeln!(csv, "user{i:0digits$}@example.com,User {i},en");
    }
    csv
}

/// A campaign as bulk senders write one, for the provider tests: `audience` with an
/// unsubscribe link each, a sender name holding a comma, `batch` per call, through
/// `transports` (named `outbox`, the name the campaign uses) at a rate that never binds.
pub fn personal(transports: &str, audience: &str, batch: u32) -> Test {
    const CAMPAIGN: &str = "campaigns/welcome.yaml";
    Test::campaign()
        .env("HERALD_UNSUBSCRIBE_KEY", "provider-test-unsubscribe-key")
        .file("campaigns/audiences/customers.csv", audience)
        .file("campaigns/transports.yaml", transports)
        .edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 100000}")
        .edit(CAMPAIGN, "size: 100", &format!("size: {batch}"))
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            "    isolation: per-recipient\n  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}\"}\n",
        )
        .edit(CAMPAIGN, "name: Example}", "name: \"Example, Inc.\"}")
}

/// Held by tests that must not share the machine with each other: the crash and fuzz
/// tests, which load both cores for long, and the service tests, whose binary compares
/// durations and runs its tests one at a time.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `secret` appears nowhere: not in the output of `runs`, not in any file under the
/// workspace (state store, outbox, manifests).
pub fn assert_nowhere(secret: &str, workspace: &Workspace, runs: &[&Run]) {
    for run in runs {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    let mut stack = vec![workspace.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the secret is in {}",
                    path.display()
                );
            }
        }
    }
}

pub struct Test {
    dir: tempfile::TempDir,
    files: BTreeMap<String, String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
    /// Whether the folder goes away with this run (one-shot tests) or with a `Workspace`.
    owned: bool,
}

/// A folder herald runs in several times: apply, edit, apply again.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Environment variables every run gets.
    env: Vec<(String, String)>,
}

impl Test {
    /// An empty folder.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            files: BTreeMap::new(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every run in this folder.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A folder with the valid `welcome` campaign, its templates, catalog and audience.
    pub fn campaign() -> Self {
        Self::new()
            .file("campaigns/welcome.yaml", CAMPAIGN)
            .file("campaigns/transports.yaml", TRANSPORTS)
            .file(
                "campaigns/templates/welcome.html.j2",
                "<p>{{ t('hello', name=recipient.name) }}</p>\n",
            )
            .file(
                "campaigns/templates/welcome.txt.j2",
                "{{ t('hello', name=recipient.name) }}\n",
            )
            .file(
                "campaigns/locales/en.yaml",
                "subject: Welcome\nhello: \"Hello {name}\"\n",
            )
            .file(
                "campaigns/audiences/customers.csv",
                "email,name,locale\nann@example.com,Ann,en\n",
            )
            .file(
                "campaigns/audiences/unsubscribed.csv",
                "email\nbob@example.com\n",
            )
    }

    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.insert(path.to_owned(), contents.to_owned());
        self
    }

    /// Replaces `from` by `to` in the file at `path`, which must contain it exactly once.
    pub fn edit(mut self, path: &str, from: &str, to: &str) -> Self {
        let contents = self
            .files
            .get_mut(path)
            .unwrap_or_else(|| panic!("no file {path}"));
        assert_eq!(
            contents.matches(from).count(),
            1,
            "{from:?} must occur once in {path}"
        );
        *contents = contents.replacen(from, to, 1);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Writes the files, runs herald in the folder, and returns what it printed.
    pub fn run(self) -> Run {
        let args = self.args.clone();
        let workspace = self.workspace();
        let mut run = workspace.run(args);
        run.dir = workspace.dir.keep();
        run.owned = true;
        run
    }

    /// Writes the files and keeps the folder for several runs.
    pub fn workspace(self) -> Workspace {
        for (path, contents) in &self.files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
        }
        Workspace {
            dir: self.dir,
            env: self.env,
        }
    }
}

impl Workspace {
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// herald with `args`, in this folder, not yet started.
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &self,
        args: I,
    ) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("HERALD_STATE")
            .env_remove("HERALD_REQUIRE_STATE")
            .env_remove("HERALD_UNSUBSCRIBE_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        command
    }

    /// Starts herald with `args` in the background, its output piped. The process is
    /// killed if the test ends (or fails) before it exits.
    pub fn spawn<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Running {
        let child = self
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("herald starts");
        Running(Some(child))
    }

    /// Starts herald with `env` set, e.g. a key.
    pub fn spawn_env<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &self,
        args: I,
        env: &[(&str, &str)],
    ) -> Running {
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("herald starts");
        Running(Some(child))
    }

    /// Runs herald to the end and returns what it printed.
    pub fn run<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command(args).output().expect("herald runs");
        Run::new(status, stdout, stderr, self.dir.path().to_owned())
    }

    /// Runs herald to the end with extra environment variables.
    pub fn run_env<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &self,
        args: I,
        env: &[(&str, &str)],
    ) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .expect("herald runs");
        Run::new(status, stdout, stderr, self.dir.path().to_owned())
    }

    /// `herald status CAMPAIGN --recipients STATE -o json`: the recipients it lists.
    pub fn listed(&self, campaign: &str, state: &str) -> Vec<serde_json::Value> {
        let status = self
            .run(["status", campaign, "--recipients", state, "-o", "json"])
            .code(0)
            .json();
        status["campaigns"][0]["recipients"]
            .as_array()
            .expect("a list of recipients")
            .clone()
    }

    /// The addresses `listed` gives.
    pub fn listed_addresses(&self, campaign: &str, state: &str) -> Vec<String> {
        self.listed(campaign, state)
            .iter()
            .map(|r| r["address"].as_str().expect("an address").to_owned())
            .collect()
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(path)).unwrap()
    }

    pub fn write(&self, path: &str, contents: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Replaces `from` by `to` in the file at `path`, which must contain it exactly once.
    pub fn edit(&self, path: &str, from: &str, to: &str) {
        let contents = self.read(path);
        assert_eq!(
            contents.matches(from).count(),
            1,
            "{from:?} must occur once in {path}"
        );
        self.write(path, &contents.replacen(from, to, 1));
    }

    /// The messages in the outbox folder of `campaign`, parsed.
    pub fn outbox(&self, campaign: &str) -> Vec<Mail> {
        let dir = self.dir.path().join("outbox").join(campaign);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut mails: Vec<Mail> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .map(|path| Mail::read(&path))
            .collect();
        mails.sort_by(|a, b| a.to.cmp(&b.to));
        mails
    }
}

/// A herald process running in the background; killed when dropped unfinished.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        self.signal("-INT");
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Whether it has exited, without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().expect("running").try_wait().unwrap()
    }

    /// Waits for it to exit and returns what it printed.
    pub fn finish(mut self) -> Run {
        let child = self.0.take().expect("running");
        let output = child.wait_with_output().expect("herald exits");
        Run::new(output.status, output.stdout, output.stderr, PathBuf::new())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message from the outbox, as a mail client reads it.
#[derive(Debug)]
pub struct Mail {
    pub file: String,
    /// Every address in the `To` header.
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Mail {
    pub fn read(path: &std::path::Path) -> Self {
        let raw = std::fs::read(path).unwrap();
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("{} parses", path.display()));
        Self {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            to: message
                .to()
                .map(|to| {
                    to.iter()
                        .filter_map(|a| a.address().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message
                .body_text(0)
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            raw: String::from_utf8(raw).unwrap(),
        }
    }

    /// The only recipient; fails the test unless there is exactly one.
    pub fn recipient(&self) -> &str {
        assert_eq!(self.to.len(), 1, "{} has exactly one To", self.file);
        assert_eq!(
            self.raw.matches("\nTo: ").count() + usize::from(self.raw.starts_with("To: ")),
            1,
            "{} has one To header",
            self.file
        );
        &self.to[0]
    }
}

impl Run {
    fn new(
        status: std::process::ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        dir: PathBuf,
    ) -> Self {
        Self {
            code: status.code().expect("herald exits, not killed"),
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
            dir,
            owned: false,
        }
    }

    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn stdout(self, expected: &str) -> Self {
        assert_eq!(
            self.stdout, expected,
            "stdout; stderr was:\n{}",
            self.stderr
        );
        self
    }

    pub fn stderr(self, expected: &str) -> Self {
        assert_eq!(
            self.stderr, expected,
            "stderr; stdout was:\n{}",
            self.stdout
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A message with its one RFC 3339 time written `THEN`, to compare it whole.
pub fn since_as_then(text: &str) -> String {
    let Some(at) = text.find(" since ") else {
        return text.to_owned();
    };
    let start = at + " since ".len();
    let end = text[start..].find(": ").map_or(text.len(), |e| start + e);
    format!("{}THEN{}", &text[..start], &text[end..])
}

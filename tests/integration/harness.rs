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

pub struct Test {
    dir: tempfile::TempDir,
    files: BTreeMap<String, String>,
    args: Vec<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
}

impl Test {
    /// An empty folder.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            files: BTreeMap::new(),
            args: Vec::new(),
        }
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
        for (path, contents) in &self.files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(&self.args)
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .output()
            .expect("herald runs");
        Run {
            code: status.code().expect("herald exits, not killed"),
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
            dir: self.dir.keep(),
        }
    }
}

impl Run {
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! Real SMTP servers on free loopback ports, started and stopped by the tests that use
//! them: aiosmtpd (stores every message it takes) and Postfix's smtp-sink (injects SMTP
//! faults). `tests/servers/install.sh`, part of README's test command, installs both into
//! the checkout. Without them a test is skipped with a note, except under `CI=true`,
//! where it fails.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
    /// aiosmtpd's maildir, where it stores each message it accepts.
    pub maildir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `None` (and a note) when a server or tool cannot run here; a failure under `CI=true`.
pub fn unavailable<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is required under CI=true; run tests/servers/install.sh (README's test command)"
    );
    eprintln!("skipping: {what} is not installed; run tests/servers/install.sh");
    None
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Python that has aiosmtpd, or `None` (a failure under `CI=true`).
fn python() -> Option<PathBuf> {
    let python: PathBuf = std::env::var_os("HERALD_TEST_PYTHON")
        .map_or_else(|| checkout().join(".venv/bin/python"), PathBuf::from);
    let usable = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        Some(python)
    } else {
        unavailable("aiosmtpd")
    }
}

fn maildir() -> tempfile::TempDir {
    let maildir = tempfile::tempdir().unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir(maildir.path().join(sub)).unwrap();
    }
    maildir
}

/// How `smtpd` behaves beyond taking every message.
#[derive(Default)]
pub struct Smtpd<'a> {
    /// Listen on this port (one a test reserved, say) rather than a free one.
    pub port: Option<u16>,
    /// Answer `550 5.1.1` to every recipient this regular expression finds.
    pub reject: Option<&'a str>,
    /// Require STARTTLS with this certificate and key (PEM files).
    pub tls: Option<(&'a Path, &'a Path)>,
    /// Require AUTH (PLAIN or LOGIN, over TLS when there is TLS) with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
}

/// `tests/servers/smtpd.py`: aiosmtpd storing messages in a maildir, refusing, requiring
/// STARTTLS or AUTH as `options` say.
pub fn smtpd(options: &Smtpd<'_>) -> Option<Server> {
    let python = python()?;
    let maildir = maildir();
    let port = options.port.unwrap_or_else(free_port);
    let mut command = Command::new(python);
    command
        .arg(checkout().join("tests/servers/smtpd.py"))
        .args(["--port", &port.to_string()])
        .arg("--maildir")
        .arg(maildir.path());
    if let Some(reject) = options.reject {
        command.args(["--reject", reject]);
    }
    if let Some((cert, key)) = options.tls {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some((user, password)) = options.auth {
        command.args(["--auth", &format!("{user}:{password}")]);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "smtpd.py");
    Some(Server {
        port,
        child,
        maildir: Some(maildir),
    })
}

impl Server {
    /// Who the server stored a message for (each `X-RcptTo`), once per message.
    pub fn recipients(&self) -> Vec<String> {
        let Some(maildir) = &self.maildir else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(maildir.path().join("new")).unwrap() {
            let raw = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            found.extend(
                raw.lines()
                    .filter_map(|l| l.strip_prefix("X-RcptTo: "))
                    .map(str::to_owned),
            );
        }
        found.sort();
        found
    }
}

/// aiosmtpd storing messages in a maildir.
pub fn aiosmtpd() -> Option<Server> {
    let python = python()?;
    let maildir = maildir();
    let port = free_port();
    let mut child = Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-u", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "aiosmtpd");
    Some(Server {
        port,
        child,
        maildir: Some(maildir),
    })
}

/// smtp-sink with fault options, e.g. `["-r", "rcpt"]` (4xx to RCPT TO).
pub fn smtp_sink(faults: &[&str]) -> Option<Server> {
    let root = checkout().join(".tools/postfix");
    let binary = root.join("usr/sbin/smtp-sink");
    if !binary.exists() {
        return unavailable("Postfix smtp-sink");
    }
    let port = free_port();
    let mut child = Command::new(binary)
        .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
        .args(["-u", "nobody"])
        .args(faults)
        .arg(format!("127.0.0.1:{port}"))
        .arg("16")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "smtp-sink");
    Some(Server {
        port,
        child,
        maildir: None,
    })
}

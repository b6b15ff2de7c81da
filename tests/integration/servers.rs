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

fn free_port() -> u16 {
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

/// aiosmtpd storing messages in a maildir.
pub fn aiosmtpd() -> Option<Server> {
    let python: PathBuf = std::env::var_os("HERALD_TEST_PYTHON")
        .map_or_else(|| checkout().join(".venv/bin/python"), PathBuf::from);
    let usable = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        return unavailable("aiosmtpd");
    }
    let maildir = tempfile::tempdir().unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir(maildir.path().join(sub)).unwrap();
    }
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

//! Benchmark: `herald apply` (the release binary, as a user runs it) against a minimal
//! SendGrid fake on loopback at an unlimited rate, with the durable state store.
//!
//! - shared content: 1,000,000 recipients in one locale whose bodies are identical (no
//!   names, no unsubscribe link), so calls carry 1,000 personalizations each;
//! - personal bodies: 20,000 recipients of the shipped templates (names, unsubscribe
//!   links), one call per recipient.
//!
//! `HERALD_BENCH_ROWS` and `HERALD_BENCH_PERSONAL_ROWS` change the sizes. Target (issue 5):
//! at least 50,000 messages per second end to end in the shared case.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{size, write_campaign};

fn main() {
    let rows = size("HERALD_BENCH_ROWS", 1_000_000);
    let personal = size("HERALD_BENCH_PERSONAL_ROWS", 20_000);
    let (port, calls, taken) = fake();
    run("shared content", rows, true, port, &calls, &taken);
    run("personal bodies", personal, false, port, &calls, &taken);
}

fn run(case: &str, rows: usize, shared: bool, port: u16, calls: &AtomicUsize, taken: &AtomicUsize) {
    let dir = tempfile::tempdir().expect("temporary folder");
    write_campaign(dir.path(), rows, 10_000_000);
    let campaigns = dir.path().join("campaigns");
    if shared {
        make_shared(&campaigns);
    }
    std::fs::write(
        campaigns.join("transports.yaml"),
        format!(
            "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
             spec: {{type: sendgrid, endpoint: \"http://127.0.0.1:{port}\", api_key_env: HERALD_BENCH_KEY}}\n"
        ),
    )
    .unwrap();
    let (calls_before, taken_before) = (calls.load(Ordering::SeqCst), taken.load(Ordering::SeqCst));
    let started = Instant::now();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("apply")
        .arg(&campaigns)
        .env("HERALD_BENCH_KEY", "SG.bench")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("herald runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "apply failed");
    let calls = calls.load(Ordering::SeqCst) - calls_before;
    let taken = taken.load(Ordering::SeqCst) - taken_before;
    assert!(taken >= rows, "the fake took {taken} of {rows}");
    #[allow(clippy::cast_precision_loss)]
    let rate = taken as f64 / seconds;
    println!(
        "{case}: {taken} messages in {calls} calls, {seconds:.2} s, {rate:.0} messages/second"
    );
}

/// Bodies identical for everyone: one locale, no names, no unsubscribe link.
fn make_shared(campaigns: &Path) {
    for name in ["templates/update.html.j2", "templates/update.txt.j2"] {
        let path = campaigns.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("name=recipient.first_name", "name='customer'")
            .replace("email=recipient.email", "email='your address'")
            .replace("{{ unsubscribe_url }}", "https://example.com/preferences");
        std::fs::write(path, text).unwrap();
    }
    let manifest = campaigns.join("campaign.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "  unsubscribe:\n    url: \"https://example.com/u/{{ unsubscribe_token }}\"\n",
        "",
    );
    std::fs::write(manifest, text).unwrap();
    let audience = campaigns.join("audiences/customers.csv");
    let text = std::fs::read_to_string(&audience).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(',').collect();
            if fields.len() > 3 && fields[3] != "locale" {
                fields[3] = "en";
            }
            fields.join(",") + "\n"
        })
        .collect();
    std::fs::write(audience, text).unwrap();
}

/// A SendGrid that answers 202 to everything, counting calls and personalizations.
fn fake() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let (c, t) = (Arc::clone(&calls), Arc::clone(&taken));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (c, t) = (Arc::clone(&c), Arc::clone(&t));
            std::thread::spawn(move || serve(stream, &c, &t));
        }
    });
    (port, calls, taken)
}

fn serve(stream: std::net::TcpStream, calls: &AtomicUsize, taken: &AtomicUsize) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let personalizations = body.windows(6).filter(|w| w == b"\"to\":[").count();
        calls.fetch_add(1, Ordering::SeqCst);
        taken.fetch_add(personalizations, Ordering::SeqCst);
        let reply = "HTTP/1.1 202 Accepted\r\nX-Message-Id: bench\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

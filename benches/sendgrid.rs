//! Benchmark: `herald apply` (the release binary, as a user runs it) against a SendGrid
//! fake on loopback, with the durable state store and a rate that does not bind.
//!
//! Cases, each on a fresh store:
//! - personal, 150 ms: the shipped templates (first name, address and an unsubscribe link
//!   per recipient) in 5 locales; the fake answers each call after 150 ms, a realistic
//!   round trip to SendGrid. Target (issue 12): 50,000 messages per second end to end,
//!   preflight included, at least 950 personalizations per call, under 300 MB.
//! - personal, loopback: the same, answered at once.
//! - shared, loopback: bodies identical for everyone (no names, no links).
//! - postmark, 150 ms: the personal case through Postmark's batch API (500 complete
//!   messages per call), against a fake answering one result per message.
//! - mailgun, 150 ms: the personal case through Mailgun's messages API (1,000 recipients
//!   per call with their `recipient-variables`).
//!
//! `HERALD_BENCH_ROWS` (default 1,000,000) and `HERALD_BENCH_CASES` (a comma-separated
//! subset of `personal-150ms,personal-loopback,shared-loopback,postmark-150ms,mailgun-150ms`)
//! change what runs; `HERALD_BENCH_CONCURRENCY` sets the transport's `concurrency` (calls in
//! flight; the default is the transport's own). `HERALD_BENCH_SHARDS=N` gives the campaign
//! `spec.shards: N` and runs `apply --shard I` for each I, one after another, each with its
//! own store, printing each shard's time and peak memory (issue 25: 10,000,000 recipients
//! over 8 shards).
//! Peak memory is herald's own, from `/usr/bin/time`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{herald_timed, size, write_campaign};

fn main() {
    let rows = size("HERALD_BENCH_ROWS", 1_000_000);
    let cases = std::env::var("HERALD_BENCH_CASES").unwrap_or_else(|_| {
        "personal-150ms,personal-loopback,shared-loopback,postmark-150ms,mailgun-150ms".to_owned()
    });
    for case in cases.split(',') {
        let (personal, latency) = match case {
            "personal-150ms" | "postmark-150ms" | "mailgun-150ms" => {
                (true, Duration::from_millis(150))
            }
            "personal-loopback" => (true, Duration::ZERO),
            "shared-loopback" => (false, Duration::ZERO),
            other => panic!("unknown case {other}"),
        };
        run(case, rows, personal, latency);
    }
}

fn run(case: &str, rows: usize, personal: bool, latency: Duration) {
    let fake = Fake::start(latency);
    let dir = tempfile::tempdir().expect("temporary folder");
    write_campaign(dir.path(), rows, 10_000_000);
    let campaigns = dir.path().join("campaigns");
    if !personal {
        make_shared(&campaigns);
    }
    let spec = if case.starts_with("postmark") {
        // Postmark takes at most 500 messages per call.
        let manifest = campaigns.join("campaign.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("size: 1000", "size: 500")).unwrap();
        "type: postmark, server_token_env: HERALD_BENCH_KEY"
    } else if case.starts_with("mailgun") {
        "type: mailgun, api_key_env: HERALD_BENCH_KEY, domain: mg.example.com"
    } else {
        "type: sendgrid, api_key_env: HERALD_BENCH_KEY"
    };
    let concurrency = std::env::var("HERALD_BENCH_CONCURRENCY")
        .map(|n| format!(", concurrency: {n}"))
        .unwrap_or_default();
    std::fs::write(
        campaigns.join("transports.yaml"),
        format!(
            "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
             spec: {{{spec}, endpoint: \"http://127.0.0.1:{}\"{concurrency}}}\n",
            fake.port
        ),
    )
    .unwrap();
    let shards = size("HERALD_BENCH_SHARDS", 1);
    if shards > 1 {
        let manifest = campaigns.join("campaign.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let rate = "    per_second: 10000000\n";
        assert!(text.contains(rate), "the rate line");
        let sharded = text.replace(rate, &format!("{rate}  shards: {shards}\n"));
        std::fs::write(&manifest, sharded).unwrap();
    }
    let env = [
        ("HERALD_BENCH_KEY", "SG.bench-key-0123456789"),
        ("HERALD_UNSUBSCRIBE_KEY", "bench-unsubscribe-key-0123456789"),
    ];
    let state = dir.path().join("state");
    let started = Instant::now();
    let mut timed = Vec::new();
    for shard in 0..shards {
        let before = (Instant::now(), fake.taken.load(Ordering::SeqCst));
        let index = shard.to_string();
        let mut args = vec![
            "apply".as_ref(),
            campaigns.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ];
        if shards > 1 {
            args.extend::<[&std::ffi::OsStr; 2]>(["--shard".as_ref(), index.as_ref()]);
        }
        let run = herald_timed(&args, &env);
        if shards > 1 {
            let taken = fake.taken.load(Ordering::SeqCst) - before.1;
            println!(
                "{case}: shard {shard} of {shards}: {taken} messages, {:.2} s, {:.1} s of CPU, peak memory {} MB",
                before.0.elapsed().as_secs_f64(),
                run.cpu_seconds,
                run.peak_mb
            );
        }
        timed.push(run);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds: f64 = timed.iter().map(|t| t.cpu_seconds).sum();
    let peak_mb = timed.iter().map(|t| t.peak_mb).max().unwrap_or(0);
    let calls = fake.calls.load(Ordering::SeqCst);
    let taken = fake.taken.load(Ordering::SeqCst);
    assert!(taken >= rows, "the fake took {taken} of {rows}");
    #[allow(clippy::cast_precision_loss)]
    let (rate, per_call) = (taken as f64 / seconds, taken as f64 / calls as f64);
    let bytes = fake.bytes.load(Ordering::SeqCst);
    println!(
        "{case}: {taken} messages in {calls} calls ({per_call:.0} per call, {} MB sent), \
         {seconds:.2} s, {rate:.0} messages/second, {cpu_seconds:.1} s of CPU, peak memory {peak_mb} MB",
        bytes / 1_000_000,
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
}

/// A SendGrid (or a Postmark or a Mailgun, by the path asked) that takes everything after `latency`,
/// counting calls, recipients and bytes. A thread per connection, as herald keeps a few
/// open.
struct Fake {
    port: u16,
    calls: Arc<AtomicUsize>,
    taken: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
}

impl Fake {
    fn start(latency: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = Self {
            port,
            calls: Arc::default(),
            taken: Arc::default(),
            bytes: Arc::default(),
        };
        let (calls, taken, bytes) = (
            Arc::clone(&fake.calls),
            Arc::clone(&fake.taken),
            Arc::clone(&fake.bytes),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (c, t, b) = (Arc::clone(&calls), Arc::clone(&taken), Arc::clone(&bytes));
                std::thread::spawn(move || serve(stream, latency, &c, &t, &b));
            }
        });
        fake
    }
}

enum Provider {
    SendGrid,
    Postmark,
    Mailgun,
}

fn serve(
    stream: std::net::TcpStream,
    latency: Duration,
    calls: &AtomicUsize,
    taken: &AtomicUsize,
    bytes: &AtomicU64,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        let mut provider = Provider::SendGrid;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if line.starts_with("POST /email/batch ") {
                provider = Provider::Postmark;
            } else if line.starts_with("POST /v3/mg.example.com/messages ") {
                provider = Provider::Mailgun;
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
        let count = |pattern: &[u8]| {
            body.windows(pattern.len())
                .filter(|w| w == &pattern)
                .count()
        };
        let recipients = match provider {
            Provider::Postmark => count(b"\"MessageStream\":"),
            Provider::Mailgun => count(b"name=\"to\"\r\n"),
            Provider::SendGrid => count(b"\"to\":["),
        };
        std::thread::sleep(latency);
        calls.fetch_add(1, Ordering::SeqCst);
        taken.fetch_add(recipients, Ordering::SeqCst);
        bytes.fetch_add(length as u64, Ordering::SeqCst);
        let json = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let reply = match provider {
            Provider::Postmark => {
                let one = r#"{"ErrorCode":0,"Message":"OK","MessageID":"bench"}"#;
                json(&format!("[{}]", vec![one; recipients].join(",")))
            }
            Provider::Mailgun => {
                json(r#"{"id":"<bench@mg.example.com>","message":"Queued. Thank you."}"#)
            }
            Provider::SendGrid => {
                "HTTP/1.1 202 Accepted\r\nX-Message-Id: bench\r\nContent-Length: 0\r\n\r\n"
                    .to_owned()
            }
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

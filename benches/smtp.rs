//! Benchmark: `herald apply` (the release binary) over SMTP against a sink on loopback that
//! answers each message's end of DATA after 50 ms, as a relay that queues to disk and
//! scans does; the shipped personal templates in 5 locales, the durable state store, a
//! rate that does not bind. Target (issue 12): with `concurrency: 64`, at least 800
//! messages per second.
//!
//! The sink is herald's own (a thread per connection, counting messages), so what is
//! measured is herald, not the speed of a test server. `HERALD_BENCH_ROWS` (default
//! 20,000) and `HERALD_BENCH_CONCURRENCY` (a comma-separated list, default `8,64`) change
//! what runs; each concurrency runs on a fresh store, side by side.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{herald_timed, size, write_campaign};

const DATA_DELAY: Duration = Duration::from_millis(50);

fn main() {
    let rows = size("HERALD_BENCH_ROWS", 20_000);
    let list = std::env::var("HERALD_BENCH_CONCURRENCY").unwrap_or_else(|_| "8,64".to_owned());
    for concurrency in list.split(',') {
        let concurrency: usize = concurrency.trim().parse().expect("a number");
        run(rows, concurrency);
    }
}

fn run(rows: usize, concurrency: usize) {
    let sink = Sink::start();
    let dir = tempfile::tempdir().expect("temporary folder");
    write_campaign(dir.path(), rows, 10_000_000);
    let campaigns = dir.path().join("campaigns");
    std::fs::write(
        campaigns.join("transports.yaml"),
        format!(
            "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
             spec: {{type: smtp, host: 127.0.0.1, port: {}, tls: none, concurrency: {concurrency}}}\n",
            sink.port
        ),
    )
    .unwrap();
    let started = Instant::now();
    let timed = herald_timed(
        &[
            "apply".as_ref(),
            campaigns.as_os_str(),
            "--state".as_ref(),
            dir.path().join("state").as_os_str(),
        ],
        &[("HERALD_UNSUBSCRIBE_KEY", "bench-unsubscribe-key-0123456789")],
    );
    let seconds = started.elapsed().as_secs_f64();
    let taken = sink.messages.load(Ordering::SeqCst);
    assert!(taken >= rows, "the sink took {taken} of {rows}");
    #[allow(clippy::cast_precision_loss)]
    let rate = taken as f64 / seconds;
    println!(
        "smtp, concurrency {concurrency}, DATA answered after {} ms: {taken} messages in \
         {seconds:.2} s, {rate:.0} messages/second, {} connections, {:.1} s of CPU, peak memory {} MB",
        DATA_DELAY.as_millis(),
        sink.connections.load(Ordering::SeqCst),
        timed.cpu_seconds,
        timed.peak_mb,
    );
}

/// An SMTP server that takes everything, answering the end of each message's DATA after
/// `DATA_DELAY`.
struct Sink {
    port: u16,
    messages: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (m, c) = (Arc::clone(&messages), Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    let _ = session(stream, &m);
                });
            }
        });
        Self {
            port,
            messages,
            connections,
        }
    }
}

fn session(stream: TcpStream, messages: &AtomicUsize) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 sink ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => writer.write_all(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")?,
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                std::thread::sleep(DATA_DELAY);
                messages.fetch_add(1, Ordering::SeqCst);
                writer.write_all(b"250 2.0.0 queued\r\n")?;
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => writer.write_all(b"250 ok\r\n")?,
        }
    }
}

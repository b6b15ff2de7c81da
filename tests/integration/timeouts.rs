//! Connections that never finish are closed: against a real `herald watch --listen`, raw
//! TCP clients that send half a request head, nothing at all, or a body that never ends,
//! or that sit idle after an answer. Each is closed within the documented time
//! (docs/service.md: 15 s to send a request head, 30 s for a request), while `/livez`
//! answers meanwhile.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::feedback::{self, events_key, watch};
use crate::http;

const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What a busy machine may add.
const SLACK: Duration = Duration::from_secs(5);
/// A second early: the timers of client and server do not start at the same instant.
const HEADER_EARLIEST: Duration = Duration::from_secs(14);
const REQUEST_EARLIEST: Duration = Duration::from_secs(29);

/// Connects, sends `first`, then waits: how long until the server closed the connection,
/// and what it sent before closing.
fn held(port: u16, first: &[u8]) -> (Duration, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let opened = Instant::now();
    stream.write_all(first).unwrap();
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT + HEADER_TIMEOUT + SLACK))
        .unwrap();
    let mut answer = Vec::new();
    // EOF or a reset: closed either way.
    let _ = stream.read_to_end(&mut answer);
    (
        opened.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[test]
fn slow_and_idle_connections_are_closed_in_time_while_livez_answers() {
    let workspace = feedback::workspace(&events_key());
    let (child, port) = watch(&workspace);
    let (half_head, silent, slow_body, kept_alive, livez) = std::thread::scope(|scope| {
        let half_head = scope.spawn(|| {
            held(
                port,
                b"POST /events/sendgrid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
            )
        });
        let silent = scope.spawn(|| held(port, b""));
        let slow_body = scope.spawn(|| {
            held(
                port,
                b"POST /events/sendgrid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n[{\"email\":",
            )
        });
        let kept_alive = scope.spawn(|| {
            let (took, answer) = held(port, b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            (took, answer)
        });
        // Meanwhile, the listener answers others at once.
        std::thread::sleep(Duration::from_secs(2));
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let asked = Instant::now();
            assert_eq!(http::get(port, "/livez").status, 200);
            slowest = slowest.max(asked.elapsed());
            std::thread::sleep(Duration::from_millis(250));
        }
        (
            half_head.join().unwrap(),
            silent.join().unwrap(),
            slow_body.join().unwrap(),
            kept_alive.join().unwrap(),
            slowest,
        )
    });
    eprintln!(
        "closed after: half a head {:?}, nothing sent {:?}, a slow body {:?}, idle after an answer {:?}; /livez meanwhile at most {livez:?}",
        half_head.0, silent.0, slow_body.0, kept_alive.0
    );
    assert!(livez < Duration::from_secs(1), "/livez took {livez:?}");
    for (what, (took, answer)) in [("half a head", &half_head), ("nothing sent", &silent)] {
        assert!(
            *took >= HEADER_EARLIEST && *took <= HEADER_TIMEOUT + SLACK,
            "{what}: closed after {took:?}"
        );
        assert_eq!(answer, "", "{what}: closed without an answer");
    }
    let (took, answer) = &slow_body;
    assert!(
        *took >= REQUEST_EARLIEST && *took <= REQUEST_TIMEOUT + SLACK,
        "a slow body: closed after {took:?}"
    );
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "a slow body: {answer}"
    );
    let (took, answer) = &kept_alive;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        *took >= HEADER_EARLIEST && *took <= HEADER_TIMEOUT + SLACK,
        "idle after an answer: closed after {took:?}"
    );
    child.interrupt();
    child.finish().code(0);
}

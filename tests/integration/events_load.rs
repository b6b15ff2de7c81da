//! Nothing lost between provider and store: SendGrid's largest requests, many at once,
//! all recorded and none twice while the listener keeps answering; every event answered
//! 2xx before a SIGKILL found in the store after it; and a captured Mailgun signature
//! refused after a restart, with other event data or the same.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::feedback::{
    self, MAILGUN_SIGNING_KEY, address, events_key, mailgun_webhook, now, post_events,
    post_mailgun, signed, suppressed, watch,
};
use crate::harness::{self, Workspace};
use crate::http;

/// `n` SendGrid bounces, of `batch{b}-{i}@example.org`, as SendGrid posts them.
fn bounces(batch: usize, n: usize) -> String {
    let mut body = String::from("[");
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"email":"batch{batch:02}-{i:04}@example.org","timestamp":{},"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"bounce","category":"cat facts","sg_event_id":"6g4ZI7SA-xmRDv57GoPIPw=={batch}-{i}","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","reason":"500 unknown recipient","status":"5.0.0","type":"bounce","campaign":"welcome"}}"#,
            now()
        );
    }
    body.push(']');
    body
}

/// How many addresses the store's suppression list holds, from a second process.
fn suppressions(workspace: &Workspace) -> Vec<String> {
    let list = workspace
        .run(["suppressions", "list", "-o", "json"])
        .code(0)
        .json();
    list["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["address"].as_str().unwrap().to_owned())
        .collect()
}

/// The resident memory peak of process `pid`, in MiB.
fn peak_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[test]
fn fifty_requests_of_a_thousand_sendgrid_events_at_once_are_all_recorded_once() {
    const REQUESTS: usize = 50;
    const EVENTS: usize = 1000;
    let _alone = harness::exclusive();
    let workspace = feedback::workspace(&events_key());
    let (child, port) = watch(&workspace);
    let bodies: Vec<String> = (0..REQUESTS).map(|b| bounces(b, EVENTS)).collect();
    assert!(
        bodies.iter().all(|b| b.len() < 1024 * 1024),
        "each under 1 MiB"
    );

    let before = peak_mib(child.id());
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (statuses, livez) = std::thread::scope(|scope| {
        // /livez, every 20 ms, for as long as the posts run.
        let probe = scope.spawn(|| {
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let asked = Instant::now();
                assert_eq!(http::get(port, "/livez").status, 200);
                slowest = slowest.max(asked.elapsed());
                answered += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (slowest, answered)
        });
        let posts: Vec<_> = bodies
            .iter()
            .map(|body| {
                scope.spawn(|| {
                    let headers = signed(&events_key(), now(), body);
                    post_events(port, &headers, body).status
                })
            })
            .collect();
        let statuses: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (statuses, probe.join().unwrap())
    });
    let took = started.elapsed();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let (slowest_livez, livez_answers) = livez;
    eprintln!(
        "50 x 1,000 SendGrid events: all answered in {:.2} s; /livez answered {livez_answers} times meanwhile, the slowest in {} ms; watch's peak memory {before} MiB before, {} MiB after",
        took.as_secs_f64(),
        slowest_livez.as_millis(),
        peak_mib(child.id())
    );
    assert!(
        slowest_livez < Duration::from_secs(2),
        "/livez took {slowest_livez:?} while the events were recorded"
    );

    let listed = suppressions(&workspace);
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(listed.len(), REQUESTS * EVENTS, "all recorded");
    assert_eq!(unique.len(), listed.len(), "none twice");

    // The same requests again (as SendGrid retries them): taken, and nothing doubles.
    for body in bodies.iter().take(5) {
        let headers = signed(&events_key(), now(), body);
        assert_eq!(post_events(port, &headers, body).status, 200);
    }
    assert_eq!(suppressions(&workspace).len(), REQUESTS * EVENTS);
    child.interrupt();
    child.finish().code(0);
}

#[test]
fn every_event_answered_2xx_before_a_sigkill_is_in_the_store_after_it() {
    let workspace = feedback::workspace(&events_key());
    let (child, port) = watch(&workspace);
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let killed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for sender in 0..4 {
            let (acknowledged, killed) = (&acknowledged, &killed);
            scope.spawn(move || {
                for request in 0.. {
                    if killed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let batch = sender * 1000 + request;
                    let body = bounces(batch, 50);
                    let headers = signed(&events_key(), now(), &body);
                    // A connection cut by the kill is no answer: those events may or may
                    // not be in the store, and SendGrid would send them again.
                    let answer = std::panic::catch_unwind(|| post_events(port, &headers, &body));
                    if let Ok(answer) = answer {
                        if answer.status == 200 {
                            acknowledged.lock().unwrap().push(batch);
                        }
                    }
                }
            });
        }
        feedback::wait_until("40 requests are answered", || {
            acknowledged.lock().unwrap().len() >= 40
        });
        child.signal("-KILL");
        killed.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    drop(child);
    let acknowledged = acknowledged.into_inner().unwrap();
    let listed: BTreeSet<String> = suppressions(&workspace).into_iter().collect();
    let mut missing = Vec::new();
    for batch in &acknowledged {
        for i in 0..50 {
            let address = format!("batch{batch:02}-{i:04}@example.org");
            if !listed.contains(&address) {
                missing.push(address);
            }
        }
    }
    assert!(
        acknowledged.len() >= 40 && missing.is_empty(),
        "{} requests acknowledged; missing after the kill: {missing:?}",
        acknowledged.len()
    );
}

/// Regression: seen tokens lived in memory, so after a restart a captured Mailgun request
/// could be posted again with other event data under the same signature, and was taken.
#[test]
fn a_captured_mailgun_signature_is_refused_after_a_restart() {
    let workspace = feedback::workspace(&events_key());
    let (child, port) = watch(&workspace);
    let at = now();
    let token = "token-restart-4b1f0c";
    let captured = mailgun_webhook(MAILGUN_SIGNING_KEY, at, token, "delivered", &address(1));
    assert_eq!(post_mailgun(port, &captured).status, 200);
    child.signal("-KILL");
    drop(child);

    let (child, port) = watch(&workspace);
    let altered = mailgun_webhook(MAILGUN_SIGNING_KEY, at, token, "complained", &address(2));
    for (what, body) in [("the same", &captured), ("other event data", &altered)] {
        let answer = post_mailgun(port, body);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (403, "a token seen before\n"),
            "{what}"
        );
    }
    assert_eq!(suppressed(&workspace), []);
    // A fresh token still works.
    let fresh = mailgun_webhook(
        MAILGUN_SIGNING_KEY,
        now(),
        "token-fresh-77e2",
        "complained",
        &address(2),
    );
    assert_eq!(post_mailgun(port, &fresh).status, 200);
    assert_eq!(
        suppressed(&workspace),
        [(address(2), "complained".to_owned(), "welcome".to_owned())]
    );
    child.interrupt();
    child.finish().code(0);
}

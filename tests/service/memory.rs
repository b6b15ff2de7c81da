//! herald's memory grows with the audience by its bookkeeping, not by the messages:
//! `herald apply` of a personal campaign (a name per recipient, three locales, an
//! unsubscribe link each) to SendGrid, once with a small audience and once with one ten
//! times larger, each run's peak resident memory measured; what each extra recipient
//! costs is bounded, and so is the larger run's peak.
//!
//! Why: a tool that holds every rendered message, or every request body, is fine on a
//! test audience and falls over on a real one (the incident herald exists for reached
//! 23,000 customers; docs/performance.md runs a million). By design herald keeps, per
//! recipient, a 20-byte slot in its index and a 16-byte one in the audience's dedupe
//! table (src/keyhash.rs); messages are rendered, sent and dropped a call at a time.
//!
//! The peak is the kernel's: `ru_maxrss` of the process, as `wait4(2)` gives it when the
//! process is reaped. The crate forbids `unsafe` (tests included), and neither std nor
//! the safe crates herald already uses return `rusage`, so the system's `python3` (which
//! `tests/servers/install.sh` needs anyway) forks, execs herald and reaps it with
//! `os.wait4`. It never skips: without `python3` the test fails.
//!
//! The fake is a counting SendGrid of its own: the shared one validates every body
//! against the schema and keeps every message rendered, which for 200,000 recipients in
//! a debug build is slow and heavy, and is not what this test is about. This one follows
//! the same `POST /v3/mail/send` contract (a bearer key, a `personalizations` array of
//! one `to` each, at most 1,000, answered `202 Accepted` with an `X-Message-Id`) and keeps
//! only the addresses it accepted.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, Workspace};
use crate::wire::{Head, Loopback};

const CAMPAIGN: &str = "campaigns/welcome.yaml";
const KEY_ENV: &str = "HERALD_TEST_SENDGRID_KEY";
const KEY: &str = "SG.test-key-for-the-fake-never-print-me";

/// Each locale of the audience in turn: its tag, its subject, a first name.
const LOCALES: [(&str, &str, &str); 3] = [
    ("en", "Welcome", "Ann"),
    ("de", "Willkommen", "Jürgen"),
    ("ja", "ようこそ", "さくら"),
];

/// The audiences: the small one fills the pipeline (20 calls of 1,000 against 4 in
/// flight and 2 queued), so what the large one adds is what its recipients cost.
const SMALL: usize = 20_000;
const LARGE: usize = 200_000;

/// The bounds, from measurement: 2 cores, debug build, both cores shared with other
/// builds and tests (load 4 to 12) in most runs. Peak KiB of the small run and of the
/// large one, and bytes a recipient more, over 15 runs of this test as it stands:
///   88556 / 99084 (59.9), 81300 / 96980 (89.2), 81164 / 100724 (111.3),
///   83376 / 101480 (103.0), 80600 / 95040 (82.1), 79452 / 97936 (105.2),
///   81528 / 96944 (87.7), 82888 / 98540 (89.0), 79768 / 98024 (103.9),
///   80968 / 94644 (77.8), 83732 / 97184 (76.5), 83132 / 94784 (66.3),
///   81396 / 94772 (76.1), 81724 / 92316 (60.3), 80692 / 98800 (103.0);
/// and over 13 more with a one-line body: 68.4 to 135.6 bytes a recipient, the large run
/// 93080 to 106600 KiB (150.5 bytes and 111328 KiB once with 8 calls in flight). Beyond
/// the tables' slots (at most 7/8 full) it is the allocator's, and so is the spread
/// (which thread frees what, when). So: 512 bytes a recipient (4.6 times the worst of
/// this test as it stands, 3.4 times the worst seen at all), and 192 MiB for the large
/// run (1.9 and 1.8 times: more cores mean more worker threads, each with a heap of its
/// own). Keeping every rendered message would cost a kilobyte or more a recipient here.
const PER_RECIPIENT_BYTES: f64 = 512.0;
const LARGE_PEAK_KIB: u64 = 192 * 1024;

/// Forks, execs `argv[2:]`, reaps it with `wait4` and writes its `ru_maxrss` (KiB on
/// Linux) and CPU seconds to the file `argv[1]`; exits as the child did. (The forked
/// python's few MB before the exec count in `ru_maxrss` too, far below herald's peak.)
const WAIT4: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime:.1f} {usage.ru_stime:.1f}")
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn apply_memory_grows_by_bytes_a_recipient_not_by_messages() {
    let _alone = harness::exclusive();
    let started = Instant::now();
    let small = send(SMALL);
    let large = send(LARGE);
    #[allow(clippy::cast_precision_loss)]
    let per_recipient =
        (large.peak_kib as f64 - small.peak_kib as f64) * 1024.0 / (LARGE - SMALL) as f64;
    eprintln!(
        "memory: apply of {SMALL} recipients peaked at {} KiB ({:.1} s, {:.1} s of CPU), \
         of {LARGE} at {} KiB ({:.1} s, {:.1} s of CPU): {per_recipient:.1} bytes a \
         recipient more (bound {PER_RECIPIENT_BYTES}), ceiling {LARGE_PEAK_KIB} KiB; \
         {:.1} s in all",
        small.peak_kib,
        small.seconds,
        small.cpu_seconds,
        large.peak_kib,
        large.seconds,
        large.cpu_seconds,
        started.elapsed().as_secs_f64()
    );
    assert!(
        per_recipient < PER_RECIPIENT_BYTES,
        "each recipient beyond {SMALL} costs {per_recipient:.1} bytes of peak memory \
         ({} KiB for {SMALL}, {} KiB for {LARGE}); the bound is {PER_RECIPIENT_BYTES}",
        small.peak_kib,
        large.peak_kib
    );
    assert!(
        large.peak_kib < LARGE_PEAK_KIB,
        "apply of {LARGE} recipients peaked at {} KiB; the ceiling is {LARGE_PEAK_KIB} KiB",
        large.peak_kib
    );
}

/// One apply, as the kernel and the clock saw it.
struct Measured {
    /// Peak resident memory (`ru_maxrss`), KiB.
    peak_kib: u64,
    /// User and system time.
    cpu_seconds: f64,
    /// Wall time, preflight included.
    seconds: f64,
}

/// Applies a fresh campaign of `n` recipients through a fresh fake, proves that the fake
/// accepted each of them exactly once, and returns what the apply took.
fn send(n: usize) -> Measured {
    let fake = CountingSendGrid::start();
    let workspace = workspace(&fake, n);
    let started = Instant::now();
    let (output, mut measured) = measure(&workspace.command(["apply", "-o", "json"]));
    measured.seconds = started.elapsed().as_secs_f64();
    let printed = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "apply exits 0\n{printed}");
    let run: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("apply prints JSON ({e})\n{printed}"));
    assert_eq!(
        run["campaigns"][0]["sent"].as_u64(),
        Some(n as u64),
        "apply says it sent to everyone\n{printed}"
    );

    let mut log = fake.log.lock().unwrap();
    assert_eq!(
        log.violations,
        Vec::<String>::new(),
        "requests the fake refused (SendGrid would have)"
    );
    let subjects: BTreeMap<String, usize> = (0..LOCALES.len())
        .map(|k| {
            (
                LOCALES[k].1.to_owned(),
                (n + LOCALES.len() - 1 - k) / LOCALES.len(),
            )
        })
        .collect();
    assert_eq!(log.subjects, subjects, "subjects, so recipients, by locale");
    let mut accepted = std::mem::take(&mut log.accepted);
    accepted.sort_unstable();
    let expected: Vec<String> = (0..n).map(address).collect();
    if accepted != expected {
        let mut twice: Vec<&String> = accepted
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| &w[0])
            .collect();
        twice.dedup();
        let never = expected
            .iter()
            .filter(|a| accepted.binary_search(a).is_err())
            .count();
        panic!(
            "the fake accepted {} personalizations for {n} recipients: {never} recipients \
             never, {} more than once (first: {:?})",
            accepted.len(),
            twice.len(),
            &twice[..twice.len().min(3)]
        );
    }
    measured
}

fn address(i: usize) -> String {
    format!("user{i:06}@example.com")
}

/// The personal campaign of the provider tests (a name each, an unsubscribe link each,
/// calls of 1,000 at a rate that never binds), in English, German and Japanese, with a
/// paragraph of about 500 bytes in text and html: a run that kept every rendered message
/// would hold a kilobyte or more per recipient.
fn workspace(fake: &CountingSendGrid, n: usize) -> Workspace {
    use std::fmt::Write as _;
    let mut audience = String::with_capacity(n * 40);
    audience.push_str("email,name,locale\n");
    for i in 0..n {
        let (locale, _, name) = LOCALES[i % LOCALES.len()];
        let _ = writeln!(audience, "{},{name} {i},{locale}", address(i));
    }
    let transports = format!(
        "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
         spec: {{type: sendgrid, endpoint: \"{}\", api_key_env: {KEY_ENV}, concurrency: 4}}\n",
        fake.server.endpoint()
    );
    harness::personal(&transports, &audience, 1000)
        .env(KEY_ENV, KEY)
        .file("campaigns/audiences/unsubscribed.csv", "email\n")
        .file(
            "campaigns/templates/welcome.txt.j2",
            "{{ t('hello', name=recipient.name) }}\n\n{{ t('body') }}\n",
        )
        .file(
            "campaigns/templates/welcome.html.j2",
            "<p>{{ t('hello', name=recipient.name) }}</p>\n<p>{{ t('body') }}</p>\n",
        )
        .file(
            "campaigns/locales/en.yaml",
            "subject: Welcome\nhello: \"Hello {name}\"\nbody: >-\n  \
             Thank you for opening an account with us. Over the next few days we will send \
             you a short series of messages that explain how statements, fees and \
             notifications work, and where to find the settings that control them. You can \
             change the language of these messages at any time in your profile, and every \
             message carries a link that stops them for good. If anything here looks wrong, \
             answer this message: a person reads every reply within one working day.\n",
        )
        .file(
            "campaigns/locales/de.yaml",
            "subject: Willkommen\nhello: \"Hallo {name}\"\nbody: >-\n  \
             Vielen Dank, dass Sie ein Konto bei uns eröffnet haben. In den nächsten Tagen \
             schicken wir Ihnen eine kurze Reihe von Nachrichten, die erklären, wie \
             Kontoauszüge, Gebühren und Benachrichtigungen funktionieren und wo Sie die \
             Einstellungen dazu finden. Die Sprache dieser Nachrichten können Sie jederzeit \
             in Ihrem Profil ändern, und jede Nachricht enthält einen Link, der sie für \
             immer abbestellt. Antworten Sie einfach, wenn etwas nicht stimmt.\n",
        )
        .file(
            "campaigns/locales/ja.yaml",
            "subject: ようこそ\nhello: \"{name} さん、こんにちは\"\nbody: >-\n  \
             口座を開設していただき、ありがとうございます。これから数日の間に、取引明細、\
             手数料、通知の仕組みと、それらを設定する場所をご説明する短いメッセージを\
             お送りします。メッセージの言語はプロフィールからいつでも変更できます。\
             また、すべてのメッセージに配信を停止するリンクが付いています。\
             内容に誤りがあれば、このメッセージにご返信ください。\n",
        )
        .edit(
            CAMPAIGN,
            "locales: {default: en, catalog: locales}",
            "locales: {default: en, field: locale, catalog: locales}",
        )
        .workspace()
}

/// Runs `command` (herald, its arguments, environment and folder set) to the end under
/// the `wait4` shim: what it printed, its peak memory and its CPU time.
fn measure(command: &Command) -> (Output, Measured) {
    let report = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut shim = Command::new("python3");
    shim.arg("-c")
        .arg(WAIT4)
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shim.env(key, value),
            None => shim.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        shim.current_dir(dir);
    }
    let output = shim
        .output()
        .unwrap_or_else(|e| panic!("python3 runs (tests/servers/install.sh needs it too): {e}"));
    let written = std::fs::read_to_string(report.path()).unwrap();
    let fields: Vec<f64> = written
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [kib, user, system] = fields[..] else {
        panic!(
            "the wait4 shim wrote {written:?}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let measured = Measured {
        peak_kib: kib as u64,
        cpu_seconds: user + system,
        seconds: 0.0,
    };
    (output, measured)
}

/// What the fake saw.
#[derive(Default)]
struct Log {
    /// Every `to` address of every personalization of every accepted request.
    accepted: Vec<String>,
    /// How many personalizations had each subject.
    subjects: BTreeMap<String, usize>,
    violations: Vec<String>,
}

/// A SendGrid `POST /v3/mail/send` that accepts everything and counts who it accepted.
struct CountingSendGrid {
    server: Loopback,
    log: Arc<Mutex<Log>>,
}

impl CountingSendGrid {
    fn start() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        let server = Loopback::start(move |stream| serve(stream, Arc::clone(&shared)));
        Self { server, log }
    }
}

/// As much of the request body as the fake reads.
#[derive(Deserialize)]
struct Mail {
    personalizations: Vec<Personalization>,
}

#[derive(Deserialize)]
struct Personalization {
    to: Vec<To>,
    subject: String,
}

#[derive(Deserialize)]
struct To {
    email: String,
}

async fn serve(stream: TcpStream, log: Arc<Mutex<Log>>) {
    let mut stream = BufReader::new(stream);
    let mut number = 0;
    loop {
        let Some(head) = Head::read(&mut stream).await else {
            return;
        };
        let mut body = vec![0; head.length()];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        number += 1;
        let mut violations = Vec::new();
        if head.request_line() != Some("POST /v3/mail/send HTTP/1.1") {
            violations.push(format!("request line {:?}", head.request_line()));
        }
        if head.header("authorization").as_deref() != Some(&format!("Bearer {KEY}")) {
            violations.push("a request without the bearer key".to_owned());
        }
        let answer = match serde_json::from_slice::<Mail>(&body) {
            Ok(mail) if violations.is_empty() => {
                let personalizations = mail.personalizations.len();
                if !(1..=1000).contains(&personalizations) {
                    violations.push(format!("{personalizations} personalizations"));
                }
                let mut log = log.lock().unwrap();
                for p in mail.personalizations {
                    if p.to.len() != 1 {
                        violations.push(format!("a personalization to {} addresses", p.to.len()));
                    }
                    *log.subjects.entry(p.subject).or_default() += 1;
                    log.accepted.extend(p.to.into_iter().map(|to| to.email));
                }
                log.violations.append(&mut violations);
                format!(
                    "HTTP/1.1 202 Accepted\r\nX-Message-Id: fake-{number}\r\nContent-Length: 0\r\n\r\n"
                )
            }
            parsed => {
                if let Err(e) = parsed {
                    violations.push(format!("a body that is not SendGrid's JSON: {e}"));
                }
                log.lock().unwrap().violations.append(&mut violations);
                let payload = r#"{"errors":[{"message":"Bad Request"}]}"#;
                format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
                    payload.len()
                )
            }
        };
        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

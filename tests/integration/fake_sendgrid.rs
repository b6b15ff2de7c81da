//! A fake SendGrid `POST /v3/mail/send` on a loopback port, driven by a `Scenario`. No
//! SendGrid emulator exists, so this one follows the provider's published schema: every
//! request body is validated against `tests/conformance/sendgrid-mail-send.schema.json`,
//! and what the schema cannot say (one address per personalization here, no address
//! twice, at most 1,000) is checked too. Violations are collected, and tests assert there
//! are none.
//!
//! HTTP/1.1 is spoken by hand over tokio, so that a scenario can cut a connection before
//! or after reading the body, which no framework lets a handler do.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::wire::{Head, Loopback};

/// How the fake answers. `times` counts requests from the start of the run.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// 202 to everything.
    Accept,
    /// 429 with `Retry-After: seconds` to the first `times` requests.
    TooManyRequests { times: usize, seconds: u64 },
    /// 500 to the first `times` requests.
    ServerErrors { times: usize },
    /// Takes the first `times` requests, then answers only after `delay`.
    Slow { times: usize, delay: Duration },
    /// Answers every request after `Duration`, as a provider far away does.
    Latency(Duration),
    /// Closes the connection after the request head, before reading the body.
    CutBeforeBody { times: usize },
    /// Reads (and takes) the whole request, then closes without answering.
    CutAfterBody { times: usize },
    /// 401 to everything.
    Unauthorized,
    /// 401 for this long from the start (a key not yet active), then 202.
    UnauthorizedFor(Duration),
    /// 503 for this long from the start (an incident), then 202.
    ServerErrorsFor(Duration),
    /// 400 with SendGrid's error shape for requests naming an address containing this.
    Reject(&'static str),
    /// 400 whose message echoes the request's headers, as a misconfigured proxy might:
    /// the key in clear, and again in base64.
    EchoHeaders,
}

/// One recipient the fake took, with when and what they would receive: subject and
/// content with the personalization's substitutions applied, as SendGrid applies them.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub at: SystemTime,
    pub to: String,
    pub subject: String,
    /// The content values, text then html.
    pub content: Vec<String>,
    /// How many recipients the request carried.
    pub personalizations: usize,
}

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub accepted: Vec<Accepted>,
    /// Anything that breaks the schema or SendGrid's other rules.
    pub violations: Vec<String>,
    /// `Authorization` headers seen.
    pub authorizations: Vec<String>,
}

pub struct FakeSendGrid {
    server: Loopback,
    log: Arc<Mutex<Log>>,
}

impl FakeSendGrid {
    pub fn start(scenario: Scenario) -> Self {
        Self::start_after(Duration::ZERO, scenario)
    }

    /// A fake whose port refuses connections for `down`, then serves `scenario`.
    pub fn start_after(down: Duration, scenario: Scenario) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/conformance/sendgrid-mail-send.schema.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let validator = Arc::new(
            jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("the published schema compiles"),
        );
        let shared = Arc::clone(&log);
        let started = std::time::Instant::now();
        let server = Loopback::start_after(down, move |stream| {
            serve(
                stream,
                scenario.clone(),
                started,
                Arc::clone(&shared),
                Arc::clone(&validator),
            )
        });
        Self { server, log }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

/// Serves the requests of one connection until it closes or a scenario cuts it.
async fn serve(
    stream: TcpStream,
    scenario: Scenario,
    started: std::time::Instant,
    log: Arc<Mutex<Log>>,
    validator: Arc<jsonschema::Validator>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(head) = Head::read(&mut stream).await else {
            return;
        };
        let header = |name: &str| head.header(name);
        let length = head.length();
        let number = {
            let mut log = log.lock().unwrap();
            log.requests += 1;
            log.authorizations
                .push(header("authorization").unwrap_or_default());
            log.requests
        };
        if let Scenario::CutBeforeBody { times } = scenario {
            if number <= times {
                return;
            }
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        check(&request, &validator, &log);

        let (status, extra) = match &scenario {
            Scenario::TooManyRequests { times, seconds } if number <= *times => (
                "429 Too Many Requests",
                format!("Retry-After: {seconds}\r\n"),
            ),
            Scenario::ServerErrors { times } if number <= *times => {
                ("500 Internal Server Error", String::new())
            }
            Scenario::Unauthorized => ("401 Unauthorized", String::new()),
            Scenario::UnauthorizedFor(period) if started.elapsed() < *period => {
                ("401 Unauthorized", String::new())
            }
            Scenario::ServerErrorsFor(period) if started.elapsed() < *period => {
                ("503 Service Unavailable", String::new())
            }
            Scenario::Reject(part) if String::from_utf8_lossy(&body).contains(part) => {
                ("400 Bad Request", String::new())
            }
            Scenario::EchoHeaders => ("400 Bad Request", String::new()),
            _ => ("202 Accepted", format!("X-Message-Id: fake-{number}\r\n")),
        };
        if status.starts_with("202") {
            take(&request, &log);
        }
        match scenario {
            Scenario::CutAfterBody { times } if number <= times => return,
            Scenario::Slow { times, delay } if number <= times => tokio::time::sleep(delay).await,
            Scenario::Latency(delay) => tokio::time::sleep(delay).await,
            _ => {}
        }
        let echoed;
        let payload = match status {
            s if s.starts_with("400") && matches!(scenario, Scenario::EchoHeaders) => {
                use base64::Engine as _;
                let authorization = header("authorization").unwrap_or_default();
                let encoded = base64::engine::general_purpose::STANDARD.encode(&authorization);
                echoed = serde_json::json!({"errors": [{"message": format!(
                    "proxy refused the request; headers were: Authorization: {authorization}; raw: {encoded}"
                )}]})
                .to_string();
                echoed.as_str()
            }
            s if s.starts_with("400") => {
                r#"{"errors":[{"message":"The to email does not contain a valid address.","field":"personalizations.0.to"}]}"#
            }
            s if s.starts_with("401") => {
                r#"{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked"}]}"#
            }
            _ => "",
        };
        let response = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        );
        if stream
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Validates one body against the schema and SendGrid's other rules.
fn check(request: &Value, validator: &jsonschema::Validator, log: &Mutex<Log>) {
    let mut violations: Vec<String> = validator
        .iter_errors(request)
        .map(|e| format!("schema: {e} at {}", e.instance_path))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let personalizations = request["personalizations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if personalizations.len() > 1000 {
        violations.push(format!("{} personalizations", personalizations.len()));
    }
    for p in &personalizations {
        let to = p["to"].as_array().map_or(0, Vec::len);
        if to != 1 {
            violations.push(format!("a personalization with {to} addresses in `to`"));
        }
        if p.get("cc").is_some() || p.get("bcc").is_some() {
            violations.push("a personalization with cc or bcc".to_owned());
        }
        // SendGrid: substitution values are strings, at most 10,000 bytes in all per
        // personalization; a value holding another tag is not safe.
        if let Some(substitutions) = p.get("substitutions") {
            let map = substitutions.as_object().cloned().unwrap_or_default();
            let bytes: usize = map
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum();
            if bytes > 10_000 {
                violations.push(format!("{bytes} bytes of substitutions"));
            }
            for (key, value) in &map {
                let Some(value) = value.as_str() else {
                    violations.push(format!("substitution {key} is not a string"));
                    continue;
                };
                if map.keys().any(|other| value.contains(other.as_str())) {
                    violations.push(format!("substitution {key} holds a tag"));
                }
            }
        }
        for address in p["to"].as_array().into_iter().flatten() {
            let email = address["email"].as_str().unwrap_or_default().to_lowercase();
            if !seen.insert(email.clone()) {
                violations.push(format!("{email} twice in one request"));
            }
            if address["name"]
                .as_str()
                .is_some_and(|n| n.contains([';', ',']))
            {
                violations.push(format!("a name with ; or , for {email}"));
            }
        }
    }
    if request["from"]["name"]
        .as_str()
        .is_some_and(|n| n.contains([';', ',']))
    {
        violations.push("a from name with ; or ,".to_owned());
    }
    log.lock().unwrap().violations.extend(violations);
}

fn take(request: &Value, log: &Mutex<Log>) {
    let content: Vec<String> = request["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["value"].as_str().map(str::to_owned))
        .collect();
    let personalizations = request["personalizations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut log = log.lock().unwrap();
    for p in &personalizations {
        // Every tag replaced by its value, in the subject and the content.
        let substitutions = p["substitutions"].as_object().cloned().unwrap_or_default();
        let apply = |text: &str| {
            substitutions
                .iter()
                .fold(text.to_owned(), |text, (tag, value)| {
                    text.replace(tag.as_str(), value.as_str().unwrap_or_default())
                })
        };
        log.accepted.push(Accepted {
            at: SystemTime::now(),
            to: p["to"][0]["email"].as_str().unwrap_or_default().to_owned(),
            subject: apply(p["subject"].as_str().unwrap_or_default()),
            content: content.iter().map(|c| apply(c)).collect(),
            personalizations: personalizations.len(),
        });
    }
}

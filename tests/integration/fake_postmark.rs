//! A Postmark on loopback for the tests: `POST /email/batch` checked against what Postmark
//! documents (`tests/conformance/README.md`: the fields, at most 500 messages, 50 MB, the
//! token header), answering one result per message in request order as Postmark does,
//! and recording what each recipient would receive.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::wire::{Head, Loopback};

/// The fields of a batch message Postmark documents; anything else is a violation.
const FIELDS: [&str; 15] = [
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Tag",
    "HtmlBody",
    "TextBody",
    "ReplyTo",
    "Metadata",
    "Headers",
    "TrackOpens",
    "TrackLinks",
    "Attachments",
    "MessageStream",
];

/// How the fake answers. `times` counts requests from the start.
#[derive(Debug, Clone)]
pub enum Scenario {
    Accept,
    /// `ErrorCode` 300 for each message whose `To` contains this; the rest accepted.
    RejectSome(&'static str),
    TooManyRequests {
        times: usize,
    },
    ServerErrors {
        times: usize,
    },
    /// Takes the whole request, then closes without answering.
    CutAfterBody {
        times: usize,
    },
    Unauthorized,
}

/// One message the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `List-Unsubscribe`, as given.
    pub unsubscribe: Option<String>,
    /// How many messages the request carried.
    pub in_call: usize,
}

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub accepted: Vec<Accepted>,
    pub violations: Vec<String>,
    pub tokens: Vec<String>,
}

pub struct FakePostmark {
    server: Loopback,
    log: Arc<Mutex<Log>>,
}

impl FakePostmark {
    pub fn start(scenario: Scenario) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        let server =
            Loopback::start(move |stream| serve(stream, scenario.clone(), Arc::clone(&shared)));
        Self { server, log }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

async fn serve(stream: TcpStream, scenario: Scenario, log: Arc<Mutex<Log>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(head) = Head::read(&mut stream).await else {
            return;
        };
        let header = |name: &str| head.header(name);
        let length = head.length();
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let number = {
            let mut log = log.lock().unwrap();
            log.requests += 1;
            log.tokens
                .push(header("x-postmark-server-token").unwrap_or_default());
            if head.request_line() != Some("POST /email/batch HTTP/1.1") {
                log.violations
                    .push(format!("request line {:?}", head.request_line()));
            }
            if header("accept").as_deref() != Some("application/json") {
                log.violations
                    .push("no Accept: application/json".to_owned());
            }
            log.requests
        };
        let messages = check(&body, &log);
        let (status, payload) = match scenario {
            Scenario::Unauthorized => (
                "401 Unauthorized",
                json!({"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid."}),
            ),
            Scenario::TooManyRequests { times } if number <= times => (
                "429 Too Many Requests",
                json!({"ErrorCode": 429, "Message": "Rate limit exceeded"}),
            ),
            Scenario::ServerErrors { times } if number <= times => (
                "500 Internal Server Error",
                json!({"ErrorCode": 500, "Message": "Internal server error"}),
            ),
            _ => ("200 OK", answer(&messages, &scenario, number, &log)),
        };
        if matches!(scenario, Scenario::CutAfterBody { times } if number <= times) {
            return;
        }
        let payload = payload.to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
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

/// The messages of a request, every documented rule checked.
fn check(body: &[u8], log: &Mutex<Log>) -> Vec<Value> {
    let mut violations = Vec::new();
    if body.len() > 50 * 1024 * 1024 {
        violations.push("over 50 MB".to_owned());
    }
    let messages = if let Ok(Value::Array(messages)) = serde_json::from_slice::<Value>(body) {
        messages
    } else {
        violations.push("the body is not a JSON array".to_owned());
        Vec::new()
    };
    if messages.is_empty() || messages.len() > 500 {
        violations.push(format!("{} messages in one call", messages.len()));
    }
    for message in &messages {
        let Some(fields) = message.as_object() else {
            violations.push("a message that is not an object".to_owned());
            continue;
        };
        for key in fields.keys() {
            if !FIELDS.contains(&key.as_str()) {
                violations.push(format!("unknown field {key}"));
            }
        }
        let text = |key: &str| message[key].as_str();
        let to = text("To").unwrap_or_default();
        if to.contains([',', ';']) || to.matches('@').count() != 1 {
            violations.push(format!("To is not one address: {to}"));
        }
        if text("From").is_none() || text("Subject").is_none() || text("MessageStream").is_none() {
            violations.push("From, Subject or MessageStream missing".to_owned());
        }
        if text("HtmlBody").is_none() && text("TextBody").is_none() {
            violations.push("neither HtmlBody nor TextBody".to_owned());
        }
        for cc in ["Cc", "Bcc"] {
            if fields.contains_key(cc) {
                violations.push(format!("{cc} set"));
            }
        }
        if let Some(headers) = fields.get("Headers") {
            let well_formed = headers.as_array().is_some_and(|hs| {
                hs.iter()
                    .all(|h| h["Name"].is_string() && h["Value"].is_string())
            });
            if !well_formed {
                violations.push("Headers is not a list of {Name, Value}".to_owned());
            }
        }
    }
    log.lock().unwrap().violations.extend(violations);
    messages
}

/// Postmark's answer: one result per message, in request order; accepted ones recorded.
fn answer(messages: &[Value], scenario: &Scenario, number: usize, log: &Mutex<Log>) -> Value {
    let mut log = log.lock().unwrap();
    let results: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let to = m["To"].as_str().unwrap_or_default().to_owned();
            if matches!(scenario, Scenario::RejectSome(part) if to.contains(part)) {
                return json!({"ErrorCode": 300, "Message": "Invalid 'To' address.", "To": to});
            }
            let text = |key: &str| m[key].as_str().unwrap_or_default().to_owned();
            let unsubscribe = m["Headers"].as_array().and_then(|hs| {
                hs.iter()
                    .find(|h| h["Name"] == "List-Unsubscribe")
                    .and_then(|h| h["Value"].as_str().map(str::to_owned))
            });
            log.accepted.push(Accepted {
                to: to.clone(),
                subject: text("Subject"),
                text: text("TextBody"),
                html: text("HtmlBody"),
                unsubscribe,
                in_call: messages.len(),
            });
            json!({"ErrorCode": 0, "Message": "OK", "MessageID": format!("pm-{number}-{i}"), "To": to})
        })
        .collect();
    Value::Array(results)
}

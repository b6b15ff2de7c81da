//! A Mailgun on loopback for the tests: `POST /v3/{domain}/messages`, a multipart form
//! turned into the JSON object of `tests/conformance/mailgun-messages.schema.json` and
//! validated against it, basic auth `api:KEY`, and what the schema cannot say checked as
//! Mailgun documents it (`tests/conformance/README.md`).
//!
//! It delivers as Mailgun does: with `recipient-variables`, one message per `to`, each
//! `%recipient.NAME%` (and `%recipient%`) in subject, text, html and `h:` headers filled
//! from that recipient's entry; without them, one message whose `To:` shows every address,
//! which it records as a violation as well as a delivery.

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::wire::{Head, Loopback};

pub const DOMAIN: &str = "mg.example.com";

/// How the fake answers. `times` counts requests from the start.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    Accept,
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

/// One message as its recipient gets it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub to: String,
    /// What the `To:` header shows.
    pub to_header: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `List-Unsubscribe`, filled in.
    pub unsubscribe: Option<String>,
    /// How many recipients the call carried.
    pub in_call: usize,
}

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub delivered: Vec<Delivered>,
    pub violations: Vec<String>,
    /// The API keys the requests carried.
    pub keys: Vec<String>,
    /// Whether each request carried `recipient-variables`.
    pub with_variables: Vec<bool>,
}

/// Mailgun's published form: its validator, and its fields by name.
struct Schema {
    validator: jsonschema::Validator,
    properties: Value,
}

pub struct FakeMailgun {
    server: Loopback,
    log: Arc<Mutex<Log>>,
}

impl FakeMailgun {
    pub fn start(scenario: Scenario) -> Self {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/conformance/mailgun-messages.schema.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let schema = Arc::new(Schema {
            validator: jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("the published schema compiles"),
            properties: schema["definitions"]
                ["POST-v3-domain_name-messages-multipart-form-data-RequestBody"]["properties"]
                .clone(),
        });
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        let server = Loopback::start(move |stream| {
            serve(stream, scenario, Arc::clone(&shared), Arc::clone(&schema))
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

async fn serve(stream: TcpStream, scenario: Scenario, log: Arc<Mutex<Log>>, schema: Arc<Schema>) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(head) = Head::read(&mut stream).await else {
            return;
        };
        let mut body = vec![0; head.length()];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let key = head.header("authorization").and_then(|a| {
            let encoded = a.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(decoded)
                .ok()?
                .strip_prefix("api:")
                .map(str::to_owned)
        });
        let number = {
            let mut log = log.lock().unwrap();
            log.requests += 1;
            log.keys.push(key.clone().unwrap_or_default());
            let expected = format!("POST /v3/{DOMAIN}/messages HTTP/1.1");
            if head.request_line() != Some(expected.as_str()) {
                log.violations
                    .push(format!("request line {:?}", head.request_line()));
            }
            log.requests
        };
        let boundary = head
            .header("content-type")
            .and_then(|t| Some(t.split_once("boundary=")?.1.trim_matches('"').to_owned()));
        let (status, payload) = match scenario {
            _ if key.is_none() => ("401 Unauthorized", "Forbidden".to_owned()),
            Scenario::Unauthorized => ("401 Unauthorized", "Forbidden".to_owned()),
            Scenario::TooManyRequests { times } if number <= times => (
                "429 Too Many Requests",
                json!({"message": format!("Domain {DOMAIN} is not allowed to send: account-requests-per-sec limit exceeded, try again after 1 seconds")}).to_string(),
            ),
            Scenario::ServerErrors { times } if number <= times => (
                "500 Internal Server Error",
                json!({"message": "Internal Server Error"}).to_string(),
            ),
            _ => {
                let fields = boundary
                    .as_deref()
                    .and_then(|b| parse_form(&body, b))
                    .unwrap_or_default();
                match deliver(&fields, &schema, &log) {
                    Ok(()) => (
                        "200 OK",
                        json!({"id": format!("<{number}.fake@{DOMAIN}>"), "message": "Queued. Thank you."}).to_string(),
                    ),
                    Err(message) => ("400 Bad Request", json!({ "message": message }).to_string()),
                }
            }
        };
        if matches!(scenario, Scenario::CutAfterBody { times } if number <= times) {
            return;
        }
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

/// The fields of a `multipart/form-data` body, in order; `None` when it is malformed.
fn parse_form(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(body).ok()?;
    let delimiter = format!("--{boundary}");
    let mut parts = body.split(delimiter.as_str());
    if !parts.next()?.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    for part in parts {
        if part.starts_with("--") {
            return Some(fields);
        }
        let part = part.strip_prefix("\r\n")?.strip_suffix("\r\n")?;
        let (headers, value) = part.split_once("\r\n\r\n")?;
        let name = headers
            .split("\r\n")
            .find_map(|h| h.strip_prefix("Content-Disposition: form-data; name=\""))?
            .strip_suffix('"')?;
        fields.push((name.to_owned(), value.to_owned()));
    }
    None
}

/// Checks a call as Mailgun would and delivers it; `Err` is Mailgun's 400 message.
fn deliver(fields: &[(String, String)], schema: &Schema, log: &Mutex<Log>) -> Result<(), String> {
    let mut log = log.lock().unwrap();
    let object = as_object(fields, schema, &mut log.violations);
    let all = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let to = all("to");
    if object.get("from").is_none() || to.is_empty() || object.get("subject").is_none() {
        log.violations
            .push("from, to or subject missing".to_owned());
        return Err("from, to or subject parameter is missing".to_owned());
    }
    if object.get("text").is_none() && object.get("html").is_none() {
        log.violations.push("neither text nor html".to_owned());
        return Err(
            "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"
                .to_owned(),
        );
    }
    if to.len() > 1000 {
        log.violations
            .push(format!("{} recipients in one call", to.len()));
        return Err("Too many recipients".to_owned());
    }
    let options: usize = fields
        .iter()
        .filter(|(n, _)| n.starts_with("o:") || n.starts_with("h:") || n.starts_with("v:"))
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if options > 16 * 1024 {
        log.violations.push(format!("{options} bytes of options"));
        return Err(
            "Send options (parameters starting with o:, h:, or v:) are limited to 16KB total"
                .to_owned(),
        );
    }
    for address in &to {
        if address.contains([',', ';']) || address.matches('@').count() != 1 {
            log.violations
                .push(format!("`to` is not one address: {address}"));
        }
    }
    let variables = all("recipient-variables");
    log.with_variables.push(!variables.is_empty());
    let Some(variables) = variables.first() else {
        if to.len() > 1 {
            log.violations.push(format!(
                "{} `to` without recipient-variables: each copy shows every address",
                to.len()
            ));
        }
        // Mailgun sends one message with every address in `To:`.
        let to_header = to.join(", ");
        for address in &to {
            let copy = copy(fields, address, &to_header, &Map::new(), &mut Vec::new());
            log.delivered.push(copy);
        }
        return Ok(());
    };
    let Ok(Value::Object(variables)) = serde_json::from_str::<Value>(variables) else {
        log.violations
            .push("recipient-variables is not a JSON object".to_owned());
        return Err("recipient-variables parameter is not a valid JSON".to_owned());
    };
    let mut delivered = Vec::new();
    let mut undefined = Vec::new();
    for address in &to {
        let Some(Value::Object(own)) = variables.get(*address) else {
            log.violations
                .push(format!("{address} has no entry in recipient-variables"));
            continue;
        };
        delivered.push(copy(fields, address, address, own, &mut undefined));
    }
    for name in undefined {
        log.violations.push(format!(
            "%recipient.{name}% has no value for some recipient"
        ));
    }
    log.delivered.extend(delivered);
    Ok(())
}

/// The message `address` gets from a call of `fields`, filled in from `own`.
fn copy(
    fields: &[(String, String)],
    address: &str,
    to_header: &str,
    own: &Map<String, Value>,
    undefined: &mut Vec<String>,
) -> Delivered {
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let mut fill = |name: &str| field(name).map(|text| personalize(text, address, own, undefined));
    Delivered {
        to: address.to_owned(),
        to_header: to_header.to_owned(),
        subject: fill("subject").unwrap_or_default(),
        text: fill("text").unwrap_or_default(),
        html: fill("html").unwrap_or_default(),
        unsubscribe: fill("h:List-Unsubscribe"),
        in_call: fields.iter().filter(|(n, _)| n == "to").count(),
    }
}

/// The form as the schema's JSON object: fields the schema types as arrays collect their
/// repeats; any other field given twice, or one the schema does not know (beyond `h:` and
/// `v:` options), is a violation, and so is whatever the schema refuses.
fn as_object(
    fields: &[(String, String)],
    schema: &Schema,
    violations: &mut Vec<String>,
) -> Map<String, Value> {
    let properties = &schema.properties;
    let mut object = Map::new();
    for (name, value) in fields {
        let known = properties.get(name);
        if known.is_none() && !name.starts_with("h:") && !name.starts_with("v:") {
            violations.push(format!("unknown field {name}"));
        }
        if known.is_some_and(|p| p["type"] == "array") {
            object
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .unwrap()
                .push(Value::String(value.clone()));
        } else if object
            .insert(name.clone(), Value::String(value.clone()))
            .is_some()
        {
            violations.push(format!("{name} given twice"));
        }
    }
    let object = Value::Object(object);
    for error in schema.validator.iter_errors(&object) {
        violations.push(format!("schema: {error} at {}", error.instance_path));
    }
    let Value::Object(object) = object else {
        unreachable!()
    };
    object
}

/// `text` as Mailgun sends it to `address`: `%recipient%` is the address, each
/// `%recipient.NAME%` that recipient's value; names with no value are noted.
fn personalize(
    text: &str,
    address: &str,
    own: &Map<String, Value>,
    undefined: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("%recipient") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "%recipient".len()..];
        if let Some(after) = after.strip_prefix('%') {
            out.push_str(address);
            rest = after;
            continue;
        }
        let name = after.strip_prefix('.').and_then(|a| {
            let end = a.find('%')?;
            let name = &a[..end];
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                .then_some(name)
        });
        if let Some(name) = name {
            match own.get(name) {
                Some(Value::String(value)) => out.push_str(value),
                Some(value) => out.push_str(&value.to_string()),
                None => {
                    undefined.push(name.to_owned());
                    out.push_str("%recipient");
                    out.push_str(&after[..name.len() + 2]);
                }
            }
            rest = &after[name.len() + 2..];
        } else {
            out.push_str("%recipient");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

//! `plan --against`: the store's summary from wherever it is: a `herald watch --listen`
//! over HTTP (with the read token), or a state folder, read directly or, while another
//! herald holds it, through its socket. Each way gives the same `Summary`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Exit;
use crate::serve::socket::{self, Answer, Request};
use crate::serve::summary::READ_TOKEN_ENV;
use crate::store::{Store, StoreError, Summary};

/// How long the service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer read: a suppression list of about five million addresses.
const LARGEST: usize = 512 << 20;

/// Where the store is.
#[derive(Debug, Clone)]
pub enum Source {
    Service(String),
    Folder(PathBuf),
}

impl Source {
    pub fn parse(text: &str) -> Self {
        if text.starts_with("http://") || text.starts_with("https://") {
            Self::Service(text.trim_end_matches('/').to_owned())
        } else {
            Self::Folder(PathBuf::from(text))
        }
    }
}

/// The user name and password a URL may hold before its host (`https://user:pw@host`).
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')?;
    Some((start, start + at))
}

impl std::fmt::Display for Source {
    /// A URL's user name and password are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Service(url) => match userinfo(url) {
                Some((start, at)) => write!(f, "{}***{}", &url[..start], &url[at..]),
                None => f.write_str(url),
            },
            Self::Folder(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why there is no summary, and the exit that goes with it: 2 for what the user must
/// change (a token, a folder), 1 for what may pass (the service unreachable, a store error).
#[derive(Debug)]
pub struct Unread {
    pub exit: Exit,
    pub message: String,
}

pub fn refused(message: impl std::fmt::Display) -> Unread {
    Unread {
        exit: Exit::Refused,
        message: message.to_string(),
    }
}

pub fn failed(message: impl std::fmt::Display) -> Unread {
    Unread {
        exit: Exit::Failed,
        message: message.to_string(),
    }
}

/// The summary of the store at `source`, or why there is none.
pub fn summary(source: &Source) -> Result<Summary, Unread> {
    match source {
        Source::Service(url) => from_service(url),
        Source::Folder(path) => from_folder(path),
    }
}

fn from_service(url: &str) -> Result<Summary, Unread> {
    ask(&Asked {
        endpoint: format!("{url}/summary"),
        env: READ_TOKEN_ENV,
        flag: format!("--against {}", Source::Service(url.to_owned())),
        what: "summary",
        token: "read token",
    })
}

/// One endpoint of a `herald watch --listen` that wants a bearer token, and how to name it.
pub struct Asked<'a> {
    pub endpoint: String,
    /// The variable holding the token.
    pub env: &'a str,
    /// The flag that named the service, for the message when the token is missing.
    pub flag: String,
    /// What it serves ("summary"), and what its token is called ("read token").
    pub what: &'a str,
    pub token: &'a str,
}

/// `GET` the endpoint with the token in its variable, read as JSON: 2 (`Exit::Refused`) for
/// what the user must change (the token missing or refused, a service without the
/// endpoint), 1 for what may pass (unreachable, a 5xx, an answer cut or unreadable).
pub fn ask<T: serde::de::DeserializeOwned>(asked: &Asked<'_>) -> Result<T, Unread> {
    let Asked {
        endpoint,
        env,
        flag,
        what,
        token: name,
    } = asked;
    let Some(token) = crate::secret::from_env(env) else {
        return Err(refused(format_args!(
            "`{flag}` needs the service's {name} in {env}; nothing was read"
        )));
    };
    if userinfo(endpoint).is_some() {
        return Err(refused(format_args!(
            "`{flag}` holds a user name or password in the URL; herald authenticates with the {name} in \
             {env} alone: take them out; nothing was read"
        )));
    }
    if token.expose().chars().any(char::is_control) {
        return Err(refused(format_args!(
            "the {name} in {env} holds a line break or another control character, which no HTTP \
             header can carry; nothing was read"
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(endpoint)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| chain(&e))?;
        let status = response.status();
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
            if body.len() + chunk.len() > LARGEST {
                return Err(format!("its answer is over {} MiB", LARGEST >> 20));
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        Ok::<_, String>((status, body))
    });
    let (status, body) =
        answer.map_err(|error| failed(format_args!("cannot ask {endpoint}: {error}")))?;
    let said = || body.trim().chars().take(200).collect::<String>();
    match status.as_u16() {
        200 => serde_json::from_str(&body).map_err(|error| {
            failed(format_args!(
                "{endpoint} answered what herald cannot read as a {what}: {error}"
            ))
        }),
        401 | 403 => Err(refused(format_args!(
            "{endpoint} refused the {name} in {env} ({}: {}); nothing was read",
            status.as_u16(),
            said()
        ))),
        // 503 is what a herald answers without the variable set ("... is not served"); any
        // other 503 (a proxy, a service starting) may pass.
        503 if !body.contains("is not served") => {
            Err(failed(format_args!("{endpoint} answered 503: {}", said())))
        }
        404 | 503 => Err(refused(format_args!(
            "{endpoint} does not serve the {what} ({}: {}): is it a `herald watch --listen` with {env} set?",
            status.as_u16(),
            said()
        ))),
        code => Err(failed(format_args!(
            "{endpoint} answered {code}: {}",
            said()
        ))),
    }
}

fn from_folder(path: &Path) -> Result<Summary, Unread> {
    match Store::open_existing(path) {
        Ok(Some(store)) => store.summary().map_err(failed),
        Ok(None) => Err(refused(format_args!(
            "`--against {}`: there is no state store there; nothing was read",
            path.display()
        ))),
        Err(locked @ StoreError::Locked { .. }) => match socket::ask(path, &Request::Summary) {
            Ok(Answer::Ok(json)) => serde_json::from_value(json)
                .map_err(|error| failed(format_args!("an answer herald cannot read: {error}"))),
            Ok(Answer::Refused(message)) => Err(refused(message)),
            Ok(Answer::Failed(message)) => Err(failed(message)),
            Err(error) => Err(refused(format_args!("{locked}; {error}"))),
        },
        Err(error) => Err(refused(error)),
    }
}

/// An error with its causes (reqwest's own says only "error sending request"): `a: b: c`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

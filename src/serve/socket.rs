//! The state store's socket: how another herald process reads a store this one holds.
//!
//! sled lets one process open a store. While `apply` or `watch` holds it, `herald status`
//! (and `suppressions list`, and `plan --against` the folder) connect to `herald.sock` in the state folder, send one JSON
//! request on a line, and read one JSON answer on a line. The answer is built by the same
//! code that would read the store directly, so it is the same answer.
//!
//! # Guarantees
//! - The socket is readable and writable by the store's owner only (mode 0600, in a
//!   folder herald creates with mode 0700). Nothing is ever served on a TCP port here.
//! - The socket is removed when the process that serves it lets go of the store; a socket
//!   left by a killed process is replaced by the next one that opens the store.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

use crate::status::Query;
use crate::store::Store;

pub const FILE: &str = crate::store::SOCKET_FILE;
/// A request line larger than this is refused.
const MAX_REQUEST: usize = 64 * 1024;

/// What another process may ask.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Status(Query),
    /// The store's suppression list.
    Suppressions,
    /// Suppress an address (a normalised one) for every campaign.
    Suppress {
        address: String,
        reason: String,
    },
    /// Take an address off the list.
    Unsuppress {
        address: String,
    },
    /// What `plan --against` needs of the store (`Store::summary`).
    Summary,
}

/// The answer: the JSON the command would print, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(serde_json::Value),
    /// Refused as the command itself would refuse (exit 2), with its message.
    Refused(String),
    /// Failed as the command itself would fail (exit 1), with its message.
    Failed(String),
}

/// Answers one request from the store.
pub fn answer(store: &Store, request: &Request) -> Answer {
    match request {
        Request::Status(query) => match crate::status::collect(store, query) {
            Ok(statuses) => Answer::Ok(serde_json::json!({ "campaigns": statuses })),
            Err(error @ crate::status::StatusError::Unknown { .. }) => {
                Answer::Refused(error.to_string())
            }
            Err(error) => Answer::Failed(error.to_string()),
        },
        Request::Suppressions => Answer::Ok(crate::status::suppressions(store)),
        Request::Summary => match store.summary() {
            Ok(summary) => Answer::Ok(serde_json::to_value(summary).expect("a summary serializes")),
            Err(error) => Answer::Failed(error.to_string()),
        },
        Request::Suppress { address, reason } => {
            let suppression = crate::store::Suppression::new(reason, None);
            match store.suppress(address, &suppression) {
                Ok(added) => Answer::Ok(serde_json::json!({ "added": added })),
                Err(error) => Answer::Failed(error.to_string()),
            }
        }
        Request::Unsuppress { address } => match store.unsuppress(address) {
            Ok(removed) => Answer::Ok(serde_json::json!({ "removed": removed })),
            Err(error) => Answer::Failed(error.to_string()),
        },
    }
}

/// The socket being served; removes its file when dropped.
pub struct Served {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves the store's socket on the current runtime. A path too long for a socket, or a
/// folder that refuses it, costs only the socket: a warning, and `status` cannot ask.
pub fn serve(store: Store) -> Option<Served> {
    let path = store.path().join(FILE);
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot serve the status socket");
            return None;
        }
    };
    if let Err(error) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), %error, "cannot restrict the status socket");
        let _ = std::fs::remove_file(&path);
        return None;
    }
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST as u64);
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = match serde_json::from_str::<Request>(&line) {
                    Ok(request) => tokio::task::spawn_blocking(move || answer(&store, &request))
                        .await
                        .unwrap_or_else(|_| Answer::Failed("the answer failed".to_owned())),
                    Err(error) => {
                        Answer::Refused(format!("not a request herald understands: {error}"))
                    }
                };
                let mut text = serde_json::to_vec(&answer).expect("an answer serializes");
                text.push(b'\n');
                let _ = write.write_all(&text).await;
            });
        }
    });
    Some(Served { path, task })
}

/// Why another process could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("cannot ask the herald process that holds the state store {}: {reason}", path.display())]
pub struct AskError {
    path: PathBuf,
    reason: String,
}

/// Asks the process holding the store at `state` (from a process without a runtime).
pub fn ask(state: &Path, request: &Request) -> Result<Answer, AskError> {
    let fail = |reason: String| AskError {
        path: state.to_owned(),
        reason,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(state.join(FILE))
        .map_err(|e| fail(format!("no answer on its socket ({e})")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| fail(e.to_string()))?;
    let mut line = serde_json::to_vec(request).expect("a request serializes");
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| fail(e.to_string()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| fail(format!("an answer herald cannot read ({e})")))
}

//! Whether a transport can be used now: a circuit breaker per transport, shared by every
//! campaign that sends through it.
//!
//! A call that the transport could not take at all is the evidence: its tries (each a
//! refused connection, a 5xx, a 429, an SMTP 4xx, up to `call::MAX_TRIES` over several
//! seconds of backoff) all failed, or one answer said no try would do (its TLS is not
//! trusted, the key is refused, the relay refuses herald or the sender, the disk is
//! full). Then the transport is down: no new
//! call starts, the calls waiting to retry give up at once, and their recipients stay
//! due. A blip shorter than a call's retries never takes it down. A run that finds its
//! transport down sends one call at a time until one gets through.
//!
//! # Guarantees
//! - A transport that is down charges nobody: its recipients stay due.
//! - Since when it is down is the first failure of the streak, kept until a call gets
//!   through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::manifest::{Settings, Transport};
use crate::store::{TransportDown, timestamp};
use crate::transport::Cause;

/// A transport that is down: since when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Down {
    pub transport: String,
    pub cause: Cause,
    /// What the last failed call was told, for people.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
    /// Unix seconds of the first failure of the streak; RFC 3339 in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub since: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde hands it over by reference"
)]
fn rfc3339<S: serde::Serializer>(seconds: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp(*seconds))
}

impl std::fmt::Display for Down {
    /// `transport `x` is down since ...: why; what to do`, for people.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "transport `{}` is down since {}: {}; {}",
            self.transport,
            timestamp(self.since),
            self.reason,
            self.fix
        )
    }
}

impl From<Down> for TransportDown {
    fn from(down: Down) -> Self {
        Self {
            transport: down.transport,
            cause: down.cause.as_str().to_owned(),
            reason: down.reason,
            since: down.since,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    down: Option<Down>,
}

/// One transport's breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    name: String,
    state: Mutex<State>,
}

impl Breaker {
    /// The transport's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A call got through: the transport is up, the streak is over.
    pub fn succeeded(&self) {
        let mut state = self.state.lock().expect("the breaker lock");
        *state = State::default();
    }

    /// A call could not be made for `cause`: the transport is down. The first failure
    /// says since when and why, until a call gets through.
    pub fn failed(&self, cause: Cause, reason: &str, now: u64, fix: &str) {
        let mut state = self.state.lock().expect("the breaker lock");
        state.down.get_or_insert_with(|| Down {
            transport: self.name.clone(),
            cause,
            reason: reason.to_owned(),
            fix: fix.to_owned(),
            since: now,
        });
    }

    /// Why the transport is down, if it is.
    pub fn down(&self) -> Option<Down> {
        self.state.lock().expect("the breaker lock").down.clone()
    }
}

/// What an operator does about a transport that is down for `cause`.
pub fn remedy(cause: Cause, transport: &Transport) -> String {
    match (cause, &transport.settings) {
        (Cause::Network | Cause::Busy, _) => {
            "herald tries again by itself; nothing to fix unless it lasts".to_owned()
        }
        (Cause::Tls, _) => "if its certificate is signed by a CA of your own, give the CA in \
             `tls_ca_file` (or set `tls_trust: system` to trust the machine's store)"
            .to_owned(),
        (Cause::Credentials, Settings::Smtp { credentials, .. }) => match credentials {
            Some((user, password)) => {
                format!("check the user name in `{user}` and the password in `{password}`")
            }
            None => "the relay wants credentials: set `username_env` and `password_env`".to_owned(),
        },
        (
            Cause::Credentials,
            Settings::SendGrid { api_key_env, .. } | Settings::Mailgun { api_key_env, .. },
        ) => format!("check the key in `{api_key_env}` (set, current, and allowed to send)"),
        (
            Cause::Credentials,
            Settings::Postmark {
                server_token_env, ..
            },
        ) => {
            format!("check the server token in `{server_token_env}`")
        }
        (Cause::Credentials | Cause::Storage, Settings::Outbox { dir }) => {
            format!("make `{}` writable, with space to spare", dir.display())
        }
        (Cause::Storage, _) => "free space where it writes".to_owned(),
        (Cause::Client, _) => {
            "check that the relay takes connections from this machine (its client \
             access rules) with `tls` as set here"
                .to_owned()
        }
        (Cause::Sender, _) => "check that the relay lets these credentials, or this machine, send \
             from the campaign's `from` address"
            .to_owned(),
    }
}

/// Every transport's breaker, by name. Cheap to clone; clones share the breakers.
#[derive(Clone, Default)]
pub struct Breakers(Arc<Mutex<HashMap<String, Arc<Breaker>>>>);

impl Breakers {
    pub fn get(&self, transport: &str) -> Arc<Breaker> {
        let mut all = self.0.lock().expect("the breakers lock");
        Arc::clone(all.entry(transport.to_owned()).or_insert_with(|| {
            Arc::new(Breaker {
                name: transport.to_owned(),
                state: Mutex::default(),
            })
        }))
    }

    /// The transports that are down now.
    pub fn down(&self) -> Vec<Down> {
        let all = self.0.lock().expect("the breakers lock");
        let mut down: Vec<Down> = all.values().filter_map(|b| b.down()).collect();
        down.sort_by(|a, b| a.transport.cmp(&b.transport));
        down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_could_not_be_made_takes_it_down_until_one_gets_through() {
        let breakers = Breakers::default();
        let breaker = breakers.get("sendgrid");
        assert_eq!(breakers.down(), []);
        breaker.failed(Cause::Network, "refused", 100, "wait");
        breaker.failed(Cause::Busy, "503", 160, "wait");
        assert_eq!(
            breakers.down(),
            [Down {
                transport: "sendgrid".into(),
                cause: Cause::Network,
                reason: "refused".into(),
                fix: "wait".into(),
                since: 100,
            }],
            "the first failure says since when and why"
        );
        breaker.succeeded();
        assert_eq!(breaker.down(), None);
        breaker.failed(Cause::Credentials, "401", 300, "check the key");
        assert_eq!(
            breaker.down().unwrap().since,
            300,
            "a new outage, a new since"
        );
    }
}

//! Transports: where envelopes go. Each takes a batch and answers one outcome per envelope.
//!
//! # Guarantees
//! - An `Envelope` holds exactly one recipient by construction, and `check` runs right
//!   before every call: a batch with an address twice, or an address that could name
//!   more than one mailbox, is refused whole and nothing of it is sent.

mod http;
mod mailgun;
mod outbox;
mod postmark;
mod sendgrid;
mod shaped;
mod smtp;
mod tags;

use std::collections::HashSet;
use std::time::Duration;

pub use mailgun::Mailgun;
pub use outbox::Outbox;
pub use postmark::Postmark;
pub use sendgrid::SendGrid;
pub use shaped::{Message, Shaped};
pub use smtp::Smtp;
pub use tags::{Syntax, Tags};

use crate::manifest::TransportKind;
use crate::manifest::{Campaign, Transport as TransportManifest};

/// One message to one recipient.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The normalised address: the recipient's key in the state store.
    pub key: String,
    /// The address as the audience writes it.
    pub to: String,
    pub message_id: String,
    /// Which attempt for this recipient this is, from 1.
    pub attempt: u32,
    pub message: Message,
    /// Under a schedule, when the recipient's window (or the campaign) closes, and when
    /// it opens next: a call made at or after the close does not carry them.
    pub slot: Option<crate::manifest::Slot>,
}

/// What became of one envelope. Only an answer about the recipient fails them; an answer
/// about the call or the environment (`Unavailable`) changes nobody's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `id` is the provider's message id (the file name, for the outbox).
    Sent { id: String },
    /// Refused for good, and for this recipient: an SMTP 5xx to its RCPT or DATA, a
    /// provider's error about this message or address.
    Failed { reason: String },
    /// It may or may not have gone out; never re-sent unless the user asks.
    Uncertain { reason: String },
    /// Refused by herald's own check right before the call (nothing left); due again.
    NotSent { reason: String },
    /// Not accepted now, worth trying again: after `after` when the provider says, else
    /// after a backoff.
    Retry {
        after: Option<Duration>,
        reason: String,
        /// What it means if it lasts past every retry.
        cause: Cause,
    },
    /// The call could not be made, and nothing of it was taken: the transport, or what
    /// herald needs to reach it, is at fault. Recipients stay due.
    Unavailable { cause: Cause, reason: String },
}

impl Outcome {
    /// The outcome's name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Failed { .. } => "failed",
            Self::Uncertain { .. } => "uncertain",
            Self::NotSent { .. } => "not_sent",
            Self::Retry { .. } => "retry",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

/// Why a transport could not take a call: what is at fault, and so what fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// It cannot be reached: refused or reset connections, DNS, no route.
    Network,
    /// Its TLS cannot be trusted or agreed on: a certificate no trusted CA signed, say.
    Tls,
    /// It refuses herald's credentials (HTTP 401 or 403, SMTP 535).
    Credentials,
    /// It refuses herald as a client: an SMTP 5xx to the greeting, EHLO or STARTTLS.
    Client,
    /// It refuses the sender: an SMTP 5xx to `MAIL FROM`.
    Sender,
    /// It answered, but would take nothing however often it was asked (5xx, 429 or an
    /// SMTP 4xx, after every retry).
    Busy,
    /// Where it writes cannot be written (the outbox's disk).
    Storage,
}

impl Cause {
    /// Whether waiting a little is the likely cure, rather than a change of settings.
    pub fn passes(self) -> bool {
        matches!(self, Self::Network | Self::Busy | Self::Storage)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Tls => "tls",
            Self::Credentials => "credentials",
            Self::Client => "client",
            Self::Sender => "sender",
            Self::Busy => "busy",
            Self::Storage => "storage",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("isolation check failed, batch refused: {0}")]
    Isolation(String),
    #[error(
        "transport `{transport}`: the environment variable `{variable}` is not set; export the secret there (it is never read from a manifest)"
    )]
    MissingSecret { transport: String, variable: String },
    #[error(
        "transport `{transport}`: the secret in `{variable}` is shorter than {} characters; herald refuses keys it could not keep out of its logs",
        crate::secret::SHORTEST
    )]
    ShortSecret { transport: String, variable: String },
    #[error("transport `{transport}`: {reason}")]
    Setup { transport: String, reason: String },
}

/// What every transport does: make one call for a batch of envelopes and answer one
/// outcome per envelope. Implementations may answer in any order; each outcome travels
/// with its envelope.
pub trait Deliver: Sync {
    fn deliver(
        &self,
        batch: Vec<Envelope>,
    ) -> impl std::future::Future<Output = Vec<(Envelope, Outcome)>> + Send;
}

/// A campaign's way out: the transport its manifest names.
pub enum Transport {
    Outbox(Outbox),
    SendGrid(SendGrid),
    Mailgun(Mailgun),
    Postmark(Postmark),
    Smtp(Smtp),
}

impl Transport {
    pub fn new(manifest: &TransportManifest, campaign: &Campaign) -> Result<Self, TransportError> {
        match manifest.kind {
            TransportKind::Outbox => Ok(Self::Outbox(Outbox::new(manifest, campaign))),
            TransportKind::Sendgrid => SendGrid::new(manifest, campaign).map(Self::SendGrid),
            TransportKind::Mailgun => Mailgun::new(manifest, campaign).map(Self::Mailgun),
            TransportKind::Postmark => Postmark::new(manifest, campaign).map(Self::Postmark),
            TransportKind::Smtp => Smtp::new(manifest, campaign).map(Self::Smtp),
        }
    }
}

impl Transport {
    /// The tags that prove and compact messages for a transport that shares content
    /// across a call; `None` for transports that take whole messages.
    pub fn tags(&self) -> Option<Tags> {
        match self {
            Self::SendGrid(sendgrid) => Some(sendgrid.tags().clone()),
            Self::Mailgun(mailgun) => Some(mailgun.tags().clone()),
            Self::Outbox(_) | Self::Postmark(_) | Self::Smtp(_) => None,
        }
    }
}

impl Deliver for Transport {
    /// Checks the call again, right before it is made, then makes it. A call that fails
    /// the check is refused whole: every envelope comes back `NotSent`.
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        if let Err(error) = check(&batch) {
            return not_sent(batch, &error.to_string());
        }
        match self {
            Self::Outbox(outbox) => outbox.deliver(batch).await,
            Self::SendGrid(sendgrid) => sendgrid.deliver(batch).await,
            Self::Mailgun(mailgun) => mailgun.deliver(batch).await,
            Self::Postmark(postmark) => postmark.deliver(batch).await,
            Self::Smtp(smtp) => smtp.deliver(batch).await,
        }
    }
}

/// Every envelope of a batch that was refused whole, before any of it could leave.
fn not_sent(batch: Vec<Envelope>, reason: &str) -> Vec<(Envelope, Outcome)> {
    each(
        batch,
        &Outcome::NotSent {
            reason: reason.to_owned(),
        },
    )
}

/// The one outcome of a call that answers for all its envelopes alike.
fn each(batch: Vec<Envelope>, outcome: &Outcome) -> Vec<(Envelope, Outcome)> {
    batch.into_iter().map(|e| (e, outcome.clone())).collect()
}

/// Whether `error` (or what it wraps) is a TLS handshake that failed, as rustls says:
/// sometimes inside an `io::Error`, whose `source` skips the error it holds.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(cause) = next {
        let held = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        let rustls = |e: &(dyn std::error::Error + 'static)| e.is::<rustls::Error>();
        if rustls(cause) || held.is_some_and(|e| rustls(e)) {
            return true;
        }
        next = cause.source();
    }
    false
}

/// Refuses a batch that could put two recipients in one envelope or one address twice.
pub fn check(batch: &[Envelope]) -> Result<(), TransportError> {
    let mut seen = HashSet::with_capacity(batch.len());
    for envelope in batch {
        if envelope.to.contains([',', ';', '<', '>', '\r', '\n', ' ']) {
            return Err(TransportError::Isolation(format!(
                "`{}` is not a single bare address",
                envelope.to
            )));
        }
        if crate::audience::normalize(&envelope.to) != envelope.key {
            return Err(TransportError::Isolation(format!(
                "envelope for `{}` carries `{}`",
                envelope.key, envelope.to
            )));
        }
        if !seen.insert(envelope.key.as_str()) {
            return Err(TransportError::Isolation(format!(
                "`{}` appears twice in one batch",
                envelope.key
            )));
        }
    }
    Ok(())
}

/// The key in the environment variable `variable`, for transport `transport`.
pub fn key(transport: &str, variable: &str) -> Result<crate::secret::Secret, TransportError> {
    let secret =
        crate::secret::from_env(variable).ok_or_else(|| TransportError::MissingSecret {
            transport: transport.to_owned(),
            variable: variable.to_owned(),
        })?;
    if secret.is_short() {
        return Err(TransportError::ShortSecret {
            transport: transport.to_owned(),
            variable: variable.to_owned(),
        });
    }
    Ok(secret)
}

/// A stable, unique Message-ID for one recipient of one campaign revision:
/// `<campaign.rREVISION.HASH@sender-domain>`.
pub fn message_id(campaign: &str, revision: u32, key: &str, from: &str) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!(
        "<{campaign}.r{revision}.{}@{domain}>",
        crate::digest::short(key)
    )
}

/// The campaign named in a `Message-ID` that `message_id` made, if it is one.
pub fn campaign_of(message_id: &str) -> Option<&str> {
    let id = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
    let (local, _) = id.rsplit_once('@')?;
    let mut parts = local.rsplitn(3, '.');
    let (hash, revision, campaign) = (parts.next()?, parts.next()?, parts.next()?);
    let is_revision = revision
        .strip_prefix('r')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (hash.len() == 16
        && crate::digest::unhex(hash).is_some()
        && is_revision
        && !campaign.is_empty())
    .then_some(campaign)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Rendered;

    fn envelope(to: &str) -> Envelope {
        Envelope {
            key: crate::audience::normalize(to),
            to: to.to_owned(),
            message_id: message_id("launch", 1, to, "news@example.com"),
            attempt: 1,
            slot: None,
            message: Message::Whole(Rendered {
                subject: String::new(),
                html: None,
                text: None,
                locale: "en".into(),
                reached: crate::render::Reached::Catalog,
                catalog: "en".into(),
                fallback: false,
                unsubscribe_url: None,
                personal: None,
            }),
        }
    }

    #[test]
    fn a_batch_naming_anyone_twice_or_two_in_one_is_refused() {
        assert!(check(&[envelope("a@example.com"), envelope("b@example.com")]).is_ok());
        let twice = check(&[envelope("a@example.com"), envelope("A@example.com ")]);
        assert!(twice.is_err());
        let two_in_one = check(&[envelope("a@example.com, b@example.com")]);
        assert_eq!(
            two_in_one.unwrap_err().to_string(),
            "isolation check failed, batch refused: `a@example.com, b@example.com` is not a single bare address"
        );
    }

    #[test]
    fn the_campaign_comes_back_from_a_message_id() {
        let id = message_id("spring-launch", 3, "a@example.com", "news@example.com");
        assert_eq!(campaign_of(&id), Some("spring-launch"));
        assert_eq!(campaign_of("<custom-message-ID>"), None);
        assert_eq!(campaign_of("<a.b.c@example.com>"), None);
        assert_eq!(
            campaign_of("00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"),
            None
        );
    }

    #[test]
    fn message_ids_differ_per_recipient_and_revision() {
        let a = message_id("launch", 1, "a@example.com", "news@example.com");
        assert_eq!(a.len(), "<launch.r1.@example.com>".len() + 16);
        assert_ne!(
            a,
            message_id("launch", 1, "b@example.com", "news@example.com")
        );
        assert_ne!(
            a,
            message_id("launch", 2, "a@example.com", "news@example.com")
        );
    }
}

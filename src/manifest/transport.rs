//! A transport whose every rule holds: its kind, its limits, and the settings its kind
//! needs, each present and checked.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostic::{Diagnostic, Location, Problem};
use super::model::{self, Tls, TlsTrust, TransportKind};
use super::rate::Rate;
use super::source::Loaded;

/// SendGrid's API, unless a transport names another endpoint.
pub const SENDGRID_ENDPOINT: &str = "https://api.sendgrid.com";
pub const POSTMARK_ENDPOINT: &str = "https://api.postmarkapp.com";
/// Mailgun's US region; EU senders name `https://api.eu.mailgun.net`.
pub const MAILGUN_ENDPOINT: &str = "https://api.mailgun.net";

/// A transport with its defaults filled in.
#[derive(Debug, Clone)]
pub struct Transport {
    pub name: String,
    pub location: Location,
    pub kind: TransportKind,
    /// The ceiling shared by every campaign using this transport.
    pub rate: Option<Rate>,
    /// Calls in flight at once.
    pub concurrency: NonZeroU32,
    /// How long one call may take before its outcome is uncertain.
    pub timeout: Duration,
    /// What this kind of transport needs, each setting checked and present.
    pub settings: Settings,
    /// The spec as written, for `Campaign::spec_digest` only.
    spec: model::TransportSpec,
}

/// Each kind's own settings.
#[derive(Debug, Clone)]
pub enum Settings {
    /// The folder each campaign's messages go under.
    Outbox { dir: PathBuf },
    SendGrid {
        /// The API base URL.
        endpoint: String,
        /// The environment variable holding the key.
        api_key_env: String,
        /// The environment variable holding the Event Webhook's verification key.
        events_key_env: Option<String>,
    },
    Mailgun {
        /// The API base URL.
        endpoint: String,
        /// The sending domain.
        domain: String,
        /// The environment variable holding the key.
        api_key_env: String,
        /// The environment variable holding the webhook signing key.
        events_key_env: Option<String>,
    },
    Postmark {
        /// The API base URL.
        endpoint: String,
        /// The environment variable holding the server token.
        server_token_env: String,
        message_stream: String,
        /// The environment variables holding the user name and password Postmark's
        /// webhooks must present (HTTP basic auth), if its events are taken.
        events_credentials_env: Option<(String, String)>,
    },
    Smtp {
        host: String,
        port: u16,
        tls: Tls,
        /// The environment variables holding the user name and password, if any.
        credentials: Option<(String, String)>,
        /// A PEM file of CAs trusted besides `trust`, resolved against the manifest.
        ca_file: Option<PathBuf>,
        trust: TlsTrust,
        /// The SNS topic Amazon SES publishes this relay's bounces and complaints to, if
        /// its events are taken.
        events_topic_arn: Option<String>,
    },
}

impl Transport {
    /// The typed transport of a document every rule was checked on.
    pub(super) fn typed(loaded: Loaded<model::TransportDoc>) -> Result<Self, Box<Diagnostic>> {
        let spec = &loaded.doc.spec;
        let kind = spec.kind;
        let rate = spec
            .rate
            .as_ref()
            .map(|rate| Rate::parse(rate).map_err(|(_, p)| Box::new(loaded.at_key("spec.rate", p))))
            .transpose()?;
        let concurrency = spec
            .concurrency
            .unwrap_or_else(|| kind.default_concurrency());
        let concurrency = NonZeroU32::new(concurrency)
            .filter(|c| c.get() <= 256)
            .ok_or_else(|| {
                Box::new(loaded.at_value(
                    "spec.concurrency",
                    Problem::ConcurrencyOutOfRange { value: concurrency },
                ))
            })?;
        let timeout = Duration::from_secs(u64::from(spec.timeout_seconds.unwrap_or(30).max(1)));
        let settings = settings(&loaded)?;
        Ok(Self {
            name: loaded.doc.metadata.name.clone(),
            location: loaded.location(),
            kind,
            rate,
            concurrency,
            timeout,
            settings,
            spec: loaded.doc.spec,
        })
    }

    pub(super) fn spec(&self) -> &model::TransportSpec {
        &self.spec
    }
}

/// What the transport's kind needs, each setting present, defaults filled in.
fn settings(loaded: &Loaded<model::TransportDoc>) -> Result<Settings, Box<Diagnostic>> {
    let spec = &loaded.doc.spec;
    let kind = spec.kind;
    let dir = loaded.dir();
    let required = |key: &str| {
        Box::new(loaded.at_key(
            &format!("spec.{key}"),
            Problem::TransportFieldRequired {
                kind: kind.as_str(),
            },
        ))
    };
    Ok(match kind {
        TransportKind::Outbox => Settings::Outbox {
            dir: spec
                .dir
                .as_ref()
                .map(|p| dir.join(p))
                .ok_or_else(|| required("dir"))?,
        },
        TransportKind::Sendgrid => Settings::SendGrid {
            endpoint: spec
                .endpoint
                .clone()
                .unwrap_or_else(|| SENDGRID_ENDPOINT.to_owned()),
            api_key_env: spec
                .api_key_env
                .clone()
                .ok_or_else(|| required("api_key_env"))?,
            events_key_env: spec.events.as_ref().and_then(|e| e.public_key_env.clone()),
        },
        TransportKind::Mailgun => Settings::Mailgun {
            endpoint: spec
                .endpoint
                .clone()
                .unwrap_or_else(|| MAILGUN_ENDPOINT.to_owned()),
            domain: spec.domain.clone().ok_or_else(|| required("domain"))?,
            api_key_env: spec
                .api_key_env
                .clone()
                .ok_or_else(|| required("api_key_env"))?,
            events_key_env: spec.events.as_ref().and_then(|e| e.signing_key_env.clone()),
        },
        TransportKind::Postmark => Settings::Postmark {
            endpoint: spec
                .endpoint
                .clone()
                .unwrap_or_else(|| POSTMARK_ENDPOINT.to_owned()),
            server_token_env: spec
                .server_token_env
                .clone()
                .ok_or_else(|| required("server_token_env"))?,
            message_stream: spec
                .message_stream
                .clone()
                .unwrap_or_else(|| "broadcast".to_owned()),
            events_credentials_env: spec
                .events
                .as_ref()
                .and_then(|e| e.username_env.clone().zip(e.password_env.clone())),
        },
        TransportKind::Smtp => {
            let tls = spec.tls.unwrap_or(Tls::Starttls);
            Settings::Smtp {
                host: spec.host.clone().ok_or_else(|| required("host"))?,
                port: spec.port.unwrap_or(match tls {
                    Tls::None => 25,
                    Tls::Starttls => 587,
                    Tls::Tls => 465,
                }),
                tls,
                credentials: spec.username_env.clone().zip(spec.password_env.clone()),
                ca_file: spec.tls_ca_file.as_ref().map(|p| dir.join(p)),
                trust: spec.tls_trust.unwrap_or_default(),
                events_topic_arn: spec.events.as_ref().and_then(|e| e.topic_arn.clone()),
            }
        }
    })
}

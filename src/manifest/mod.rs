//! Manifests: the `herald/v1` format, loading with file/line diagnostics, and validation.
//!
//! `load` is the only way in. It reports every problem it finds across all files in one
//! go, and succeeds only when there is none, so later stages work with `Manifests` whose
//! rules are known to hold and whose relative paths are already resolved.

mod diagnostic;
mod error;
mod locate;
pub mod model;
mod policy;
mod rate;
pub mod schema;
mod source;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Location, Problem};
pub use error::LoadError;
pub use source::{Documents, Loaded};
pub use validate::is_locale;

use std::num::NonZeroU32;
use std::time::Duration;

use model::{CampaignSpec, Halt, Rollout, TransportKind, TransportSpec};
pub use rate::Rate;

/// SendGrid's API, unless a transport names another endpoint.
pub const SENDGRID_ENDPOINT: &str = "https://api.sendgrid.com";
pub const POSTMARK_ENDPOINT: &str = "https://api.postmarkapp.com";
/// Mailgun's US region; EU senders name `https://api.eu.mailgun.net`.
pub const MAILGUN_ENDPOINT: &str = "https://api.mailgun.net";

/// A validated set of campaigns and the transports they use.
#[derive(Debug)]
pub struct Manifests {
    pub files: Vec<PathBuf>,
    pub campaigns: Vec<Campaign>,
    pub transports: Vec<Transport>,
}

/// A campaign whose every rule holds, with its paths resolved, its defaults filled in and
/// its transport at hand.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub location: Location,
    /// Where `spec.revision` is written (or `spec`, when it is left at its default).
    pub revision_at: Location,
    /// Where `spec.unsubscribe.url` is written (or `spec`).
    pub unsubscribe_at: Location,
    /// The spec with every relative path resolved against the manifest's folder.
    pub spec: CampaignSpec,
    pub rate: Rate,
    /// Recipients per provider call at most, within the transport's limit.
    pub batch_size: NonZeroU32,
    pub halt: Halt,
    pub rollout: Rollout,
    /// The transport `spec.transport` names.
    pub transport: Transport,
}

/// A transport whose every rule holds, with its defaults filled in.
#[derive(Debug, Clone)]
pub struct Transport {
    pub name: String,
    pub location: Location,
    /// The spec with `dir` resolved against the manifest's folder.
    pub spec: TransportSpec,
    pub kind: TransportKind,
    /// The ceiling shared by every campaign using this transport.
    pub rate: Option<Rate>,
    /// Calls in flight at once.
    pub concurrency: NonZeroU32,
    /// How long one call may take before its outcome is uncertain.
    pub timeout: Duration,
    /// What this kind of transport needs, each setting checked and present.
    pub settings: Settings,
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
    },
    Smtp {
        host: String,
        port: u16,
        tls: model::Tls,
        /// The environment variables holding the user name and password, if any.
        credentials: Option<(String, String)>,
    },
}

impl Manifests {
    pub fn transport(&self, name: &str) -> Option<&Transport> {
        self.transports.iter().find(|t| t.name == name)
    }
}

/// Loads and validates the manifest file at `path`, or every manifest directly in the folder.
pub fn load(path: &Path) -> Result<Manifests, LoadError> {
    let files = source::discover(path)?;
    let mut diagnostics = Vec::new();
    let documents = source::read(&files, &mut diagnostics)?;
    for campaign in &documents.campaigns {
        validate::campaign(campaign, &mut diagnostics);
    }
    for transport in &documents.transports {
        validate::transport(transport, &mut diagnostics);
    }
    validate::unique_names(&documents, &mut diagnostics);
    policy::check(&documents, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(invalid(diagnostics));
    }
    // Every rule was checked above; building the typed values checks the ones they carry
    // once more, so a value that passed reaches the rest of herald only in typed form.
    let transports: Vec<Transport> = documents
        .transports
        .into_iter()
        .filter_map(|t| typed(resolve_transport(t), &mut diagnostics))
        .collect();
    let campaigns: Vec<Campaign> = documents
        .campaigns
        .into_iter()
        .filter_map(|c| typed(resolve_campaign(c, &transports), &mut diagnostics))
        .collect();
    if !diagnostics.is_empty() {
        return Err(invalid(diagnostics));
    }
    Ok(Manifests {
        files,
        campaigns,
        transports,
    })
}

/// Every problem found, sorted by file and position.
fn invalid(mut diagnostics: Vec<Diagnostic>) -> LoadError {
    diagnostics.sort_by(|a, b| {
        (&a.location.file, a.location.line, a.location.column).cmp(&(
            &b.location.file,
            b.location.line,
            b.location.column,
        ))
    });
    LoadError::Invalid(diagnostics)
}

fn typed<T>(built: Result<T, Box<Diagnostic>>, diagnostics: &mut Vec<Diagnostic>) -> Option<T> {
    built.map_err(|d| diagnostics.push(*d)).ok()
}

fn resolve_campaign(
    loaded: Loaded<model::CampaignDoc>,
    transports: &[Transport],
) -> Result<Campaign, Box<Diagnostic>> {
    let dir = loaded.dir().to_owned();
    let location = loaded.location();
    let revision_at = Location::new(loaded.file.clone(), loaded.index.value("spec.revision"));
    let unsubscribe_at = Location::new(
        loaded.file.clone(),
        loaded.index.value("spec.unsubscribe.url"),
    );
    let spec = &loaded.doc.spec;
    let rate = match &spec.rate {
        Some(rate) => {
            Rate::parse(rate).map_err(|(_, p)| Box::new(loaded.at_key("spec.rate", p)))?
        }
        None => return Err(Box::new(loaded.at_key("spec.rate", Problem::RateMissing))),
    };
    let transport = transports
        .iter()
        .find(|t| t.name == spec.transport)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = transports.iter().map(|t| t.name.as_str()).collect();
            Box::new(loaded.at_value(
                "spec.transport",
                Problem::TransportUnknown {
                    name: spec.transport.clone(),
                    known: crate::text::List::and_ticked(&known).to_string(),
                },
            ))
        })?;
    let max = transport.kind.max_batch();
    let batch_size = spec
        .batch
        .as_ref()
        .and_then(|b| b.size)
        .filter(|size| *size <= max)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            Box::new(loaded.at_key("spec.batch.size", Problem::BatchSizeMissing { max }))
        })?;
    let halt = spec.halt.clone().unwrap_or_default();
    let rollout = spec.rollout.clone().unwrap_or_default();
    let mut spec = loaded.doc.spec;
    let template = &mut spec.template;
    template.html = template.html.take().map(|p| dir.join(p));
    template.text = template.text.take().map(|p| dir.join(p));
    spec.locales.catalog = dir.join(&spec.locales.catalog);
    spec.audience.file = dir.join(&spec.audience.file);
    for path in &mut spec.audience.suppress {
        *path = dir.join(&*path);
    }
    for path in &mut spec.allow_outside {
        *path = dir.join(&*path);
    }
    Ok(Campaign {
        name: loaded.doc.metadata.name,
        location,
        revision_at,
        unsubscribe_at,
        spec,
        rate,
        batch_size,
        halt,
        rollout,
        transport,
    })
}

fn resolve_transport(loaded: Loaded<model::TransportDoc>) -> Result<Transport, Box<Diagnostic>> {
    let dir = loaded.dir().to_owned();
    let location = loaded.location();
    let kind = loaded.doc.spec.kind;
    let rate = loaded
        .doc
        .spec
        .rate
        .as_ref()
        .map(|rate| Rate::parse(rate).map_err(|(_, p)| Box::new(loaded.at_key("spec.rate", p))))
        .transpose()?;
    let concurrency = loaded
        .doc
        .spec
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
    let timeout = Duration::from_secs(u64::from(
        loaded.doc.spec.timeout_seconds.unwrap_or(30).max(1),
    ));
    let settings = settings(&loaded)?;
    let mut spec = loaded.doc.spec;
    spec.dir = spec.dir.take().map(|p| dir.join(p));
    Ok(Transport {
        name: loaded.doc.metadata.name,
        location,
        spec,
        kind,
        rate,
        concurrency,
        timeout,
        settings,
    })
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
        },
        TransportKind::Smtp => {
            let tls = spec.tls.unwrap_or(model::Tls::Starttls);
            Settings::Smtp {
                host: spec.host.clone().ok_or_else(|| required("host"))?,
                port: spec.port.unwrap_or(match tls {
                    model::Tls::None => 25,
                    model::Tls::Starttls => 587,
                    model::Tls::Tls => 465,
                }),
                tls,
                credentials: spec.username_env.clone().zip(spec.password_env.clone()),
            }
        }
    })
}

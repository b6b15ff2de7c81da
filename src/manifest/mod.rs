//! Manifests: the `herald/v1` format, loading with file/line diagnostics, and validation.
//!
//! `load` is the only way in. It reports every problem it finds across all files in one
//! go, and succeeds only when there is none, so later stages work with `Manifests` whose
//! rules are known to hold and whose relative paths are already resolved.

mod diagnostic;
mod error;
mod locate;
pub mod model;
mod source;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Location, Problem};
pub use error::LoadError;
pub use source::{Documents, Loaded};
pub use validate::is_locale;

use model::{CampaignSpec, Rate, TransportSpec};

/// A validated set of campaigns and the transports they use.
#[derive(Debug)]
pub struct Manifests {
    pub files: Vec<PathBuf>,
    pub campaigns: Vec<Campaign>,
    pub transports: Vec<Transport>,
}

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
    /// The declared rate, in messages per second.
    pub rate: f64,
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct Transport {
    pub name: String,
    pub location: Location,
    /// The spec with `dir` resolved against the manifest's folder.
    pub spec: TransportSpec,
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
    crate::policy::check(&documents, &mut diagnostics);

    if !diagnostics.is_empty() {
        diagnostics.sort_by(|a, b| {
            (&a.location.file, a.location.line, a.location.column).cmp(&(
                &b.location.file,
                b.location.line,
                b.location.column,
            ))
        });
        return Err(LoadError::Invalid(diagnostics));
    }
    Ok(Manifests {
        files,
        campaigns: documents
            .campaigns
            .into_iter()
            .map(resolve_campaign)
            .collect(),
        transports: documents
            .transports
            .into_iter()
            .map(resolve_transport)
            .collect(),
    })
}

fn resolve_campaign(loaded: Loaded<model::CampaignDoc>) -> Campaign {
    let dir = loaded.dir().to_owned();
    let location = loaded.location();
    let revision_at = Location::new(loaded.file.clone(), loaded.index.value("spec.revision"));
    let unsubscribe_at = Location::new(
        loaded.file.clone(),
        loaded.index.value("spec.unsubscribe.url"),
    );
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
    let rate = per_second(
        spec.rate
            .expect("validated: every campaign declares a rate"),
    );
    let batch_size = spec.batch.as_ref().and_then(|b| b.size);
    let batch_size = batch_size.expect("validated: every campaign declares a batch size");
    Campaign {
        name: loaded.doc.metadata.name,
        location,
        revision_at,
        unsubscribe_at,
        spec,
        rate,
        batch_size,
    }
}

fn resolve_transport(loaded: Loaded<model::TransportDoc>) -> Transport {
    let dir = loaded.dir().to_owned();
    let location = loaded.location();
    let mut spec = loaded.doc.spec;
    spec.dir = spec.dir.take().map(|p| dir.join(p));
    Transport {
        name: loaded.doc.metadata.name,
        location,
        spec,
    }
}

/// A validated rate in messages per second.
pub fn per_second(rate: Rate) -> f64 {
    rate.per_second
        .or(rate.per_minute.map(|m| m / 60.0))
        .or(rate.per_hour.map(|h| h / 3600.0))
        .unwrap_or(0.0)
}

//! Manifests: the `herald/v1` format, loading with file/line diagnostics, and validation.
//!
//! `load` is the only way in. It reports every problem it finds across all files in one
//! go, and succeeds only when there is none, so later stages work with `Manifests` whose
//! rules are known to hold and whose relative paths are already resolved.

mod campaign;
mod diagnostic;
mod error;
mod locate;
mod model;
mod policy;
mod rate;
mod schedule;
pub mod schema;
mod source;
mod transport;
mod validate;

use std::path::{Path, PathBuf};

pub use campaign::{
    Audience, Campaign, Locales, MOST_REVISION, MOST_SHARDS, Revision, Template, Unsubscribe,
};
pub use diagnostic::{Diagnostic, Location, Problem};
pub use error::LoadError;
pub use model::{
    Address, Halt, OnInvalid, OnUnknown, Resend, Rollout, Stage, Tls, TlsTrust, TransportKind,
};
pub use rate::Rate;
pub use schedule::{Moment, Schedule, Slot, Window, instant, zone};
pub use transport::{MAILGUN_ENDPOINT, POSTMARK_ENDPOINT, SENDGRID_ENDPOINT, Settings, Transport};

use source::{Documents, Loaded};

/// A validated set of campaigns and the transports they use.
#[derive(Debug)]
pub struct Manifests {
    pub files: Vec<PathBuf>,
    pub campaigns: Vec<Campaign>,
    pub transports: Vec<Transport>,
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
    // Documents with keys taken out are judged too; what a missing key explains is not
    // a second problem.
    for campaign in &documents.campaigns {
        let mut found = Vec::new();
        validate::campaign(campaign, &mut found);
        diagnostics.extend(found.into_iter().filter(|d| !campaign.explains(d)));
    }
    for transport in &documents.transports {
        let mut found = Vec::new();
        validate::transport(transport, &mut found);
        diagnostics.extend(found.into_iter().filter(|d| !transport.explains(d)));
    }
    policy::unique_names(&documents, &mut diagnostics);
    policy::check(&documents, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(invalid(diagnostics));
    }
    // Every rule was checked above; building the typed values checks the ones they carry
    // once more, so a value that passed reaches the rest of herald only in typed form.
    let transports: Vec<Transport> = documents
        .transports
        .into_iter()
        .filter_map(|t| typed(Transport::typed(t), &mut diagnostics))
        .collect();
    let campaigns: Vec<Campaign> = documents
        .campaigns
        .into_iter()
        .filter_map(|c| typed(Campaign::typed(c, &transports), &mut diagnostics))
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

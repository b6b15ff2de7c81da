//! A campaign whose every rule holds: the typed facts the rest of herald reads. The
//! manifest as written stays in here; only what was checked leaves, each fact once.

use std::num::NonZeroU32;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::diagnostic::{Diagnostic, Location, Problem};
use super::model::{self, Address, Halt, OnInvalid, OnUnknown, Resend, Rollout, Stage};
use super::rate::Rate;
use super::schedule::Schedule;
use super::source::Loaded;
use super::transport::Transport;
use crate::audience::{Shard, SuppressList};
use crate::langtag::LanguageTag;

/// The highest revision a campaign may declare: the state store keeps it in 24 bits.
pub const MOST_REVISION: u32 = (1 << 24) - 1;
/// The most shards a campaign may have: more processes than any one provider account
/// takes, and far from the thousands a Kubernetes Indexed Job allows.
pub const MOST_SHARDS: u32 = 1024;

/// A campaign with its paths resolved against its manifest's folder, its defaults filled
/// in and its transport at hand.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    /// Where `metadata.name` is written.
    pub location: Location,
    /// The transport `spec.transport` names.
    pub transport: Transport,
    pub from: Address,
    pub reply_to: Option<Address>,
    pub template: Template,
    pub locales: Locales,
    pub audience: Audience,
    pub rate: Rate,
    /// Recipients per provider call at most, within the transport's limit.
    pub batch_size: NonZeroU32,
    pub unsubscribe: Option<Unsubscribe>,
    pub stage: Stage,
    pub rollout: Rollout,
    /// `true`: send nothing more.
    pub paused: bool,
    pub halt: Halt,
    /// `spec.schedule`: `None` sends everyone at once.
    pub schedule: Option<Schedule>,
    pub revision: Revision,
    /// Folders outside the manifest's own that its inputs may come from.
    pub allow_outside: Vec<PathBuf>,
    /// `spec.shards`: how many processes send it, each its own part of the audience.
    pub shards: NonZeroU32,
    /// The part of the audience this value stands for: `None`, all of it; else one shard,
    /// with `rate` and the transport's rate its share (see `for_shard`).
    pub shard: Option<Shard>,
    /// The spec as written, for `spec_digest` only.
    spec: model::CampaignSpec,
}

/// What the message is made of: the subject inline, the bodies as files.
#[derive(Debug, Clone)]
pub struct Template {
    pub subject: String,
    pub html: Option<PathBuf>,
    pub text: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Locales {
    /// The locale of recipients without one, and the last fallback for missing keys.
    pub default: String,
    /// The audience column holding each recipient's locale.
    pub field: String,
    /// Whether `spec.locales.field` is written: then the audience must have that column.
    /// Left at its default (`locale`), an audience without it sends everyone the default.
    pub field_declared: bool,
    /// The folder of `<locale>.yaml` catalogs.
    pub catalog: PathBuf,
    /// `locales.map`: other values of the column, lowercased, and the tag each stands for.
    pub map: Vec<(String, LanguageTag)>,
    pub on_unknown: OnUnknown,
}

#[derive(Debug, Clone)]
pub struct Audience {
    pub file: PathBuf,
    pub email_field: String,
    /// Lists of addresses never to send to.
    pub suppress: Vec<SuppressList>,
    pub on_invalid: OnInvalid,
}

#[derive(Debug, Clone)]
pub struct Unsubscribe {
    /// The inline template of the link; sees `unsubscribe_token`.
    pub url: String,
    /// Where `spec.unsubscribe.url` is written.
    pub at: Location,
}

#[derive(Debug, Clone)]
pub struct Revision {
    pub number: u32,
    /// `all`: those who got an earlier revision get this one too (a correction).
    pub resend: Resend,
    /// Where `spec.revision` is written (or `spec`, when it is left at its default).
    pub at: Location,
}

impl Revision {
    /// Whether this revision goes also to those who got an earlier one.
    pub fn resends(&self) -> bool {
        self.resend == Resend::All
    }
}

impl Campaign {
    /// The typed campaign of a document every rule was checked on, with `transports`
    /// at hand; the rules the types carry are checked once more, and fail as diagnostics.
    pub(super) fn typed(
        loaded: Loaded<model::CampaignDoc>,
        transports: &[Transport],
    ) -> Result<Self, Box<Diagnostic>> {
        let dir = loaded.dir().to_owned();
        let at = |key: &str| Location::new(loaded.file.clone(), loaded.index.value(key));
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
        Ok(Self {
            name: loaded.doc.metadata.name.clone(),
            location: loaded.location(),
            transport,
            from: spec.from.clone(),
            reply_to: spec.reply_to.clone(),
            template: Template {
                subject: spec.template.subject.clone(),
                html: spec.template.html.as_ref().map(|p| dir.join(p)),
                text: spec.template.text.as_ref().map(|p| dir.join(p)),
            },
            locales: Locales {
                default: spec.locales.default.clone(),
                field: spec.locales.field.clone(),
                field_declared: loaded.index.has("spec.locales.field"),
                catalog: dir.join(&spec.locales.catalog),
                map: locale_map(&loaded)?,
                on_unknown: spec.locales.on_unknown,
            },
            audience: Audience {
                file: dir.join(&spec.audience.file),
                email_field: spec.audience.email_field.clone(),
                suppress: spec
                    .audience
                    .suppress
                    .iter()
                    .map(|list| SuppressList {
                        file: dir.join(list.file()),
                        email_field: match list {
                            model::SuppressList::Path(_) => None,
                            model::SuppressList::File(file) => Some(file.email_field.clone()),
                        },
                    })
                    .collect(),
                on_invalid: spec.audience.on_invalid,
            },
            rate,
            batch_size,
            unsubscribe: spec.unsubscribe.as_ref().map(|u| Unsubscribe {
                url: u.url.clone(),
                at: at("spec.unsubscribe.url"),
            }),
            stage: spec.stage,
            rollout: spec.rollout.clone().unwrap_or_default(),
            paused: spec.paused,
            halt: spec.halt.clone().unwrap_or_default(),
            schedule: match &spec.schedule {
                Some(schedule) => Some(
                    super::validate::schedule(&loaded, schedule)
                        .map_err(|found| Box::new(found[0].clone()))?,
                ),
                None => None,
            },
            revision: Revision {
                number: spec.revision.number(),
                resend: spec.revision.resend(),
                at: at("spec.revision"),
            },
            allow_outside: spec.allow_outside.iter().map(|p| dir.join(p)).collect(),
            // Validated already: 1 to `MOST_SHARDS`.
            shards: spec
                .shards
                .and_then(NonZeroU32::new)
                .unwrap_or(NonZeroU32::MIN),
            shard: None,
            spec: loaded.doc.spec,
        })
    }

    /// The campaign as shard `index` (below `shards`) sends it: only the recipients that
    /// shard owns, at its share of the campaign's rate and of its transport's.
    #[must_use]
    pub fn for_shard(&self, index: u32) -> Self {
        let shard = Shard {
            index,
            count: self.shards,
        };
        let mut part = self.clone();
        part.shard = Some(shard);
        part.rate = self.rate.shared(self.shards);
        part.transport.rate = self.transport.rate.as_ref().map(|r| r.shared(self.shards));
        part
    }

    /// A digest of the campaign's manifest and its transport's, as loaded: comments and
    /// formatting do not count, every value does. (The files it reads are not in it.)
    pub fn spec_digest(&self) -> [u8; 32] {
        let written =
            serde_json::to_vec(&(&self.spec, self.transport.spec())).expect("a spec serializes");
        Sha256::digest(written).into()
    }
}

/// `locales.map`, its keys lowercased, each value read as a tag (validated already).
fn locale_map(
    loaded: &Loaded<model::CampaignDoc>,
) -> Result<Vec<(String, LanguageTag)>, Box<Diagnostic>> {
    let mut map = Vec::new();
    for (value, tag) in &loaded.doc.spec.locales.map {
        let tag = LanguageTag::parse(tag).map_err(|_| {
            Box::new(loaded.at_value(
                &format!("spec.locales.map.{value}"),
                Problem::LocaleInvalid {
                    value: tag.clone(),
                    reason: String::new(),
                },
            ))
        })?;
        map.push((value.trim().to_lowercase(), tag));
    }
    map.sort();
    Ok(map)
}

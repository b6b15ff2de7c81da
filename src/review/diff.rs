//! `herald diff`: what merging one set of manifests over another changes, per campaign.
//!
//! # Guarantees
//! - Both sides are loaded, validated and rendered as apply would (`manifest::load`,
//!   `render::Renderer`); only one sample recipient per locale is rendered, so a diff of a
//!   million recipients reads the audiences and renders a few dozen messages. (`plan`
//!   renders everyone; run it for that check.)
//! - No audience address is shown whole: examples and samples are masked.
//!
//! # Caveats
//! - A problem on one side of one campaign (a template that does not render, an audience
//!   that cannot be read) becomes a `refused` warning; the other campaigns are compared.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::audience::{self, AudienceDiff, Samples, Side, SuppressionDiff};
use super::fields::{self, FieldChange, Rooted};
use super::samples::{self, LocaleDiff};
use super::warning::{self, Warning};
use crate::manifest::{Campaign, Manifests, Stage};
use crate::reconcile::fingerprint;
use crate::render::Renderer;

/// One side of a diff: manifests and the folder they were loaded from.
#[derive(Clone, Copy)]
pub struct Tree<'a> {
    pub manifests: &'a Manifests,
    pub root: &'a Path,
}

/// The diff of two sets of manifests; serialized as `diff -o json` (docs/output.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub warnings: Vec<Warning>,
    pub campaigns: Vec<CampaignDiff>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

/// What changes in one campaign.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignDiff {
    pub name: String,
    pub change: Change,
    pub stage: Stage,
    /// The rate on the new side (the old one when removed), as declared: `50/s`.
    pub rate: String,
    /// Manifest fields whose value changes.
    pub fields: Vec<FieldChange>,
    /// Parts of the content (subject, sender, templates, catalogs) whose digest changes.
    pub content: Vec<String>,
    pub audience: Option<AudienceDiff>,
    pub suppression: Option<SuppressionDiff>,
    /// Locales whose sample message changes.
    pub locales: Vec<LocaleDiff>,
    /// Locales whose sample message stays the same.
    pub unchanged_locales: Vec<String>,
}

impl CampaignDiff {
    fn new(campaign: &Campaign, change: Change) -> Self {
        Self {
            name: campaign.name.clone(),
            change,
            stage: campaign.stage,
            rate: campaign.rate.to_string(),
            fields: Vec::new(),
            content: Vec::new(),
            audience: None,
            suppression: None,
            locales: Vec::new(),
            unchanged_locales: Vec::new(),
        }
    }
}

/// Fields whose change can change a rendered message besides the content's files.
const RENDERS: &[&str] = &[
    "spec.revision",
    "spec.unsubscribe.url",
    "spec.locales.default",
    "spec.locales.field",
    "spec.locales.catalog",
    "spec.locales.map",
    "spec.template.html",
    "spec.template.text",
];

/// Compares every campaign of `old` and `new` (or only `only`).
pub fn diff<'a>(old: Tree<'a>, new: Tree<'a>, only: Option<&str>) -> Diff {
    let names: BTreeSet<&str> = old
        .manifests
        .campaigns
        .iter()
        .chain(&new.manifests.campaigns)
        .map(|c| c.name.as_str())
        .filter(|name| only.is_none_or(|only| only == *name))
        .collect();
    let mut out = Diff::default();
    for name in names {
        let find = |manifests: &'a Manifests| manifests.campaigns.iter().find(|c| c.name == name);
        let diff = match (find(old.manifests), find(new.manifests)) {
            (Some(before), Some(after)) => changed(
                Rooted {
                    campaign: before,
                    root: old.root,
                },
                Rooted {
                    campaign: after,
                    root: new.root,
                },
                &mut out.warnings,
            ),
            (None, Some(after)) => added(
                Rooted {
                    campaign: after,
                    root: new.root,
                },
                &mut out.warnings,
            ),
            (Some(before), None) => {
                let mut diff = CampaignDiff::new(before, Change::Removed);
                diff.fields = fields::changes(
                    Some(Rooted {
                        campaign: before,
                        root: old.root,
                    }),
                    None,
                );
                diff
            }
            (None, None) => continue,
        };
        out.campaigns.push(diff);
    }
    out
}

fn refused(
    warnings: &mut Vec<Warning>,
    campaign: &str,
    side: &str,
    message: impl std::fmt::Display,
) {
    warnings.push(Warning::Refused {
        campaign: Some(campaign.to_owned()),
        message: format!("{side}: {message}"),
    });
}

fn changed(old: Rooted<'_>, new: Rooted<'_>, warnings: &mut Vec<Warning>) -> CampaignDiff {
    let (before, after) = (old.campaign, new.campaign);
    let name = after.name.as_str();
    let mut diff = CampaignDiff::new(after, Change::Unchanged);
    diff.fields = fields::changes(Some(old), Some(new));
    match (fingerprint::of(before), fingerprint::of(after)) {
        (Ok(a), Ok(b)) => diff.content = fingerprint::changed(&a, &b),
        (Err(error), _) => refused(warnings, name, "the old side", error),
        (_, Err(error)) => refused(warnings, name, "the new side", error),
    }
    if !diff.content.is_empty() && before.revision.number == after.revision.number {
        warnings.push(Warning::Unrevised {
            campaign: name.to_owned(),
            parts: diff.content.clone(),
            revision: after.revision.number,
        });
    }
    warnings.extend(warning::rate_jump(name, &before.rate, &after.rate));
    warnings.extend(warning::schedule_soon(after, crate::clock::now()));
    if after.stage == Stage::Full && before.stage != Stage::Full {
        warnings.push(Warning::StageToFull {
            campaign: name.to_owned(),
            from: Some(before.stage),
            seen_in: "the base branch",
        });
    }
    match audience::suppression(before, after) {
        Ok(s) if s.added + s.removed > 0 => diff.suppression = Some(s),
        Ok(_) => {}
        Err(error) => refused(warnings, name, "suppression lists", error),
    }

    let audience_same = before.audience.email_field == after.audience.email_field
        && same_file(&before.audience.file, &after.audience.file);
    let renders =
        !diff.content.is_empty() || diff.fields.iter().any(|f| RENDERS.contains(&f.field));
    if audience_same && !renders {
        diff.change = change_of(&diff);
        return diff;
    }
    let renderers = (Renderer::new(before), Renderer::new(after));
    let (old_renderer, new_renderer) = match renderers {
        (Ok(a), Ok(b)) => (a, b),
        (Err(error), _) => {
            refused(warnings, name, "the old side", error);
            diff.change = change_of(&diff);
            return diff;
        }
        (_, Err(error)) => {
            refused(warnings, name, "the new side", error);
            diff.change = change_of(&diff);
            return diff;
        }
    };
    let old_side = Side {
        campaign: before,
        renderer: &old_renderer,
    };
    let new_side = Side {
        campaign: after,
        renderer: &new_renderer,
    };
    let samples = if audience_same {
        audience::shared_samples(&old_side, &new_side)
    } else {
        audience::compare(&old_side, &new_side).map(|(audience, samples)| {
            diff.audience = Some(audience);
            samples
        })
    };
    match samples {
        Ok(samples) if renders => {
            compare_locales(&mut diff, &old_side, &new_side, &samples, warnings);
        }
        Ok(_) => {}
        Err(error) => refused(warnings, name, "audience", error),
    }
    diff.change = change_of(&diff);
    diff
}

fn compare_locales(
    diff: &mut CampaignDiff,
    old: &Side<'_>,
    new: &Side<'_>,
    samples: &Samples,
    warnings: &mut Vec<Warning>,
) {
    let locales: BTreeSet<&String> = samples.old.keys().chain(samples.new.keys()).collect();
    for locale in locales {
        let before = samples.old.get(locale).map(|r| (old, r));
        let after = samples.new.get(locale).map(|r| (new, r));
        match samples::compare(locale, before, after) {
            Ok(Some(changed)) => diff.locales.push(changed),
            Ok(None) => diff.unchanged_locales.push(locale.clone()),
            Err(error) => refused(warnings, &diff.name, locale, error),
        }
    }
}

fn added(new: Rooted<'_>, warnings: &mut Vec<Warning>) -> CampaignDiff {
    let after = new.campaign;
    let name = after.name.as_str();
    let mut diff = CampaignDiff::new(after, Change::Added);
    diff.fields = fields::changes(None, Some(new));
    warnings.extend(warning::schedule_soon(after, crate::clock::now()));
    if after.stage == Stage::Full {
        warnings.push(Warning::StageToFull {
            campaign: name.to_owned(),
            from: None,
            seen_in: "the base branch",
        });
    }
    let renderer = match Renderer::new(after) {
        Ok(renderer) => renderer,
        Err(error) => {
            refused(warnings, name, "the new side", error);
            return diff;
        }
    };
    let side = Side {
        campaign: after,
        renderer: &renderer,
    };
    match audience::samples_of(&side) {
        Ok((rows, samples)) => {
            diff.audience = Some(AudienceDiff {
                new: rows,
                added: rows.unique,
                ..AudienceDiff::default()
            });
            for (locale, recipient) in &samples {
                match samples::compare(locale, None, Some((&side, recipient))) {
                    Ok(Some(changed)) => diff.locales.push(changed),
                    Ok(None) => {}
                    Err(error) => refused(warnings, name, locale, error),
                }
            }
        }
        Err(error) => refused(warnings, name, "audience", error),
    }
    diff
}

fn change_of(diff: &CampaignDiff) -> Change {
    let nothing = diff.fields.is_empty()
        && diff.content.is_empty()
        && diff.audience.as_ref().is_none_or(|a| {
            a.added + a.removed + a.changed == 0
                && a.columns_added.is_empty()
                && a.columns_removed.is_empty()
        })
        && diff.suppression.is_none()
        && diff.locales.is_empty();
    if nothing {
        Change::Unchanged
    } else {
        Change::Changed
    }
}

/// Whether two files hold the same bytes (an unreadable one is taken as different).
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let same_length = match (fa.metadata(), fb.metadata()) {
        (Ok(ma), Ok(mb)) => ma.len() == mb.len(),
        _ => false,
    };
    if !same_length {
        return false;
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let (Ok(na), Ok(nb)) = (read_full(&mut ra, &mut ba), read_full(&mut rb, &mut bb)) else {
            return false;
        };
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

/// Fills `buffer` as far as the reader goes; how much it filled.
fn read_full(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

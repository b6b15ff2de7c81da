//! The rules of one campaign document.

use std::path::Path;

use super::inputs::Inputs;
use super::values::{name, rate, sender, single_line};
use crate::address;
use crate::langtag::LanguageTag;
use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::{CampaignDoc, Rollout, Stage, SuppressList};
use crate::manifest::source::Loaded;

pub fn campaign(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    name(loaded, &loaded.doc.metadata.name, out);
    sender(loaded, "spec.from", &spec.from, out);
    if let Some(reply_to) = &spec.reply_to {
        sender(loaded, "spec.reply_to", reply_to, out);
    }
    single_line(loaded, "spec.template.subject", &spec.template.subject, out);
    if let Some(unsubscribe) = &spec.unsubscribe {
        single_line(loaded, "spec.unsubscribe.url", &unsubscribe.url, out);
    }
    match &spec.rate {
        None => out.push(loaded.at_key("spec.rate", Problem::RateMissing)),
        Some(value) => rate(loaded, "spec.rate", value, out),
    }
    files(loaded, out);
    rollout(loaded, out);
    if let Some(halt) = &spec.halt {
        let value = halt.max_failure_rate;
        if !(value > 0.0 && value <= 1.0) {
            out.push(loaded.at_value(
                "spec.halt.max_failure_rate",
                Problem::FailureRateOutOfRange { value },
            ));
        }
    }
    if let Some(schedule) = &spec.schedule {
        if let Err(found) = super::schedule(loaded, schedule) {
            out.extend(found);
        }
    }
    if let Some(value) = spec
        .shards
        .filter(|n| !(1..=crate::manifest::MOST_SHARDS).contains(n))
    {
        out.push(loaded.at_value("spec.shards", Problem::ShardsOutOfRange { value }));
    }
    let number = spec.revision.number();
    if number == 0 || number > crate::manifest::MOST_REVISION {
        let key = if loaded.index.has("spec.revision.number") {
            "spec.revision.number"
        } else {
            "spec.revision"
        };
        let problem = if number == 0 {
            Problem::RevisionZero
        } else {
            Problem::RevisionTooLarge { value: number }
        };
        out.push(loaded.at_value(key, problem));
    }
}

fn files(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let inputs = Inputs::new(loaded, out);
    let template = &spec.template;
    if template.html.is_none() && template.text.is_none() {
        out.push(loaded.at_key("spec.template", Problem::TemplateBodyMissing));
    }
    for (key, path) in [
        ("spec.template.html", &template.html),
        ("spec.template.text", &template.text),
    ] {
        if let Some(path) = path {
            inputs.file(key, path, out);
        }
    }

    let locales = &spec.locales;
    let default = tag(loaded, "spec.locales.default", &locales.default, out);
    let folder = inputs.folder("spec.locales.catalog", &locales.catalog, out);
    if let Some(folder) = &folder {
        inputs.catalogs(folder, out);
        if let Some(default) = &default {
            if !has_catalog(folder, default.as_str()) {
                let problem = Problem::DefaultCatalogMissing {
                    locale: locales.default.clone(),
                    expected: folder.join(format!("{}.yaml", locales.default)),
                };
                out.push(loaded.at_value("spec.locales.default", problem));
            }
        }
    }
    let mut keys: Vec<(String, &str)> = Vec::new();
    for (value, locale) in &locales.map {
        let key = format!("spec.locales.map.{value}");
        let lower = value.trim().to_lowercase();
        if let Some((_, first)) = keys.iter().find(|(k, _)| *k == lower) {
            let line = loaded.index.key(&format!("spec.locales.map.{first}")).line;
            let problem = Problem::LocaleMapDuplicate {
                value: value.clone(),
                line,
            };
            out.push(loaded.at_key(&key, problem));
        }
        keys.push((lower, value));
        let (Some(tag), Some(folder)) = (tag(loaded, &key, locale, out), &folder) else {
            continue;
        };
        if !tag.chain().any(|candidate| has_catalog(folder, candidate)) {
            let problem = Problem::LocaleMapWithoutCatalog {
                value: tag.to_string(),
                folder: locales.catalog.clone(),
            };
            out.push(loaded.at_value(&key, problem));
        }
    }

    let audience = &spec.audience;
    let extension = audience.file.extension().and_then(|e| e.to_str());
    if matches!(extension, Some("csv" | "jsonl")) {
        inputs.file("spec.audience.file", &audience.file, out);
    } else {
        let value = audience.file.display().to_string();
        out.push(loaded.at_value("spec.audience.file", Problem::AudienceFormat { value }));
    }
    // The state store's own suppression reasons take a few of the sources.
    let most = crate::audience::MAX_SOURCES - 4;
    if audience.suppress.len() > most {
        let problem = Problem::TooManySuppressionLists {
            count: audience.suppress.len(),
            most,
        };
        out.push(loaded.at_key("spec.audience.suppress", problem));
    }
    for (i, list) in audience.suppress.iter().enumerate() {
        let (key, path) = match list {
            SuppressList::Path(path) => (format!("spec.audience.suppress[{i}]"), path),
            SuppressList::File(file) => (format!("spec.audience.suppress[{i}].file"), &file.file),
        };
        let extension = path.extension().and_then(|e| e.to_str());
        let value = path.display().to_string();
        match (extension, list) {
            (Some("txt"), SuppressList::File(_)) => {
                out.push(loaded.at_value(&key, Problem::SuppressionFieldFormat { value }));
            }
            (Some("csv" | "jsonl" | "txt"), _) => inputs.file(&key, path, out),
            _ => out.push(loaded.at_value(&key, Problem::SuppressionFormat { value })),
        }
    }
}

/// The language tag at `key`, or a diagnostic saying why it is none.
fn tag(
    loaded: &Loaded<CampaignDoc>,
    key: &str,
    value: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<LanguageTag> {
    match LanguageTag::parse(value) {
        Ok(tag) => Some(tag),
        Err(invalid) => {
            let reason = match invalid {
                crate::langtag::Invalid::Malformed => String::new(),
                other => format!(
                    ": {other} (IANA registry of {})",
                    crate::langtag::registry_date()
                ),
            };
            let problem = Problem::LocaleInvalid {
                value: value.to_owned(),
                reason,
            };
            out.push(loaded.at_value(key, problem));
            None
        }
    }
}

/// Whether `folder` has a catalog for `locale`, its name compared as a tag is (any case,
/// `_` for `-`).
fn has_catalog(folder: &Path, locale: &str) -> bool {
    crate::input::catalog_files(folder).is_ok_and(|files| {
        files.iter().any(|path| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|stem| stem.replace('_', "-").eq_ignore_ascii_case(locale))
        })
    })
}

fn rollout(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let none = Rollout::default();
    let rollout = spec.rollout.as_ref().unwrap_or(&none);
    for (i, seed) in rollout.seed.iter().enumerate() {
        if !address::is_valid(seed) {
            let problem = Problem::AddressInvalid {
                value: seed.escape_debug().to_string(),
            };
            out.push(loaded.at_value(&format!("spec.rollout.seed[{i}]"), problem));
        }
    }
    if let Some(value) = rollout.canary_percent {
        if !(value > 0.0 && value <= 100.0) {
            out.push(loaded.at_value(
                "spec.rollout.canary_percent",
                Problem::CanaryPercentOutOfRange { value },
            ));
        }
    }
    match spec.stage {
        Stage::Seed if rollout.seed.is_empty() => {
            out.push(loaded.at_value("spec.stage", Problem::SeedWithoutSeeds));
        }
        Stage::Canary if rollout.canary_percent.is_none() => {
            out.push(loaded.at_value("spec.stage", Problem::CanaryWithoutPercent));
        }
        _ => {}
    }
}

//! The rules of one campaign document.

use super::inputs::Inputs;
use super::syntax::is_locale;
use super::values::{name, rate, sender, single_line};
use crate::address;
use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::{CampaignDoc, Rollout, Stage};
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
    if spec.revision == 0 {
        out.push(loaded.at_value("spec.revision", Problem::RevisionZero));
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
    if !is_locale(&locales.default) {
        out.push(loaded.at_value(
            "spec.locales.default",
            Problem::LocaleInvalid {
                value: locales.default.clone(),
            },
        ));
    }
    if let Some(folder) = inputs.folder("spec.locales.catalog", &locales.catalog, out) {
        inputs.catalogs(&folder, out);
        if is_locale(&locales.default) {
            let expected = folder.join(format!("{}.yaml", locales.default));
            let alternative = folder.join(format!("{}.yml", locales.default));
            if !expected.is_file() && !alternative.is_file() {
                let problem = Problem::DefaultCatalogMissing {
                    locale: locales.default.clone(),
                    expected,
                };
                out.push(loaded.at_value("spec.locales.default", problem));
            }
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
    for (i, path) in audience.suppress.iter().enumerate() {
        let key = format!("spec.audience.suppress[{i}]");
        let extension = path.extension().and_then(|e| e.to_str());
        if matches!(extension, Some("csv" | "jsonl" | "txt")) {
            inputs.file(&key, path, out);
        } else {
            let value = path.display().to_string();
            out.push(loaded.at_value(&key, Problem::SuppressionFormat { value }));
        }
    }
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

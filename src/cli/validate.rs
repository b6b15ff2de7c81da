//! `herald validate`: load the manifests and report.

use std::path::Path;

use serde_json::json;

use super::args::ValidateArgs;
use super::{Exit, Output, report};
use crate::manifest::{self, LoadError, Manifests};
use crate::text::Count;

pub fn run(args: &ValidateArgs) -> Exit {
    let path = &args.path.path();
    let output = args.output.output;
    let loaded = manifest::load(path);
    if let Ok(manifests) = &loaded {
        // Templates, catalogs and audiences: the same preflight as plan, every row rendered.
        for campaign in &manifests.campaigns {
            let delivery = crate::plan::Delivery::of(campaign, None);
            let planned = crate::plan::plan(campaign, None, &delivery, crate::clock::now());
            if let Ok(plan) = &planned {
                for warning in plan.warnings() {
                    report::warning(format_args!("campaign `{}`: {warning}", campaign.name));
                }
            }
            if let Err(error) = planned {
                let message = format!("campaign `{}`: {error}", campaign.name);
                match output {
                    Output::Text => report::error(format_args!("{message}; nothing was sent")),
                    Output::Json => {
                        let json = json!({ "valid": false, "error": message, "problems": [] });
                        println!("{json}");
                    }
                }
                return Exit::Refused;
            }
        }
    }
    match (loaded, output) {
        (Ok(manifests), Output::Text) => {
            println!("{}", summary(path, &manifests));
            Exit::Success
        }
        (Ok(manifests), Output::Json) => {
            println!("{}", valid_json(&manifests));
            Exit::Success
        }
        (Err(error), Output::Text) => {
            print_load_error(&error);
            Exit::Refused
        }
        (Err(error), Output::Json) => {
            println!("{}", invalid_json(&error));
            Exit::Refused
        }
    }
}

/// Loads the manifests, or prints why not; for commands that refuse on any problem.
pub fn load_or_report(path: &Path) -> Option<Manifests> {
    manifest::load(path)
        .map_err(|error| print_load_error(&error))
        .ok()
}

/// Prints every diagnostic, then the summary; shared by every command that loads manifests.
pub fn print_load_error(error: &LoadError) {
    if let LoadError::Invalid(diagnostics) = error {
        for diagnostic in diagnostics {
            report::note(diagnostic);
        }
        report::error(format_args!("{error}; nothing was sent"));
    } else {
        report::error(error);
    }
}

fn summary(path: &Path, manifests: &Manifests) -> String {
    let count = |noun, n: usize| Count(noun, n as u64);
    format!(
        "{}: {} and {} in {}, all valid",
        path.display(),
        count("campaign", manifests.campaigns.len()),
        count("transport", manifests.transports.len()),
        count("file", manifests.files.len()),
    )
}

fn valid_json(manifests: &Manifests) -> serde_json::Value {
    json!({
        "valid": true,
        "files": manifests.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "campaigns": manifests.campaigns.iter().map(|c| json!({
            "name": c.name,
            "file": c.location.file.display().to_string(),
            "line": c.location.line,
            "transport": c.transport.name,
            "stage": c.stage,
            "revision": c.revision.number,
        })).collect::<Vec<_>>(),
        "transports": manifests.transports.iter().map(|t| json!({
            "name": t.name,
            "file": t.location.file.display().to_string(),
            "line": t.location.line,
            "type": t.kind,
        })).collect::<Vec<_>>(),
    })
}

fn invalid_json(error: &LoadError) -> serde_json::Value {
    let problems = match error {
        LoadError::Invalid(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                json!({
                    "file": d.location.file.display().to_string(),
                    "line": d.location.line,
                    "column": d.location.column,
                    "key": d.key,
                    "message": d.problem.to_string(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    json!({ "valid": false, "error": error.to_string(), "problems": problems })
}

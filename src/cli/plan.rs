//! `herald plan`: render everyone, then say what apply would do.

use std::fmt::Write as _;
use std::path::Path;

use super::{Exit, Output, report, validate};
use crate::manifest::{Campaign, Manifests};
use crate::plan::{self, CampaignPlan, StateView};
use crate::store::Store;

pub fn run(path: &Path, only: Option<&str>, output: Output, state: &Path) -> Exit {
    let Some(manifests) = validate::load_or_report(path) else {
        return Exit::Refused;
    };
    let Some(campaigns) = select(&manifests, only) else {
        return Exit::Refused;
    };
    // Without a state store nothing was sent yet; plan never creates one.
    let store = match Store::open_existing(state) {
        Ok(store) => store,
        Err(error) => {
            report::error(format_args!("{error}"));
            return Exit::Refused;
        }
    };
    let mut plans = Vec::new();
    for campaign in campaigns {
        let view = match store
            .as_ref()
            .map(|s| s.campaign(&campaign.name))
            .transpose()
        {
            Ok(view) => view,
            Err(error) => {
                report::error(format_args!("{error}"));
                return Exit::Refused;
            }
        };
        let state = view.as_ref().map(|store| StateView {
            store,
            resend_uncertain: false,
        });
        match plan::plan(campaign, state) {
            Ok(plan) => plans.push(plan),
            Err(error) => {
                report::refused(&campaign.name, error);
                return Exit::Refused;
            }
        }
    }
    match output {
        Output::Json => {
            let json = serde_json::json!({ "campaigns": plans });
            println!("{json}");
        }
        Output::Text => {
            for plan in &plans {
                print!("{}", text(plan));
            }
        }
    }
    Exit::Success
}

/// The campaigns `--campaign` selects (all without it); `None` after reporting an unknown name.
pub fn select<'a>(manifests: &'a Manifests, only: Option<&str>) -> Option<Vec<&'a Campaign>> {
    let Some(name) = only else {
        return Some(manifests.campaigns.iter().collect());
    };
    if let Some(campaign) = manifests.campaigns.iter().find(|c| c.name == name) {
        return Some(vec![campaign]);
    }
    let known: Vec<String> = manifests
        .campaigns
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    report::error(format_args!(
        "no campaign named `{name}`; defined: {}",
        known.join(", ")
    ));
    None
}

fn text(plan: &CampaignPlan) -> String {
    let a = &plan.audience;
    let mut out = String::new();
    let stage = plan.stage.as_str();
    let _ = writeln!(
        out,
        "campaign {} (stage {stage}, transport {})",
        plan.name, plan.transport
    );
    let _ = writeln!(
        out,
        "  audience  {} rows: {} unique, {} duplicates, {} invalid, {} suppressed",
        a.rows, a.unique, a.duplicates, a.invalid, a.suppressed
    );
    for row in &plan.invalid_rows {
        let _ = writeln!(
            out,
            "            skipped line {}: `{}`",
            row.line,
            row.value.escape_debug()
        );
    }
    let paused = if plan.paused {
        " (paused: apply sends nothing)"
    } else {
        ""
    };
    if plan.already_sent + plan.failed + plan.uncertain > 0 {
        let _ = writeln!(
            out,
            "  state     {} already sent, {} failed, {} uncertain (not re-sent)",
            plan.already_sent, plan.failed, plan.uncertain
        );
    }
    let _ = writeln!(out, "  to send   {} in stage {stage}{paused}", plan.to_send);
    let _ = writeln!(out, "  locales");
    for locale in &plan.locales {
        let mut line = format!("    {:<8} {:>9}", locale.locale, locale.recipients);
        if locale.catalog != locale.locale {
            let _ = write!(line, "  via {}", locale.catalog);
        }
        if !locale.fallback_keys.is_empty() {
            let keys = locale.fallback_keys.len();
            let plural = if keys == 1 { "" } else { "s" };
            let _ = write!(
                line,
                "  {keys} key{plural} from fallback: {}",
                locale.fallback_keys.join(", ")
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "  fallbacks {} recipients got at least one fallback string",
        plan.fallback_recipients
    );
    let calls = if plan.provider_calls == 1 {
        "call"
    } else {
        "calls"
    };
    let _ = writeln!(
        out,
        "  calls     {} provider {calls} of up to {}",
        plan.provider_calls, plan.batch_size
    );
    let _ = writeln!(out, "  duration  {}", plan.duration);
    out
}

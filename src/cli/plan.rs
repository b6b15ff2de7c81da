//! `herald plan`: render everyone, then say what apply would do.

use std::fmt::Write as _;
use std::path::Path;

use super::args::PlanArgs;
use super::{Exit, Output, report, session};
use crate::manifest::Resend;
use crate::plan::{self, Again, CampaignPlan, Delivery, LocalePlan, StateView};
use crate::reconcile::check_content;
use crate::render::Reached;
use crate::text::{self, Count, Thousands};

pub fn run(args: &PlanArgs) -> Exit {
    match plan(args) {
        Ok(exit) | Err(exit) => exit,
    }
}

fn plan(args: &PlanArgs) -> Result<Exit, Exit> {
    let path = &args.path.path();
    let manifests = session::load(path)?;
    let campaigns = session::select(&manifests, args.campaign.as_deref())?;
    let state = session::state(&args.state, path)?;
    // Without a state store nothing was sent yet; plan never creates one.
    let store = session::open_existing(&state)?;
    let again = Again {
        uncertain: args.again.resend_uncertain,
        failed: args.again.retry_failed.clone(),
    };
    // One instant for every campaign: `--at`, or now. The store is only read.
    let at = args.at.unwrap_or_else(crate::clock::now);
    let mut plans = Vec::new();
    for campaign in campaigns {
        let view = store
            .as_ref()
            .map(|s| s.campaign(&campaign.name))
            .transpose()
            .map_err(|error| {
                report::error(error);
                Exit::Refused
            })?;
        let state = view.as_ref().map(|store| StateView {
            store,
            again: &again,
        });
        let record = match &view {
            Some(view) => view.record().map_err(|error| {
                report::error(error);
                Exit::Refused
            })?,
            None => None,
        };
        // Content changed after sending began is refused here as apply refuses it, so
        // the check on a pull request fails before the merge does.
        if let (Some(view), Some(record)) = (&view, &record) {
            if let Err(error) = check_content(campaign, record, &view.counts()) {
                report::refused(&campaign.name, error);
                return Err(Exit::Refused);
            }
        }
        let latency = record.and_then(|r| r.latency);
        let delivery = Delivery::of(campaign, latency.as_ref());
        match plan::plan(campaign, state, &delivery, at) {
            Ok(plan) => {
                for warning in plan.warnings() {
                    report::warning(format_args!("campaign `{}`: {warning}", campaign.name));
                }
                plans.push(plan);
            }
            Err(error) => {
                report::refused(&campaign.name, error);
                return Err(Exit::Refused);
            }
        }
    }
    match args.output.output {
        Output::Json => {
            let json = serde_json::json!({
                "state": { "path": state, "exists": store.is_some() },
                "campaigns": plans,
            });
            println!("{json}");
        }
        Output::Text => {
            for plan in &plans {
                print!("{}", text(plan, &state, store.is_some()));
            }
        }
    }
    Ok(Exit::Success)
}

/// Values listed beside a catalog; the rest are counted.
const LISTED_VALUES: usize = 6;

/// One line per catalog, with the values that chose it when they are not just its own
/// name; then who got the default for want of their own.
fn locales(out: &mut String, plan: &CampaignPlan) {
    let _ = writeln!(out, "  locales");
    let columns = plan
        .catalogs
        .iter()
        .map(|c| text::width(&c.catalog))
        .max()
        .unwrap_or(0)
        .max(8);
    for catalog in &plan.catalogs {
        let mut values: Vec<&LocalePlan> = plan
            .locales
            .iter()
            .filter(|l| l.catalog == catalog.catalog)
            .collect();
        values.sort_by(|a, b| {
            b.recipients
                .cmp(&a.recipients)
                .then(a.locale.cmp(&b.locale))
        });
        let mut line = format!(
            "    {} {:>9}",
            text::pad_to(&catalog.catalog, columns),
            Thousands(catalog.recipients)
        );
        let own = |l: &LocalePlan| l.reached == Reached::Catalog && l.locale == catalog.catalog;
        if !values.iter().all(|l| own(l)) {
            let listed: Vec<String> = values
                .iter()
                .take(LISTED_VALUES)
                .map(|l| {
                    let name = if l.reached == Reached::Empty {
                        "empty"
                    } else {
                        &l.locale
                    };
                    let how = match l.reached {
                        Reached::Map => " (map)",
                        Reached::NoCatalog => " (no catalog)",
                        Reached::Unknown => " (unknown)",
                        Reached::Catalog | Reached::Empty => "",
                    };
                    format!("{name} {}{how}", Thousands(l.recipients))
                })
                .collect();
            let _ = write!(line, "  {}", listed.join(", "));
            if values.len() > LISTED_VALUES {
                let _ = write!(line, " and {} more", values.len() - LISTED_VALUES);
            }
        }
        let fallback_keys = values.first().map(|l| &l.fallback_keys);
        if let Some(keys) = fallback_keys.filter(|k| !k.is_empty()) {
            let _ = write!(
                line,
                "  {} from fallback: {}",
                Count("key", keys.len() as u64),
                keys.join(", ")
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let d = &plan.defaulted;
    if d.recipients > 0 {
        let values: Vec<String> = plan
            .locales
            .iter()
            .filter(|l| l.reached.defaulted())
            .map(|l| format!("{} {}", l.locale, Thousands(l.recipients)))
            .collect();
        let _ = writeln!(
            out,
            "  defaulted {} ({:.1}%) get {} for want of a catalog of their own: {}",
            Count("recipient", d.recipients),
            d.share * 100.0,
            d.catalog,
            values.join(", ")
        );
    }
}

fn text(plan: &CampaignPlan, store: &Path, exists: bool) -> String {
    let a = &plan.audience;
    let mut out = String::new();
    let stage = plan.stage.as_str();
    let resend = match plan.revision.resend {
        Resend::All => ", resend: all",
        Resend::None => "",
    };
    let _ = writeln!(
        out,
        "campaign {} (revision {}{resend}, stage {stage}, transport {})",
        plan.name, plan.revision.number, plan.transport
    );
    let known = if exists {
        "read"
    } else {
        "none yet: apply creates it"
    };
    let _ = writeln!(out, "  state     {} ({known})", store.display());
    let _ = writeln!(
        out,
        "  audience  {} rows: {} unique, {} duplicates, {} invalid, {} suppressed",
        a.rows, a.unique, a.duplicates, a.invalid, a.suppressed
    );
    for row in &plan.invalid_rows {
        let _ = writeln!(
            out,
            "            skipped line {}: {}",
            row.line, row.problem
        );
    }
    for source in &plan.suppressed_by {
        let _ = writeln!(out, "  suppress  {}: {}", source.source, source.recipients);
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
    if plan.expired > 0 {
        let _ = writeln!(
            out,
            "  state     {} expired (not sent by not_after; never sent in this revision)",
            plan.expired
        );
    }
    let again = if plan.resend > 0 {
        format!(
            ", {} of them again: they got an earlier revision",
            plan.resend
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  to send   {} in stage {stage}{again}{paused}",
        plan.to_send
    );
    locales(&mut out, plan);
    let _ = writeln!(
        out,
        "  fallbacks {} got at least one fallback string",
        Count("recipient", plan.fallback_recipients)
    );
    let _ = writeln!(
        out,
        "  calls     {} of up to {}, up to {} in flight",
        Count("provider call", plan.provider_calls),
        Count("recipient", plan.call_size as u64),
        plan.calls_in_flight
    );
    let _ = writeln!(out, "  duration  {}", plan.duration);
    if let Some(schedule) = &plan.schedule {
        schedule_lines(&mut out, schedule);
    }
    out
}

/// What the schedule makes of the campaign, as of the plan's instant.
fn schedule_lines(out: &mut String, schedule: &plan::SchedulePlan) {
    let _ = writeln!(
        out,
        "  schedule  as of {}: {} due now",
        schedule.at,
        Thousands(schedule.due_now)
    );
    let next = schedule
        .next_due
        .as_deref()
        .unwrap_or("nobody is waiting for a window");
    let _ = writeln!(out, "            next due {next}");
    let ends = schedule
        .ends
        .as_deref()
        .map_or("nobody left to send".to_owned(), |ends| {
            format!("ends about {ends} at the declared rate, within the windows")
        });
    let _ = writeln!(out, "            {ends}");
    if schedule.expire > 0 {
        let _ = writeln!(
            out,
            "            {} would expire: not sent by not_after",
            Count("recipient", schedule.expire)
        );
    }
}

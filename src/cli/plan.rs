//! `herald plan`: render everyone, then say what apply would do, against the local store
//! or (`--against`) the live one.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::against::{self, Source};
use super::args::PlanArgs;
use super::{Exit, ReviewOutput, comment, report, session, validate};
use crate::manifest::{self, Campaign, Manifests, Resend, Stage};
use crate::plan::{self, Again, CampaignPlan, Delivery, Live, LocalePlan, StateView};
use crate::reconcile::check_content;
use crate::render::Reached;
use crate::review::Warning;
use crate::store::{Store, Summary};
use crate::text::{self, Count, Thousands};
use jiff::Timestamp;

pub fn run(args: &PlanArgs) -> Exit {
    match plan(args) {
        Ok(exit) | Err(exit) => exit,
    }
}

/// Where the plan's state comes from.
enum State {
    /// The local store, if there is one.
    Local { path: PathBuf, store: Option<Store> },
    /// A store seen from afar.
    Against { source: Source, summary: Summary },
}

/// What planning found, campaign by campaign.
#[derive(Default)]
struct Planned {
    plans: Vec<(CampaignPlan, Option<Live>)>,
    refused: Vec<String>,
    warnings: Vec<Warning>,
}

fn plan(args: &PlanArgs) -> Result<Exit, Exit> {
    let path = &args.path.path();
    let output = args.output.output;
    let markdown = output == ReviewOutput::Markdown;
    let manifests = load(args, path, markdown)?;
    let campaigns = session::select(&manifests, args.campaign.as_deref())?;
    let state = if let Some(text) = &args.against {
        let source = Source::parse(text);
        let summary = against::summary(&source).map_err(|unread| {
            report::error(&unread.message);
            // The comment says why there is no plan, for the reviewer who reads only it.
            if markdown {
                let planned = Planned {
                    warnings: vec![Warning::Refused {
                        campaign: None,
                        message: format!("cannot plan against the live store: {}", unread.message),
                    }],
                    ..Planned::default()
                };
                print_markdown(args, &planned, &source_text(args, None));
            }
            unread.exit
        })?;
        State::Against { source, summary }
    } else {
        let path = session::state(&args.state, path)?;
        // A partition changed after sending began is refused here as apply refuses it.
        for campaign in &campaigns {
            super::shards::unchanged(&path, &[*campaign], campaign.shards)?;
        }
        // Without a state store nothing was sent yet; plan never creates one.
        let store = session::open_existing(&path)?;
        State::Local { path, store }
    };
    let again = Again {
        uncertain: args.again.resend_uncertain,
        failed: args.again.retry_failed.clone(),
    };
    // One instant for every campaign: `--at`, or now. The store is only read.
    let at = args.at.unwrap_or_else(crate::clock::now);
    let mut planned = Planned::default();
    for campaign in campaigns {
        let result = match &state {
            State::Local { path, .. } if campaign.shards.get() > 1 => {
                plan_shards(campaign, path, &again, at)
            }
            State::Local { store, .. } => plan_local(campaign, store.as_ref(), &again, at),
            State::Against { summary, .. } => {
                plan_against(campaign, summary, &mut planned.warnings, at)
            }
        };
        match result {
            Ok(done) => {
                planned
                    .warnings
                    .extend(crate::review::warning::schedule_soon(campaign, at));
                for message in done.0.warnings() {
                    report::warning(format_args!("campaign `{}`: {message}", campaign.name));
                    planned.warnings.push(Warning::Plan {
                        campaign: campaign.name.clone(),
                        message,
                    });
                }
                planned.plans.push(done);
            }
            Err(message) => {
                report::refused(&campaign.name, &message);
                // A comment says every refusal; the other outputs stop at the first.
                if !markdown {
                    return Err(Exit::Refused);
                }
                planned.refused.push(campaign.name.clone());
                planned.warnings.insert(
                    planned.refused.len() - 1,
                    Warning::Refused {
                        campaign: Some(campaign.name.clone()),
                        message,
                    },
                );
            }
        }
    }
    match output {
        ReviewOutput::Json => println!("{}", json(&state, &planned)),
        ReviewOutput::Text => {
            for (plan, live) in &planned.plans {
                print!("{}", text(plan, &state, live.as_ref()));
            }
        }
        ReviewOutput::Markdown => print_markdown(args, &planned, &source_text(args, Some(&state))),
    }
    Ok(if planned.refused.is_empty() {
        Exit::Success
    } else {
        Exit::Refused
    })
}

/// The manifests at `path`, or why not: on stderr as every command says it, and (for
/// `-o markdown`) in the comment too, each problem a refusal.
fn load(args: &PlanArgs, path: &std::path::Path, markdown: bool) -> Result<Manifests, Exit> {
    manifest::load(path).map_err(|error| {
        validate::print_load_error(&error);
        if markdown {
            let warnings = crate::review::warning::unloaded(&error, None);
            let planned = Planned {
                warnings,
                ..Planned::default()
            };
            print_markdown(args, &planned, &source_text(args, None));
        }
        Exit::Refused
    })
}

/// Where the state came from, and what it says of the campaign.
fn state_line(plan: &CampaignPlan, state: &State, remote: Option<&Live>) -> String {
    match (state, remote) {
        (State::Against { source, .. }, Some(remote)) if remote.known => format!(
            "  state     {source} (the live store's counts: revision {}, stage {})\n",
            remote.revision,
            remote.stage.map_or("-", Stage::as_str)
        ),
        (State::Against { source, .. }, _) => {
            format!("  state     {source} (the live store: nothing sent for this campaign yet)\n")
        }
        (State::Local { path, .. }, _) if !plan.shards.is_empty() => format!(
            "  state     {} (a store per shard: shard-<i>-of-{} inside it)\n",
            path.display(),
            plan.shards.len()
        ),
        (State::Local { path, store }, _) => {
            let known = if store.is_some() {
                "read"
            } else {
                "none yet: apply creates it"
            };
            format!("  state     {} ({known})\n", path.display())
        }
    }
}

/// Who has an outcome already, and who is to be sent now (estimated, against counts).
fn to_send(plan: &CampaignPlan, remote: Option<&Live>) -> String {
    let mut out = String::new();
    let stage = plan.stage.as_str();
    let paused = if plan.paused {
        " (paused: apply sends nothing)"
    } else {
        ""
    };
    let about = if remote.is_some() { "about " } else { "" };
    let again = if plan.resend > 0 {
        format!(
            ", {about}{} of them again: they got an earlier revision",
            plan.resend
        )
    } else {
        String::new()
    };
    if let Some(remote) = remote {
        let _ = writeln!(
            out,
            "  state     {} already sent, {} failed, {} uncertain (not re-sent); {} on the store's suppression list",
            plan.already_sent,
            plan.failed,
            plan.uncertain,
            Count("address", remote.store_suppressed)
        );
        let _ = writeln!(
            out,
            "  to send   about {} in stage {stage}{again}{paused} (estimated from counts: {} reached, less \
             those with an outcome or on the store's list)",
            plan.to_send, remote.reached
        );
    } else {
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
        let _ = writeln!(
            out,
            "  to send   {} in stage {stage}{again}{paused}",
            plan.to_send
        );
    }
    out
}

/// The plan against the local store; a refusal as its message.
fn plan_local(
    campaign: &Campaign,
    store: Option<&Store>,
    again: &Again,
    at: Timestamp,
) -> Result<(CampaignPlan, Option<Live>), String> {
    let view = store
        .map(|s| s.campaign(&campaign.name))
        .transpose()
        .map_err(|e| e.to_string())?;
    let record = match &view {
        Some(view) => view.record().map_err(|e| e.to_string())?,
        None => None,
    };
    // Content changed after sending began is refused here as apply refuses it, so the
    // check on a pull request fails before the merge does.
    if let (Some(view), Some(record)) = (&view, &record) {
        check_content(campaign, record, &view.counts()).map_err(|e| e.to_string())?;
    }
    let state = view.as_ref().map(|store| StateView { store, again });
    let latency = record.and_then(|r| r.latency);
    let delivery = Delivery::of(campaign, latency.as_ref());
    let plan = plan::plan(campaign, state, &delivery, at).map_err(|e| e.to_string())?;
    Ok((plan, None))
}

/// The plan of a sharded campaign: everyone's, with each shard planned against its own
/// store and the totals made of theirs.
fn plan_shards(
    campaign: &Campaign,
    state: &std::path::Path,
    again: &Again,
    at: Timestamp,
) -> Result<(CampaignPlan, Option<Live>), String> {
    let (mut whole, _) = plan_local(campaign, None, again, at)?;
    let mut parts = Vec::new();
    for index in 0..campaign.shards.get() {
        let part = campaign.for_shard(index);
        let Some(shard) = part.shard else { continue };
        let folder = crate::store::shards::folder(state, shard);
        let store = Store::open_existing(&folder).map_err(|e| e.to_string())?;
        let (plan, _) = plan_local(&part, store.as_ref(), again, at)?;
        parts.push((shard, plan));
    }
    plan::combine(&mut whole, &parts);
    Ok((whole, None))
}

/// The plan against a store seen from afar: the content check as apply makes it, the
/// counts estimated (see `plan::against`).
fn plan_against(
    campaign: &Campaign,
    summary: &Summary,
    warnings: &mut Vec<Warning>,
    at: Timestamp,
) -> Result<(CampaignPlan, Option<Live>), String> {
    let live = summary.campaign(&campaign.name);
    if let Some(live) = live {
        check_content(campaign, &live.record(), &live.counts()).map_err(|e| e.to_string())?;
    }
    let delivery = Delivery::of(campaign, None);
    let mut plan = plan::plan(campaign, None, &delivery, at).map_err(|e| e.to_string())?;
    let live_view = plan::against(&mut plan, live, summary.suppressed, &delivery);
    let before = live.and_then(|l| l.stage);
    if campaign.stage == Stage::Full && before.is_some_and(|s| s != Stage::Full) {
        warnings.push(Warning::StageToFull {
            campaign: campaign.name.clone(),
            from: before,
            seen_in: "the live store",
        });
    }
    Ok((plan, Some(live_view)))
}

fn source_text(args: &PlanArgs, state: Option<&State>) -> String {
    match (state, &args.against) {
        (Some(State::Against { source, .. }), _) => format!("against `{source}`"),
        (Some(State::Local { path, store }), _) => format!(
            "state `{}`{}",
            path.display(),
            if store.is_some() { "" } else { " (none yet)" }
        ),
        (None, Some(against)) => format!("against `{against}`"),
        (None, None) => format!("`{}`", args.path.path().display()),
    }
}

fn print_markdown(args: &PlanArgs, planned: &Planned, source: &str) {
    let mut everything = format!("herald plan {}", args.path.path().display());
    if let Some(against) = &args.against {
        let _ = write!(everything, " --against {against}");
    }
    let document = comment::plan(&comment::PlanComment {
        source: crate::review::markdown::inline(source),
        plans: &planned.plans,
        refused: &planned.refused,
        warnings: &planned.warnings,
        everything,
    });
    print!("{}", document.render(args.output.limit));
}

fn json(state: &State, planned: &Planned) -> serde_json::Value {
    let state_json = match state {
        State::Local { path, store } => {
            serde_json::json!({ "path": path, "exists": store.is_some() })
        }
        State::Against { source, summary } => serde_json::json!({
            "against": source.to_string(),
            "suppressed": summary.suppressed,
        }),
    };
    let campaigns: Vec<serde_json::Value> = planned
        .plans
        .iter()
        .map(|(plan, live)| {
            let mut value = serde_json::to_value(plan).expect("a plan serializes");
            if let (Some(live), Some(object)) = (live, value.as_object_mut()) {
                object.insert("to_send_estimated".to_owned(), true.into());
                object.insert(
                    "live".to_owned(),
                    serde_json::to_value(live).expect("a live view serializes"),
                );
            }
            value
        })
        .collect();
    let mut json = serde_json::json!({ "state": state_json, "campaigns": campaigns });
    if !planned.warnings.is_empty() {
        json["warnings"] = serde_json::to_value(&planned.warnings).expect("warnings serialize");
    }
    json
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
        let values = plan.values_of(&catalog.catalog);
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
                    let (name, how) = l.label();
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
            .defaulted_values()
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

fn text(plan: &CampaignPlan, state: &State, remote: Option<&Live>) -> String {
    let a = &plan.audience;
    let mut out = String::new();
    let resend = match plan.revision.resend {
        Resend::All => ", resend: all",
        Resend::None => "",
    };
    let _ = writeln!(
        out,
        "campaign {} (revision {}{resend}, stage {}, transport {})",
        plan.name,
        plan.revision.number,
        plan.stage.as_str(),
        plan.transport
    );
    out.push_str(&state_line(plan, state, remote));
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
    out.push_str(&to_send(plan, remote));
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
    for part in &plan.shards {
        let _ = writeln!(
            out,
            "  shard {} of {}: {} recipients, {} already sent, {} to send in {}, {}",
            part.shard,
            part.shards,
            part.recipients,
            part.already_sent,
            part.to_send,
            Count("call", part.provider_calls),
            part.duration
        );
    }
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

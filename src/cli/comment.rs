//! plan and diff as a pull request comment (`-o markdown`): warnings first, a summary
//! table, the details folded, within the size limit `review::markdown` keeps.

use std::fmt::Write as _;
use std::path::Path;

use crate::plan::{CampaignPlan, Live};
use crate::review::markdown::{Block, Details, Document, Table, cell, code, inline, number};
use crate::review::samples::LocaleDiff;
use crate::review::{CampaignDiff, Change, Diff, Warning};

/// `sample k***@example.com, line 3`, or both samples when they differ.
pub fn samples_line(locale: &LocaleDiff) -> String {
    let one = |s: &crate::review::samples::SampleInfo| format!("{}, line {}", s.address, s.line);
    match (&locale.old_sample, &locale.new_sample) {
        (Some(a), Some(b)) if a.line == b.line && locale.same_recipient => {
            format!("sample {}", one(a))
        }
        (Some(a), Some(b)) if locale.same_recipient => {
            format!(
                "sample {} (line {} before, {} now)",
                b.address, a.line, b.line
            )
        }
        (Some(a), Some(b)) => format!(
            "samples of different recipients (none of the first was kept): {} before, {} after",
            one(a),
            one(b)
        ),
        (None, Some(b)) => format!("new locale, sample {}", one(b)),
        (Some(a), None) => format!("no recipient any more, sample {} before", one(a)),
        (None, None) => String::new(),
    }
}

/// `old -> new`, or the value when it stays.
fn moved(old: &str, new: &str) -> String {
    if old == new {
        old.to_owned()
    } else {
        format!("{old} → {new}")
    }
}

fn field<'a>(
    campaign: &'a CampaignDiff,
    key: &str,
) -> Option<&'a crate::review::fields::FieldChange> {
    campaign.fields.iter().find(|f| f.field == key)
}

/// The diff as a comment.
pub fn diff(diff: &Diff, old: &Path, new: &Path, everything: &str) -> Document {
    let count = |change: Change| diff.campaigns.iter().filter(|c| c.change == change).count();
    let mut document = Document {
        title: "### herald diff".to_owned(),
        intro: vec![format!(
            "{} → {}: {} changed, {} added, {} removed, {} unchanged",
            code(&old.display().to_string()),
            code(&new.display().to_string()),
            count(Change::Changed),
            count(Change::Added),
            count(Change::Removed),
            count(Change::Unchanged),
        )],
        warnings: diff
            .warnings
            .iter()
            .map(|w| inline(&w.to_string()))
            .collect(),
        table: Table {
            header: [
                "campaign",
                "change",
                "stage",
                "rate",
                "audience",
                "suppression",
                "locales changed",
            ]
            .map(str::to_owned)
            .to_vec(),
            right: vec![false; 7],
            rows: Vec::new(),
        },
        details: Vec::new(),
        everything: everything.to_owned(),
    };
    for campaign in &diff.campaigns {
        document.table.rows.push(row(campaign));
        if campaign.change != Change::Unchanged {
            document.details.extend(details(campaign));
        }
    }
    document
}

fn row(campaign: &CampaignDiff) -> Vec<String> {
    let change = match campaign.change {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
    };
    let value = |key: &str, fallback: &str| match field(campaign, key) {
        Some(f) => moved(
            f.old.as_deref().unwrap_or("—"),
            f.new.as_deref().unwrap_or("—"),
        ),
        None => fallback.to_owned(),
    };
    let audience = campaign.audience.as_ref().map_or_else(
        || "unchanged".to_owned(),
        |a| {
            format!(
                "+{} −{} ~{} ({} → {})",
                number(a.added),
                number(a.removed),
                number(a.changed),
                number(a.old.unique),
                number(a.new.unique)
            )
        },
    );
    let suppression = campaign.suppression.as_ref().map_or_else(
        || "unchanged".to_owned(),
        |s| format!("+{} −{}", number(s.added), number(s.removed)),
    );
    let locales: Vec<&str> = campaign.locales.iter().map(|l| l.locale.as_str()).collect();
    vec![
        cell(&format!("`{}`", campaign.name)),
        change.to_owned(),
        cell(&value("spec.stage", campaign.stage.as_str())),
        cell(&value("spec.rate", &campaign.rate)),
        cell(&audience),
        cell(&suppression),
        cell(&locales.join(", ")),
    ]
}

fn details(campaign: &CampaignDiff) -> Vec<Details> {
    let mut out = Vec::new();
    let lines = manifest_lines(campaign);
    if !lines.is_empty() {
        out.push(Details {
            summary: format!("{}: manifest and audience", campaign.name),
            blocks: vec![Block::Markdown(lines.join("\n"))],
        });
    }
    out.extend(
        campaign
            .locales
            .iter()
            .map(|l| locale_details(&campaign.name, l)),
    );
    out
}

/// The manifest, audience and suppression changes, as a Markdown list.
fn manifest_lines(campaign: &CampaignDiff) -> Vec<String> {
    let mut lines = Vec::new();
    for f in &campaign.fields {
        let show = |v: &Option<String>| v.as_deref().map_or_else(|| "—".to_owned(), code);
        lines.push(format!(
            "- {}: {} → {}",
            code(f.field),
            show(&f.old),
            show(&f.new)
        ));
    }
    if !campaign.content.is_empty() {
        let parts: Vec<String> = campaign.content.iter().map(|p| inline(p)).collect();
        lines.push(format!("- content changed: {}", parts.join(", ")));
    }
    if let Some(a) = &campaign.audience {
        lines.push(format!(
            "- audience: {} → {} unique addresses; {} added, {} removed, {} changed",
            number(a.old.unique),
            number(a.new.unique),
            number(a.added),
            number(a.removed),
            number(a.changed)
        ));
        for (label, examples) in [
            ("added", &a.added_examples),
            ("removed", &a.removed_examples),
            ("changed", &a.changed_examples),
        ] {
            if !examples.is_empty() {
                let shown: Vec<String> = examples.iter().map(|e| code(e)).collect();
                lines.push(format!("  - {label}, e.g. {}", shown.join(", ")));
            }
        }
        for (label, columns) in [
            ("columns added", &a.columns_added),
            ("columns removed", &a.columns_removed),
        ] {
            if !columns.is_empty() {
                let shown: Vec<String> = columns.iter().map(|c| code(c)).collect();
                lines.push(format!("  - {label}: {}", shown.join(", ")));
            }
        }
    }
    if let Some(s) = &campaign.suppression {
        lines.push(format!(
            "- suppression lists: {} → {} addresses; {} added, {} removed",
            number(s.old),
            number(s.new),
            number(s.added),
            number(s.removed)
        ));
        for (label, examples) in [
            ("added", &s.added_examples),
            ("removed", &s.removed_examples),
        ] {
            if !examples.is_empty() {
                let shown: Vec<String> = examples.iter().map(|e| code(e)).collect();
                lines.push(format!("  - {label}, e.g. {}", shown.join(", ")));
            }
        }
    }
    if !campaign.unchanged_locales.is_empty() {
        lines.push(format!(
            "- locales unchanged: {}",
            inline(&campaign.unchanged_locales.join(", "))
        ));
    }
    lines
}

/// One locale's sample, old and new, as unified diffs.
fn locale_details(campaign: &str, locale: &LocaleDiff) -> Details {
    {
        let parts: Vec<&str> = [
            ("subject", &locale.subject),
            ("text", &locale.text),
            ("html", &locale.html),
        ]
        .into_iter()
        .filter(|(_, d)| d.is_some())
        .map(|(name, _)| name)
        .collect();
        let mut blocks = vec![Block::Markdown(inline(&samples_line(locale)))];
        for part in [&locale.subject, &locale.text, &locale.html]
            .into_iter()
            .flatten()
        {
            blocks.push(Block::Code {
                info: "diff".to_owned(),
                text: part.clone(),
            });
        }
        Details {
            summary: format!(
                "{campaign} · {}: {} changed",
                locale.locale,
                parts.join(", ")
            ),
            blocks,
        }
    }
}

/// A plan and where its state came from, as a comment shows them.
pub struct PlanComment<'a> {
    /// `against `URL`` or `state `DIR``, as inline Markdown.
    pub source: String,
    pub plans: &'a [(CampaignPlan, Option<Live>)],
    /// Campaigns refused, by name, in the order planned.
    pub refused: &'a [String],
    pub warnings: &'a [Warning],
    pub everything: String,
}

/// The plan as a comment.
pub fn plan(comment: &PlanComment<'_>) -> Document {
    let estimated = comment.plans.iter().any(|(_, live)| live.is_some());
    let mut intro = vec![format!(
        "{}: {} planned, {} refused",
        comment.source,
        comment.plans.len(),
        comment.refused.len()
    )];
    if estimated {
        intro.push(
            "The live store gives counts, not addresses: *to send* is an estimate (those the stage \
             reaches, less those the store has an outcome for or suppresses), exact when the audience \
             only grew."
                .to_owned(),
        );
    }
    let mut document = Document {
        title: "### herald plan".to_owned(),
        intro,
        warnings: comment
            .warnings
            .iter()
            .map(|w| inline(&w.to_string()))
            .collect(),
        table: Table {
            header: [
                "campaign",
                "stage",
                "transport",
                "audience",
                "suppressed",
                "sent",
                "failed",
                "uncertain",
                "to send",
                "duration",
            ]
            .map(str::to_owned)
            .to_vec(),
            right: vec![
                false, false, false, true, true, true, true, true, true, false,
            ],
            rows: Vec::new(),
        },
        details: Vec::new(),
        everything: comment.everything.clone(),
    };
    for name in comment.refused {
        let mut row = vec![cell(&format!("`{name}`")), "**refused**".to_owned()];
        row.extend(std::iter::repeat_n("—".to_owned(), 8));
        document.table.rows.push(row);
    }
    for (plan, live) in comment.plans {
        let to_send = if live.is_some() {
            format!("≈ {}", number(plan.to_send))
        } else {
            number(plan.to_send)
        };
        document.table.rows.push(vec![
            cell(&format!("`{}`", plan.name)),
            plan.stage.as_str().to_owned(),
            cell(&plan.transport),
            number(plan.audience.unique),
            number(plan.audience.suppressed + live.as_ref().map_or(0, |l| l.store_suppressed)),
            number(plan.already_sent),
            number(plan.failed),
            number(plan.uncertain),
            to_send,
            cell(&plan.duration),
        ]);
        document.details.push(plan_details(plan, live.as_ref()));
    }
    document
}

/// Who gets the default for want of their own, then a table per catalog with the locale
/// values that chose it, as plan's text has them.
fn locales(text: &mut String, plan: &CampaignPlan) {
    let d = &plan.defaulted;
    if d.recipients > 0 {
        let values: Vec<String> = plan
            .defaulted_values()
            .map(|l| format!("{} {}", l.locale, number(l.recipients)))
            .collect();
        let _ = writeln!(
            text,
            "- defaulted: {} recipients ({:.1}%) get {} for want of a catalog of their own: {}",
            number(d.recipients),
            d.share * 100.0,
            inline(&d.catalog),
            inline(&values.join(", "))
        );
    }
    // Per catalog, as plan's text has it, with the values that chose it.
    let _ = writeln!(
        text,
        "\n| catalog | recipients | locale values | fallbacks |\n|---|---:|---|---:|"
    );
    for catalog in &plan.catalogs {
        let values = plan.values_of(&catalog.catalog);
        let mut listed: Vec<String> = values
            .iter()
            .take(LISTED_VALUES)
            .map(|l| {
                let (name, how) = l.label();
                format!("{name} {}{how}", number(l.recipients))
            })
            .collect();
        if values.len() > LISTED_VALUES {
            listed.push(format!("and {} more", values.len() - LISTED_VALUES));
        }
        let fallbacks: u64 = values.iter().map(|l| l.fallbacks).sum();
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} |",
            cell(&catalog.catalog),
            number(catalog.recipients),
            cell(&listed.join(", ")),
            number(fallbacks)
        );
    }
}

/// Locale values listed beside a catalog, as in plan's text; the rest are counted.
const LISTED_VALUES: usize = 6;

fn plan_details(plan: &CampaignPlan, live: Option<&Live>) -> Details {
    let mut text = String::new();
    if let Some(live) = live {
        if live.known {
            let _ = writeln!(
                text,
                "- live store: revision {}, stage {}; {} reached by the stage, {} addresses on its suppression list",
                live.revision,
                live.stage.map_or("-", crate::manifest::Stage::as_str),
                number(live.reached),
                number(live.store_suppressed)
            );
        } else {
            let _ = writeln!(
                text,
                "- live store: nothing sent for this campaign yet; {} addresses on its suppression list",
                number(live.store_suppressed)
            );
        }
    }
    let resend = match plan.revision.resend {
        crate::manifest::Resend::All => ", resend: all",
        crate::manifest::Resend::None => "",
    };
    let _ = write!(text, "- revision {}{resend}", plan.revision.number);
    if plan.resend > 0 {
        let about = if live.is_some() { "about " } else { "" };
        let _ = write!(
            text,
            ": {about}{} of those to send again, as they got an earlier revision",
            number(plan.resend)
        );
    }
    text.push('\n');
    let a = &plan.audience;
    let _ = writeln!(
        text,
        "- audience: {} rows, {} unique, {} duplicates, {} invalid, {} suppressed",
        number(a.rows),
        number(a.unique),
        number(a.duplicates),
        number(a.invalid),
        number(a.suppressed)
    );
    for source in &plan.suppressed_by {
        let _ = writeln!(
            text,
            "  - {}: {}",
            inline(&source.source),
            number(source.recipients)
        );
    }
    let _ = writeln!(
        text,
        "- calls: {} of up to {} recipients, up to {} in flight",
        number(plan.provider_calls),
        plan.call_size,
        plan.calls_in_flight
    );
    locales(&mut text, plan);
    Details {
        summary: format!("{}: audience, locales, calls", plan.name),
        blocks: vec![Block::Markdown(text.trim_end().to_owned())],
    }
}

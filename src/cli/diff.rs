//! `herald diff OLD_PATH NEW_PATH`: what a merge would change, for people, programs or a
//! pull request comment.

use std::fmt::Write as _;
use std::path::Path;

use super::args::DiffArgs;
use super::{Exit, ReviewOutput, comment, report, validate};
use crate::manifest::{self, Manifests};
use crate::review::{self, CampaignDiff, Change, Diff, Tree, Warning};
use crate::text::List;

pub fn run(args: &DiffArgs) -> Exit {
    let output = args.output.output;
    let everything = format!("herald diff {} {}", args.old.display(), args.new.display());
    let old = match load(&args.old, true) {
        Ok(old) => old,
        Err(warnings) => return refused(output, args, &everything, warnings),
    };
    let new = match load(&args.new, false) {
        Ok(new) => new,
        Err(warnings) => return refused(output, args, &everything, warnings),
    };
    if let Some(name) = &args.campaign {
        let known = |m: &Manifests| m.campaigns.iter().any(|c| c.name == *name);
        if !known(&old) && !known(&new) {
            report::error(format_args!(
                "no campaign named `{name}` in {} or {}",
                args.old.display(),
                args.new.display()
            ));
            return Exit::Refused;
        }
    }
    let diff = review::diff(
        Tree {
            manifests: &old,
            root: &args.old,
        },
        Tree {
            manifests: &new,
            root: &args.new,
        },
        args.campaign.as_deref(),
    );
    print(output, args, &everything, &diff);
    if diff
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::Refused { .. }))
    {
        Exit::Refused
    } else {
        Exit::Success
    }
}

/// The manifests at `path`, or the problems as refusals (printed to stderr already). A
/// missing old side is a repository without campaigns yet.
fn load(path: &Path, missing_is_empty: bool) -> Result<Manifests, Vec<Warning>> {
    if missing_is_empty && !path.exists() {
        return Ok(Manifests {
            files: Vec::new(),
            campaigns: Vec::new(),
            transports: Vec::new(),
        });
    }
    manifest::load(path).map_err(|error| {
        validate::print_load_error(&error);
        review::warning::unloaded(&error, Some(&path.display().to_string()))
    })
}

fn refused(
    output: ReviewOutput,
    args: &DiffArgs,
    everything: &str,
    warnings: Vec<Warning>,
) -> Exit {
    let diff = Diff {
        warnings,
        campaigns: Vec::new(),
    };
    if output != ReviewOutput::Text {
        print(output, args, everything, &diff);
    }
    Exit::Refused
}

fn print(output: ReviewOutput, args: &DiffArgs, everything: &str, diff: &Diff) {
    match output {
        ReviewOutput::Json => println!(
            "{}",
            serde_json::to_string(diff).expect("a diff serializes")
        ),
        ReviewOutput::Text => print!("{}", text(diff)),
        ReviewOutput::Markdown => print!(
            "{}",
            comment::diff(diff, &args.old, &args.new, everything).render(args.output.limit)
        ),
    }
}

/// The diff for people.
pub fn text(diff: &Diff) -> String {
    let mut out = String::new();
    if !diff.warnings.is_empty() {
        out.push_str("warnings\n");
        for warning in &diff.warnings {
            let _ = writeln!(out, "  {warning}");
        }
        out.push('\n');
    }
    let mut unchanged = Vec::new();
    for campaign in &diff.campaigns {
        let change = match campaign.change {
            Change::Unchanged => {
                unchanged.push(campaign.name.clone());
                continue;
            }
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        };
        let _ = writeln!(out, "campaign {}: {change}", campaign.name);
        out.push_str(&campaign_text(campaign));
    }
    if !unchanged.is_empty() {
        let _ = writeln!(out, "unchanged: {}", List::and_ticked(&unchanged));
    }
    if diff.campaigns.is_empty() && diff.warnings.is_empty() {
        out.push_str("no campaigns on either side\n");
    }
    out
}

/// What changes in one campaign, for people.
fn campaign_text(campaign: &CampaignDiff) -> String {
    let mut out = String::new();
    {
        for field in &campaign.fields {
            let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
            let shown = match campaign.change {
                Change::Added => value(&field.new),
                Change::Removed => value(&field.old),
                _ => format!("{} -> {}", value(&field.old), value(&field.new)),
            };
            let _ = writeln!(out, "  {:<28} {shown}", field.field);
        }
        if !campaign.content.is_empty() {
            let _ = writeln!(out, "  {:<28} {}", "content", List::and(&campaign.content));
        }
        if let Some(a) = &campaign.audience {
            let _ = writeln!(
                out,
                "  {:<28} {} -> {} unique addresses: {} added, {} removed, {} changed",
                "audience", a.old.unique, a.new.unique, a.added, a.removed, a.changed
            );
            for (label, examples) in [
                ("added", &a.added_examples),
                ("removed", &a.removed_examples),
                ("changed", &a.changed_examples),
            ] {
                if !examples.is_empty() {
                    let _ = writeln!(out, "    {label:<26} {}", examples.join(", "));
                }
            }
            for (label, columns) in [
                ("columns added", &a.columns_added),
                ("columns removed", &a.columns_removed),
            ] {
                if !columns.is_empty() {
                    let _ = writeln!(out, "    {label:<26} {}", List::and_ticked(columns));
                }
            }
        }
        if let Some(s) = &campaign.suppression {
            let _ = writeln!(
                out,
                "  {:<28} {} -> {} addresses: {} added, {} removed",
                "suppression lists", s.old, s.new, s.added, s.removed
            );
            for (label, examples) in [
                ("added", &s.added_examples),
                ("removed", &s.removed_examples),
            ] {
                if !examples.is_empty() {
                    let _ = writeln!(out, "    {label:<26} {}", examples.join(", "));
                }
            }
        }
        for locale in &campaign.locales {
            let _ = writeln!(
                out,
                "  {:<28} {}",
                format!("locale {}", locale.locale),
                comment::samples_line(locale)
            );
            for part in [&locale.subject, &locale.text, &locale.html]
                .into_iter()
                .flatten()
            {
                for line in part.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        if !campaign.unchanged_locales.is_empty() {
            let _ = writeln!(
                out,
                "  {:<28} {}",
                "locales unchanged",
                campaign.unchanged_locales.join(", ")
            );
        }
    }
    out
}

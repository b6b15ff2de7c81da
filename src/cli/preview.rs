//! `herald preview`: a sample message for every locale and every path through the
//! templates, each labelled with the audience rows it stands for, and a gallery to review
//! them; or, with `--row` or `--recipient`, one recipient's message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::args::PreviewArgs;
use super::{Exit, report, session};
use crate::audience::{Recipient, normalize};
use crate::manifest::Campaign;
use crate::plan;
use crate::render::{Rendered, Renderer, escape_html as escape};
use crate::text::{Count, List, Thousands};

/// Lines listed per sample; the rest are counted.
const LISTED_LINES: usize = 5;

/// One sample: the first recipient of a catalog and path, and the rows it stands for.
struct Sample {
    to: String,
    line: u64,
    rendered: Rendered,
    /// The branches its message took, as indexes into `Renderer::branches`.
    path: Vec<usize>,
    rows: u64,
    /// The first few lines of the rows it stands for.
    lines: Vec<u64>,
    /// The locale values that chose its catalog.
    values: BTreeSet<String>,
}

/// Which recipient `--row` or `--recipient` picks.
enum Pick {
    Row(u64),
    Address(String),
}

impl Pick {
    fn matches(&self, recipient: &Recipient) -> bool {
        match self {
            Self::Row(line) => recipient.line == *line,
            Self::Address(address) => normalize(&recipient.email) == *address,
        }
    }
}

pub fn run(args: &PreviewArgs) -> Exit {
    let path = args.path.path();
    let Ok(manifests) = session::load(&path) else {
        return Exit::Refused;
    };
    let campaign = match (args.campaign.as_deref(), manifests.campaigns.as_slice()) {
        (None, [only]) => only,
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|c| c.name.as_str()).collect();
            report::error(format_args!(
                "{} holds {}: say which to preview with --campaign ({})",
                path.display(),
                Count("campaign", names.len() as u64),
                List::or_ticked(&names)
            ));
            return Exit::Refused;
        }
        (Some(name), _) => match session::select(&manifests, Some(name)) {
            Ok(selected) => selected[0],
            Err(exit) => return exit,
        },
    };
    let pick = match (args.row, &args.recipient) {
        (Some(line), _) => Some(Pick::Row(line)),
        (None, Some(address)) => Some(Pick::Address(normalize(address))),
        (None, None) => None,
    };
    let out = &args.out;
    match write(campaign, out, pick.as_ref()) {
        Ok(samples) => {
            let index = out.join("index.html");
            if let (Some(_), Some(sample)) = (&pick, samples.first()) {
                println!(
                    "the message of `{}` ({}) rendered to {}; open {}",
                    sample.to,
                    line_label(campaign, sample.line),
                    out.display(),
                    index.display()
                );
            } else {
                let catalogs: BTreeSet<&str> = samples
                    .iter()
                    .map(|s| s.rendered.catalog.as_str())
                    .collect();
                println!(
                    "{} of {} rendered to {}; open {}",
                    Count("sample", samples.len() as u64),
                    Count("locale", catalogs.len() as u64),
                    out.display(),
                    index.display()
                );
            }
            Exit::Success
        }
        Err(message) => {
            report::refused(&campaign.name, message);
            Exit::Refused
        }
    }
}

/// `audience line 12`, or `rollout.seed` for a seed outside the audience.
fn line_label(campaign: &Campaign, line: u64) -> String {
    if line == 0 {
        "rollout.seed".to_owned()
    } else {
        format!("{}:{line}", campaign.audience.file.display())
    }
}

/// Renders everyone, keeps the samples (or the one picked), and writes them with an index.
fn write(campaign: &Campaign, out: &Path, pick: Option<&Pick>) -> Result<Vec<Sample>, String> {
    let renderer = Renderer::new(campaign).map_err(|e| e.to_string())?;
    if campaign.unsubscribe.is_some() && !renderer.keyed() {
        report::warning(format_args!(
            "{} is not set: unsubscribe links in these samples use a fixed, guessable key",
            crate::render::UNSUBSCRIBE_KEY_ENV
        ));
    }
    let mut samples: BTreeMap<(String, Vec<usize>), Sample> = BTreeMap::new();
    let mut failed = None;
    let delivery = plan::Delivery::of(campaign, None);
    let mut each = |recipient: &Recipient, rendered: &Rendered| {
        if failed.is_some() || pick.is_some_and(|p| !p.matches(recipient)) {
            return;
        }
        // Templates of text and values take one path; only the others are asked.
        let path = if rendered.personal.is_some() {
            Ok(Vec::new())
        } else {
            renderer.path(&recipient.record, rendered)
        };
        let path = match path {
            Ok(path) => path,
            Err(error) => {
                failed = Some(error.to_string());
                return;
            }
        };
        let sample = samples
            .entry((rendered.catalog.clone(), path.clone()))
            .or_insert_with(|| Sample {
                to: recipient.email.clone(),
                line: recipient.line,
                rendered: rendered.clone(),
                path,
                rows: 0,
                lines: Vec::new(),
                values: BTreeSet::new(),
            });
        sample.rows += 1;
        if sample.lines.len() < LISTED_LINES {
            sample.lines.push(recipient.line);
        }
        if !sample.values.contains(&rendered.locale) {
            sample.values.insert(rendered.locale.clone());
        }
    };
    plan::plan_with(
        campaign,
        &renderer,
        None,
        &delivery,
        crate::clock::now(),
        Some(&mut each),
    )
    .map_err(|e| e.to_string())?;
    if let Some(error) = failed {
        return Err(error);
    }
    if let (Some(pick), true) = (pick, samples.is_empty()) {
        return Err(match pick {
            Pick::Row(line) => format!(
                "no recipient on line {line} of `{}`: it is the header, beyond the end, or a row that is not sent (a duplicate, suppressed or invalid)",
                campaign.audience.file.display()
            ),
            Pick::Address(address) => format!(
                "no recipient `{address}` in `{}` or `rollout.seed` (or one that is not sent: suppressed or invalid)",
                campaign.audience.file.display()
            ),
        });
    }
    // Within a catalog, the path most rows take first: it gets the catalog's own name.
    let mut samples: Vec<Sample> = samples.into_values().collect();
    samples.sort_by(|a, b| {
        (a.rendered.catalog.as_str(), std::cmp::Reverse(a.rows))
            .cmp(&(b.rendered.catalog.as_str(), std::cmp::Reverse(b.rows)))
    });
    write_samples(campaign, &renderer, out, &samples)?;
    Ok(samples)
}

fn write_samples(
    campaign: &Campaign,
    renderer: &Renderer,
    out: &Path,
    samples: &[Sample],
) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let from = match &campaign.from.name {
        Some(name) => format!("{name} <{}>", campaign.from.email),
        None => campaign.from.email.clone(),
    };
    let mut index = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Preview: {}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n",
        escape(&campaign.name),
        escape(&campaign.name)
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for sample in samples {
        let catalog = sample.rendered.catalog.as_str();
        let nth = seen.entry(catalog).or_default();
        *nth += 1;
        let name = if *nth == 1 {
            catalog.to_owned()
        } else {
            format!("{catalog}-{nth}")
        };
        let message = crate::message::build(
            &campaign.from,
            campaign.reply_to.as_ref(),
            &sample.to,
            &sample.rendered,
            None,
        )
        .map_err(|e| e.to_string())?;
        let write = |file: String, bytes: &[u8]| {
            fs::write(out.join(&file), bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", out.join(&file).display()))
        };
        write(format!("{name}.eml"), &message.formatted())?;
        let html = sample.rendered.html.clone().unwrap_or_else(|| {
            format!(
                "<pre>{}</pre>",
                escape(sample.rendered.text.as_deref().unwrap_or_default())
            )
        });
        write(format!("{name}.html"), html.as_bytes())?;
        let values: Vec<&str> = sample.values.iter().map(String::as_str).collect();
        let path = if sample.path.is_empty() {
            "the only one".to_owned()
        } else {
            sample
                .path
                .iter()
                .filter_map(|i| renderer.branches().get(*i))
                .map(|b| format!("{} {}", b.at, b.tag))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let _ = write!(
            index,
            "<section class=\"locale\" id=\"{n}\">\n<h2>{n}</h2>\n<dl>\n<dt>Subject</dt><dd class=\"subject\">{}</dd>\n\
             <dt>From</dt><dd class=\"from\">{}</dd>\n<dt>To</dt><dd class=\"to\">{}</dd>\n\
             <dt>Catalog</dt><dd class=\"catalog\">{}</dd>\n<dt>Locale values</dt><dd class=\"values\">{}</dd>\n\
             <dt>Path</dt><dd class=\"path\">{}</dd>\n<dt>Stands for</dt><dd class=\"rows\">{}</dd>\n</dl>\n\
             <p><a href=\"{n}.eml\">{n}.eml</a> · <a href=\"{n}.html\">{n}.html</a></p>\n\
             <iframe src=\"{n}.html\" title=\"{n}\"></iframe>\n</section>\n",
            escape(&sample.rendered.subject),
            escape(&from),
            escape(&sample.to),
            escape(catalog),
            escape(&values.join(", ")),
            escape(&path),
            escape(&rows_label(campaign, sample)),
            n = escape(&name),
        );
    }
    index.push_str("</body></html>\n");
    fs::write(out.join("index.html"), index).map_err(|e| format!("cannot write index.html: {e}"))
}

/// `3 rows: lines 2, 5 and 9 of audiences/customers.csv`, the first few lines listed.
fn rows_label(campaign: &Campaign, sample: &Sample) -> String {
    let lines: Vec<String> = sample
        .lines
        .iter()
        .map(|line| {
            if *line == 0 {
                "rollout.seed".to_owned()
            } else {
                line.to_string()
            }
        })
        .collect();
    let more = sample.rows - sample.lines.len() as u64;
    let listed = if more > 0 {
        format!("{} and {} more", lines.join(", "), Thousands(more))
    } else {
        List::and(&lines).to_string()
    };
    format!(
        "{} {}: lines {listed} of {}",
        Thousands(sample.rows),
        crate::text::plural("row", sample.rows),
        campaign.audience.file.display()
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}section{border-top:1px solid #ccc;padding:1em 0}\
dt{font-weight:bold;float:left;width:9em}dd{margin-left:9em}iframe{width:100%;height:480px;border:1px solid #ddd}";

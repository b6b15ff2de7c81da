//! `herald preview`: one sample message per locale, and a gallery to review them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::args::PreviewArgs;
use super::{Exit, report, session};
use crate::manifest::Campaign;
use crate::plan;
use crate::render::{Rendered, Renderer};
use crate::text::{Count, List};

struct Sample {
    to: String,
    line: u64,
    rendered: Rendered,
}

pub fn run(args: &PreviewArgs) -> Exit {
    let Ok(manifests) = session::load(&args.path.path()) else {
        return Exit::Refused;
    };
    let campaign = match (args.campaign.as_deref(), manifests.campaigns.as_slice()) {
        (None, [only]) => only,
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|c| c.name.as_str()).collect();
            report::error(format_args!(
                "{} holds {}: say which to preview with --campaign ({})",
                args.path.path().display(),
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
    let out = &args.out;
    match write(campaign, out) {
        Ok(count) => {
            println!(
                "{} rendered to {}; open {}",
                Count("locale", count as u64),
                out.display(),
                out.join("index.html").display()
            );
            Exit::Success
        }
        Err(message) => {
            report::refused(&campaign.name, message);
            Exit::Refused
        }
    }
}

fn write(campaign: &Campaign, out: &Path) -> Result<usize, String> {
    let renderer = Renderer::new(campaign).map_err(|e| e.to_string())?;
    if campaign.unsubscribe.is_some() && !renderer.keyed() {
        report::warning(format_args!(
            "{} is not set: unsubscribe links in these samples use a fixed, guessable key",
            crate::render::UNSUBSCRIBE_KEY_ENV
        ));
    }
    let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
    let delivery = plan::Delivery::of(campaign, None);
    plan::plan_with(
        campaign,
        &renderer,
        None,
        &delivery,
        |recipient: &crate::audience::Recipient, rendered: &Rendered| {
            samples
                .entry(rendered.locale.clone())
                .or_insert_with(|| Sample {
                    to: recipient.email.clone(),
                    line: recipient.line,
                    rendered: rendered.clone(),
                });
        },
    )
    .map_err(|e| e.to_string())?;

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
    for (locale, sample) in &samples {
        let message = crate::message::build(
            &campaign.from,
            campaign.reply_to.as_ref(),
            &sample.to,
            &sample.rendered,
            None,
        )
        .map_err(|e| e.to_string())?;
        let write = |name: String, bytes: &[u8]| {
            fs::write(out.join(&name), bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", out.join(&name).display()))
        };
        write(format!("{locale}.eml"), &message.formatted())?;
        let html = sample.rendered.html.clone().unwrap_or_else(|| {
            format!(
                "<pre>{}</pre>",
                escape(sample.rendered.text.as_deref().unwrap_or_default())
            )
        });
        write(format!("{locale}.html"), html.as_bytes())?;
        let _ = write!(
            index,
            "<section class=\"locale\" id=\"{l}\">\n<h2>{l}</h2>\n<dl>\n<dt>Subject</dt><dd class=\"subject\">{}</dd>\n\
             <dt>From</dt><dd class=\"from\">{}</dd>\n<dt>To</dt><dd class=\"to\">{}</dd>\n\
             <dt>Catalog</dt><dd class=\"catalog\">{}</dd>\n<dt>Audience line</dt><dd>{}</dd>\n</dl>\n\
             <p><a href=\"{l}.eml\">{l}.eml</a> · <a href=\"{l}.html\">{l}.html</a></p>\n\
             <iframe src=\"{l}.html\" title=\"{l}\"></iframe>\n</section>\n",
            escape(&sample.rendered.subject),
            escape(&from),
            escape(&sample.to),
            escape(&sample.rendered.catalog),
            sample.line,
            l = escape(locale),
        );
    }
    index.push_str("</body></html>\n");
    fs::write(out.join("index.html"), index)
        .map_err(|e| format!("cannot write index.html: {e}"))?;
    Ok(samples.len())
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}section{border-top:1px solid #ccc;padding:1em 0}\
dt{font-weight:bold;float:left;width:9em}dd{margin-left:9em}iframe{width:100%;height:480px;border:1px solid #ddd}";

/// Text for an HTML page, with the same escaping as `.html` templates.
fn escape(text: &str) -> String {
    crate::render::escape_html(text)
}

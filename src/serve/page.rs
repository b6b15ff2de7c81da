//! `GET /`: a read-only status page for the operator watching a send. Server-rendered
//! HTML that refreshes itself every few seconds; no script. Every text from manifests or
//! the store is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use minijinja::HtmlEscape;

use crate::live::CampaignLive;
use crate::plan::human_duration;
use crate::status::CampaignStatus;

/// How often the page reloads itself, in seconds.
const REFRESH: u32 = 5;

/// The page for the campaigns `live` knows, with counts from `statuses`.
pub fn render(live: &BTreeMap<String, CampaignLive>, statuses: &[CampaignStatus]) -> String {
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>herald</title><style>{STYLE}</style></head>\n<body>\n<h1>herald</h1>\n"
    );
    if live.is_empty() {
        html.push_str("<p>No campaigns.</p>\n");
    }
    for (name, campaign) in live {
        let status = statuses.iter().find(|s| s.name == *name);
        section(&mut html, name, campaign, status);
    }
    let _ = write!(
        html,
        "<footer>Refreshes every {REFRESH} s. <a href=\"/status\">JSON</a> · <a href=\"/metrics\">metrics</a></footer>\n</body></html>\n"
    );
    html
}

fn section(html: &mut String, name: &str, live: &CampaignLive, status: Option<&CampaignStatus>) {
    let counts = status.map(|s| s.counts).unwrap_or_default();
    let uncertain = counts.uncertain + counts.in_flight;
    let left = live
        .due
        .saturating_sub(live.sent + live.failed + live.uncertain);
    let (condition, class) = match (&live.halted, live.paused) {
        (Some(_), _) => ("halted", "halted"),
        (None, true) => ("paused", "paused"),
        (None, false) if live.sending_since.is_some() => ("sending", "sending"),
        (None, false) => ("idle", "idle"),
    };
    let _ = write!(
        html,
        "<section class=\"campaign\" id=\"{id}\">\n<h2>{id} <span class=\"state {class}\">{condition}</span></h2>\n",
        id = HtmlEscape(name),
    );
    let parts = [
        ("sent", counts.sent),
        ("failed", counts.failed),
        ("uncertain", uncertain),
        ("due", left),
        ("suppressed", live.suppressed),
    ];
    let total: u64 = parts.iter().map(|(_, n)| n).sum();
    let label = parts
        .iter()
        .map(|(what, n)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        html,
        "<div class=\"bar\" role=\"img\" aria-label=\"{}\">",
        HtmlEscape(&label)
    );
    for (what, n) in parts {
        if n > 0 {
            #[allow(clippy::cast_precision_loss)]
            let width = n as f64 * 100.0 / total as f64;
            let _ = write!(
                html,
                "<span class=\"{what}\" style=\"width:{width:.3}%\"></span>"
            );
        }
    }
    html.push_str("</div>\n<dl>\n");
    for (what, n) in parts {
        let _ = writeln!(html, "<dt>{what}</dt><dd class=\"{what}\">{n}</dd>");
    }
    details(html, live, status);
    html.push_str("</dl>\n");
    for note in [live.halted.as_ref(), live.waiting.as_ref()]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", HtmlEscape(note));
    }
    html.push_str("</section>\n");
}

/// Rate, ETA, stage, revision, transport and commit, as `<dt>`/`<dd>` pairs.
fn details(html: &mut String, live: &CampaignLive, status: Option<&CampaignStatus>) {
    #[allow(clippy::cast_precision_loss)]
    let rate = match (live.rate(), live.last_run) {
        (Some(rate), _) => format!("{rate:.0}/s"),
        (None, Some((sent, seconds))) if seconds > 0.0 && sent > 0 => format!(
            "{:.0}/s in the last run ({sent} in {})",
            sent as f64 / seconds,
            human_duration(seconds)
        ),
        _ => "-".to_owned(),
    };
    let eta = live.eta().map_or_else(|| "-".to_owned(), human_duration);
    let stage = live.stage.map_or("-", crate::manifest::Stage::as_str);
    let commit = status
        .and_then(|s| s.git.as_ref())
        .or(live.git.as_ref())
        .map_or_else(
            || "-".to_owned(),
            |g| {
                format!(
                    "{}{}",
                    g.commit,
                    if g.dirty {
                        " (with uncommitted changes)"
                    } else {
                        ""
                    }
                )
            },
        );
    for (what, value) in [
        ("rate", rate),
        ("eta", eta),
        ("stage", stage.to_owned()),
        ("revision", live.revision.to_string()),
        ("transport", live.transport.clone()),
        ("commit", commit),
    ] {
        let _ = writeln!(
            html,
            "<dt>{what}</dt><dd class=\"{what}\">{}</dd>",
            HtmlEscape(&value)
        );
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2937}\
section{border-top:1px solid #d1d5db;padding:1em 0}\
h2{font-size:1.2em}.state{font-size:.8em;padding:.1em .5em;border-radius:.3em;background:#e5e7eb}\
.state.sending{background:#dbeafe}.state.halted{background:#fee2e2}.state.paused{background:#fef3c7}\
.bar{display:flex;height:1.4em;background:#f3f4f6;border-radius:.3em;overflow:hidden;margin:.5em 0}\
.bar .sent{background:#16a34a}.bar .failed{background:#dc2626}.bar .uncertain{background:#d97706}\
.bar .due{background:#9ca3af}.bar .suppressed{background:#7c3aed}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}\
.note{background:#fef2f2;padding:.5em}footer{margin-top:2em;font-size:.9em;color:#6b7280}";

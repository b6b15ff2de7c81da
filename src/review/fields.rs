//! The manifest fields a merge changes, old and new, as a reviewer reads them: the
//! transport and its limits, the rate, the batch, the stage and rollout, the sender, the
//! templates and catalogs named, the audience and its lists, the unsubscribe link, the
//! safety gate, the schedule and the revision (and whether it resends). Paths are shown relative to each side's own folder, so a
//! base branch checked out elsewhere compares as the same files.

use std::path::Path;

use serde::Serialize;

use crate::langtag::LanguageTag;
use crate::manifest::{Address, Campaign, Resend, Revision, Schedule, Transport};

/// One field whose value changes; `None` on the side without the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The manifest key, e.g. `spec.rate`.
    pub field: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A campaign and the folder its paths are shown relative to.
#[derive(Clone, Copy)]
pub struct Rooted<'a> {
    pub campaign: &'a Campaign,
    pub root: &'a Path,
}

/// Every field as text, in the order a reviewer reads them.
fn fields(side: Rooted<'_>) -> Vec<(&'static str, String)> {
    let c = side.campaign;
    let path = |p: &Path| {
        let shown = p.strip_prefix(side.root).unwrap_or(p);
        shown.display().to_string()
    };
    let or_none = |value: Option<String>| value.unwrap_or_else(|| "none".to_owned());
    let mut out = vec![
        ("spec.transport", transport(&c.transport)),
        (
            "transport rate",
            or_none(c.transport.rate.as_ref().map(ToString::to_string)),
        ),
        ("transport concurrency", c.transport.concurrency.to_string()),
        ("spec.rate", c.rate.to_string()),
        ("spec.batch.size", c.batch_size.to_string()),
        ("spec.stage", c.stage.as_str().to_owned()),
        (
            "spec.rollout.seed",
            crate::text::Count("address", c.rollout.seed.len() as u64).to_string(),
        ),
        (
            "spec.rollout.canary_percent",
            or_none(c.rollout.canary_percent.map(|p| format!("{p}%"))),
        ),
        ("spec.paused", c.paused.to_string()),
        ("spec.revision", revision(&c.revision)),
        ("spec.from", address(&c.from)),
        ("spec.reply_to", or_none(c.reply_to.as_ref().map(address))),
        ("spec.template.subject", c.template.subject.clone()),
        (
            "spec.template.html",
            or_none(c.template.html.as_deref().map(path)),
        ),
        (
            "spec.template.text",
            or_none(c.template.text.as_deref().map(path)),
        ),
        ("spec.locales.default", c.locales.default.clone()),
        ("spec.locales.field", c.locales.field.clone()),
        ("spec.locales.catalog", path(&c.locales.catalog)),
        ("spec.locales.map", locale_map(&c.locales.map)),
        ("spec.locales.on_unknown", word(c.locales.on_unknown)),
        ("spec.audience.file", path(&c.audience.file)),
        ("spec.audience.email_field", c.audience.email_field.clone()),
        (
            "spec.audience.suppress",
            c.audience
                .suppress
                .iter()
                .map(|list| match &list.email_field {
                    Some(field) => format!("{} (email_field {field})", path(&list.file)),
                    None => path(&list.file),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("spec.audience.on_invalid", word(c.audience.on_invalid)),
        (
            "spec.unsubscribe.url",
            or_none(c.unsubscribe.as_ref().map(|u| u.url.clone())),
        ),
        (
            "spec.halt.max_failure_rate",
            c.halt.max_failure_rate.to_string(),
        ),
    ];
    out.extend(schedule(c.schedule.as_ref()));
    for (_, value) in &mut out {
        if value.is_empty() {
            "none".clone_into(value);
        }
    }
    out
}

/// The fields shown of a campaign that is added or removed.
const HEADLINE: &[&str] = &[
    "spec.transport",
    "spec.rate",
    "spec.batch.size",
    "spec.stage",
    "spec.revision",
    "spec.from",
    "spec.audience.file",
];

/// `spec.schedule`'s fields, instants in UTC; `none` for what it does not set.
fn schedule(schedule: Option<&Schedule>) -> [(&'static str, String); 5] {
    let none = || "none".to_owned();
    let instant = |t: Option<jiff::Timestamp>| t.map_or_else(none, |t| t.to_string());
    let Some(s) = schedule else {
        return [
            ("spec.schedule.not_before", none()),
            ("spec.schedule.not_after", none()),
            ("spec.schedule.window", none()),
            ("spec.schedule.timezone", none()),
            ("spec.schedule.timezone_field", none()),
        ];
    };
    let window = s.window.as_ref().map_or_else(none, |w| {
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let days: Vec<&str> = DAYS
            .iter()
            .zip(w.days)
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        format!(
            "{} {}-{}",
            days.join(","),
            w.from.strftime("%H:%M"),
            w.to.strftime("%H:%M")
        )
    });
    [
        ("spec.schedule.not_before", instant(s.not_before)),
        ("spec.schedule.not_after", instant(s.not_after)),
        ("spec.schedule.window", window),
        (
            "spec.schedule.timezone",
            s.timezone.iana_name().unwrap_or("UTC").to_owned(),
        ),
        (
            "spec.schedule.timezone_field",
            s.timezone_field.clone().unwrap_or_else(none),
        ),
    ]
}

fn transport(t: &Transport) -> String {
    let kind = serde_json::to_value(t.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if kind == t.name {
        t.name.clone()
    } else {
        format!("{} ({kind})", t.name)
    }
}

/// A value as the manifest spells it: `refuse`, `default`, `skip`.
fn word(value: impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `2`, or `2, resend: all` for a correction.
fn revision(r: &Revision) -> String {
    match r.resend {
        Resend::All => format!("{}, resend: all", r.number),
        Resend::None => r.number.to_string(),
    }
}

/// `deutsch: de, español: es` (keys as matched: lowercased, sorted).
fn locale_map(map: &[(String, LanguageTag)]) -> String {
    map.iter()
        .map(|(value, tag)| format!("{value}: {tag}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn address(a: &Address) -> String {
    match &a.name {
        Some(name) => format!("{name} <{}>", a.email),
        None => a.email.clone(),
    }
}

/// The fields that differ between `old` and `new`; the headline fields of the side there
/// is when the other is missing.
pub fn changes(old: Option<Rooted<'_>>, new: Option<Rooted<'_>>) -> Vec<FieldChange> {
    let before = old.map(fields).unwrap_or_default();
    let after = new.map(fields).unwrap_or_default();
    let mut out = Vec::new();
    let keys: Vec<&'static str> = if old.is_none() || new.is_none() {
        HEADLINE.to_vec()
    } else {
        after.iter().map(|(k, _)| *k).collect()
    };
    let value = |list: &[(&'static str, String)], key: &str| {
        list.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    };
    for key in keys {
        let (old, new) = (value(&before, key), value(&after, key));
        if old != new {
            out.push(FieldChange {
                field: key,
                old,
                new,
            });
        }
    }
    out
}

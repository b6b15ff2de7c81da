//! Rules about one document at a time: names, addresses, rates, rollout, referenced files,
//! and which settings each transport type takes. Rules that relate documents to each other,
//! and the isolation rule, are in `crate::policy`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Location, Problem};
use super::model::{Address, CampaignDoc, RateSpec, Rollout, Stage, TransportDoc, TransportKind};
use super::rate::Rate;
use super::source::{Documents, Loaded};
use crate::address;

pub fn campaign(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    name(loaded, &loaded.doc.metadata.name, out);
    sender(loaded, "spec.from", &spec.from, out);
    if let Some(reply_to) = &spec.reply_to {
        sender(loaded, "spec.reply_to", reply_to, out);
    }
    single_line(loaded, "spec.template.subject", &spec.template.subject, out);
    if let Some(unsubscribe) = &spec.unsubscribe {
        single_line(loaded, "spec.unsubscribe.url", &unsubscribe.url, out);
    }
    match &spec.rate {
        None => out.push(loaded.at_key("spec.rate", Problem::RateMissing)),
        Some(value) => rate(loaded, "spec.rate", value, out),
    }
    files(loaded, out);
    rollout(loaded, out);
    if let Some(halt) = &spec.halt {
        let value = halt.max_failure_rate;
        if !(value > 0.0 && value <= 1.0) {
            out.push(loaded.at_value(
                "spec.halt.max_failure_rate",
                Problem::FailureRateOutOfRange { value },
            ));
        }
    }
    if spec.revision == 0 {
        out.push(loaded.at_value("spec.revision", Problem::RevisionZero));
    }
}

pub fn transport(loaded: &Loaded<TransportDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    name(loaded, &loaded.doc.metadata.name, out);

    // Secrets first: the value is never echoed, only where it should have gone.
    for (field, present, instead) in [
        ("api_key", spec.api_key.is_some(), "api_key_env"),
        ("password", spec.password.is_some(), "password_env"),
        ("token", spec.token.is_some(), "api_key_env"),
    ] {
        if present {
            let problem = Problem::SecretInline { instead };
            out.push(loaded.at_key(&format!("spec.{field}"), problem));
        }
    }

    settings(loaded, out);

    let public_key = spec.events.as_ref().and_then(|e| e.public_key_env.clone());
    let signing_key = spec.events.as_ref().and_then(|e| e.signing_key_env.clone());
    for (field, value) in [
        ("api_key_env", &spec.api_key_env),
        ("server_token_env", &spec.server_token_env),
        ("username_env", &spec.username_env),
        ("password_env", &spec.password_env),
        ("events.public_key_env", &public_key),
        ("events.signing_key_env", &signing_key),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !is_env_name(v)) {
            let problem = Problem::EnvNameInvalid {
                value: value.to_owned(),
            };
            out.push(loaded.at_value(&format!("spec.{field}"), problem));
        }
    }
    if let Some(value) = spec.concurrency.filter(|c| !(1..=256).contains(c)) {
        out.push(loaded.at_value("spec.concurrency", Problem::ConcurrencyOutOfRange { value }));
    }
    if spec.timeout_seconds == Some(0) {
        out.push(loaded.at_value("spec.timeout_seconds", Problem::TimeoutZero));
    }
    if spec.kind == TransportKind::Smtp
        && spec.username_env.is_some() != spec.password_env.is_some()
    {
        out.push(loaded.at_key("spec.username_env", Problem::CredentialsUnpaired));
    }
    if let Some(endpoint) = &spec.endpoint {
        if !is_http_url(endpoint) {
            let problem = Problem::EndpointInvalid {
                value: endpoint.clone(),
            };
            out.push(loaded.at_value("spec.endpoint", problem));
        }
    }
    if let Some(domain) = spec.domain.as_deref().filter(|d| !is_domain(d)) {
        let problem = Problem::DomainInvalid {
            value: domain.to_owned(),
        };
        out.push(loaded.at_value("spec.domain", problem));
    }
    if let Some(value) = &spec.rate {
        rate(loaded, "spec.rate", value, out);
    }
}

/// Which settings each type takes, and which it needs.
fn settings(loaded: &Loaded<TransportDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let kind = spec.kind.as_str();
    let events = spec.events.as_ref();
    let (sendgrid, mailgun, postmark, smtp) = (
        TransportKind::Sendgrid,
        TransportKind::Mailgun,
        TransportKind::Postmark,
        TransportKind::Smtp,
    );
    // (field, present, the kinds that take it, the kinds that need it)
    let settings: [(&str, bool, &[TransportKind], &[TransportKind]); 15] = [
        (
            "server_token_env",
            spec.server_token_env.is_some(),
            &[postmark],
            &[postmark],
        ),
        (
            "message_stream",
            spec.message_stream.is_some(),
            &[postmark],
            &[],
        ),
        ("domain", spec.domain.is_some(), &[mailgun], &[mailgun]),
        ("events", events.is_some(), &[sendgrid, mailgun], &[]),
        (
            "events.public_key_env",
            events.is_some_and(|e| e.public_key_env.is_some()),
            &[sendgrid],
            if events.is_some() { &[sendgrid] } else { &[] },
        ),
        (
            "events.signing_key_env",
            events.is_some_and(|e| e.signing_key_env.is_some()),
            &[mailgun],
            if events.is_some() { &[mailgun] } else { &[] },
        ),
        (
            "dir",
            spec.dir.is_some(),
            &[TransportKind::Outbox],
            &[TransportKind::Outbox],
        ),
        (
            "endpoint",
            spec.endpoint.is_some(),
            &[sendgrid, mailgun, postmark],
            &[],
        ),
        (
            "api_key_env",
            spec.api_key_env.is_some(),
            &[sendgrid, mailgun],
            &[sendgrid, mailgun],
        ),
        ("host", spec.host.is_some(), &[smtp], &[smtp]),
        ("port", spec.port.is_some(), &[smtp], &[]),
        ("tls", spec.tls.is_some(), &[smtp], &[]),
        ("username_env", spec.username_env.is_some(), &[smtp], &[]),
        ("password_env", spec.password_env.is_some(), &[smtp], &[]),
        (
            "timeout_seconds",
            spec.timeout_seconds.is_some(),
            &[sendgrid, mailgun, postmark, smtp],
            &[],
        ),
    ];
    for (field, present, allowed, required) in settings {
        let key = format!("spec.{field}");
        if present && !allowed.contains(&spec.kind) {
            out.push(loaded.at_key(&key, Problem::TransportFieldNotForType { kind }));
        } else if !present && required.contains(&spec.kind) {
            out.push(loaded.at_key(&key, Problem::TransportFieldRequired { kind }));
        }
    }
}

/// Names are unique per kind across all files; the first definition wins the message.
pub fn unique_names(documents: &Documents, out: &mut Vec<Diagnostic>) {
    fn check<T>(
        kind: &'static str,
        items: &[Loaded<T>],
        name: impl Fn(&T) -> &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut seen: HashMap<&str, Location> = HashMap::new();
        for item in items {
            let this = name(&item.doc);
            match seen.get(this) {
                Some(first) => {
                    let problem = Problem::NameDuplicate {
                        kind,
                        name: this.to_owned(),
                        first: first.clone(),
                    };
                    out.push(item.at_value("metadata.name", problem));
                }
                None => {
                    seen.insert(this, item.location());
                }
            }
        }
    }
    check("campaign", &documents.campaigns, |d| &d.metadata.name, out);
    check(
        "transport",
        &documents.transports,
        |d| &d.metadata.name,
        out,
    );
}

fn name<T>(loaded: &Loaded<T>, name: &str, out: &mut Vec<Diagnostic>) {
    let valid = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        let problem = Problem::NameInvalid {
            name: name.to_owned(),
        };
        out.push(loaded.at_value("metadata.name", problem));
    }
}

fn sender<T>(loaded: &Loaded<T>, key: &str, value: &Address, out: &mut Vec<Diagnostic>) {
    let email_key = format!("{key}.email");
    if !address::is_valid(&value.email) {
        let problem = if has_line_break(&value.email) {
            line_break(&value.email)
        } else {
            Problem::AddressInvalid {
                value: value.email.clone(),
            }
        };
        out.push(loaded.at_value(&email_key, problem));
    }
    if let Some(display) = &value.name {
        single_line(loaded, &format!("{key}.name"), display, out);
    }
}

fn single_line<T>(loaded: &Loaded<T>, key: &str, value: &str, out: &mut Vec<Diagnostic>) {
    if has_line_break(value) {
        out.push(loaded.at_value(key, line_break(value)));
    }
}

fn has_line_break(value: &str) -> bool {
    value.contains(['\r', '\n'])
}

fn line_break(value: &str) -> Problem {
    Problem::LineBreak {
        value: format!("`{}`", value.escape_debug()),
    }
}

fn rate<T>(loaded: &Loaded<T>, key: &str, value: &RateSpec, out: &mut Vec<Diagnostic>) {
    match Rate::parse(value) {
        Ok(_) => {}
        Err((Some(field), problem)) => {
            out.push(loaded.at_value(&format!("{key}.{field}"), problem));
        }
        Err((None, problem)) => out.push(loaded.at_key(key, problem)),
    }
}

fn files(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let inputs = Inputs::new(loaded, out);
    let template = &spec.template;
    if template.html.is_none() && template.text.is_none() {
        out.push(loaded.at_key("spec.template", Problem::TemplateBodyMissing));
    }
    for (key, path) in [
        ("spec.template.html", &template.html),
        ("spec.template.text", &template.text),
    ] {
        if let Some(path) = path {
            inputs.file(key, path, out);
        }
    }

    let locales = &spec.locales;
    if !is_locale(&locales.default) {
        out.push(loaded.at_value(
            "spec.locales.default",
            Problem::LocaleInvalid {
                value: locales.default.clone(),
            },
        ));
    }
    if let Some(folder) = inputs.folder("spec.locales.catalog", &locales.catalog, out) {
        inputs.catalogs(&folder, out);
        if is_locale(&locales.default) {
            let expected = folder.join(format!("{}.yaml", locales.default));
            let alternative = folder.join(format!("{}.yml", locales.default));
            if !expected.is_file() && !alternative.is_file() {
                let problem = Problem::DefaultCatalogMissing {
                    locale: locales.default.clone(),
                    expected,
                };
                out.push(loaded.at_value("spec.locales.default", problem));
            }
        }
    }

    let audience = &spec.audience;
    let extension = audience.file.extension().and_then(|e| e.to_str());
    if matches!(extension, Some("csv" | "jsonl")) {
        inputs.file("spec.audience.file", &audience.file, out);
    } else {
        let value = audience.file.display().to_string();
        out.push(loaded.at_value("spec.audience.file", Problem::AudienceFormat { value }));
    }
    // The state store's own suppression reasons take a few of the sources.
    let most = crate::audience::MAX_SOURCES - 4;
    if audience.suppress.len() > most {
        let problem = Problem::TooManySuppressionLists {
            count: audience.suppress.len(),
            most,
        };
        out.push(loaded.at_key("spec.audience.suppress", problem));
    }
    for (i, path) in audience.suppress.iter().enumerate() {
        let key = format!("spec.audience.suppress[{i}]");
        let extension = path.extension().and_then(|e| e.to_str());
        if matches!(extension, Some("csv" | "jsonl" | "txt")) {
            inputs.file(&key, path, out);
        } else {
            let value = path.display().to_string();
            out.push(loaded.at_value(&key, Problem::SuppressionFormat { value }));
        }
    }
}

/// Where a campaign may read from: its manifest's folder tree, and `spec.allow_outside`.
struct Inputs<'a> {
    loaded: &'a Loaded<CampaignDoc>,
    /// Canonical folders, the manifest's own first.
    roots: Vec<PathBuf>,
}

impl<'a> Inputs<'a> {
    fn new(loaded: &'a Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) -> Self {
        let dir = loaded.dir();
        let own = canonical(dir);
        let mut roots: Vec<PathBuf> = own.into_iter().collect();
        for (i, folder) in loaded.doc.spec.allow_outside.iter().enumerate() {
            let key = format!("spec.allow_outside[{i}]");
            match canonical(&dir.join(folder)) {
                Some(root) if root.is_dir() => roots.push(root),
                _ => {
                    let value = folder.display().to_string();
                    out.push(loaded.at_value(&key, Problem::NotAFolder { value }));
                }
            }
        }
        Self { loaded, roots }
    }

    /// Checks that the file at `path` exists, is a regular file and may be read.
    fn file(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) {
        let Some(resolved) = self.exists(key, path, out) else {
            return;
        };
        if !crate::input::is_regular(&resolved) {
            let problem = Problem::NotAFile {
                value: path.display().to_string(),
                what: crate::input::describe_path(&resolved),
            };
            out.push(self.loaded.at_value(key, problem));
            return;
        }
        self.inside(key, path, &resolved, out);
    }

    /// Checks that the folder at `path` exists and may be read; its canonical path.
    fn folder(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) -> Option<PathBuf> {
        let resolved = self.exists(key, path, out)?;
        if !resolved.is_dir() {
            let value = path.display().to_string();
            out.push(self.loaded.at_value(key, Problem::NotAFolder { value }));
            return None;
        }
        self.inside(key, path, &resolved, out).then_some(resolved)
    }

    /// Every catalog in `folder` must be a regular file that may be read.
    fn catalogs(&self, folder: &Path, out: &mut Vec<Diagnostic>) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        let mut catalogs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        catalogs.sort();
        for path in catalogs {
            self.file("spec.locales.catalog", &path, out);
        }
    }

    /// The canonical path of `path` (relative to the manifest), or a diagnostic.
    fn exists(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) -> Option<PathBuf> {
        let resolved = self.loaded.dir().join(path);
        if let Some(found) = canonical(&resolved) {
            return Some(found);
        }
        let value = path.display().to_string();
        out.push(
            self.loaded
                .at_value(key, Problem::FileNotFound { value, resolved }),
        );
        None
    }

    fn inside(&self, key: &str, path: &Path, resolved: &Path, out: &mut Vec<Diagnostic>) -> bool {
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            return true;
        }
        let problem = Problem::OutsideManifestFolder {
            value: path.display().to_string(),
            resolved: resolved.to_owned(),
            folder: self.roots.first().cloned().unwrap_or_default(),
        };
        out.push(self.loaded.at_value(key, problem));
        false
    }
}

/// `path` with symlinks, `.` and `..` resolved; `None` when it does not exist.
fn canonical(path: &Path) -> Option<PathBuf> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::fs::canonicalize(path).ok()
}

fn rollout(loaded: &Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let none = Rollout::default();
    let rollout = spec.rollout.as_ref().unwrap_or(&none);
    for (i, seed) in rollout.seed.iter().enumerate() {
        if !address::is_valid(seed) {
            let problem = Problem::AddressInvalid {
                value: seed.escape_debug().to_string(),
            };
            out.push(loaded.at_value(&format!("spec.rollout.seed[{i}]"), problem));
        }
    }
    if let Some(value) = rollout.canary_percent {
        if !(value > 0.0 && value <= 100.0) {
            out.push(loaded.at_value(
                "spec.rollout.canary_percent",
                Problem::CanaryPercentOutOfRange { value },
            ));
        }
    }
    match spec.stage {
        Stage::Seed if rollout.seed.is_empty() => {
            out.push(loaded.at_value("spec.stage", Problem::SeedWithoutSeeds));
        }
        Stage::Canary if rollout.canary_percent.is_none() => {
            out.push(loaded.at_value("spec.stage", Problem::CanaryWithoutPercent));
        }
        _ => {}
    }
}

fn is_env_name(value: &str) -> bool {
    let mut bytes = value.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn is_http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// `mg.example.com`: dot-separated labels of letters, digits and inner hyphens. It goes
/// into the API's path, so nothing else may.
fn is_domain(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').count() >= 2
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `en`, `zh-TW`, `pt-BR`, `sr-Latn-RS`: a 2-3 letter language and alphanumeric subtags.
pub fn is_locale(value: &str) -> bool {
    let mut parts = value.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_tags() {
        for good in ["en", "zh-TW", "pt-BR", "sr-Latn-RS", "yue"] {
            assert!(is_locale(good), "{good}");
        }
        for bad in [
            "",
            "EN",
            "e",
            "english",
            "zh_TW",
            "zh-",
            "en-Latn-toolongsubtag",
        ] {
            assert!(!is_locale(bad), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("SENDGRID_API_KEY"));
        assert!(is_env_name("_X1"));
        assert!(!is_env_name("sendgrid_key"));
        assert!(!is_env_name("1KEY"));
        assert!(!is_env_name("SG.abc"));
    }
}

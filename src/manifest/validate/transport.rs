//! The rules of one transport document: which settings each type takes and needs, and
//! secrets never written inline.

use super::syntax::{is_domain, is_env_name, is_http_url, is_loopback, is_topic_arn};
use super::values::{name, rate};
use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::{Tls, TransportDoc, TransportKind};
use crate::manifest::source::Loaded;

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

    let events = spec.events.as_ref();
    let public_key = events.and_then(|e| e.public_key_env.clone());
    let signing_key = events.and_then(|e| e.signing_key_env.clone());
    let events_username = events.and_then(|e| e.username_env.clone());
    let events_password = events.and_then(|e| e.password_env.clone());
    for (field, value) in [
        ("api_key_env", &spec.api_key_env),
        ("server_token_env", &spec.server_token_env),
        ("username_env", &spec.username_env),
        ("password_env", &spec.password_env),
        ("events.public_key_env", &public_key),
        ("events.signing_key_env", &signing_key),
        ("events.username_env", &events_username),
        ("events.password_env", &events_password),
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
    if spec.kind == TransportKind::Smtp {
        smtp(loaded, out);
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
    if let Some(arn) = events
        .and_then(|e| e.topic_arn.as_deref())
        .filter(|a| !is_topic_arn(a))
    {
        let problem = Problem::TopicArnInvalid {
            value: arn.to_owned(),
        };
        out.push(loaded.at_value("spec.events.topic_arn", problem));
    }
}

/// A setting: its field, whether it is there, the kinds that take it, the kinds that need it.
type Row<'a> = (&'a str, bool, &'a [TransportKind], &'a [TransportKind]);

/// Which settings each type takes, and which it needs.
fn settings(loaded: &Loaded<TransportDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let (sendgrid, mailgun, postmark, smtp) = (
        TransportKind::Sendgrid,
        TransportKind::Mailgun,
        TransportKind::Postmark,
        TransportKind::Smtp,
    );
    let rows: [Row<'_>; 16] = [
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
        ("tls_ca_file", spec.tls_ca_file.is_some(), &[smtp], &[]),
        ("tls_trust", spec.tls_trust.is_some(), &[smtp], &[]),
        (
            "allow_plaintext_auth",
            spec.allow_plaintext_auth.is_some(),
            &[smtp],
            &[],
        ),
        (
            "timeout_seconds",
            spec.timeout_seconds.is_some(),
            &[sendgrid, mailgun, postmark, smtp],
            &[],
        ),
        (
            "events",
            spec.events.is_some(),
            &[sendgrid, mailgun, postmark, smtp],
            &[],
        ),
    ];
    check(loaded, &rows, out);
    events(loaded, out);
}

/// Which `events` settings each type takes, and which it needs once it has `events`: each
/// provider verifies its events its own way.
fn events(loaded: &Loaded<TransportDoc>, out: &mut Vec<Diagnostic>) {
    let Some(events) = &loaded.doc.spec.events else {
        return;
    };
    let (sendgrid, mailgun, postmark, smtp) = (
        &[TransportKind::Sendgrid][..],
        &[TransportKind::Mailgun][..],
        &[TransportKind::Postmark][..],
        &[TransportKind::Smtp][..],
    );
    let rows: [Row<'_>; 5] = [
        (
            "events.public_key_env",
            events.public_key_env.is_some(),
            sendgrid,
            sendgrid,
        ),
        (
            "events.signing_key_env",
            events.signing_key_env.is_some(),
            mailgun,
            mailgun,
        ),
        (
            "events.username_env",
            events.username_env.is_some(),
            postmark,
            postmark,
        ),
        (
            "events.password_env",
            events.password_env.is_some(),
            postmark,
            postmark,
        ),
        ("events.topic_arn", events.topic_arn.is_some(), smtp, smtp),
    ];
    check(loaded, &rows, out);
}

/// A problem for each setting of `rows` that is there for a kind that does not take it,
/// or missing for a kind that needs it.
fn check(loaded: &Loaded<TransportDoc>, rows: &[Row<'_>], out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    let kind = spec.kind.as_str();
    for (field, present, allowed, required) in rows {
        let key = format!("spec.{field}");
        if *present && !allowed.contains(&spec.kind) {
            out.push(loaded.at_key(&key, Problem::TransportFieldNotForType { kind }));
        } else if !present && required.contains(&spec.kind) {
            out.push(loaded.at_key(&key, Problem::TransportFieldRequired { kind }));
        }
    }
}

/// An SMTP transport's TLS and credentials: credentials go only over TLS (or to this
/// machine), and a CA file must be there to be read.
fn smtp(loaded: &Loaded<TransportDoc>, out: &mut Vec<Diagnostic>) {
    let spec = &loaded.doc.spec;
    if spec.username_env.is_some() != spec.password_env.is_some() {
        out.push(loaded.at_key("spec.username_env", Problem::CredentialsUnpaired));
    }
    let plaintext = spec.tls == Some(Tls::None);
    let host = spec.host.as_deref().unwrap_or_default();
    if plaintext
        && spec.username_env.is_some()
        && spec.allow_plaintext_auth != Some(true)
        && !is_loopback(host)
    {
        let problem = Problem::PlaintextAuth {
            host: host.to_owned(),
        };
        out.push(loaded.at_value("spec.tls", problem));
    }
    if let Some(path) = &spec.tls_ca_file {
        if plaintext {
            out.push(loaded.at_key("spec.tls_ca_file", Problem::CaFileWithoutTls));
        }
        let resolved = loaded.dir().join(path);
        if !crate::input::is_regular(&resolved) {
            let problem = Problem::FileNotFound {
                value: path.display().to_string(),
                resolved,
            };
            out.push(loaded.at_value("spec.tls_ca_file", problem));
        }
    }
}

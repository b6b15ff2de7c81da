//! SendGrid's v3 API: `POST {endpoint}/v3/mail/send`, one personalization per recipient.
//!
//! A call's recipients share one request. When their messages have the same shape (see
//! `render::Shape`), the content is sent once with a tag where each personal value goes,
//! and each personalization carries that recipient's values as `substitutions`; SendGrid
//! puts them back. Everything else recipient-specific (the address, the subject, the
//! `List-Unsubscribe` headers, `custom_args`) lives only in that recipient's
//! personalization.
//!
//! # Guarantees
//! - Every personalization has exactly one `to` (`[To; 1]`).
//! - Before the request, for every recipient, the substitutions are applied to the shared
//!   content and subject exactly as SendGrid documents it (each tag replaced by its value,
//!   everywhere) and the result must be byte for byte the message herald rendered for
//!   them. A recipient for whom that fails, whose values hold a tag, or whose
//!   substitutions pass 10,000 bytes, gets a request of their own with their whole message.
//! - Tags hold a nonce drawn for each run, so recipient data cannot guess them.
//!
//! Answers: 202 is sent (with `X-Message-Id`); 429 is retried after `Retry-After`; 5xx
//! and refused connections are retried with backoff; 400/403/413 and other 4xx fail with
//! the provider's message; 401 stops the campaign (the key is wrong for everyone); a
//! timeout or a connection lost once the request may have been sent is `uncertain`.
//!
//! # Secrets
//! The API key is read from the environment variable the manifest names, sent only in
//! the `Authorization` header, and never printed, logged or stored; this type has no
//! `Debug` on purpose.

use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

use super::packing::MAX_PERSONAL_BYTES;
use super::{Deliver, Envelope, Outcome, TransportError};
use crate::manifest::model::Address;
use crate::manifest::{Campaign, Settings, Transport};
use crate::render::{Personal, Rendered};
use crate::secret::Secret;

pub struct SendGrid {
    client: reqwest::Client,
    url: String,
    key: Secret,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    campaign: String,
    /// Drawn for each run: part of every substitution tag.
    nonce: String,
}

impl SendGrid {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let Settings::SendGrid {
            endpoint,
            api_key_env,
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not a sendgrid transport".to_owned(),
            });
        };
        let key = super::key(&transport.name, api_key_env)?;
        let client = reqwest::Client::builder()
            .timeout(transport.timeout)
            .connect_timeout(transport.timeout)
            .pool_max_idle_per_host(transport.concurrency.get() as usize)
            .build()
            .expect("an HTTP client with rustls builds");
        Ok(Self {
            client,
            url: format!("{}/v3/mail/send", endpoint.trim_end_matches('/')),
            key,
            from: mailbox(&campaign.spec.from),
            reply_to: campaign.spec.reply_to.as_ref().map(mailbox),
            campaign: campaign.name.clone(),
            nonce: nonce(),
        })
    }

    /// One request; every envelope gets its outcome.
    async fn request(&self, envelopes: Vec<Envelope>, body: Vec<u8>) -> Vec<(Envelope, Outcome)> {
        let outcome = match self
            .client
            .post(&self.url)
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(response) => answer(response).await,
            Err(error) => transport_error(&error),
        };
        envelopes
            .into_iter()
            .map(|e| (e, outcome.clone()))
            .collect()
    }

    /// The request body: content (shared, or one recipient's own) and a personalization
    /// per recipient. Serialized straight from borrowed fields.
    fn body(&self, envelopes: &[Envelope], shared: Option<&Shared>) -> Vec<u8> {
        let own = &envelopes[0].rendered;
        let (text, html) = match shared {
            Some(shared) => (shared.text.as_deref(), shared.html.as_deref()),
            None => (own.text.as_deref(), own.html.as_deref()),
        };
        let content: Vec<Content<'_>> = [("text/plain", text), ("text/html", html)]
            .into_iter()
            .filter_map(|(kind, value)| value.map(|value| Content { kind, value }))
            .collect();
        let recipients: Vec<String> = envelopes
            .iter()
            .map(|e| crate::digest::short(&e.key))
            .collect();
        let unsubscribe: Vec<Option<String>> = envelopes
            .iter()
            .map(|e| {
                e.rendered
                    .unsubscribe_url
                    .as_ref()
                    .map(|url| format!("<{url}>"))
            })
            .collect();
        let substitutions: Vec<Option<Substitutions<'_>>> = envelopes
            .iter()
            .map(|e| shared.map(|shared| shared.substitutions(&e.rendered)))
            .collect();
        let personalizations = envelopes
            .iter()
            .zip(&recipients)
            .zip(&unsubscribe)
            .zip(&substitutions)
            .map(
                |(((envelope, recipient), unsubscribe), substitutions)| Personalization {
                    to: [To {
                        email: &envelope.to,
                    }],
                    subject: &envelope.rendered.subject,
                    headers: unsubscribe.as_deref().map(|url| Headers {
                        list_unsubscribe: url,
                        list_unsubscribe_post: "List-Unsubscribe=One-Click",
                    }),
                    substitutions: substitutions.as_ref(),
                    custom_args: CustomArgs {
                        campaign: &self.campaign,
                        recipient,
                    },
                },
            )
            .collect();
        let body = Body {
            personalizations,
            from: &self.from,
            reply_to: self.reply_to.as_ref(),
            content,
        };
        serde_json::to_vec(&body).expect("a request body serializes")
    }
}

impl Deliver for SendGrid {
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        // The recipients SendGrid can put back together from shared content, in one
        // request; everyone else in a request of their own.
        let shared = (batch.len() > 1)
            .then(|| Shared::of(&batch, &self.nonce))
            .flatten();
        let (together, alone): (Vec<Envelope>, Vec<Envelope>) = match &shared {
            Some(shared) => batch.into_iter().partition(|e| shared.proves(&e.rendered)),
            None => (Vec::new(), batch),
        };
        let mut requests = Vec::new();
        if !together.is_empty() {
            let body = self.body(&together, shared.as_ref());
            requests.push(self.request(together, body));
        }
        for envelope in alone {
            let body = self.body(std::slice::from_ref(&envelope), None);
            requests.push(self.request(vec![envelope], body));
        }
        futures::future::join_all(requests)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Content shared by the recipients of one shape, with a tag in place of each value.
struct Shared {
    text: Option<String>,
    html: Option<String>,
    /// The tags of the text's values, then the html's, in order.
    text_tags: Vec<String>,
    html_tags: Vec<String>,
    nonce: String,
}

impl Shared {
    /// The shared content of the first envelope's shape, when it has one.
    fn of(batch: &[Envelope], nonce: &str) -> Option<Self> {
        let shape = &batch[0].rendered.personal.as_ref()?.shape;
        let tagged = |texts: &[String], part: char| {
            let mut content = texts[0].clone();
            let mut tags = Vec::with_capacity(texts.len() - 1);
            for (i, text) in texts[1..].iter().enumerate() {
                let tag = format!("-{part}{nonce}{i}-");
                content.push_str(&tag);
                content.push_str(text);
                tags.push(tag);
            }
            (content, tags)
        };
        let (text, text_tags) = shape.text.as_ref().map(|d| tagged(d.texts(), 't')).unzip();
        let (html, html_tags) = shape.html.as_ref().map(|d| tagged(d.texts(), 'h')).unzip();
        Some(Self {
            text,
            html,
            text_tags: text_tags.unwrap_or_default(),
            html_tags: html_tags.unwrap_or_default(),
            nonce: nonce.to_owned(),
        })
    }

    /// One recipient's substitutions: each tag and the value it stands for.
    fn substitutions<'a>(&'a self, rendered: &'a Rendered) -> Substitutions<'a> {
        let Some(personal) = &rendered.personal else {
            return Substitutions(Vec::new());
        };
        let values = |tags: &'a [String], spans: &'a [(usize, usize)], text: Option<&'a str>| {
            let text = text.unwrap_or_default();
            tags.iter()
                .zip(spans)
                .map(move |(tag, (start, end))| (tag.as_str(), &text[*start..*end]))
        };
        Substitutions(
            values(&self.text_tags, &personal.text, rendered.text.as_deref())
                .chain(values(
                    &self.html_tags,
                    &personal.html,
                    rendered.html.as_deref(),
                ))
                .collect(),
        )
    }

    /// Whether SendGrid, given this content and the recipient's substitutions, assembles
    /// exactly the message herald rendered for them.
    fn proves(&self, rendered: &Rendered) -> bool {
        let Some(personal) = &rendered.personal else {
            return false;
        };
        if !self.same_shape(personal) {
            return false;
        }
        let substitutions = self.substitutions(rendered);
        let pairs = &substitutions.0;
        let bytes: usize = pairs
            .iter()
            .map(|(tag, value)| tag.len() + value.len())
            .sum();
        if bytes > MAX_PERSONAL_BYTES || pairs.iter().any(|(_, v)| v.contains(&self.nonce)) {
            return false;
        }
        // What SendGrid does: every tag replaced by its value, in the subject and content.
        let apply = |text: &str| {
            pairs.iter().fold(text.to_owned(), |text, (tag, value)| {
                text.replace(tag, value)
            })
        };
        apply(&rendered.subject) == rendered.subject
            && self.text.as_deref().map(apply).as_deref() == rendered.text.as_deref()
            && self.html.as_deref().map(apply).as_deref() == rendered.html.as_deref()
    }

    fn same_shape(&self, personal: &Personal) -> bool {
        personal.text.len() == self.text_tags.len() && personal.html.len() == self.html_tags.len()
    }
}

/// A personalization's `substitutions`: tag -> value.
struct Substitutions<'a>(Vec<(&'a str, &'a str)>);

impl Serialize for Substitutions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (tag, value) in &self.0 {
            map.serialize_entry(tag, value)?;
        }
        map.end()
    }
}

/// Eight random lowercase letters and digits.
fn nonce() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// `POST /v3/mail/send`, as much of it as herald uses.
#[derive(Serialize)]
struct Body<'a> {
    personalizations: Vec<Personalization<'a>>,
    from: &'a Mailbox,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a Mailbox>,
    content: Vec<Content<'a>>,
}

#[derive(Serialize)]
struct Personalization<'a> {
    /// Exactly one recipient, by construction.
    to: [To<'a>; 1],
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Headers<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    substitutions: Option<&'a Substitutions<'a>>,
    custom_args: CustomArgs<'a>,
}

#[derive(Serialize)]
struct To<'a> {
    email: &'a str,
}

#[derive(Serialize)]
struct Headers<'a> {
    #[serde(rename = "List-Unsubscribe")]
    list_unsubscribe: &'a str,
    #[serde(rename = "List-Unsubscribe-Post")]
    list_unsubscribe_post: &'a str,
}

#[derive(Serialize)]
struct CustomArgs<'a> {
    campaign: &'a str,
    /// A hash of the address, not the address.
    recipient: &'a str,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Mailbox {
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// A sender for SendGrid: the name is dropped when it holds `;` or `,`, which SendGrid
/// refuses in names.
fn mailbox(address: &Address) -> Mailbox {
    Mailbox {
        email: address.email.clone(),
        name: address
            .name
            .clone()
            .filter(|name| !name.contains([';', ','])),
    }
}

async fn answer(response: reqwest::Response) -> Outcome {
    let status = response.status();
    if status == reqwest::StatusCode::ACCEPTED {
        let id = response
            .headers()
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        return Outcome::Sent { id };
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let reason = format!("SendGrid answered {status}: {}", provider_message(&text));
    match status.as_u16() {
        401 => Outcome::Unauthorized { reason },
        429 => Outcome::Retry {
            after: retry_after,
            reason,
        },
        500..=599 => Outcome::Retry {
            after: None,
            reason,
        },
        _ => Outcome::Failed { reason },
    }
}

/// The provider's own words: `errors[].message`, or the body as it came (cut short).
fn provider_message(body: &str) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v["errors"].as_array().map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
    });
    match parsed {
        Some(messages) if !messages.is_empty() => messages.join("; "),
        _ => body.chars().take(200).collect(),
    }
}

/// No answer: before the connection was made nothing was sent, so retry; after it, the
/// request may have arrived, so the outcome is uncertain.
fn transport_error(error: &reqwest::Error) -> Outcome {
    let reason = error.to_string();
    if error.is_connect() {
        Outcome::Retry {
            after: None,
            reason: format!("cannot connect: {reason}"),
        }
    } else if error.is_timeout() {
        Outcome::Uncertain {
            reason: format!("no answer in time: {reason}"),
        }
    } else {
        Outcome::Uncertain {
            reason: format!("connection lost: {reason}"),
        }
    }
}

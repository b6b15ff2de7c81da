//! SendGrid's v3 API: `POST {endpoint}/v3/mail/send`, one personalization per recipient.
//!
//! Everything recipient-specific (the address, the subject, the `List-Unsubscribe`
//! headers, `custom_args`) lives only in that recipient's personalization. Recipients
//! whose bodies are identical share one call (up to the batch, at most 1,000); bodies that
//! differ go in calls of their own, so every recipient gets exactly their rendered content.
//! Calls run concurrently, at most `CONCURRENT_CALLS` at a time.
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

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use super::{Deliver, Envelope, Outcome, TransportError};
use crate::manifest::model::Address;
use crate::manifest::{Campaign, Transport};
use crate::secret::Secret;

const DEFAULT_ENDPOINT: &str = "https://api.sendgrid.com";
const CONCURRENT_CALLS: usize = 8;

pub struct SendGrid {
    client: reqwest::Client,
    url: String,
    key: Secret,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    campaign: String,
}

impl SendGrid {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let spec = &transport.spec;
        let variable = spec
            .api_key_env
            .clone()
            .expect("validated: a sendgrid transport has api_key_env");
        let key = super::key(&transport.name, &variable)?;
        let timeout = Duration::from_secs(u64::from(spec.timeout_seconds.unwrap_or(30)));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("an HTTP client with rustls builds");
        let endpoint = spec.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        Ok(Self {
            client,
            url: format!("{}/v3/mail/send", endpoint.trim_end_matches('/')),
            key,
            from: mailbox(&campaign.spec.from),
            reply_to: campaign.spec.reply_to.as_ref().map(mailbox),
            campaign: campaign.name.clone(),
        })
    }

    /// One request for recipients whose bodies are identical.
    async fn call(&self, group: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        let body = self.body(&group);
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
        group.into_iter().map(|e| (e, outcome.clone())).collect()
    }

    /// The request body: shared content at the top, one personalization per recipient.
    /// Serialized straight from borrowed fields: no copy of any body per recipient.
    fn body(&self, group: &[Envelope]) -> Vec<u8> {
        let first = &group[0].rendered;
        let mut content = Vec::new();
        if let Some(text) = &first.text {
            content.push(Content {
                kind: "text/plain",
                value: text,
            });
        }
        if let Some(html) = &first.html {
            content.push(Content {
                kind: "text/html",
                value: html,
            });
        }
        let recipients: Vec<String> = group.iter().map(|e| crate::digest::short(&e.key)).collect();
        let unsubscribe: Vec<Option<String>> = group
            .iter()
            .map(|e| {
                e.rendered
                    .unsubscribe_url
                    .as_ref()
                    .map(|url| format!("<{url}>"))
            })
            .collect();
        let personalizations = group
            .iter()
            .zip(&recipients)
            .zip(&unsubscribe)
            .map(|((envelope, recipient), unsubscribe)| Personalization {
                to: [To {
                    email: &envelope.to,
                }],
                subject: &envelope.rendered.subject,
                headers: unsubscribe.as_deref().map(|url| Headers {
                    list_unsubscribe: url,
                    list_unsubscribe_post: "List-Unsubscribe=One-Click",
                }),
                custom_args: CustomArgs {
                    campaign: &self.campaign,
                    recipient,
                },
            })
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
        let calls = futures::stream::iter(group_by_content(batch))
            .map(|group| self.call(group))
            .buffer_unordered(CONCURRENT_CALLS);
        calls
            .flat_map(futures::stream::iter)
            .collect::<Vec<_>>()
            .await
    }
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

/// Splits a batch into groups whose html and text are identical, keeping batch order.
/// Groups are found by the bodies' lengths, then compared in full: no hashing or copying
/// of kilobytes per recipient.
fn group_by_content(batch: Vec<Envelope>) -> Vec<Vec<Envelope>> {
    let lengths = |e: &Envelope| {
        let r = &e.rendered;
        (
            r.html.as_ref().map(String::len),
            r.text.as_ref().map(String::len),
        )
    };
    let same = |a: &Envelope, b: &Envelope| {
        a.rendered.html == b.rendered.html && a.rendered.text == b.rendered.text
    };
    let mut by_length: HashMap<(Option<usize>, Option<usize>), Vec<usize>> = HashMap::new();
    let mut groups: Vec<Vec<Envelope>> = Vec::new();
    for envelope in batch {
        let candidates = by_length.entry(lengths(&envelope)).or_default();
        if let Some(&i) = candidates.iter().find(|&&i| same(&groups[i][0], &envelope)) {
            groups[i].push(envelope);
        } else {
            candidates.push(groups.len());
            groups.push(vec![envelope]);
        }
    }
    groups
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

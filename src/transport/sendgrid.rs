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

use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

use std::sync::Arc;

use super::shaped::Message;
use super::tags::{Syntax, Tagged, Tags};
use super::{Deliver, Envelope, Outcome, TransportError, http};
use crate::manifest::Address;
use crate::manifest::{Campaign, Settings, Transport};
use crate::secret::Secret;

pub struct SendGrid {
    client: reqwest::Client,
    url: String,
    key: Secret,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    campaign: String,
    /// This run's substitution tags.
    tags: Tags,
}

impl SendGrid {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let Settings::SendGrid {
            endpoint,
            api_key_env,
            ..
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not a sendgrid transport".to_owned(),
            });
        };
        let key = super::key(&transport.name, api_key_env)?;
        Ok(Self {
            client: http::client(transport),
            url: format!("{}/v3/mail/send", endpoint.trim_end_matches('/')),
            key,
            from: mailbox(&campaign.from),
            reply_to: campaign.reply_to.as_ref().map(mailbox),
            campaign: campaign.name.clone(),
            tags: Tags::new(Syntax::SendGrid),
        })
    }

    /// This run's tags, which prove and compact messages before they are queued.
    pub fn tags(&self) -> &Tags {
        &self.tags
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
            Err(error) => http::lost(&error),
        };
        super::each(envelopes, &outcome)
    }

    /// The request body: content (shared, or one recipient's own) and a personalization
    /// per recipient. Serialized straight from borrowed fields.
    fn body(&self, envelopes: &[Envelope], tagged: Option<&Tagged>) -> Vec<u8> {
        let own = envelopes[0].message.whole();
        let (text, html) = match tagged {
            Some(tagged) => (tagged.text.as_deref(), tagged.html.as_deref()),
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
            .map(|e| e.message.unsubscribe_url().map(|url| format!("<{url}>")))
            .collect();
        let substitutions: Vec<Option<Substitutions<'_>>> = envelopes
            .iter()
            .map(|e| match (&e.message, tagged) {
                (Message::Shaped(shaped), Some(tagged)) => {
                    Some(Substitutions(tagged.substitutions(shaped)))
                }
                _ => None,
            })
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
                    subject: envelope.message.subject(),
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
        // Shaped messages of one shape go in one request, checked once more right before
        // it; any other message in a request of its own, whole.
        let shape = batch.iter().find_map(|e| match &e.message {
            Message::Shaped(shaped) => Some(Arc::clone(&shaped.shape)),
            Message::Whole(_) => None,
        });
        let tagged = shape.as_ref().map(|shape| self.tags.tagged(shape));
        let (together, alone): (Vec<Envelope>, Vec<Envelope>) =
            batch.into_iter().partition(|e| match (&e.message, &shape) {
                (Message::Shaped(shaped), Some(shape)) => {
                    Arc::ptr_eq(&shaped.shape, shape) && self.tags.fits(shaped)
                }
                _ => false,
            });
        let mut requests = Vec::new();
        if let (false, Some(tagged)) = (together.is_empty(), &tagged) {
            let body = self.body(&together, Some(tagged));
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
    let retry_after = http::retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    let reason = format!("SendGrid answered {status}: {}", provider_message(&text));
    http::refused(status, retry_after, reason)
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

//! Postmark's batch API: `POST {endpoint}/email/batch`, up to 500 complete messages per
//! call, each with its own `To`, so personal content needs no substitution.
//!
//! # Guarantees
//! - Every message in a call has exactly one address in `To`, and its own subject, body
//!   and `List-Unsubscribe` headers: nothing of one recipient is in another's message.
//! - A 200 answer holds one result per message, in request order: `ErrorCode` 0 is sent
//!   (with its `MessageID`), anything else is that recipient's failure in Postmark's
//!   words, while the rest of the call is sent. An answer that does not hold one result
//!   per message leaves the call `uncertain`, never guessed.
//!
//! Answers on the whole call: 401 stops the campaign; 422 fails the call's recipients with
//! Postmark's message; 429 and 5xx are retried; a lost connection is `uncertain`.
//!
//! # Secrets
//! The server token is read from the environment variable the manifest names and sent
//! only in `X-Postmark-Server-Token`; this type has no `Debug` on purpose.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::shaped::Part;
use super::{Deliver, Envelope, Outcome, TransportError, http};
use crate::manifest::Address;
use crate::manifest::{Campaign, Settings, Transport};
use crate::secret::Secret;

pub struct Postmark {
    client: reqwest::Client,
    url: String,
    token: Secret,
    from: String,
    reply_to: Option<String>,
    stream: String,
    campaign: String,
}

impl Postmark {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let Settings::Postmark {
            endpoint,
            server_token_env,
            message_stream,
            ..
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not a postmark transport".to_owned(),
            });
        };
        Ok(Self {
            client: http::client(transport),
            url: format!("{}/email/batch", endpoint.trim_end_matches('/')),
            token: super::key(&transport.name, server_token_env)?,
            from: campaign.from.mailbox(),
            reply_to: campaign.reply_to.as_ref().map(Address::mailbox),
            stream: message_stream.clone(),
            campaign: campaign.name.clone(),
        })
    }

    /// The request body: one complete message per envelope, each part written into the
    /// body piece by piece (a message waiting for its call is kept as its values).
    fn body(&self, envelopes: &[Envelope]) -> Vec<u8> {
        let mut size = 0;
        let messages: Vec<BatchMessage<'_>> = envelopes
            .iter()
            .map(|envelope| {
                let message = &envelope.message;
                let (text, html) = (message.text(), message.html());
                size += ENVELOPE_BYTES
                    + envelope.to.len()
                    + message.subject().len()
                    + text.map_or(0, Part::len)
                    + html.map_or(0, Part::len);
                BatchMessage {
                    from: &self.from,
                    to: &envelope.to,
                    reply_to: self.reply_to.as_deref(),
                    subject: message.subject(),
                    text_body: text,
                    html_body: html,
                    headers: message
                        .unsubscribe_url()
                        .map(|url| {
                            vec![
                                Header {
                                    name: "List-Unsubscribe",
                                    value: Cow::Owned(format!("<{url}>")),
                                },
                                Header {
                                    name: "List-Unsubscribe-Post",
                                    value: Cow::Borrowed("List-Unsubscribe=One-Click"),
                                },
                            ]
                        })
                        .unwrap_or_default(),
                    metadata: Metadata {
                        campaign: &self.campaign,
                        recipient: crate::digest::short(&envelope.key),
                    },
                    message_stream: &self.stream,
                }
            })
            .collect();
        // Escaping adds a little; the rest is known, so the body is allocated once.
        let mut body = Vec::with_capacity(size + size / 16);
        serde_json::to_writer(&mut body, &messages).expect("a request body serializes");
        body
    }
}

/// What a message adds to the body beyond its address and parts: field names, sender,
/// headers and metadata, about.
const ENVELOPE_BYTES: usize = 512;

impl Deliver for Postmark {
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        let body = self.body(&batch);
        let answer = self
            .client
            .post(&self.url)
            .header("X-Postmark-Server-Token", self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let outcomes = match answer {
            Ok(response) => answer_of(response, batch.len()).await,
            Err(error) => vec![http::lost(&error); batch.len()],
        };
        batch.into_iter().zip(outcomes).collect()
    }
}

/// One outcome per message, from the answer to a call of `n`.
async fn answer_of(response: reqwest::Response, n: usize) -> Vec<Outcome> {
    let status = response.status();
    let retry_after = http::retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::OK {
        let words = serde_json::from_str::<Answered>(&text)
            .map_or_else(|_| text.chars().take(200).collect(), |r| r.message);
        let reason = format!("Postmark answered {status}: {words}");
        return vec![http::refused(status, retry_after, reason); n];
    }
    match serde_json::from_str::<Vec<Answered>>(&text) {
        Ok(results) if results.len() == n => results
            .into_iter()
            .map(|result| match result.error_code {
                0 => Outcome::Sent {
                    id: result.message_id,
                },
                code => Outcome::Failed {
                    reason: format!("Postmark refused it ({code}): {}", result.message),
                },
            })
            .collect(),
        _ => vec![
            Outcome::Uncertain {
                reason: format!(
                    "Postmark answered 200 without one result per message: {}",
                    text.chars().take(200).collect::<String>()
                ),
            };
            n
        ],
    }
}

/// One message of `POST /email/batch`, as much of it as herald uses.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchMessage<'a> {
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_body: Option<Part<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html_body: Option<Part<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<Header<'a>>,
    metadata: Metadata<'a>,
    message_stream: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Header<'a> {
    name: &'a str,
    value: Cow<'a, str>,
}

/// Postmark keeps these with the message and returns them in its webhooks.
#[derive(Serialize)]
struct Metadata<'a> {
    campaign: &'a str,
    /// A hash of the address, not the address.
    recipient: String,
}

/// One entry of the answer (and the shape of an error answer).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answered {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
    #[serde(rename = "MessageID", default)]
    message_id: String,
}

//! Mailgun's messages API: `POST {endpoint}/v3/{domain}/messages`, a multipart form,
//! basic auth `api:KEY`, up to 1,000 recipients per call.
//!
//! Mailgun sends one message per `to` address only when the call carries
//! `recipient-variables` with an entry for each; without it, every copy shows every
//! address in its `To:` header. That is the leak herald exists to prevent, so a call is
//! built from one list of recipients that gives both the `to` fields and their entries,
//! and `check` reads the finished form once more right before it leaves.
//!
//! Personal content works as SendGrid's does (see `tags`): the shared content holds a
//! `%recipient.NAME%` tag where each value goes, and each recipient's entry holds their
//! values. The subject and the `List-Unsubscribe` link are variables of their own. Mailgun
//! documents recipient variables in the subject and body; that it fills them in custom
//! `h:` headers as well is what other senders rely on (django-anymail's `merge_headers`),
//! not a documented promise, and docs/transports.md says so.
//!
//! # Guarantees
//! - Every call has `recipient-variables` with an entry for every `to`, each `to` one bare
//!   address; a form without them is refused before it is sent (`check`).
//! - A message whose text holds something Mailgun would fill in by itself (`%recipient%`,
//!   its unsubscribe variables) is never sent: it would not arrive as rendered.
//!
//! Answers: 200 is sent (Mailgun's `id` kept); 429 is retried after `Retry-After`, or
//! after the wait Mailgun's message names; 5xx and refused connections are retried with
//! backoff; 400 and other 4xx fail with Mailgun's message; 401 stops the campaign; a
//! connection lost once the request may have been sent is `uncertain`.
//!
//! # Secrets
//! The API key is read from the environment variable the manifest names and sent only in
//! the `Authorization` header; this type has no `Debug` on purpose.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::shaped::Message;
use super::tags::{Syntax, Tagged, Tags};
use super::{Deliver, Envelope, Outcome, TransportError, http};
use crate::manifest::Address;
use crate::manifest::{Campaign, Settings, Transport};
use crate::secret::Secret;

/// The most recipients Mailgun takes in one call.
const MAX_RECIPIENTS: usize = 1000;

pub struct Mailgun {
    client: reqwest::Client,
    url: String,
    key: Secret,
    from: String,
    reply_to: Option<String>,
    campaign: String,
    /// This run's `%recipient.NAME%` tags.
    tags: Tags,
}

/// A form as it will be sent: field names and values, in order, repeated names allowed.
pub type Form = Vec<(String, String)>;

impl Mailgun {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let Settings::Mailgun {
            endpoint,
            domain,
            api_key_env,
            ..
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not a mailgun transport".to_owned(),
            });
        };
        Ok(Self {
            client: http::client(transport),
            url: format!("{}/v3/{domain}/messages", endpoint.trim_end_matches('/')),
            key: super::key(&transport.name, api_key_env)?,
            from: campaign.from.mailbox(),
            reply_to: campaign.reply_to.as_ref().map(Address::mailbox),
            campaign: campaign.name.clone(),
            tags: Tags::new(Syntax::Mailgun),
        })
    }

    /// This run's tags, which prove and compact messages before they are queued.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// The form for one call: shared content with tags (`tagged`), or one recipient's
    /// whole message. `to` and `recipient-variables` come from the same list.
    fn form(&self, envelopes: &[Envelope], tagged: Option<&Tagged>) -> Form {
        let mut form: Form = vec![("from".into(), self.from.clone())];
        let mut variables: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        let (subject_tag, unsubscribe_tag) = (self.tags.tag('s', None), self.tags.tag('u', None));
        for envelope in envelopes {
            form.push(("to".into(), envelope.to.clone()));
            let own = variables.entry(envelope.to.as_str()).or_default();
            if let (Some(tagged), Message::Shaped(shaped)) = (tagged, &envelope.message) {
                for (tag, value) in tagged.substitutions(shaped) {
                    own.insert(self.tags.name(tag), value);
                }
                own.insert(self.tags.name(&subject_tag), shaped.subject());
                if let Some(url) = shaped.unsubscribe_url() {
                    own.insert(self.tags.name(&unsubscribe_tag), url);
                }
            }
        }
        let first = &envelopes[0].message;
        let (subject, text, html, unsubscribe) = if let Some(tagged) = tagged {
            (
                subject_tag.clone(),
                tagged.text.clone(),
                tagged.html.clone(),
                first.unsubscribe_url().map(|_| unsubscribe_tag.clone()),
            )
        } else {
            let whole = first.whole();
            (
                whole.subject.clone(),
                whole.text.clone(),
                whole.html.clone(),
                whole.unsubscribe_url.clone(),
            )
        };
        form.push(("subject".into(), subject));
        if let Some(text) = text {
            form.push(("text".into(), text));
        }
        if let Some(html) = html {
            form.push(("html".into(), html));
        }
        if let Some(url) = unsubscribe {
            form.push(("h:List-Unsubscribe".into(), format!("<{url}>")));
            form.push((
                "h:List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ));
        }
        if let Some(reply_to) = &self.reply_to {
            form.push(("h:Reply-To".into(), reply_to.clone()));
        }
        form.push(("v:herald-campaign".into(), self.campaign.clone()));
        let variables = serde_json::to_string(&variables).expect("variables serialize");
        form.push(("recipient-variables".into(), variables));
        form
    }

    /// One call; every envelope gets its outcome.
    async fn request(&self, envelopes: Vec<Envelope>, form: Form) -> Vec<(Envelope, Outcome)> {
        let outcome = if let Err(refused) = check(&form) {
            Outcome::NotSent {
                reason: refused.to_string(),
            }
        } else {
            let (boundary, body) = multipart(&form);
            match self
                .client
                .post(&self.url)
                .basic_auth("api", Some(self.key.expose()))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
            {
                Ok(response) => answer(response).await,
                Err(error) => http::lost(&error),
            }
        };
        super::each(envelopes, &outcome)
    }

    /// Why Mailgun would not deliver `envelope`'s message as rendered, if it would not.
    fn hazard(&self, envelope: &Envelope) -> Option<Outcome> {
        let whole = envelope.message.whole();
        let texts = [
            Some(whole.subject.as_str()),
            whole.text.as_deref(),
            whole.html.as_deref(),
            whole.unsubscribe_url.as_deref(),
        ];
        let found = texts
            .into_iter()
            .flatten()
            .find_map(|t| self.tags.hazard(t))?;
        Some(Outcome::Failed {
            reason: format!(
                "the message holds `{found}`, which Mailgun fills in by itself, so it would not arrive as rendered; reword the template or the recipient's data"
            ),
        })
    }
}

impl Deliver for Mailgun {
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        // Shaped messages of one shape (and alike in having an unsubscribe link) go in one
        // call; any other message in a call of its own, whole.
        let first = batch.iter().find_map(|e| match &e.message {
            Message::Shaped(shaped) => Some((
                Arc::clone(&shaped.shape),
                shaped.unsubscribe_url().is_some(),
            )),
            Message::Whole(_) => None,
        });
        let tagged = first.as_ref().map(|(shape, _)| self.tags.tagged(shape));
        let (together, alone): (Vec<Envelope>, Vec<Envelope>) =
            batch.into_iter().partition(|e| match (&e.message, &first) {
                (Message::Shaped(shaped), Some((shape, unsubscribe))) => {
                    Arc::ptr_eq(&shaped.shape, shape)
                        && shaped.unsubscribe_url().is_some() == *unsubscribe
                        && self.tags.fits(shaped)
                }
                _ => false,
            });
        let mut outcomes = Vec::new();
        let mut requests = Vec::new();
        if let (false, Some(tagged)) = (together.is_empty(), &tagged) {
            let form = self.form(&together, Some(tagged));
            requests.push(self.request(together, form));
        }
        for envelope in alone {
            if let Some(refused) = self.hazard(&envelope) {
                outcomes.push((envelope, refused));
                continue;
            }
            let form = self.form(std::slice::from_ref(&envelope), None);
            requests.push(self.request(vec![envelope], form));
        }
        outcomes.extend(
            futures::future::join_all(requests)
                .await
                .into_iter()
                .flatten(),
        );
        outcomes
    }
}

/// The form as a `multipart/form-data` body (RFC 7578), and its boundary: a random one
/// that no value holds. Written whole into one buffer: reqwest's own multipart form
/// chains a stream per part, and polling a chain of 2,000 parts walks it each time, which
/// took a fifth of herald's CPU in the benchmark.
fn multipart(form: &Form) -> (String, Vec<u8>) {
    let boundary = loop {
        let boundary = format!("herald-{:032x}", rand::random::<u128>());
        if !form.iter().any(|(_, value)| value.contains(&boundary)) {
            break boundary;
        }
    };
    let size: usize = form.iter().map(|(n, v)| n.len() + v.len() + 100).sum();
    let mut body = Vec::with_capacity(size);
    for (name, value) in form {
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b"\"\r\n\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    (boundary, body)
}

/// Refuses a form that could show one recipient another's address: every `to` must be
/// one bare address, there must be at most 1,000 of them, and `recipient-variables` must
/// be there, once, with an entry for each.
pub fn check(form: &Form) -> Result<(), TransportError> {
    let refuse = |why: String| Err(TransportError::Isolation(why));
    let to: Vec<&str> = form
        .iter()
        .filter(|(name, _)| name == "to")
        .map(|(_, value)| value.as_str())
        .collect();
    if to.is_empty() || to.len() > MAX_RECIPIENTS {
        return refuse(format!("{} `to` addresses in one Mailgun call", to.len()));
    }
    if let Some(bad) = to.iter().find(|t| {
        t.contains([',', ';', '<', '>', '"', ' ', '\r', '\n']) || t.matches('@').count() != 1
    }) {
        return refuse(format!("`{bad}` is not a single bare address"));
    }
    let mut variables = form
        .iter()
        .filter(|(name, _)| name == "recipient-variables");
    let (Some((_, variables)), None) = (variables.next(), variables.next()) else {
        return refuse(
            "a Mailgun call without exactly one `recipient-variables` would show every `to` address to every recipient".to_owned(),
        );
    };
    let Ok(Value::Object(variables)) = serde_json::from_str::<Value>(variables) else {
        return refuse("`recipient-variables` is not a JSON object".to_owned());
    };
    if let Some(missing) = to
        .iter()
        .find(|t| !variables.get(**t).is_some_and(Value::is_object))
    {
        return refuse(format!("`{missing}` has no entry in `recipient-variables`"));
    }
    Ok(())
}

async fn answer(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let retry_after = http::retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    let parsed = serde_json::from_str::<Value>(&text).unwrap_or_default();
    let field = |name: &str| parsed[name].as_str().map(str::to_owned);
    if status == reqwest::StatusCode::OK {
        let id = field("id").unwrap_or_default();
        return Outcome::Sent { id };
    }
    let words = field("message").unwrap_or_else(|| text.chars().take(200).collect());
    let retry_after = retry_after.or_else(|| named_wait(&words));
    http::refused(
        status,
        retry_after,
        format!("Mailgun answered {status}: {words}"),
    )
}

/// The wait a Mailgun rate-limit message names: `... try again after 120 seconds`.
fn named_wait(message: &str) -> Option<Duration> {
    let (_, after) = message.split_once("try again after ")?;
    let seconds = after.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Form {
        fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_call_with_several_to_and_no_variable_for_each_never_passes() {
        let two = [("to", "a@example.com"), ("to", "b@example.com")];
        let refused = check(&form(&two)).unwrap_err().to_string();
        assert_eq!(
            refused,
            "isolation check failed, batch refused: a Mailgun call without exactly one `recipient-variables` would show every `to` address to every recipient"
        );
        let one_missing = [
            two[0],
            two[1],
            ("recipient-variables", r#"{"a@example.com":{}}"#),
        ];
        assert!(
            check(&form(&one_missing))
                .unwrap_err()
                .to_string()
                .ends_with("`b@example.com` has no entry in `recipient-variables`")
        );
        let twice = [
            two[0],
            ("recipient-variables", r#"{"a@example.com":{}}"#),
            ("recipient-variables", r#"{"a@example.com":{}}"#),
        ];
        assert!(check(&form(&twice)).is_err());
        let listed = [
            ("to", "a@example.com, b@example.com"),
            ("recipient-variables", "{}"),
        ];
        assert!(check(&form(&listed)).is_err());
        let named = [("to", "Ann <a@example.com>"), ("recipient-variables", "{}")];
        assert!(check(&form(&named)).is_err());
        let whole = [
            two[0],
            two[1],
            (
                "recipient-variables",
                r#"{"a@example.com":{},"b@example.com":{"n":"B"}}"#,
            ),
        ];
        assert!(check(&form(&whole)).is_ok());
    }

    #[test]
    fn a_rate_limit_message_names_the_wait() {
        let message = "Domain example.com is not allowed to send: account-requests-per-sec limit exceeded, try again after 120 seconds";
        assert_eq!(named_wait(message), Some(Duration::from_secs(120)));
        assert_eq!(named_wait("Internal Server Error"), None);
    }
}

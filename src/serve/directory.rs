//! What the feedback endpoints need to know of the manifests watch follows: which
//! campaign and recipient an unsubscribe token names, and which keys, credentials and SNS
//! topics verify provider events. Watch tells it every time the manifests load.
//!
//! An unsubscribe token holds nothing of the address, so finding its recipient means
//! computing the tokens of a campaign's audience. That is done once per campaign, when
//! the first token of it arrives after its manifests (or audience) last changed, on a
//! blocking thread, and kept: a million recipients take about a second and 100 MB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::manifest::TransportKind;
use crate::manifest::{Campaign, Manifests, Settings};
use crate::plan::PlanError;
use crate::render::{UNSUBSCRIBE_KEY_ENV, token_matches, unsubscribe_token};

/// The recipient an unsubscribe token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub campaign: String,
    /// The normalised address.
    pub address: String,
}

#[derive(Default)]
pub struct Directory(Mutex<Known>);

#[derive(Default)]
struct Known {
    /// Campaigns with an unsubscribe link.
    campaigns: Vec<Arc<Campaign>>,
    /// Token -> address, per campaign, once computed.
    tokens: HashMap<String, Arc<HashMap<String, String>>>,
    /// The variables holding the keys that verify provider events, by provider.
    event_keys: Vec<(TransportKind, String)>,
    /// The variables holding the user names and passwords of Postmark's webhooks.
    postmark_credentials: Vec<(String, String)>,
    /// The SNS topics Amazon SES feedback comes from.
    ses_topics: Vec<String>,
}

impl Directory {
    /// The manifests as they load now; tokens computed before are forgotten.
    pub fn update(&self, manifests: &Manifests) {
        let mut known = self.0.lock().expect("the directory lock");
        known.campaigns = manifests
            .campaigns
            .iter()
            .filter(|c| c.unsubscribe.is_some())
            .map(|c| Arc::new(c.clone()))
            .collect();
        known.tokens.clear();
        known.event_keys = manifests
            .transports
            .iter()
            .filter_map(|t| match &t.settings {
                Settings::SendGrid { events_key_env, .. }
                | Settings::Mailgun { events_key_env, .. } => {
                    events_key_env.clone().map(|variable| (t.kind, variable))
                }
                _ => None,
            })
            .collect();
        known.postmark_credentials = manifests
            .transports
            .iter()
            .filter_map(|t| match &t.settings {
                Settings::Postmark {
                    events_credentials_env,
                    ..
                } => events_credentials_env.clone(),
                _ => None,
            })
            .collect();
        known.ses_topics = manifests
            .transports
            .iter()
            .filter_map(|t| match &t.settings {
                Settings::Smtp {
                    events_topic_arn, ..
                } => events_topic_arn.clone(),
                _ => None,
            })
            .collect();
    }

    /// The environment variables holding the user names and passwords Postmark's webhooks
    /// may present, a pair per `postmark` transport that takes its events.
    pub fn postmark_credentials(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .expect("the directory lock")
            .postmark_credentials
            .clone()
    }

    /// The SNS topics whose messages `/events/ses` takes, one per `smtp` transport that
    /// names one.
    pub fn ses_topics(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("the directory lock")
            .ses_topics
            .clone()
    }

    /// The environment variables holding the keys that verify `provider`'s events.
    pub fn event_keys(&self, provider: TransportKind) -> Vec<String> {
        let known = self.0.lock().expect("the directory lock");
        known
            .event_keys
            .iter()
            .filter(|(kind, _)| *kind == provider)
            .map(|(_, variable)| variable.clone())
            .collect()
    }

    /// The recipient `token` names, if it is a real token of a campaign watch follows.
    /// Blocks while a campaign's tokens are computed; `Err` when the key is not set.
    pub fn find(&self, token: &str) -> Result<Option<Named>, NotKeyed> {
        let key = crate::secret::from_env(UNSUBSCRIBE_KEY_ENV).ok_or(NotKeyed)?;
        let key = key.expose().as_bytes();
        if token.len() != 32 || crate::digest::unhex(token).is_none() {
            return Ok(None);
        }
        let campaigns = self.0.lock().expect("the directory lock").campaigns.clone();
        for campaign in campaigns {
            let tokens = self.tokens(&campaign, key);
            let Some(address) = tokens.get(token) else {
                continue;
            };
            // The map found a candidate; the MAC decides, in constant time.
            if token_matches(key, &campaign.name, address, token) {
                return Ok(Some(Named {
                    campaign: campaign.name.clone(),
                    address: address.clone(),
                }));
            }
        }
        Ok(None)
    }

    fn tokens(&self, campaign: &Campaign, key: &[u8]) -> Arc<HashMap<String, String>> {
        if let Some(tokens) = self
            .0
            .lock()
            .expect("the directory lock")
            .tokens
            .get(&campaign.name)
        {
            return Arc::clone(tokens);
        }
        let mut tokens = HashMap::new();
        let walked =
            crate::plan::select::<PlanError>(campaign, None, None, crate::clock::now(), |chunk| {
                for selected in chunk {
                    let token = unsubscribe_token(key, &campaign.name, &selected.key);
                    tokens.insert(token, selected.key);
                }
                Ok(())
            });
        if let Err(error) = walked {
            tracing::warn!(campaign = %campaign.name, %error, "cannot read the audience for unsubscribe tokens");
        }
        let tokens = Arc::new(tokens);
        self.0
            .lock()
            .expect("the directory lock")
            .tokens
            .insert(campaign.name.clone(), Arc::clone(&tokens));
        tokens
    }
}

/// `HERALD_UNSUBSCRIBE_KEY` is not set: no token can be checked.
#[derive(Debug)]
pub struct NotKeyed;

//! SMTP through lettre (async, pooled connections, rustls): one transaction per
//! recipient, with one `RCPT TO` and a `To` header holding that address only.
//!
//! Answers: 2xx is sent; 4xx (421 included) is retried with backoff; 5xx fails with the
//! server's words; a connection that cannot be made is retried; a connection lost during
//! the transaction, or a timeout, is `uncertain`: the server may have taken the message.
//!
//! # Secrets
//! User name and password come from the environment variables the manifest names; this
//! type has no `Debug` on purpose.

use futures::StreamExt as _;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Deliver, Envelope, Outcome, TransportError};
use crate::manifest::{Address, Tls};
use crate::manifest::{Campaign, Settings, Transport};

pub struct Smtp {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    /// Transactions at once, each on a pooled connection of its own.
    concurrency: usize,
    from: Address,
    reply_to: Option<Address>,
}

impl Smtp {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Result<Self, TransportError> {
        let Settings::Smtp {
            host,
            port,
            tls,
            credentials,
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not an smtp transport".to_owned(),
            });
        };
        let tls_error = |error: lettre::transport::smtp::Error| TransportError::Setup {
            transport: transport.name.clone(),
            reason: error.to_string(),
        };
        let builder = match tls {
            Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            Tls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?
            }
            Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?,
        };
        let mut builder = builder
            .port(*port)
            .timeout(Some(transport.timeout))
            .pool_config(PoolConfig::new().max_size(transport.concurrency.get()));
        if let Some((user, password)) = credentials {
            // A user name may be short ("apikey"); the password is a key like any other.
            let user =
                crate::secret::from_env(user).ok_or_else(|| TransportError::MissingSecret {
                    transport: transport.name.clone(),
                    variable: user.clone(),
                })?;
            let password = super::key(&transport.name, password)?;
            builder = builder.credentials(Credentials::new(
                user.expose().to_owned(),
                password.expose().to_owned(),
            ));
        }
        Ok(Self {
            mailer: builder.build(),
            concurrency: transport.concurrency.get() as usize,
            from: campaign.from.clone(),
            reply_to: campaign.reply_to.clone(),
        })
    }

    async fn transaction(&self, envelope: &Envelope) -> Outcome {
        let message = match crate::message::build(
            &self.from,
            self.reply_to.as_ref(),
            &envelope.to,
            &envelope.message.whole(),
            Some(envelope.message_id.clone()),
        ) {
            Ok(message) => message,
            Err(error) => {
                return Outcome::Failed {
                    reason: error.to_string(),
                };
            }
        };
        match self.mailer.send(message).await {
            Ok(response) => Outcome::Sent {
                id: response.message().collect::<Vec<_>>().join(" "),
            },
            Err(error) => classify(&error),
        }
    }
}

impl Deliver for Smtp {
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        futures::stream::iter(batch)
            .map(|envelope| async move {
                let outcome = self.transaction(&envelope).await;
                (envelope, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }
}

fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    let reason = error.to_string();
    if error.is_permanent() {
        Outcome::Failed { reason }
    } else if error.is_transient() {
        Outcome::Retry {
            after: None,
            reason,
        }
    } else if error.is_timeout() {
        Outcome::Uncertain {
            reason: format!("no answer in time: {reason}"),
        }
    } else if reason.starts_with("Connection error") || error.is_tls() {
        // lettre's kind for failing to connect, which it does not expose but in its
        // message: nothing was sent yet.
        Outcome::Retry {
            after: None,
            reason: format!("cannot connect: {reason}"),
        }
    } else {
        Outcome::Uncertain {
            reason: format!("connection lost: {reason}"),
        }
    }
}

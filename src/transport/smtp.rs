//! SMTP through lettre (async, pooled connections, rustls): one transaction per
//! recipient, with one `RCPT TO` and a `To` header holding that address only.
//!
//! Answers: 2xx is sent; 4xx (421 included) is retried with backoff; a 5xx about the
//! message or its recipient fails them with the server's words, while 535 and the other
//! refusals of the credentials say the relay cannot be used; a connection that cannot be
//! made is retried, one whose TLS cannot be trusted is not; a connection lost during the
//! transaction, or a timeout, is `uncertain`: the server may have taken the message.
//!
//! TLS trusts Mozilla's roots built into herald, or the machine's store
//! (`tls_trust: system`), and the CAs in `tls_ca_file`.
//!
//! # Secrets
//! User name and password come from the environment variables the manifest names; this
//! type has no `Debug` on purpose.

use futures::StreamExt as _;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};

use super::{Cause, Deliver, Envelope, Outcome, TransportError};
use crate::manifest::{Address, Tls, TlsTrust};
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
            ca_file,
            trust,
            ..
        } = &transport.settings
        else {
            return Err(TransportError::Setup {
                transport: transport.name.clone(),
                reason: "not an smtp transport".to_owned(),
            });
        };
        let setup = |reason: String| TransportError::Setup {
            transport: transport.name.clone(),
            reason,
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let builder = match tls {
            Tls::None => builder,
            Tls::Starttls | Tls::Tls => {
                let parameters = parameters(host, *trust, ca_file.as_deref()).map_err(setup)?;
                builder.tls(if *tls == Tls::Starttls {
                    lettre::transport::smtp::client::Tls::Required(parameters)
                } else {
                    lettre::transport::smtp::client::Tls::Wrapper(parameters)
                })
            }
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

/// What to trust for the relay `host`'s certificate: the bundled or the system's roots,
/// and the CAs in `ca_file`.
fn parameters(
    host: &str,
    trust: TlsTrust,
    ca_file: Option<&std::path::Path>,
) -> Result<TlsParameters, String> {
    let store = match trust {
        TlsTrust::Bundled => CertificateStore::WebpkiRoots,
        TlsTrust::System => CertificateStore::Default,
    };
    let mut builder = TlsParameters::builder(host.to_owned()).certificate_store(store);
    if let Some(path) = ca_file {
        let pem = crate::input::read(path).map_err(|e| e.to_string())?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("`{}` holds no PEM certificate: {e}", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}

/// SMTP replies that refuse the credentials (RFC 4954: 530, 534, 535, 538).
const REFUSED_CREDENTIALS: [&str; 4] = ["530", "534", "535", "538"];

fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    let reason = error.to_string();
    let code = error.status().map(|code| code.to_string());
    if error.is_tls() || super::is_tls_failure(error) {
        Outcome::Unavailable {
            cause: Cause::Tls,
            reason: format!("TLS failed: {reason}"),
        }
    } else if code.is_some_and(|c| REFUSED_CREDENTIALS.contains(&c.as_str())) {
        Outcome::Unavailable {
            cause: Cause::Credentials,
            reason,
        }
    } else if error.is_permanent() {
        Outcome::Failed { reason }
    } else if error.is_transient() {
        Outcome::Retry {
            after: None,
            reason,
            cause: Cause::Busy,
        }
    } else if error.is_timeout() {
        Outcome::Uncertain {
            reason: format!("no answer in time: {reason}"),
        }
    } else if reason.starts_with("Connection error") {
        // lettre's kind for failing to connect, which it does not expose but in its
        // message: nothing was sent yet.
        Outcome::Retry {
            after: None,
            reason: format!("cannot connect: {reason}"),
            cause: Cause::Network,
        }
    } else {
        Outcome::Uncertain {
            reason: format!("connection lost: {reason}"),
        }
    }
}

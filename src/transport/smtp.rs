//! SMTP through lettre (async, rustls): one transaction per recipient, with one
//! `RCPT TO` and a `To` header holding that address only, over connections herald keeps
//! (`concurrency` of them at most) and reuses.
//!
//! herald runs each transaction itself on lettre's `AsyncSmtpConnection` rather than
//! through `AsyncSmtpTransport`, whose errors do not say which command was answered: a
//! 5xx means something else to `RCPT TO` than to `MAIL FROM`.
//!
//! Answers: 2xx is sent; 4xx (421 included) is retried with backoff; a 5xx to the
//! recipient's `RCPT TO` or to `DATA` fails them with the server's words. A 5xx before
//! any recipient is named is about herald or the sender, never about anybody: to the
//! greeting, EHLO or STARTTLS the relay refuses this client, to `MAIL FROM` the sender,
//! to AUTH (and 530, 534, 535, 538 anywhere) the credentials; the relay cannot be used
//! and everyone stays due. A connection that cannot be made is retried, one whose TLS
//! cannot be trusted is not; a connection lost during the transaction, or a timeout, is
//! `uncertain`: the server may have taken the message.
//!
//! TLS trusts Mozilla's roots built into herald, or the machine's store
//! (`tls_trust: system`), and the CAs in `tls_ca_file`.
//!
//! # Secrets
//! User name and password come from the environment variables the manifest names; this
//! type has no `Debug` on purpose.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::{Cause, Deliver, Envelope, Outcome, TransportError};
use crate::manifest::{Address, Tls, TlsTrust};
use crate::manifest::{Campaign, Settings, Transport};

/// How long a connection may wait unused before it is closed rather than reused (as
/// lettre's pool did).
const IDLE: Duration = Duration::from_secs(60);

/// How long QUIT may wait for the relay's answer before the connection is dropped.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Says QUIT and closes `connection`, waiting at most `QUIT_WAIT` for the answer: lettre
/// waits for it without a limit, and a relay gone silent (the reason a transaction is
/// given up, often) would hold the call, and a SIGTERM, for ever.
async fn quit(mut connection: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(QUIT_WAIT, connection.abort()).await;
}

pub struct Smtp {
    relay: Relay,
    /// Connections between transactions, each with when it was last used.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// Transactions at once, each on a connection of its own.
    concurrency: usize,
    from: Address,
    reply_to: Option<Address>,
}

/// Where and how to open a connection.
struct Relay {
    host: String,
    port: u16,
    timeout: Duration,
    /// TLS from the start (`tls: tls`), or after STARTTLS (`tls: starttls`).
    tls: Option<(Tls, TlsParameters)>,
    credentials: Option<Credentials>,
    hello: ClientId,
}

/// The command an answer was to: what a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Connecting: the greeting and EHLO.
    Connect,
    /// STARTTLS and the EHLO after it.
    Starttls,
    Auth,
    /// `MAIL FROM`: the sender.
    Mail,
    /// `RCPT TO`: the recipient.
    Rcpt,
    /// `DATA` and the answer to the message itself.
    Data,
}

/// An error of lettre's, with the command it answered.
struct Refusal {
    stage: Stage,
    error: lettre::transport::smtp::Error,
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
        let tls = match tls {
            Tls::None => None,
            Tls::Starttls | Tls::Tls => Some((
                *tls,
                parameters(host, *trust, ca_file.as_deref()).map_err(setup)?,
            )),
        };
        let credentials = match credentials {
            None => None,
            Some((user, password)) => {
                // A user name may be short ("apikey"); the password is a key like any other.
                let user =
                    crate::secret::from_env(user).ok_or_else(|| TransportError::MissingSecret {
                        transport: transport.name.clone(),
                        variable: user.clone(),
                    })?;
                let password = super::key(&transport.name, password)?;
                Some(Credentials::new(
                    user.expose().to_owned(),
                    password.expose().to_owned(),
                ))
            }
        };
        Ok(Self {
            relay: Relay {
                host: host.clone(),
                port: *port,
                timeout: transport.timeout,
                tls,
                credentials,
                hello: ClientId::default(),
            },
            idle: Mutex::default(),
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
        // lettre bounds the TCP connect only; a relay that goes silent after it must not
        // hold the call (and a SIGTERM waiting for it) forever.
        let connection = tokio::time::timeout(self.relay.timeout, self.connection()).await;
        let mut connection = match connection {
            Ok(Ok(connection)) => connection,
            Ok(Err(refusal)) => return self.classify(&refusal),
            Err(_) => {
                return Outcome::Retry {
                    after: None,
                    reason: format!(
                        "the relay did not finish its greeting, EHLO, STARTTLS or AUTH within {} s",
                        self.relay.timeout.as_secs_f64()
                    ),
                    cause: Cause::Network,
                };
            }
        };
        match self.send(&mut connection, &message).await {
            Ok(response) => {
                self.park(connection).await;
                Outcome::Sent {
                    id: response.message().collect::<Vec<_>>().join(" "),
                }
            }
            Err(outcome) => {
                quit(connection).await;
                outcome
            }
        }
    }

    /// One transaction on `connection`: `MAIL FROM`, the one `RCPT TO`, `DATA`, the
    /// message; an error is what became of the recipient.
    async fn send(
        &self,
        connection: &mut AsyncSmtpConnection,
        message: &lettre::Message,
    ) -> Result<lettre::transport::smtp::response::Response, Outcome> {
        let envelope = message.envelope();
        let email = message.formatted();
        let server = connection.server_info();
        let mut options = Vec::new();
        let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
        if !envelope.to().iter().chain(envelope.from()).all(ascii) {
            if !server.supports_feature(Extension::SmtpUtfEight) {
                let reason = "the relay takes no address that is not ASCII (it offers no SMTPUTF8)";
                return Err(if envelope.from().is_none_or(ascii) {
                    Outcome::Failed {
                        reason: reason.to_owned(),
                    }
                } else {
                    Outcome::Unavailable {
                        cause: Cause::Sender,
                        reason: format!("the sender `{}`: {reason}", self.from.email),
                    }
                });
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !email.is_ascii() {
            if !server.supports_feature(Extension::EightBitMime) {
                return Err(Outcome::Failed {
                    reason: "the relay takes no message that is not ASCII (it offers no 8BITMIME)"
                        .to_owned(),
                });
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let from = envelope.from().cloned();
        self.within(Stage::Mail, connection.command(Mail::new(from, options)))
            .await?;
        for to in envelope.to() {
            self.within(
                Stage::Rcpt,
                connection.command(Rcpt::new(to.clone(), Vec::new())),
            )
            .await?;
        }
        self.within(Stage::Data, connection.command(Data)).await?;
        self.within(Stage::Data, connection.message(&email)).await
    }

    /// One step of a transaction within the transport's timeout. A relay silent before
    /// DATA has taken nothing (retried, like a connection that cannot be made); silent
    /// after it, it may have taken the message (`uncertain`).
    async fn within<T>(
        &self,
        stage: Stage,
        step: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, Outcome> {
        let seconds = self.relay.timeout.as_secs_f64();
        match tokio::time::timeout(self.relay.timeout, step).await {
            Ok(answer) => answer.map_err(|error| self.classify(&Refusal { stage, error })),
            Err(_) if stage == Stage::Data => Err(Outcome::Uncertain {
                reason: format!("no answer in time ({seconds} s) to DATA or the message"),
            }),
            Err(_) => Err(Outcome::Retry {
                after: None,
                reason: format!("no answer in time ({seconds} s) before the message was sent"),
                cause: Cause::Network,
            }),
        }
    }

    /// A connection that was used before and still answers, or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, Refusal> {
        loop {
            let parked = self.idle.lock().expect("the connections lock").pop();
            let Some((mut connection, since)) = parked else {
                return self.relay.connect().await;
            };
            if since.elapsed() < IDLE && connection.test_connected().await {
                return Ok(connection);
            }
            quit(connection).await;
        }
    }

    /// Keeps `connection` for the next transaction, unless enough are kept.
    async fn park(&self, connection: AsyncSmtpConnection) {
        let surplus = {
            let mut idle = self.idle.lock().expect("the connections lock");
            if idle.len() < self.concurrency {
                idle.push((connection, Instant::now()));
                None
            } else {
                Some(connection)
            }
        };
        if let Some(connection) = surplus {
            quit(connection).await;
        }
    }

    fn classify(&self, refusal: &Refusal) -> Outcome {
        classify(&refusal.error, refusal.stage, &self.from.email)
    }
}

impl Relay {
    /// A new connection: greeted, EHLO said, TLS on as `tls` says, authenticated.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Refusal> {
        let at = |stage| move |error| Refusal { stage, error };
        let wrapper = match &self.tls {
            Some((Tls::Tls, parameters)) => Some(parameters.clone()),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await
        .map_err(at(Stage::Connect))?;
        if let Some((Tls::Starttls, parameters)) = &self.tls {
            connection
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(at(Stage::Starttls))?;
        }
        if let Some(credentials) = &self.credentials {
            if let Err(error) = connection.auth(DEFAULT_MECHANISMS, credentials).await {
                quit(connection).await;
                return Err(Refusal {
                    stage: Stage::Auth,
                    error,
                });
            }
        }
        Ok(connection)
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

impl Drop for Smtp {
    /// Says QUIT on the connections kept, when a runtime is there to do it.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().expect("the connections lock"));
        if idle.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for (connection, _) in idle {
                    quit(connection).await;
                }
            });
        }
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

/// What `error`, answered to the command of `stage`, means; `from` is the sender.
fn classify(error: &lettre::transport::smtp::Error, stage: Stage, from: &str) -> Outcome {
    let reason = error.to_string();
    let code = error.status().map(|code| code.to_string());
    // lettre's own refusals (STARTTLS not offered, no AUTH mechanism in common) are as
    // final as a 5xx.
    let refused = error.is_permanent()
        || (error.is_client() && matches!(stage, Stage::Starttls | Stage::Auth));
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
    } else if refused {
        let (cause, reason) = match stage {
            Stage::Rcpt | Stage::Data => return Outcome::Failed { reason },
            Stage::Connect => (
                Cause::Client,
                format!("the relay refused the connection (its greeting or EHLO): {reason}"),
            ),
            Stage::Starttls => (
                Cause::Client,
                format!("the relay refused the connection (STARTTLS): {reason}"),
            ),
            Stage::Auth => (Cause::Credentials, reason),
            Stage::Mail => (
                Cause::Sender,
                format!("the relay refused the sender `{from}` (MAIL FROM): {reason}"),
            ),
        };
        Outcome::Unavailable { cause, reason }
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

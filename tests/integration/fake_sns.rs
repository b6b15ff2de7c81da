//! Amazon SNS's side of an HTTPS subscription, on loopback, for the tests: the signing
//! certificate served over HTTPS under a test CA (what `HERALD_TEST_ONLY_SNS_HOST` and
//! `HERALD_TEST_ONLY_SNS_CA` let herald trust), `ConfirmSubscription` taken, and messages
//! signed as SNS documents: the fields of the message's type in a fixed order, each as
//! name, line break, value, line break, signed with `SHA1withRSA` (`SignatureVersion` 1)
//! or `SHA256withRSA` (2) by the certificate's key, base64.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::tls::TestCa;

/// The certificate's path, of the form AWS uses.
const CERTIFICATE_PATH: &str = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";

#[derive(Default)]
pub struct Log {
    /// GETs of the signing certificate.
    pub certificate_fetches: usize,
    /// The tokens of the subscriptions confirmed.
    pub confirmed: Vec<String>,
    /// Every request line.
    pub requests: Vec<String>,
}

pub struct FakeSns {
    ca: TestCa,
    port: u16,
    key: rsa::RsaPrivateKey,
    log: Arc<Mutex<Log>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeSns {
    pub fn start() -> Self {
        let ca = TestCa::new();
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/integration/sns-signing-key.pem"),
        )
        .unwrap();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let certificate = signing_certificate(&pem);
        let acceptor = acceptor(&ca);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, log, certificate) =
                    (acceptor.clone(), Arc::clone(&shared), certificate.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(stream, &log, &certificate).await;
                    }
                });
            }
        });
        Self {
            ca,
            port,
            key,
            log,
            _runtime: runtime,
        }
    }

    /// What herald's environment needs to trust this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "HERALD_TEST_ONLY_SNS_HOST",
                format!("127.0.0.1:{}", self.port),
            ),
            ("HERALD_TEST_ONLY_SNS_CA", self.ca.ca.display().to_string()),
        ]
    }

    pub fn certificate_url(&self) -> String {
        format!("https://127.0.0.1:{}{CERTIFICATE_PATH}", self.port)
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    /// A notification of `message` (SES's JSON) on `topic`, sent `age` seconds ago,
    /// signed with `version`.
    pub fn notification(&self, topic: &str, message: &Value, version: u8, age: u64) -> Value {
        let mut posted = json!({
            "Type": "Notification",
            "MessageId": message_id(),
            "TopicArn": topic,
            "Message": message.to_string(),
            "Timestamp": timestamp(age),
            "SignatureVersion": version.to_string(),
            "SigningCertURL": self.certificate_url(),
            "UnsubscribeURL": format!("https://127.0.0.1:{}/?Action=Unsubscribe&SubscriptionArn={topic}:9f1c", self.port),
        });
        self.sign(&mut posted);
        posted
    }

    /// The subscription confirmation SNS sends for `topic`, with `token`.
    pub fn confirmation(&self, topic: &str, token: &str) -> Value {
        let mut posted = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": message_id(),
            "Token": token,
            "TopicArn": topic,
            "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": format!("https://127.0.0.1:{}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}", self.port),
            "Timestamp": timestamp(0),
            "SignatureVersion": "2",
            "SigningCertURL": self.certificate_url(),
        });
        self.sign(&mut posted);
        posted
    }

    /// Signs `posted` as SNS does, over the fields its `Type` signs.
    pub fn sign(&self, posted: &mut Value) {
        let fields: &[&str] = if posted["Type"] == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let mut text = String::new();
        for field in fields {
            if let Some(value) = posted[*field].as_str() {
                let _ = write!(text, "{field}\n{value}\n");
            }
        }
        let signature = match posted["SignatureVersion"].as_str() {
            Some("1") => SigningKey::<sha1::Sha1>::new(self.key.clone())
                .sign(text.as_bytes())
                .to_vec(),
            _ => SigningKey::<sha2::Sha256>::new(self.key.clone())
                .sign(text.as_bytes())
                .to_vec(),
        };
        posted["Signature"] = base64::engine::general_purpose::STANDARD
            .encode(signature)
            .into();
    }
}

fn message_id() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Now less `age` seconds, as SNS writes it (`2012-05-02T00:54:06.655Z`).
fn timestamp(age: u64) -> String {
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
    humantime::format_rfc3339_millis(at).to_string()
}

/// A self-signed certificate for the signing key: SNS's own, in the role it plays here.
fn signing_certificate(pem: &str) -> String {
    let key = rcgen::KeyPair::from_pem(pem).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sns.amazonaws.com");
    params.self_signed(&key).unwrap().pem()
}

fn acceptor(ca: &TestCa) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&ca.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&ca.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// One request per connection: the certificate, or a confirmation.
async fn serve<S>(mut stream: S, log: &Mutex<Log>, certificate: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let (status, body) = {
        let mut log = log.lock().unwrap();
        log.requests.push(line.clone());
        if line.starts_with("GET ") && target == CERTIFICATE_PATH {
            log.certificate_fetches += 1;
            ("200 OK", certificate.to_owned())
        } else if let Some(token) = target
            .strip_prefix("/?Action=ConfirmSubscription&")
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("Token=")))
        {
            log.confirmed.push(token.to_owned());
            (
                "200 OK",
                "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                 <ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:herald-ses-feedback:9f1c\
                 </SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
                    .to_owned(),
            )
        } else {
            ("404 Not Found", String::new())
        }
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

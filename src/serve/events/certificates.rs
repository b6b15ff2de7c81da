//! Where SNS signing certificates are fetched from, and where a subscription is confirmed:
//! only `https` URLs on an SNS host of AWS's own form, `sns.<region>.amazonaws.com` (or
//! `.amazonaws.com.cn`), on the default port, with no credentials in them; never a
//! redirect. A certificate is fetched once per URL and kept (AWS names a new URL when it
//! rotates one). The certificate is trusted because TLS, checked against the usual roots,
//! proved it came from that host: the host rule is what makes a forged message's own
//! certificate useless.
//!
//! # Test-only trust
//! The tests cannot serve a certificate from an AWS host, so `HERALD_TEST_ONLY_SNS_HOST`
//! (`127.0.0.1:PORT`) and `HERALD_TEST_ONLY_SNS_CA` (a PEM file) add one more host and the
//! CA its TLS certificate is checked against. Production configuration cannot widen what
//! herald trusts through them: they are not in any manifest or the schema, and the host
//! must be a loopback address (`127.0.0.0/8`, `::1` or `localhost`) or `watch` refuses to
//! start. Whoever can set herald's environment and serve HTTPS on its own loopback could
//! replace its binary as well; the SNS host rule for every other host stays as it is, and
//! the extra CA is used for that one loopback host only. herald warns when they are set.
//!
//! # Guarantees
//! - Nothing is fetched from a URL that breaks the host rule: such a message is refused
//!   before any request is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use rsa::RsaPublicKey;

pub const TEST_HOST_ENV: &str = "HERALD_TEST_ONLY_SNS_HOST";
pub const TEST_CA_ENV: &str = "HERALD_TEST_ONLY_SNS_CA";

/// How long a fetch of a certificate or a confirmation may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest certificate taken; AWS's are about 2 KB.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Certificates kept at most; the cache starts over past it.
const MAX_CACHED: usize = 64;

/// A loopback host whose certificates are trusted besides SNS's own, and the CA its TLS
/// certificate is checked against: for tests only (see the module's documentation).
pub struct TestTrust {
    /// `host:port`, as it must appear in a URL.
    authority: String,
    ca: reqwest::Certificate,
}

impl TestTrust {
    /// What the environment asks for: `None` when nothing; `Err` saying why when it asks
    /// for anything but a loopback host with a CA.
    pub fn from_env() -> Result<Option<Self>, String> {
        let host = std::env::var(TEST_HOST_ENV).ok().filter(|h| !h.is_empty());
        let ca = std::env::var(TEST_CA_ENV).ok().filter(|c| !c.is_empty());
        let (host, ca) = match (host, ca) {
            (None, None) => return Ok(None),
            (Some(host), Some(ca)) => (host, ca),
            _ => {
                return Err(format!(
                    "`{TEST_HOST_ENV}` and `{TEST_CA_ENV}` go together, for tests only: set both or neither"
                ));
            }
        };
        let authority = loopback(&host).ok_or_else(|| {
            format!(
                "`{TEST_HOST_ENV}` is `{host}`: for tests only, it takes a loopback address and port (`127.0.0.1:PORT`), never another host"
            )
        })?;
        let pem = std::fs::read(&ca)
            .map_err(|error| format!("`{TEST_CA_ENV}`: cannot read `{ca}`: {error}"))?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|error| {
            format!("`{TEST_CA_ENV}`: `{ca}` is not a PEM certificate: {error}")
        })?;
        Ok(Some(Self { authority, ca }))
    }

    /// The host, as a warning names it.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

/// `host` as `host:port` when it is a loopback address with a port.
fn loopback(host: &str) -> Option<String> {
    if let Ok(address) = host.parse::<std::net::SocketAddr>() {
        return address.ip().is_loopback().then(|| address.to_string());
    }
    let (name, port) = host.rsplit_once(':')?;
    (name.eq_ignore_ascii_case("localhost") && port.parse::<u16>().is_ok())
        .then(|| format!("localhost:{port}"))
}

/// Why a certificate or a confirmation could not be had.
#[derive(Debug)]
pub enum Unusable {
    /// The URL breaks the host rule, or what it gave is not a certificate: the message is
    /// refused.
    Refused(String),
    /// The host could not be reached or failed: the provider should try again.
    Unavailable(String),
}

/// Fetches and keeps SNS signing certificates, and confirms subscriptions.
pub struct Certificates {
    client: reqwest::Client,
    test: Option<(String, reqwest::Client)>,
    cache: Mutex<HashMap<String, Arc<RsaPublicKey>>>,
}

fn client(extra: Option<&reqwest::Certificate>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")));
    let builder = match extra {
        Some(ca) => builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone()),
        None => builder,
    };
    builder.build().expect("an HTTP client builds")
}

impl Certificates {
    pub fn new(test: Option<TestTrust>) -> Self {
        Self {
            client: client(None),
            test: test.map(|t| (t.authority, client(Some(&t.ca)))),
            cache: Mutex::default(),
        }
    }

    /// The client for `url` when it keeps the host rule.
    fn client_for(&self, url: &str) -> Result<(&reqwest::Client, Url), Unusable> {
        let refused = |why: &str| Unusable::Refused(format!("`{url}` {why}"));
        let parsed = Url::parse(url).map_err(|_| refused("is not a URL"))?;
        if parsed.scheme() != "https" {
            return Err(refused("is not an https URL"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused("holds credentials"));
        }
        let host = parsed.host_str().unwrap_or_default();
        if let Some((authority, client)) = &self.test {
            let port = parsed.port_or_known_default().unwrap_or_default();
            if format!("{host}:{port}") == *authority {
                return Ok((client, parsed));
            }
        }
        if parsed.port().is_some() || !is_sns_host(host) {
            return Err(refused(
                "is not on an SNS host (sns.<region>.amazonaws.com)",
            ));
        }
        Ok((&self.client, parsed))
    }

    /// The public key of the certificate at `url`, fetched once.
    pub async fn key(&self, url: &str) -> Result<Arc<RsaPublicKey>, Unusable> {
        if let Some(key) = self.cache.lock().expect("the certificates lock").get(url) {
            return Ok(Arc::clone(key));
        }
        let (client, parsed) = self.client_for(url)?;
        let pem = std::path::Path::new(parsed.path())
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pem"));
        if !pem {
            return Err(Unusable::Refused(format!(
                "`{url}` is not a certificate (`.pem`) URL"
            )));
        }
        let pem = fetch(client, parsed).await?;
        let key = Arc::new(
            public_key(&pem)
                .map_err(|why| Unusable::Refused(format!("the certificate at `{url}` {why}")))?,
        );
        let mut cache = self.cache.lock().expect("the certificates lock");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// Confirms a subscription: a GET of its `SubscribeURL`, under the same host rule.
    pub async fn confirm(&self, url: &str) -> Result<(), Unusable> {
        let (client, parsed) = self.client_for(url)?;
        let confirms = parsed
            .query_pairs()
            .any(|(name, value)| name == "Action" && value == "ConfirmSubscription");
        if !confirms {
            return Err(Unusable::Refused(format!(
                "`{url}` is not a ConfirmSubscription URL"
            )));
        }
        fetch(client, parsed).await.map(drop)
    }
}

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, the region lowercase
/// letters, digits and hyphens.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// GETs `url` and answers its body, up to `MAX_CERTIFICATE_BYTES`.
async fn fetch(client: &reqwest::Client, url: Url) -> Result<Vec<u8>, Unusable> {
    let shown = url.to_string();
    let unavailable = |why: String| Unusable::Unavailable(format!("`{shown}`: {why}"));
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| unavailable(error.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_CERTIFICATE_BYTES {
            return Err(Unusable::Refused(format!(
                "`{shown}` gave more than {MAX_CERTIFICATE_BYTES} bytes"
            )));
        }
    }
    Ok(body)
}

/// The RSA public key of a PEM certificate.
fn public_key(pem: &[u8]) -> Result<RsaPublicKey, &'static str> {
    use rsa::pkcs8::DecodePublicKey as _;
    use x509_cert::der::{DecodePem as _, Encode as _};

    let certificate =
        x509_cert::Certificate::from_pem(pem).map_err(|_| "is not a PEM certificate")?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| "has no public key")?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| "has no RSA public key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_of_aws_form() {
        for good in [
            "sns.us-east-1.amazonaws.com",
            "sns.eu-central-1.amazonaws.com",
            "sns.cn-north-1.amazonaws.com.cn",
        ] {
            assert!(is_sns_host(good), "{good}");
        }
        for bad in [
            "sns.amazonaws.com",
            "sns..amazonaws.com",
            "sns.us-east-1.amazonaws.com.evil.example",
            "evil-sns.us-east-1.amazonaws.com",
            "sqs.us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.co",
            "sns.US-EAST-1.amazonaws.com",
            "sns.us_east_1.amazonaws.com",
        ] {
            assert!(!is_sns_host(bad), "{bad}");
        }
    }

    #[test]
    fn urls_that_break_the_host_rule_are_refused_before_any_request() {
        let certificates = Certificates::new(None);
        let pem = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(certificates.client_for(pem).is_ok());
        for bad in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
            "https://user:pass@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            "https://127.0.0.1:8443/cert.pem",
            "not a url",
        ] {
            assert!(
                matches!(certificates.client_for(bad), Err(Unusable::Refused(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_test_host_is_loopback_only() {
        assert_eq!(
            loopback("127.0.0.1:8443").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(loopback("[::1]:8443").as_deref(), Some("[::1]:8443"));
        assert_eq!(
            loopback("localhost:8443").as_deref(),
            Some("localhost:8443")
        );
        for bad in [
            "10.0.0.1:8443",
            "sns.us-east-1.amazonaws.com:443",
            "example.com:443",
            "127.0.0.1",
            "localhost",
        ] {
            assert_eq!(loopback(bad), None, "{bad}");
        }
    }
}

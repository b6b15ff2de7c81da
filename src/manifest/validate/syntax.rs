//! What an environment variable name, an API URL and a domain are. (What a language tag
//! is, `crate::langtag` says.)

/// `localhost`, or an address in 127.0.0.0/8 or `::1`: this machine.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn is_env_name(value: &str) -> bool {
    let mut bytes = value.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub fn is_http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// `mg.example.com`: dot-separated labels of letters, digits and inner hyphens. It goes
/// into the API's path, so nothing else may.
pub fn is_domain(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').count() >= 2
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert!(is_env_name("SENDGRID_API_KEY"));
        assert!(is_env_name("_X1"));
        assert!(!is_env_name("sendgrid_key"));
        assert!(!is_env_name("1KEY"));
        assert!(!is_env_name("SG.abc"));
    }
}

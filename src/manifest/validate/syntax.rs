//! What an environment variable name, an API URL, a domain and an SNS topic's ARN are.
//! (What a language tag is, `crate::langtag` says.)

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

/// `arn:aws:sns:us-east-1:123456789012:ses-feedback`: an SNS topic's ARN, in the `aws`,
/// `aws-cn` or `aws-us-gov` partition, a region, a 12-digit account and a topic name
/// (letters, digits, `-` and `_`, up to 256, `.fifo` allowed at the end).
pub fn is_topic_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    let [arn, partition, service, region, account, name] = parts[..] else {
        return false;
    };
    let name = name.strip_suffix(".fifo").unwrap_or(name);
    arn == "arn"
        && ["aws", "aws-cn", "aws-us-gov"].contains(&partition)
        && service == "sns"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns() {
        for good in [
            "arn:aws:sns:us-east-1:123456789012:ses-feedback",
            "arn:aws-cn:sns:cn-north-1:123456789012:feedback_1",
            "arn:aws:sns:eu-west-1:123456789012:events.fifo",
        ] {
            assert!(is_topic_arn(good), "{good}");
        }
        for bad in [
            "",
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:sns:us-east-1:1234:short-account",
            "arn:aws:sns::123456789012:no-region",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a:b",
            "arn:other:sns:us-east-1:123456789012:topic",
            "arn:aws:sns:us-east-1:123456789012:sp ace",
        ] {
            assert!(!is_topic_arn(bad), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("SENDGRID_API_KEY"));
        assert!(is_env_name("_X1"));
        assert!(!is_env_name("sendgrid_key"));
        assert!(!is_env_name("1KEY"));
        assert!(!is_env_name("SG.abc"));
    }
}

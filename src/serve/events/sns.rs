//! An Amazon SNS message as it arrives at an HTTP endpoint, and its signature, checked as
//! AWS documents it: the message's fields in a fixed order (`Key\nvalue\n` each) are the
//! text signed, with `SHA1withRSA` (`SignatureVersion` 1) or `SHA256withRSA` (2), by the key
//! in the certificate at `SigningCertURL` (see `certificates` for where that may be).

use rsa::RsaPublicKey;
use serde_json::Value;

/// What kind of SNS message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// The fields of an SNS message that herald reads.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    /// `MessageId`.
    pub id: String,
    pub topic_arn: String,
    /// `Message`: for SES, its notification as JSON text.
    pub text: String,
    pub timestamp: String,
    pub subject: Option<String>,
    pub subscribe_url: Option<String>,
    pub token: Option<String>,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
}

/// Why a body is not an SNS message herald can check.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// No signature, or no certificate to check it with.
    Unsigned,
    /// Anything else: not JSON, an unknown `Type`, a field missing.
    Invalid(&'static str),
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|_| Malformed::Invalid("not a JSON SNS message"))?;
        let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(signature_version), Some(signature), Some(signing_cert_url)) = (
            text("SignatureVersion"),
            text("Signature"),
            text("SigningCertURL"),
        ) else {
            return Err(Malformed::Unsigned);
        };
        let kind = match text("Type").as_deref() {
            Some("Notification") => Kind::Notification,
            Some("SubscriptionConfirmation") => Kind::SubscriptionConfirmation,
            Some("UnsubscribeConfirmation") => Kind::UnsubscribeConfirmation,
            _ => return Err(Malformed::Invalid("not an SNS message type herald knows")),
        };
        let required = |key: &str| {
            text(key).ok_or(Malformed::Invalid(
                "an SNS message without a field its type signs",
            ))
        };
        let message = Self {
            kind,
            id: required("MessageId")?,
            topic_arn: required("TopicArn")?,
            text: required("Message")?,
            timestamp: required("Timestamp")?,
            subject: text("Subject"),
            subscribe_url: text("SubscribeURL"),
            token: text("Token"),
            signature_version,
            signature,
            signing_cert_url,
        };
        if kind != Kind::Notification
            && (message.subscribe_url.is_none() || message.token.is_none())
        {
            return Err(Malformed::Invalid(
                "an SNS message without a field its type signs",
            ));
        }
        Ok(message)
    }

    /// The text SNS signed: for a notification `Message`, `MessageId`, `Subject` (when
    /// there is one), `Timestamp`, `TopicArn` and `Type`; for a subscription or
    /// unsubscribe confirmation `Message`, `MessageId`, `SubscribeURL`, `Timestamp`,
    /// `Token`, `TopicArn` and `Type`; each as its name, a line break, its value, a line
    /// break.
    pub fn signed_text(&self) -> String {
        let kind = match self.kind {
            Kind::Notification => "Notification",
            Kind::SubscriptionConfirmation => "SubscriptionConfirmation",
            Kind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        };
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.text), ("MessageId", &self.id)];
        match self.kind {
            Kind::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            Kind::SubscriptionConfirmation | Kind::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", self.token.as_deref().unwrap_or("")));
            }
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", kind));
        let mut text = String::new();
        for (name, value) in fields {
            text.push_str(name);
            text.push('\n');
            text.push_str(value);
            text.push('\n');
        }
        text
    }

    /// Checks the signature with `key`, the public key of the certificate at
    /// `signing_cert_url`.
    pub fn verify(&self, key: &RsaPublicKey) -> Result<(), &'static str> {
        use base64::Engine as _;
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier as _;

        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|_| "a signature that is not base64")?;
        let signature =
            Signature::try_from(bytes.as_slice()).map_err(|_| "a signature that is not one")?;
        let text = self.signed_text();
        let verified = match self.signature_version.as_str() {
            "1" => VerifyingKey::<sha1::Sha1>::new(key.clone()).verify(text.as_bytes(), &signature),
            "2" => {
                VerifyingKey::<sha2::Sha256>::new(key.clone()).verify(text.as_bytes(), &signature)
            }
            _ => return Err("a signature version SNS does not use"),
        };
        verified.map_err(|_| "not signed by the certificate it names")
    }

    /// When the message was sent, in Unix seconds.
    pub fn sent(&self) -> Option<u64> {
        let at = humantime::parse_rfc3339_weak(&self.timestamp).ok()?;
        at.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(subject: Option<&str>) -> Message {
        let mut json = serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "line one\nline two",
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        });
        if let Some(subject) = subject {
            json["Subject"] = subject.into();
        }
        Message::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_notification_signs_its_fields_in_order_with_the_subject_when_there_is_one() {
        assert_eq!(
            notification(None).signed_text(),
            "Message\nline one\nline two\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
        assert!(
            notification(Some("My First Message"))
                .signed_text()
                .contains("MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\nTimestamp\n")
        );
    }

    #[test]
    fn a_confirmation_signs_its_url_and_token() {
        let json = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SignatureVersion": "2",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService.pem",
        });
        let message = Message::parse(json.to_string().as_bytes()).unwrap();
        assert_eq!(
            message.signed_text(),
            "Message\nYou have chosen to subscribe to the topic.\nMessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37\n\
             Timestamp\n2012-04-26T20:45:04.751Z\nToken\n2336412f37\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nSubscriptionConfirmation\n"
        );
        assert_eq!(message.sent(), Some(1_335_473_104));
    }

    #[test]
    fn unsigned_and_malformed_messages_are_told_apart() {
        assert_eq!(
            Message::parse(br#"{"Type":"Notification","Message":"x"}"#).unwrap_err(),
            Malformed::Unsigned
        );
        assert!(matches!(
            Message::parse(b"{").unwrap_err(),
            Malformed::Invalid(_)
        ));
        assert!(matches!(
            Message::parse(
                br#"{"Type":"Other","SignatureVersion":"1","Signature":"x","SigningCertURL":"y"}"#
            )
            .unwrap_err(),
            Malformed::Invalid(_)
        ));
    }
}

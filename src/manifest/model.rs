//! The `herald/v1` manifest format as serde types.
//!
//! These types are deliberately permissive where a wrong value deserves a better message
//! than serde can give (`isolation`, `rate`, names, addresses): such fields are `Option`s
//! or raw values here and are judged by `validate` and `policy`, which can say *why* a
//! value is refused. Unknown keys are always errors (`deny_unknown_fields`), so typos
//! never pass silently. The JSON Schema in `schemas/` is generated from these types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "herald/v1";

/// The isolation policy every campaign must declare.
pub const PER_RECIPIENT: &str = "per-recipient";

/// Any document of a manifest file; used to generate the schema.
#[derive(Debug, Deserialize, JsonSchema)]
#[allow(dead_code, reason = "only its schema is read")]
#[serde(untagged)]
#[schemars(title = "herald/v1 manifest document")]
pub enum Document {
    Campaign(CampaignDoc),
    Transport(TransportDoc),
}

/// A campaign: who gets which message, how fast, in what envelopes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignDoc {
    #[schemars(required, extend("const" = "herald/v1"))]
    pub api_version: Option<String>,
    #[schemars(required, extend("const" = "Campaign"))]
    pub kind: Option<String>,
    pub metadata: Metadata,
    pub spec: CampaignSpec,
}

/// A transport: where messages go (a folder, an HTTP API, an SMTP server).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransportDoc {
    #[schemars(required, extend("const" = "herald/v1"))]
    pub api_version: Option<String>,
    #[schemars(required, extend("const" = "Transport"))]
    pub kind: Option<String>,
    pub metadata: Metadata,
    pub spec: TransportSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Lowercase letters, digits and `-`, at most 63 characters; the key in the state store.
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,63}$"))]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// Name of a `Transport` document.
    pub transport: String,
    pub from: Address,
    #[serde(default)]
    pub reply_to: Option<Address>,
    pub template: Template,
    pub locales: Locales,
    pub audience: Audience,
    /// Required: the ceiling on accepted messages for this campaign.
    #[schemars(required)]
    pub rate: Option<RateSpec>,
    /// Required: how recipients are packed into provider calls.
    #[schemars(required)]
    pub batch: Option<Batch>,
    #[serde(default)]
    pub unsubscribe: Option<Unsubscribe>,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// `true`: send nothing more until set back to `false`.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub halt: Option<Halt>,
    /// When the campaign may send: not before, not after, and within a window of days and
    /// hours in each recipient's own time zone. Without it, everyone is due at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Bump to accept changed content after sending began: `2`, or `{number: 2, resend:
    /// all}` to send it also to those who got an earlier revision (a correction).
    #[serde(default)]
    pub revision: RevisionSpec,
    /// Folders outside the manifest's own folder that this campaign's templates, catalogs,
    /// audience and suppression lists may come from. Without them, every such path must
    /// stay inside the manifest's folder tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_outside: Vec<PathBuf>,
    /// How many shards send this campaign, each from its own process and store (default
    /// 1): a recipient belongs to shard `u64::from_be_bytes(SHA-256(address)[..8]) % shards`
    /// (see docs/DESIGN.md). `herald apply --shard I` sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub shards: Option<u32>,
}

/// `revision: 2`, or `revision: {number: 2, resend: all}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RevisionSpec {
    /// The revision's number; the new content reaches only those not sent yet.
    Number(#[schemars(range(min = 1))] u32),
    Full(RevisionFull),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionFull {
    #[schemars(range(min = 1))]
    pub number: u32,
    /// `all`: send this revision also to everyone who got an earlier one, once each;
    /// `none` (the default): only to those not sent yet.
    #[serde(default)]
    pub resend: Resend,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resend {
    /// Only those who got no revision yet.
    #[default]
    None,
    /// Also everyone who got an earlier revision.
    All,
}

impl Default for RevisionSpec {
    fn default() -> Self {
        Self::Number(1)
    }
}

impl RevisionSpec {
    pub fn number(self) -> u32 {
        match self {
            Self::Number(number) | Self::Full(RevisionFull { number, .. }) => number,
        }
    }

    pub fn resend(self) -> Resend {
        match self {
            Self::Number(_) => Resend::None,
            Self::Full(full) => full.resend,
        }
    }
}

// By hand, so that a mapping with a misspelt key is told so, not "did not match any variant".
impl<'de> Deserialize<'de> for RevisionSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(deserializer)?;
        if value.is_mapping() {
            RevisionFull::deserialize(value)
                .map(Self::Full)
                .map_err(serde::de::Error::custom)
        } else {
            u32::deserialize(value).map(Self::Number).map_err(|_| {
                serde::de::Error::custom(
                    "expected a revision number such as `2`, or `{number: 2, resend: all}`",
                )
            })
        }
    }
}

/// An email address with an optional display name.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl Address {
    /// `"Name" <address>`, the name quoted (RFC 5322) so that commas and the like stay in
    /// it: how the HTTP providers that take a mailbox as text want it.
    pub fn mailbox(&self) -> String {
        match &self.name {
            Some(name) => format!(
                "\"{}\" <{}>",
                name.replace('\\', "\\\\").replace('"', "\\\""),
                self.email
            ),
            None => self.email.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Inline minijinja template for the subject line.
    pub subject: String,
    /// Path of the HTML body template (auto-escaped); at least one of `html` and `text`.
    #[serde(default)]
    pub html: Option<PathBuf>,
    /// Path of the plain-text body template.
    #[serde(default)]
    pub text: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Locales {
    /// Locale used when a recipient has none, and the last fallback for missing keys.
    pub default: String,
    /// Audience column that holds each recipient's locale.
    #[serde(default = "default_locale_field")]
    pub field: String,
    /// Folder of `<locale>.yaml` catalogs.
    pub catalog: PathBuf,
    /// Other values of the locale column and the locale each stands for, compared
    /// case-insensitively: `{Deutsch: de, German: de, 日本語: ja}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
    /// What happens to a row whose locale is neither a language tag nor in `map`.
    #[serde(default, skip_serializing_if = "OnUnknown::is_refuse")]
    pub on_unknown: OnUnknown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    /// Refuse the run, counting the rows per value with a line of each.
    #[default]
    Refuse,
    /// Send them in the default locale, and report them.
    Default,
}

impl OnUnknown {
    #[allow(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's skip_serializing_if"
    )]
    fn is_refuse(&self) -> bool {
        *self == Self::Refuse
    }
}

fn default_locale_field() -> String {
    "locale".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// A `.csv` file with a header row, or a `.jsonl` file of objects.
    pub file: PathBuf,
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// Lists of addresses never to send to: a path (CSV with an `email` column, JSONL
    /// objects with an `email` field, or one address per line), or `{file, email_field}`
    /// for an export whose address column has another name.
    #[serde(default)]
    pub suppress: Vec<SuppressList>,
    #[serde(default)]
    pub on_invalid: OnInvalid,
}

fn default_email_field() -> String {
    "email".to_owned()
}

/// One suppression list: `lists/optout.csv`, or `{file: lists/mailchimp.csv, email_field:
/// "Email Address"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SuppressList {
    /// Read strictly: an `email` column or field, or one address per line.
    Path(PathBuf),
    File(SuppressFile),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressFile {
    /// A `.csv` or `.jsonl` list.
    pub file: PathBuf,
    /// The column (or JSON field) holding the addresses, e.g. `Email Address`.
    #[serde(default = "default_email_field")]
    pub email_field: String,
}

impl SuppressList {
    pub fn file(&self) -> &PathBuf {
        match self {
            Self::Path(file) | Self::File(SuppressFile { file, .. }) => file,
        }
    }
}

// By hand, so that a mapping with a misspelt key is told so, not "did not match any variant".
impl<'de> Deserialize<'de> for SuppressList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(deserializer)?;
        if value.is_mapping() {
            SuppressFile::deserialize(value)
                .map(Self::File)
                .map_err(serde::de::Error::custom)
        } else {
            PathBuf::deserialize(value).map(Self::Path).map_err(|_| {
                serde::de::Error::custom("expected a path, or `{file: PATH, email_field: COLUMN}`")
            })
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Refuse the run and list the rows with invalid addresses.
    #[default]
    Refuse,
    /// Skip rows with invalid addresses and report them.
    Skip,
}

/// A rate: exactly one of the three fields, from 1 per hour to 1,000,000,000 per second.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rate")]
#[allow(clippy::struct_field_names, reason = "the manifest's own keys")]
pub struct RateSpec {
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub per_second: Option<f64>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub per_minute: Option<f64>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub per_hour: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Messages per provider call, at most the transport's limit (1000).
    #[schemars(required, range(min = 1, max = 1000))]
    pub size: Option<u32>,
    /// Must be `per-recipient`: every envelope addresses exactly one recipient.
    #[schemars(required, with = "String", extend("const" = "per-recipient"))]
    pub isolation: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    /// Inline template of the one-click unsubscribe URL; sees `unsubscribe_token`.
    pub url: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Only `rollout.seed`.
    Seed,
    /// The seeds plus a stable `rollout.canary_percent` sample of the audience.
    Canary,
    /// Everyone.
    #[default]
    Full,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Canary => "canary",
            Self::Full => "full",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    #[serde(default)]
    pub seed: Vec<String>,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub canary_percent: Option<f64>,
}

/// `spec.schedule`; every key optional.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// RFC 3339 with an offset, e.g. `2026-12-08T09:00:00+01:00`: nothing is sent earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// RFC 3339 with an offset: nothing is sent later; whoever is left is `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// IANA name of the window's zone for recipients without one of their own; default
    /// `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The audience column holding each recipient's IANA time zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone_field: Option<String>,
}

/// Days and hours of the recipient's local time when sending is allowed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// The days a window opens on; default every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<Weekday>>,
    /// `HH:MM`, local time: the window opens.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: String,
    /// `HH:MM`, local time: the window closes; earlier than `from`, the next day.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday 0 to Sunday 6.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    /// Stop the campaign when permanent failures pass this share of attempts.
    #[serde(default = "default_max_failure_rate")]
    #[schemars(range(min = 0, max = 1))]
    pub max_failure_rate: f64,
    /// Attempts before the failure rate is judged.
    #[serde(default = "default_min_attempts")]
    pub min_attempts: u32,
}

impl Default for Halt {
    fn default() -> Self {
        Self {
            max_failure_rate: default_max_failure_rate(),
            min_attempts: default_min_attempts(),
        }
    }
}

fn default_max_failure_rate() -> f64 {
    0.05
}

fn default_min_attempts() -> u32 {
    100
}

/// How provider events are verified: each provider signs its own way, so each names its
/// own key (`validate` checks the kind's is there and no other).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    /// sendgrid: the environment variable holding the Event Webhook's verification key
    /// (the public key SendGrid shows, base64 DER).
    #[serde(default)]
    pub public_key_env: Option<String>,
    /// mailgun: the environment variable holding the HTTP webhook signing key.
    #[serde(default)]
    pub signing_key_env: Option<String>,
    /// postmark: the environment variable holding the user name of the HTTP basic auth
    /// credentials written into the webhook URL (`https://USER:PASSWORD@host/events/postmark`).
    #[serde(default)]
    pub username_env: Option<String>,
    /// postmark: the environment variable holding the password of those credentials.
    #[serde(default)]
    pub password_env: Option<String>,
    /// smtp (Amazon SES): the ARN of the SNS topic SES publishes this sender's bounces and
    /// complaints to, `arn:aws:sns:REGION:ACCOUNT:NAME`. Only its messages are taken, and
    /// only its subscription is confirmed.
    #[serde(default)]
    pub topic_arn: Option<String>,
}

/// One flat spec for every transport type; `validate` checks which fields each type takes,
/// so a misplaced field gets a message that names the type.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransportSpec {
    #[serde(rename = "type")]
    pub kind: TransportKind,
    /// outbox: folder that receives one `.eml` file per message.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// sendgrid, mailgun, postmark: API base URL, `https://api.sendgrid.com`,
    /// `https://api.mailgun.net` (`https://api.eu.mailgun.net` for the EU region) or
    /// `https://api.postmarkapp.com` unless overridden.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// sendgrid, mailgun: name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// mailgun: the sending domain, as set up at Mailgun (`mg.example.com`).
    #[serde(default)]
    pub domain: Option<String>,
    /// postmark: name of the environment variable holding the server token.
    #[serde(default)]
    pub server_token_env: Option<String>,
    /// postmark: the message stream, `broadcast` (Postmark's stream for bulk mail) unless
    /// set.
    #[serde(default)]
    pub message_stream: Option<String>,
    /// smtp: server host name.
    #[serde(default)]
    pub host: Option<String>,
    /// smtp: server port; 25, 587 or 465 by `tls` unless set.
    #[serde(default)]
    pub port: Option<u16>,
    /// smtp: `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// smtp: environment variable holding the user name.
    #[serde(default)]
    pub username_env: Option<String>,
    /// smtp: environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// smtp: a PEM file of the CA (or CAs) that signed the relay's certificate, trusted
    /// besides `tls_trust`: for a relay with a certificate of a private CA.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// smtp: which CAs are trusted: `bundled` (Mozilla's, built into herald, the same on
    /// every machine; the default) or `system` (the machine's trust store).
    #[serde(default)]
    pub tls_trust: Option<TlsTrust>,
    /// smtp: send the credentials over a connection without TLS to a host that is not
    /// loopback. Refused unless set: anyone on the way could read them.
    #[serde(default)]
    pub allow_plaintext_auth: Option<bool>,
    /// Ceiling shared by every campaign using this transport.
    #[serde(default)]
    pub rate: Option<RateSpec>,
    /// Provider calls in flight at once (SMTP: transactions, each on a connection of its
    /// own); 16 for HTTP providers, 8 for SMTP and the number of cores for the outbox
    /// unless set.
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: Option<u32>,
    /// sendgrid, mailgun, postmark, smtp (Amazon SES through SNS): verify the webhooks that
    /// `herald watch --listen` receives on `/events/sendgrid`, `/events/mailgun`,
    /// `/events/postmark` and `/events/ses`.
    #[serde(default)]
    pub events: Option<EventsSpec>,
    /// sendgrid, mailgun, postmark, smtp: seconds to wait for one provider call before its outcome is
    /// `uncertain` (never retried automatically); 30 unless set.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u32>,
    // Inline secrets are accepted by the parser only so that they can be refused with a
    // message that says what to do instead. They never reach the schema.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub api_key: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub password: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub token: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Outbox,
    Sendgrid,
    Mailgun,
    Postmark,
    Smtp,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Sendgrid => "sendgrid",
            Self::Mailgun => "mailgun",
            Self::Postmark => "postmark",
            Self::Smtp => "smtp",
        }
    }

    /// Whether messages sent through this kind reach real mailboxes.
    pub fn delivers_mail(self) -> bool {
        !matches!(self, Self::Outbox)
    }

    /// The largest `batch.size` a campaign may declare: what one call may carry. The
    /// `SendGrid` API takes at most 1,000 personalizations, Mailgun 1,000 recipients
    /// (`recipient-variables`), Postmark's batch API 500
    /// messages; the outbox and SMTP are capped at 1,000 because a call is also the unit
    /// of durable intent, and so bounds how many recipients one crash can leave uncertain.
    pub fn max_batch(self) -> u32 {
        match self {
            Self::Postmark => 500,
            Self::Outbox | Self::Sendgrid | Self::Mailgun | Self::Smtp => 1000,
        }
    }

    /// The most recipients one call carries: SMTP sends one transaction per recipient.
    pub fn max_call(self) -> u32 {
        match self {
            Self::Smtp => 1,
            Self::Outbox | Self::Sendgrid | Self::Mailgun | Self::Postmark => self.max_batch(),
        }
    }

    /// Whether a call carries content once, with each recipient's values beside it
    /// (`SendGrid` substitutions, Mailgun recipient variables), rather than a complete
    /// message per recipient.
    pub fn shares_content(self) -> bool {
        matches!(self, Self::Sendgrid | Self::Mailgun)
    }

    /// Calls in flight at once unless the transport says: enough for `SendGrid` or Mailgun
    /// 150 ms away to carry 200,000 messages a second (32 calls of 1,000, far below
    /// `SendGrid`'s 10,000 requests a second), 16 for Postmark (whose calls of 500 carry
    /// whole messages, 3 MB each), a relay's usual limit on connections for SMTP, and the
    /// cores for the outbox. It is also the most calls left uncertain by a crash.
    pub fn default_concurrency(self) -> u32 {
        match self {
            Self::Sendgrid | Self::Mailgun => 32,
            Self::Postmark => 16,
            Self::Smtp => 8,
            Self::Outbox => std::thread::available_parallelism()
                .map_or(2, |n| u32::try_from(n.get()).unwrap_or(2)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsTrust {
    /// Mozilla's root CAs, built into herald.
    #[default]
    Bundled,
    /// The machine's trust store (`/etc/ssl/certs` and the like).
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

//! One problem found in a manifest, with the file, line, column and key it concerns.
//!
//! Rendered as `file:line:column: key.path: message`: lowercase, user values in backticks,
//! no trailing period. Every rule adds a `Problem` variant, so the whole catalogue of
//! messages herald can print about manifests is in this one file.

use std::fmt;
use std::path::PathBuf;

use super::locate::Position;

/// A place in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn new(file: PathBuf, position: Position) -> Self {
        Self {
            file,
            line: position.line,
            column: position.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub location: Location,
    /// The key path the problem is about, e.g. `spec.batch.isolation`; empty for the file.
    pub key: String,
    pub problem: Problem,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.location, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.location, self.key, self.problem)
        }
    }
}

/// Everything herald refuses in a manifest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("invalid YAML: {message}")]
    Syntax { message: String },
    /// A structural error reported by serde: unknown key, wrong type, missing field.
    #[error("{message}")]
    Structure { message: String },
    #[error("expected a mapping with `apiVersion`, `kind`, `metadata` and `spec`")]
    NotAMapping,
    #[error("missing: expected `herald/v1`")]
    ApiVersionMissing,
    #[error("expected `herald/v1`, found `{found}`")]
    ApiVersionWrong { found: String },
    #[error("missing: expected `Campaign` or `Transport`")]
    KindMissing,
    #[error("expected `Campaign` or `Transport`, found `{found}`")]
    KindUnknown { found: String },

    #[error("`{name}` is not a valid name: use 1 to 63 characters from `a-z`, `0-9` and `-`")]
    NameInvalid { name: String },
    #[error("{kind} `{name}` is already defined at {first}")]
    NameDuplicate {
        kind: &'static str,
        name: String,
        first: Location,
    },

    #[error(
        "missing: set `isolation: per-recipient`, so that every envelope addresses exactly one \
         recipient; herald never guesses here, because recipients who share an envelope see \
         each other's addresses"
    )]
    IsolationMissing,
    #[error(
        "{found} is refused: recipients who share an envelope see each other's addresses; \
         set `isolation: per-recipient`, so that every envelope addresses exactly one recipient"
    )]
    IsolationRefused { found: String },

    #[error("missing: how many recipients one provider call carries, from 1 to {max}")]
    BatchSizeMissing { max: u32 },
    #[error(
        "`{size}` is out of range: transport `{transport}` ({kind}) takes 1 to {max} recipients per call"
    )]
    BatchSizeOutOfRange {
        size: u32,
        transport: String,
        kind: &'static str,
        max: u32,
    },

    #[error("missing: declare a ceiling such as `rate: {{per_second: 50}}`")]
    RateMissing,
    #[error("declare exactly one of `per_second`, `per_minute` or `per_hour`")]
    RateEmpty,
    #[error("declare exactly one of `per_second`, `per_minute` or `per_hour`, found {found}")]
    RateAmbiguous { found: String },
    #[error("`{value}` must be a number greater than zero")]
    RateNotPositive { value: f64 },
    #[error(
        "`{value}` is out of range: herald sends at most 1,000,000,000 per second and at least 1 per hour"
    )]
    RateOutOfRange { value: f64 },

    #[error("no transport named `{name}`; {known}")]
    TransportUnknown { name: String, known: String },
    #[error("not a setting of `{kind}` transports")]
    TransportFieldNotForType { kind: &'static str },
    #[error("missing: `{kind}` transports need it")]
    TransportFieldRequired { kind: &'static str },
    #[error("`{value}` is not an http or https URL")]
    EndpointInvalid { value: String },
    #[error("`{value}` is not a domain name like `mg.example.com`")]
    DomainInvalid { value: String },
    #[error("`username_env` and `password_env` go together: set both or neither")]
    CredentialsUnpaired,
    #[error(
        "`{value}` is not the ARN of an SNS topic, like `arn:aws:sns:us-east-1:123456789012:ses-feedback`"
    )]
    TopicArnInvalid { value: String },
    #[error(
        "`none` would send the credentials to `{host}` in clear text, readable by anyone on the way; use `starttls` or `tls`, or set `allow_plaintext_auth: true` if the network to it is your own"
    )]
    PlaintextAuth { host: String },
    #[error("a CA file is for TLS, and `tls: none` uses none; remove it or set `tls: starttls`")]
    CaFileWithoutTls,

    #[error(
        "inline secrets are refused: put the secret in an environment variable and name it with `{instead}`"
    )]
    SecretInline { instead: &'static str },
    #[error("`{value}` is not an environment variable name: use `A-Z`, `0-9` and `_`")]
    EnvNameInvalid { value: String },

    #[error("`{value}` is not a valid email address")]
    AddressInvalid { value: String },
    #[error("{value} contains a line break; header values must be a single line")]
    LineBreak { value: String },

    #[error("declare at least one of `html` and `text`")]
    TemplateBodyMissing,
    #[error("`{value}` not found (looked for `{resolved}`)")]
    FileNotFound { value: String, resolved: PathBuf },
    #[error("`{value}` is not a folder")]
    NotAFolder { value: String },
    #[error("`{value}` is {what}, not a regular file; herald reads only regular files")]
    NotAFile { value: String, what: &'static str },
    #[error(
        "`{value}` resolves to `{}`, outside the manifest's folder `{}`; list its folder in `spec.allow_outside` to read files from there",
        resolved.display(),
        folder.display()
    )]
    OutsideManifestFolder {
        value: String,
        resolved: PathBuf,
        folder: PathBuf,
    },
    #[error(
        "`{value}`: expected a `.csv` (with an `email` column), `.jsonl` (objects with an `email` field) or `.txt` (one address per line) suppression list"
    )]
    SuppressionFormat { value: String },
    #[error("{count} suppression lists; a campaign takes at most {most}: merge some of them")]
    TooManySuppressionLists { count: usize, most: usize },
    #[error("no catalog for the default locale `{locale}`: expected `{expected}`")]
    DefaultCatalogMissing { locale: String, expected: PathBuf },
    #[error("`{value}` is not a language tag such as `en` or `zh-TW`{reason}")]
    LocaleInvalid { value: String, reason: String },
    #[error(
        "`{value}` has no catalog in `{}`: add `{value}.yaml` (or one for its language), or map the value to a locale that has one",
        folder.display()
    )]
    LocaleMapWithoutCatalog { value: String, folder: PathBuf },
    #[error(
        "`{value}` is mapped twice (keys compare case-insensitively), the other at line {line}"
    )]
    LocaleMapDuplicate { value: String, line: usize },
    #[error(
        "`{value}`: `email_field` is for `.csv` and `.jsonl` lists; a `.txt` list holds one address per line"
    )]
    SuppressionFieldFormat { value: String },
    #[error("`{value}`: expected a `.csv` or `.jsonl` file")]
    AudienceFormat { value: String },

    #[error("`stage: seed` needs at least one address in `rollout.seed`")]
    SeedWithoutSeeds,
    #[error("`stage: canary` needs `rollout.canary_percent`")]
    CanaryWithoutPercent,
    #[error("`{value}` is out of range: expected more than 0 and at most 100")]
    CanaryPercentOutOfRange { value: f64 },
    #[error("`{value}` is out of range: expected more than 0 and at most 1")]
    FailureRateOutOfRange { value: f64 },
    #[error("`0` is out of range: revisions start at 1")]
    RevisionZero,
    #[error("`{value}` is out of range: revisions go up to 16,777,215")]
    RevisionTooLarge { value: u32 },
    #[error("must be at least 1 second")]
    TimeoutZero,

    #[error(
        "`{value}` is not a date and time with an offset (RFC 3339), e.g. `2026-12-08T09:00:00+01:00`"
    )]
    ScheduleInstant { value: String },
    #[error("`{value}` is not after `not_before` (`{not_before}`): nobody could ever be sent")]
    ScheduleOrder { value: String, not_before: String },
    #[error("`{value}` is not a time of day as `HH:MM` (00:00 to 23:59), e.g. `09:00`")]
    WindowTime { value: String },
    #[error(
        "`from` and `to` are both `{value}`: the window would be empty; to send at any hour, leave `window` out"
    )]
    WindowEmpty { value: String },
    #[error("no days: nobody could ever be sent; leave `days` out for every day")]
    WindowNoDays,
    #[error("`{value}` is not a time zone of the IANA database, e.g. `Europe/Berlin`{near}")]
    ZoneUnknown { value: String, near: String },
    #[error(
        "no window opens between `not_before` and `not_after` ({zones}): nobody could ever be sent"
    )]
    ScheduleNeverOpens { zones: String },
    #[error("`{value}` is out of range: expected 1 to 256 calls in flight")]
    ConcurrencyOutOfRange { value: u32 },
    #[error("`{value}` is out of range: expected 1 to 1,024 shards")]
    ShardsOutOfRange { value: u32 },
}

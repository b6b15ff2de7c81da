//! What a reviewer must not miss, said before anything else in a review: a refusal, content
//! changed without a new revision, a rate that jumps, a stage that moves to `full`, what
//! plan itself warns of (recipients in the default language for want of their own). One
//! enum, so that a new kind (a schedule that starts within the hour, once manifests have
//! schedules) is one variant with its sentence.

use std::fmt;

use serde::Serialize;

use crate::manifest::Stage;
use crate::text::List;

/// A rate this many times the one before is a jump.
pub const RATE_JUMP: f64 = 2.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// Refused as apply would refuse it: a manifest problem (isolation above all), a
    /// template that cannot render, content changed after sending began.
    Refused {
        campaign: Option<String>,
        message: String,
    },
    /// The content changed and the revision did not; apply refuses it if sending began.
    Unrevised {
        campaign: String,
        parts: Vec<String>,
        revision: u32,
    },
    RateJump {
        campaign: String,
        from: String,
        to: String,
        factor: f64,
    },
    /// The stage becomes `full`: everyone not sent yet gets the message.
    StageToFull {
        campaign: String,
        /// The stage before (`None`: a new campaign, or one the live store never applied).
        from: Option<Stage>,
        /// Where the stage before comes from: `the live store` or `the base branch`.
        seen_in: &'static str,
    },
    /// The campaign's schedule lets it send within the hour: from `starts`.
    ScheduleSoon {
        campaign: String,
        starts: jiff::Timestamp,
    },
    /// What plan warns of before sending, as it says it (today: too many recipients in the
    /// default language for want of their own).
    Plan { campaign: String, message: String },
}

impl Warning {
    /// For `-o json`: `refused`, `unrevised`, `rate_jump`, `stage_to_full`,
    /// `schedule_soon` or `plan`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "refused",
            Self::Unrevised { .. } => "unrevised",
            Self::RateJump { .. } => "rate_jump",
            Self::StageToFull { .. } => "stage_to_full",
            Self::ScheduleSoon { .. } => "schedule_soon",
            Self::Plan { .. } => "plan",
        }
    }

    pub fn campaign(&self) -> Option<&str> {
        match self {
            Self::Refused { campaign, .. } => campaign.as_deref(),
            Self::Unrevised { campaign, .. }
            | Self::RateJump { campaign, .. }
            | Self::StageToFull { campaign, .. }
            | Self::ScheduleSoon { campaign, .. }
            | Self::Plan { campaign, .. } => Some(campaign),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused {
                campaign: Some(campaign),
                message,
            } => write!(f, "campaign `{campaign}` is refused: {message}"),
            Self::Refused {
                campaign: None,
                message,
            } => write!(f, "refused: {message}"),
            Self::Unrevised {
                campaign,
                parts,
                revision,
            } => write!(
                f,
                "campaign `{campaign}`: content changed ({}) and the revision stays {revision}; if sending \
                 began, apply refuses it until spec.revision is {} (`herald plan --against` tells)",
                List::and(parts),
                revision + 1
            ),
            Self::RateJump {
                campaign,
                from,
                to,
                factor,
            } => write!(
                f,
                "campaign `{campaign}`: the rate goes from {from} to {to}, {} times as fast",
                times(*factor)
            ),
            Self::StageToFull {
                campaign,
                from: Some(from),
                seen_in,
            } => write!(
                f,
                "campaign `{campaign}`: the stage moves from `{}` ({seen_in}) to `full`: everyone in the \
                 audience not sent yet gets the message",
                from.as_str()
            ),
            Self::StageToFull {
                campaign,
                from: None,
                ..
            } => write!(
                f,
                "campaign `{campaign}` starts at stage `full`: everyone in the audience gets the message at once"
            ),
            Self::ScheduleSoon { campaign, starts } => write!(
                f,
                "campaign `{campaign}`: its schedule lets it send within the hour, from {starts}; \
                 merged now, it sends then"
            ),
            Self::Plan { campaign, message } => write!(f, "campaign `{campaign}`: {message}"),
        }
    }
}

impl Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("kind", self.kind())?;
        map.serialize_entry("campaign", &self.campaign())?;
        map.serialize_entry("message", &self.to_string())?;
        map.end()
    }
}

/// `100`, `2.5`: a factor as people say it.
fn times(factor: f64) -> String {
    if factor >= 10.0 || (factor - factor.round()).abs() < 0.05 {
        format!("{factor:.0}")
    } else {
        format!("{factor:.1}")
    }
}

/// The warning for a campaign whose schedule lets it send within the hour of `now`:
/// `not_before` passed or within the hour, `not_after` not passed, and its window open
/// or opening within the hour in the schedule's zone (with a zone per recipient, some
/// window may be open at any hour: then `not_before` alone decides).
pub fn schedule_soon(
    campaign: &crate::manifest::Campaign,
    now: jiff::Timestamp,
) -> Option<Warning> {
    use crate::manifest::Moment;
    let schedule = campaign.schedule.as_ref()?;
    if schedule.not_after.is_some_and(|end| end <= now) {
        return None;
    }
    let earliest = schedule.not_before.map_or(now, |t| t.max(now));
    let starts = if schedule.timezone_field.is_some() {
        earliest
    } else {
        match schedule.moment(&schedule.timezone, earliest) {
            Moment::Open { .. } => earliest,
            Moment::Opens(at) => at,
            Moment::Never | Moment::Expired => return None,
        }
    };
    let hour = jiff::SignedDuration::from_hours(1);
    // Said to the second.
    let starts = jiff::Timestamp::from_second(starts.as_second()).unwrap_or(starts);
    (starts.duration_since(now) <= hour).then(|| Warning::ScheduleSoon {
        campaign: campaign.name.clone(),
        starts,
    })
}

/// What a comment says of manifests that could not be loaded: each problem, which names
/// its file; `side` (the folder) before an error that names none.
pub fn unloaded(error: &crate::manifest::LoadError, side: Option<&str>) -> Vec<Warning> {
    let refused = |message: String| Warning::Refused {
        campaign: None,
        message,
    };
    match error {
        crate::manifest::LoadError::Invalid(diagnostics) => {
            diagnostics.iter().map(|d| refused(d.to_string())).collect()
        }
        other => vec![refused(match side {
            Some(side) => format!("{side}: {other}"),
            None => other.to_string(),
        })],
    }
}

/// The warning for a rate going from `from` to `to`, when it jumps.
pub fn rate_jump(
    campaign: &str,
    from: &crate::manifest::Rate,
    to: &crate::manifest::Rate,
) -> Option<Warning> {
    let factor = to.per_second() / from.per_second();
    (factor >= RATE_JUMP).then(|| Warning::RateJump {
        campaign: campaign.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        factor,
    })
}

//! How a campaign's messages go out, and so how long sending takes: the transport's kind,
//! how many recipients a call carries, how many calls are in flight, how long one takes.
//!
//! Sending takes as long as the tightest of three bounds allows: the campaign's rate, the
//! transport's rate (shared with other campaigns), and the calls: `concurrency` of them in
//! flight, each taking the provider's latency (measured in the last run, or 200 ms for a
//! transport never used). Plan says which binds.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::duration::human_duration;
use super::packing;
use crate::manifest::TransportKind;
use crate::manifest::{Campaign, Rate};
use crate::store::CallLatency;

/// What plan assumes of a provider never used: a round trip across the internet.
pub const ASSUMED_LATENCY: Duration = Duration::from_millis(200);
/// What plan assumes of the outbox never used: writing files on a local disk.
const ASSUMED_OUTBOX_LATENCY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct Delivery {
    pub transport: String,
    pub kind: TransportKind,
    /// The most recipients one call carries.
    pub call_size: usize,
    pub concurrency: usize,
    pub campaign_rate: Rate,
    pub transport_rate: Option<Rate>,
    pub latency: Duration,
    /// Whether `latency` was measured (else it is `ASSUMED_LATENCY`).
    pub measured: bool,
}

impl Delivery {
    pub fn of(campaign: &Campaign, latency: Option<&CallLatency>) -> Self {
        let transport = &campaign.transport;
        let mut rates = vec![campaign.rate.per_second()];
        rates.extend(transport.rate.as_ref().map(Rate::per_second));
        let measured = latency
            .filter(|l| l.transport == transport.name)
            .map(|l| Duration::from_secs_f64(l.seconds));
        Self {
            transport: transport.name.clone(),
            kind: transport.kind,
            call_size: packing::call_size(transport.kind, campaign.batch_size.get(), &rates),
            concurrency: transport.concurrency.get() as usize,
            campaign_rate: campaign.rate.clone(),
            transport_rate: transport.rate.clone(),
            latency: measured.unwrap_or(match transport.kind {
                TransportKind::Outbox => ASSUMED_OUTBOX_LATENCY,
                _ => ASSUMED_LATENCY,
            }),
            measured: measured.is_some(),
        }
    }

    /// The rate that binds: the campaign's, or its transport's when that is lower.
    pub fn rate_per_second(&self) -> f64 {
        let campaign = self.campaign_rate.per_second();
        self.transport_rate
            .as_ref()
            .map_or(campaign, |rate| rate.per_second().min(campaign))
    }

    /// How long `to_send` recipients in `calls` calls take, and what binds.
    pub fn estimate(&self, to_send: u64, calls: u64) -> Estimate {
        // A bucket starts full: one second's worth goes at once.
        #[allow(clippy::cast_precision_loss)]
        let rate_bound = |rate: f64| (to_send as f64 - rate.floor().max(1.0)).max(0.0) / rate;
        #[allow(clippy::cast_precision_loss)]
        let waves = calls.div_ceil(self.concurrency.max(1) as u64) as f64;
        let mut estimate = Estimate {
            seconds: rate_bound(self.campaign_rate.per_second()),
            binds: Binds::CampaignRate,
        };
        if let Some(rate) = &self.transport_rate {
            let seconds = rate_bound(rate.per_second());
            if seconds > estimate.seconds {
                estimate = Estimate {
                    seconds,
                    binds: Binds::TransportRate,
                };
            }
        }
        let calls_bound = waves * self.latency.as_secs_f64();
        if calls_bound > estimate.seconds {
            estimate = Estimate {
                seconds: calls_bound,
                binds: Binds::Calls,
            };
        }
        estimate
    }

    /// `about 20 s at 50/s (the campaign's rate binds)`, for people; what binds a send
    /// of under a second is of no interest.
    pub fn describe(&self, estimate: &Estimate) -> String {
        let time = human_duration(estimate.seconds);
        if estimate.seconds < 1.0 {
            return time;
        }
        match estimate.binds {
            Binds::CampaignRate => {
                format!(
                    "{time} at {} (the campaign's rate binds)",
                    self.campaign_rate
                )
            }
            Binds::TransportRate => format!(
                "{time} at {} (transport `{}`'s rate binds)",
                self.transport_rate
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                self.transport
            ),
            Binds::Calls => format!(
                "{time} ({} calls in flight, {} ms each{}: the calls bind)",
                self.concurrency,
                self.latency.as_millis(),
                if self.measured {
                    " in the last run"
                } else {
                    ", assumed"
                }
            ),
        }
    }
}

/// How long sending takes, and what binds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub seconds: f64,
    pub binds: Binds,
}

/// What keeps a send from going faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binds {
    CampaignRate,
    TransportRate,
    Calls,
}

impl fmt::Display for Binds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CampaignRate => "campaign_rate",
            Self::TransportRate => "transport_rate",
            Self::Calls => "calls",
        })
    }
}

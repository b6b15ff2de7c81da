//! Prometheus metrics, in the text format, with the official `prometheus-client`.
//!
//! Counters and the call histogram are kept as calls happen; the recipient gauges are set
//! from the live view and the store's ledger (both cheap) each time `/metrics` is scraped,
//! so they are never stale.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::live::Live;
use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecipientLabels {
    campaign: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    transport: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignLabels {
    campaign: String,
}

type Durations = Family<TransportLabels, Histogram, fn() -> Histogram>;

/// herald's metrics. One per process; cheap to update from any thread.
pub struct Metrics {
    registry: Mutex<Registry>,
    recipients: Family<RecipientLabels, Gauge>,
    calls: Family<CallLabels, Counter>,
    durations: Durations,
    paused: Family<CampaignLabels, Gauge>,
    halted: Family<CampaignLabels, Gauge>,
    transport_up: Family<TransportLabels, Gauge>,
    next_due: Family<CampaignLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let recipients = Family::<RecipientLabels, Gauge>::default();
        let calls = Family::<CallLabels, Counter>::default();
        let durations: Durations = Family::new_with_constructor(|| {
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0])
        });
        let paused = Family::<CampaignLabels, Gauge>::default();
        let halted = Family::<CampaignLabels, Gauge>::default();
        let transport_up = Family::<TransportLabels, Gauge>::default();
        let next_due = Family::<CampaignLabels, Gauge>::default();
        registry.register(
            "recipients",
            "Recipients of each campaign by state (sent, failed, uncertain, expired, due, suppressed, bounced, complained, unsubscribed)",
            recipients.clone(),
        );
        registry.register(
            "provider_calls",
            "Provider calls by transport and outcome",
            calls.clone(),
        );
        registry.register(
            "provider_call_duration_seconds",
            "How long provider calls take, by transport",
            durations.clone(),
        );
        registry.register(
            "campaign_paused",
            "1 while a campaign is paused",
            paused.clone(),
        );
        registry.register(
            "campaign_halted",
            "1 while a campaign is halted by its safety gate",
            halted.clone(),
        );
        registry.register(
            "transport_up",
            "1 while a transport takes calls, 0 while it is down (its recipients wait, due)",
            transport_up.clone(),
        );
        registry.register(
            "campaign_next_due_timestamp_seconds",
            "Under a schedule, when the next recipients of a campaign become due (Unix seconds); absent when nobody is waiting",
            next_due.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            recipients,
            calls,
            durations,
            paused,
            halted,
            transport_up,
            next_due,
        }
    }
}

impl Metrics {
    /// One provider call through `transport` that took `seconds` and came to `outcome`
    /// (`sent`, `failed`, `retry`, `uncertain`, `not_sent`, `unauthorized` or `mixed`).
    pub fn call(&self, transport: &str, outcome: &'static str, seconds: f64) {
        self.calls
            .get_or_create(&CallLabels {
                transport: transport.to_owned(),
                outcome,
            })
            .inc();
        self.durations
            .get_or_create(&TransportLabels {
                transport: transport.to_owned(),
            })
            .observe(seconds);
    }

    /// Whether `transport` takes calls now.
    pub fn transport_up(&self, transport: &str, up: bool) {
        self.transport_up
            .get_or_create(&TransportLabels {
                transport: transport.to_owned(),
            })
            .set(i64::from(up));
    }

    /// The metrics in the Prometheus text format, gauges set as of now.
    pub fn render(&self, live: &Live, store: &Store) -> String {
        self.recipients.clear();
        self.paused.clear();
        self.halted.clear();
        self.next_due.clear();
        let feedback = crate::status::Feedback::of(store);
        for (name, campaign) in live.snapshot() {
            let told = feedback.get(&name).copied().unwrap_or_default();
            let counts = store
                .campaign(&name)
                .map(|c| c.counts())
                .unwrap_or_default();
            let left = campaign
                .due
                .saturating_sub(campaign.sent + campaign.failed + campaign.uncertain);
            for (state, value) in [
                ("sent", counts.sent),
                ("failed", counts.failed),
                ("uncertain", counts.uncertain + counts.in_flight),
                ("expired", counts.expired),
                ("due", left),
                ("suppressed", campaign.suppressed),
                ("bounced", told.bounced),
                ("complained", told.complained),
                ("unsubscribed", told.unsubscribed),
            ] {
                self.recipients
                    .get_or_create(&RecipientLabels {
                        campaign: name.clone(),
                        state,
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
            let labels = CampaignLabels {
                campaign: name.clone(),
            };
            self.paused
                .get_or_create(&labels)
                .set(i64::from(campaign.paused));
            self.halted
                .get_or_create(&labels)
                .set(i64::from(campaign.halted.is_some()));
            if let Some(next) = campaign.next_due {
                self.next_due.get_or_create(&labels).set(next.as_second());
            }
        }
        let mut text = String::new();
        let registry = self.registry.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

//! One provider call, from intent to outcomes.
//!
//! # Guarantees
//! - The call's recipients are checked (one address each, nobody twice) before anything is
//!   recorded; a failing call is refused whole.
//! - Its intent is recorded and flushed before the transport is handed the call; the
//!   outcomes replace the intent in one atomic write after. A crash in between leaves
//!   exactly this call's recipients `uncertain`.
//! - A call the transport answered gives back its `Slot` once its outcomes are queued in
//!   the journal, before they are on disk: the next call may start meanwhile, and its
//!   intent, queued after them, is never on disk without them. So a crash still leaves at
//!   most as many calls uncertain as there are slots. A call the transport did not answer
//!   keeps its slot, for the run to judge before anything else starts.
//! - A retryable answer waits (as the provider says, or backing off) and draws tokens again
//!   before the retry. Only an answer about a recipient fails them: after `MAX_TRIES`, a
//!   stop request during the wait, the transport found down meanwhile, or an answer that
//!   the transport cannot be used (refused credentials, untrusted TLS, a full disk) leaves
//!   the recipients as they were before the call: certainly not sent, due again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ReconcileError;
use super::breaker::Breaker;
use super::pace::Pacer;
use crate::clock;
use crate::metrics::Metrics;
use crate::store::{CampaignStore, Change, Intent, RecipientRecord, Status};
use crate::transport::{self, Cause, Deliver, Envelope, Outcome};

/// How often one recipient is tried in a run before a retryable answer counts as failed.
pub const MAX_TRIES: u32 = 5;
/// The first backoff; it doubles per try, with jitter, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What became of a call's recipients.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Settled {
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Certainly not sent (the transport could not take them); due again next run.
    pub not_sent: u64,
    /// Not sent because their window (or the campaign's `not_after`) closed before the
    /// call: no call was made for them; due again when their window next opens.
    pub deferred: u64,
    /// When the first of them is due again (their window's next opening).
    pub reopens: Option<jiff::Timestamp>,
    /// Requests made (the first and every retry), and how long they took in all.
    pub requests: u32,
    pub seconds: f64,
    /// Whether the transport answered about any of the call's recipients (it is up).
    pub answered: bool,
    /// Why the transport could not take the call, when it took none of it.
    pub unavailable: Option<(Cause, String)>,
}

/// A call's place among those a run lets be under way at once; given back when dropped
/// (see `send`).
pub struct Slot(Option<tokio::sync::mpsc::UnboundedSender<()>>);

impl Slot {
    /// A slot that says so on `release` when given back.
    pub fn new(release: tokio::sync::mpsc::UnboundedSender<()>) -> Self {
        Self(Some(release))
    }

    /// A slot nobody waits for.
    #[cfg(test)]
    pub fn free() -> Self {
        Self(None)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            let _ = release.send(());
        }
    }
}

/// What every call of a run shares.
#[derive(Clone)]
pub struct Shared {
    pub store: CampaignStore,
    /// The campaign's revision, recorded with each recipient.
    pub revision: u32,
    pub pacer: Pacer,
    pub probe: Probe,
    pub breaker: Arc<Breaker>,
}

/// Where calls are timed and counted.
#[derive(Clone)]
pub struct Probe {
    pub transport: Arc<str>,
    pub metrics: Arc<Metrics>,
}

impl Probe {
    /// Hands `batch` to `deliver`, timing the request and counting its outcome.
    async fn deliver<D: Deliver>(
        &self,
        deliver: &D,
        batch: Vec<Envelope>,
    ) -> (Vec<(Envelope, Outcome)>, f64) {
        let started = Instant::now();
        let outcomes = deliver.deliver(batch).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut kinds = outcomes.iter().map(|(_, o)| o.kind());
        let first = kinds.next().unwrap_or("sent");
        let outcome = if kinds.all(|k| k == first) {
            first
        } else {
            "mixed"
        };
        self.metrics.call(&self.transport, outcome, seconds);
        (outcomes, seconds)
    }
}

/// Sends one call: check, intent, deliver, retry what may be retried, outcomes. The
/// retries give up early once the shared breaker says the transport is down. `slot` is
/// given back (taken and dropped) once the outcomes are queued, before they are on disk,
/// when the transport answered; otherwise it is left for the caller.
pub async fn send<D: Deliver>(
    deliver: &D,
    shared: &Shared,
    envelopes: Vec<Envelope>,
    slot: &mut Option<Slot>,
) -> Result<Settled, ReconcileError> {
    let Shared {
        store,
        revision,
        pacer,
        probe,
        breaker,
    } = shared;
    let revision = *revision;
    transport::check(&envelopes)?;
    // The schedule once more, right before the call: whoever's window closed meanwhile
    // waits for the next.
    let (envelopes, deferred, reopens) = in_window(envelopes);
    if envelopes.is_empty() {
        return Ok(Settled {
            deferred,
            reopens,
            ..Settled::default()
        });
    }
    let intent = Intent {
        revision,
        started: clock::unix_now(),
        recipients: envelopes
            .iter()
            .map(|e| (e.key.clone(), e.attempt))
            .collect(),
    };
    let intent = store.begin_async(&intent).await?;

    let mut tally = Tally::new(revision, envelopes.len());
    tally.settled.deferred = deferred;
    tally.settled.reopens = reopens;
    let mut pending = envelopes;
    let mut tries = 1;
    loop {
        let (outcomes, seconds) = probe.deliver(deliver, std::mem::take(&mut pending)).await;
        tally.settled.requests += 1;
        tally.settled.seconds += seconds;
        let mut retry = Vec::new();
        let mut wait: Option<Duration> = None;
        for (envelope, outcome) in outcomes {
            if let Some((envelope, after)) = tally.judge(envelope, outcome) {
                wait = wait.max(after);
                retry.push(envelope);
            }
        }
        if retry.is_empty() {
            break;
        }
        // Retries wait (as told, or backing off) and draw tokens like any send, unless
        // nothing will come of them: the transport cannot be used, or is down.
        let delay = wait.unwrap_or_else(|| backoff(tries));
        let futile = tally
            .settled
            .unavailable
            .as_ref()
            .is_some_and(|(c, _)| !c.passes())
            || breaker.down().is_some();
        if tries >= MAX_TRIES
            || futile
            || !pacer.sleep(delay).await
            || breaker.down().is_some()
            || !pacer.ready(retry.len()).await
        {
            // Retryable answers mean not accepted: these are due again next run.
            for envelope in retry {
                tally.unchanged(&envelope.key);
            }
            break;
        }
        tries += 1;
        // Nobody is retried once their window closed: they keep what they had.
        let (retry, late, reopens) = in_window(retry);
        tally.settled.deferred += late;
        tally.settled.reopens = earliest(tally.settled.reopens, reopens);
        if retry.is_empty() {
            break;
        }
        pending = retry;
    }
    let Tally {
        mut settled,
        changes,
        retrying,
        ..
    } = tally;
    // A call that only ever heard "try again" could not be made either.
    if !settled.answered && settled.unavailable.is_none() {
        settled.unavailable =
            retrying.map(|(cause, reason)| (cause, format!("{reason} (after {tries} tries)")));
    }
    if settled.answered {
        settled.unavailable = None;
    }
    let recording = store.finish_queued(Some(&intent), &changes)?;
    if settled.answered {
        slot.take();
    }
    recording.settle().await?;
    Ok(settled)
}

/// The envelopes whose window is still open, how many were left out (their window, or
/// the campaign, closed), and when the first of those is due again.
fn in_window(envelopes: Vec<Envelope>) -> (Vec<Envelope>, u64, Option<jiff::Timestamp>) {
    if envelopes.iter().all(|e| e.slot.is_none()) {
        return (envelopes, 0, None);
    }
    let now = clock::now();
    let (open, late): (Vec<Envelope>, Vec<Envelope>) = envelopes
        .into_iter()
        .partition(|e| e.slot.is_none_or(|slot| now < slot.until));
    let reopens = late
        .iter()
        .filter_map(|e| e.slot.and_then(|slot| slot.reopens))
        .min();
    (open, late.len() as u64, reopens)
}

fn earliest(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> Option<jiff::Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A call's outcomes as they come in: counted, and turned into the store's changes.
struct Tally {
    revision: u32,
    settled: Settled,
    changes: Vec<Change>,
    /// The last "try again" heard, and what it means if it lasts.
    retrying: Option<(Cause, String)>,
}

impl Tally {
    fn new(revision: u32, recipients: usize) -> Self {
        Self {
            revision,
            changes: Vec::with_capacity(recipients),
            settled: Settled::default(),
            retrying: None,
        }
    }

    /// Records one recipient's outcome; a retryable one comes back with the wait the
    /// provider asked for, to be sent again.
    fn judge(
        &mut self,
        mut envelope: Envelope,
        outcome: Outcome,
    ) -> Option<(Envelope, Option<Duration>)> {
        let attempts = envelope.attempt;
        let (status, provider_id, reason) = match outcome {
            Outcome::Sent { id } => {
                self.settled.sent += 1;
                self.settled.answered = true;
                (Status::Sent, Some(id), None)
            }
            Outcome::Failed { reason } => {
                tracing::debug!(recipient = %envelope.key, %reason, "failed");
                self.settled.failed += 1;
                self.settled.answered = true;
                (Status::Failed, None, Some(reason))
            }
            Outcome::Retry {
                after,
                reason,
                cause,
            } => {
                tracing::debug!(recipient = %envelope.key, %reason, "will retry");
                self.retrying = Some((cause, reason));
                envelope.attempt += 1;
                return Some((envelope, after));
            }
            Outcome::Uncertain { reason } => {
                self.settled.uncertain += 1;
                self.settled.answered = true;
                (Status::Uncertain, None, Some(reason))
            }
            Outcome::NotSent { reason } => {
                tracing::warn!(recipient = %envelope.key, %reason, "not sent; due again next run");
                self.unchanged(&envelope.key);
                return None;
            }
            Outcome::Unavailable { cause, reason } => {
                tracing::debug!(recipient = %envelope.key, %reason, "the transport cannot take it now");
                self.settled.unavailable.get_or_insert((cause, reason));
                self.unchanged(&envelope.key);
                return None;
            }
        };
        self.changes.push(Change {
            key: envelope.key,
            record: RecipientRecord {
                status,
                attempts,
                revision: self.revision,
                provider_id,
                reason,
                updated: clock::unix_now(),
            },
        });
        None
    }

    /// Certainly not sent: the recipient keeps what they had (no change is recorded for
    /// them), and is due again.
    fn unchanged(&mut self, key: &str) {
        tracing::trace!(recipient = %key, "unchanged");
        self.settled.not_sent += 1;
    }
}

/// Exponential backoff with full jitter, for the `tries`th retry.
fn backoff(tries: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << tries.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    //! The sending step against a scripted `Deliver`: each request answers from the next
    //! entry of a script, per recipient. Real store on disk, no network, milliseconds.

    use std::sync::Mutex;

    use super::*;
    use crate::reconcile::pace::Bucket;
    use crate::reconcile::stop::{Stop, StopHandle};
    use crate::render::Rendered;
    use crate::store::{IfMissing, Store};
    use crate::transport::Message;

    /// How one request answers one recipient.
    type Answer = fn(&Envelope) -> Outcome;

    /// Answers request `i` with `script[i]` (the last entry again once it runs out), and
    /// keeps who each request carried.
    struct Scripted {
        script: Vec<Answer>,
        requests: Mutex<Vec<Vec<String>>>,
    }

    impl Scripted {
        fn new(script: Vec<Answer>) -> Self {
            Self {
                script,
                requests: Mutex::new(Vec::new()),
            }
        }

        fn requests(&self) -> Vec<Vec<String>> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Deliver for Scripted {
        async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
            let mut requests = self.requests.lock().unwrap();
            let answer = self.script[requests.len().min(self.script.len() - 1)];
            requests.push(batch.iter().map(|e| e.key.clone()).collect());
            batch
                .into_iter()
                .map(|e| {
                    let outcome = answer(&e);
                    (e, outcome)
                })
                .collect()
        }
    }

    fn sent(_: &Envelope) -> Outcome {
        Outcome::Sent { id: "id-1".into() }
    }

    fn retry_soon(_: &Envelope) -> Outcome {
        Outcome::Retry {
            after: Some(Duration::from_millis(1)),
            reason: "429 Too Many Requests".into(),
            cause: Cause::Busy,
        }
    }

    /// Everything a call needs: a fresh store on disk, an unlimited pace.
    struct Bench {
        _dir: tempfile::TempDir,
        shared: Shared,
        _stop: StopHandle,
    }

    impl Bench {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("state"), IfMissing::Create)
                .unwrap()
                .campaign("welcome")
                .unwrap();
            let (handle, stop) = Stop::new();
            Self {
                _dir: dir,
                shared: Shared {
                    store,
                    revision: 1,
                    pacer: Pacer::new(Bucket::new(1e6), None, stop),
                    probe: Probe {
                        transport: "scripted".into(),
                        metrics: Arc::default(),
                    },
                    breaker: Arc::default(),
                },
                _stop: handle,
            }
        }

        /// Sends one call to `addresses` through `deliver`.
        fn send(&self, deliver: &Scripted, addresses: &[&str]) -> Result<Settled, ReconcileError> {
            let call = addresses.iter().map(|address| envelope(address)).collect();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(send(deliver, &self.shared, call, &mut Some(Slot::free())))
        }

        fn record(&self, address: &str) -> Option<RecipientRecord> {
            self.shared.store.get(address).unwrap()
        }
    }

    fn envelope(address: &str) -> Envelope {
        Envelope {
            key: address.to_owned(),
            to: address.to_owned(),
            message_id: format!("<{address}.test>"),
            attempt: 1,
            slot: None,
            message: Message::Whole(Rendered {
                subject: "Hello".into(),
                html: None,
                text: Some("Hello\n".into()),
                locale: "en".into(),
                reached: crate::render::Reached::Catalog,
                catalog: "en".into(),
                fallback: false,
                unsubscribe_url: None,
                personal: None,
            }),
        }
    }

    const THREE: [&str; 3] = ["a@example.com", "b@example.com", "c@example.com"];

    #[test]
    fn accepted_recipients_are_recorded_sent_with_the_providers_id() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![sent]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!((settled.sent, settled.requests), (3, 1));
        assert_eq!(deliver.requests(), vec![THREE.map(str::to_owned).to_vec()]);
        for address in THREE {
            let record = bench.record(address).unwrap();
            assert_eq!(record.status, Status::Sent);
            assert_eq!(record.provider_id.as_deref(), Some("id-1"));
        }
        assert_eq!(bench.shared.store.counts().sent, 3);
    }

    #[test]
    fn a_retryable_answer_is_tried_again_and_counts_the_attempt() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![retry_soon, sent]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!((settled.sent, settled.requests), (3, 2));
        assert_eq!(bench.record("b@example.com").unwrap().attempts, 2);
    }

    /// A provider that says "later" to every try charges nobody: the call could not be
    /// made, and its recipients stay due.
    #[test]
    fn retrying_gives_up_after_max_tries_leaving_everyone_due() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![retry_soon]);
        let settled = bench.send(&deliver, &THREE[..1]).unwrap();
        assert_eq!(
            (settled.failed, settled.not_sent, settled.requests),
            (0, 1, MAX_TRIES),
            "{settled:?}"
        );
        assert_eq!(
            settled.unavailable,
            Some((
                Cause::Busy,
                "429 Too Many Requests (after 5 tries)".to_owned()
            ))
        );
        assert!(!settled.answered);
        assert!(bench.record("a@example.com").is_none(), "still due");
    }

    /// Once the transport is found down (by another call), a retry gives up at once.
    #[test]
    fn retries_stop_once_the_transport_is_down() {
        let bench = Bench::new();
        bench
            .shared
            .breaker
            .failed(Cause::Tls, "unknown issuer", 1, "");
        let deliver = Scripted::new(vec![retry_soon]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!((settled.not_sent, settled.requests), (3, 1));
    }

    #[test]
    fn an_uncertain_answer_is_recorded_uncertain_and_not_retried() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![|_| Outcome::Uncertain {
            reason: "no answer in time".into(),
        }]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!((settled.uncertain, settled.requests), (3, 1));
        assert_eq!(
            bench.record("c@example.com").unwrap().status,
            Status::Uncertain
        );
        assert_eq!(bench.shared.store.counts().uncertain, 3);
    }

    #[test]
    fn not_sent_leaves_no_record_so_the_recipient_stays_due() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![|_| Outcome::NotSent {
            reason: "disk full".into(),
        }]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!(settled.not_sent, 3);
        assert!(THREE.iter().all(|a| bench.record(a).is_none()));
        assert_eq!(
            bench.shared.store.counts(),
            crate::store::StatusCounts::default()
        );
    }

    #[test]
    fn refused_credentials_charge_nobody_and_are_not_tried_again() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![|_| Outcome::Unavailable {
            cause: Cause::Credentials,
            reason: "401: bad key".into(),
        }]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!(
            settled.unavailable,
            Some((Cause::Credentials, "401: bad key".to_owned()))
        );
        assert_eq!((settled.not_sent, settled.failed), (3, 0));
        assert_eq!(deliver.requests().len(), 1);
        assert!(THREE.iter().all(|a| bench.record(a).is_none()));
    }

    #[test]
    fn mixed_answers_are_each_recorded_for_their_own_recipient() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![
            |e| match e.key.as_str() {
                "a@example.com" => sent(e),
                "b@example.com" => Outcome::Failed {
                    reason: "550 no such user".into(),
                },
                _ => retry_soon(e),
            },
            sent,
        ]);
        let settled = bench.send(&deliver, &THREE).unwrap();
        assert_eq!((settled.sent, settled.failed, settled.requests), (2, 1, 2));
        assert_eq!(
            deliver.requests()[1],
            vec!["c@example.com".to_owned()],
            "only the retryable one is sent again"
        );
        let b = bench.record("b@example.com").unwrap();
        assert_eq!(
            (b.status, b.reason.as_deref()),
            (Status::Failed, Some("550 no such user"))
        );
        assert_eq!(bench.record("c@example.com").unwrap().attempts, 2);
    }

    #[test]
    fn a_call_naming_a_recipient_twice_is_refused_before_anything_is_sent() {
        let bench = Bench::new();
        let deliver = Scripted::new(vec![sent]);
        let error = bench
            .send(&deliver, &["a@example.com", "a@example.com"])
            .unwrap_err();
        assert!(
            error.to_string().starts_with("isolation check failed"),
            "{error}"
        );
        assert!(deliver.requests().is_empty());
        assert!(bench.record("a@example.com").is_none());
    }
}

//! One campaign's part of the store: its record (in sled), where each recipient stands
//! (the index, in memory), its calls under way, and its history (in the journal).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::index::{Entry as Standing, Index};
use super::journal::{self, Entry};
use super::ledger::{CampaignLedger, Ledger};
use super::record::{CampaignRecord, Intent, RecipientRecord, Status, StatusCounts};
use super::{Store, StoreError, io_error};
use crate::audience::Met;

pub const RECOVERED: &str = "herald stopped before the outcome of this call was recorded";

/// Which call an intent belongs to, for `finish`.
pub type IntentKey = u64;

/// What one recipient's record becomes after a call. Recipients of the call without a
/// change keep what they had: the call could not be made for them.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    pub record: RecipientRecord,
}

/// A campaign's state in memory, shared by every view of it.
#[derive(Default)]
pub struct CampaignState {
    index: RwLock<Index>,
    /// Calls whose outcomes are not recorded yet, by number: under way, or a killed run's
    /// until `recover`.
    intents: Mutex<BTreeMap<IntentKey, Intent>>,
    /// Whether a send walk marks the index (see [`CampaignStore::marks`]).
    walking: AtomicBool,
}

/// A send walk's hold on the index marks; let go when dropped.
pub struct Marks(Arc<CampaignState>);

impl Met for Marks {
    fn first(&mut self, fingerprint: u128) -> bool {
        self.0
            .index
            .write()
            .expect("the index lock")
            .meet(fingerprint)
    }
}

impl Drop for Marks {
    fn drop(&mut self) {
        self.0.walking.store(false, Ordering::Release);
    }
}

/// A call's outcomes queued in the journal (`CampaignStore::finish_queued`), not yet
/// known to be on disk.
#[must_use = "outcomes are recorded only once settled"]
pub struct Recording {
    entry: Entry,
    answer: journal::Answer,
    store: CampaignStore,
}

impl Recording {
    /// Waits until the outcomes are on disk, then knows them in memory.
    pub async fn settle(self) -> Result<(), StoreError> {
        journal::settle(&self.store.store.0.path, self.answer).await?;
        self.store.state.apply(self.entry);
        Ok(())
    }
}

impl CampaignState {
    /// The state a reading of the journal found: entries applied in order, with the
    /// counts by status as of each.
    pub(super) fn apply(&self, entry: Entry) {
        match entry {
            Entry::Intent { call, intent, .. } => {
                self.intents
                    .lock()
                    .expect("the intents lock")
                    .insert(call, intent);
            }
            Entry::Outcomes { call, outcomes, .. } => {
                self.intents.lock().expect("the intents lock").remove(&call);
                let mut index = self.index.write().expect("the index lock");
                for (key, record) in &outcomes {
                    index.set(key, standing(record));
                }
            }
        }
    }

    pub(super) fn counts(&self) -> StatusCounts {
        self.index.read().expect("the index lock").counts()
    }
}

fn standing(record: &RecipientRecord) -> Standing {
    Standing {
        status: record.status,
        attempts: record.attempts,
        revision: record.revision,
    }
}

/// `record` as it may be stored: a provider's reason can echo a secret herald sent it.
fn scrubbed(record: &RecipientRecord) -> RecipientRecord {
    use crate::secret::scrub;
    let clean = |text: &Option<String>| text.as_deref().map(|t| scrub(t).into_owned());
    RecipientRecord {
        reason: clean(&record.reason),
        provider_id: clean(&record.provider_id),
        ..record.clone()
    }
}

/// One campaign's part of the store. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct CampaignStore {
    name: String,
    state: Arc<CampaignState>,
    /// Who was in a call under way when this view was made (a killed run's, since only
    /// one process opens the store): key -> attempt.
    in_flight: Arc<HashMap<String, u32>>,
    /// Records those recipients already had (re-sends), not counted twice.
    shadowed: StatusCounts,
    /// Why each failed recipient failed, read from the journal the first time it is asked.
    reasons: Arc<OnceLock<Result<HashMap<u128, String>, String>>>,
    store: Store,
}

impl CampaignStore {
    pub(super) fn new(name: &str, state: Arc<CampaignState>, store: Store) -> Self {
        let in_flight: HashMap<String, u32> = state
            .intents
            .lock()
            .expect("the intents lock")
            .values()
            .flat_map(|intent| intent.recipients.iter().cloned())
            .collect();
        let mut shadowed = StatusCounts::default();
        {
            let index = state.index.read().expect("the index lock");
            for key in in_flight.keys() {
                if let Some(entry) = index.get(key) {
                    shadowed.add(entry.status);
                }
            }
        }
        Self {
            name: name.to_owned(),
            state,
            in_flight: Arc::new(in_flight),
            shadowed,
            reasons: Arc::default(),
            store,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's suppression list (shared by every campaign), by address.
    pub fn suppressions(&self) -> BTreeMap<String, super::Suppression> {
        self.store.suppressions()
    }

    fn io(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        io_error(&self.store.0.path)
    }

    pub fn record(&self) -> Result<Option<CampaignRecord>, StoreError> {
        let Some(value) = self.store.0.campaigns.get(&self.name).map_err(self.io())? else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                path: self.store.0.path.clone(),
                key: self.name.clone(),
                reason: error.to_string(),
            })
    }

    /// Writes the campaign record and flushes.
    pub fn save(&self, record: &CampaignRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(record).expect("a campaign record serializes");
        self.store.commit(
            &self.store.0.campaigns,
            |ledger| &mut ledger.records,
            |batch, _| {
                batch.insert(self.name.as_bytes(), value);
                Ok(())
            },
        )
    }

    /// The status of one recipient.
    pub fn status(&self, key: &str) -> Option<Status> {
        self.standing(key).map(|(status, _)| status)
    }

    /// The status of one recipient and the revision it is of; a call under way (a killed
    /// run's, before recovery) counts as of no revision known.
    pub fn standing(&self, key: &str) -> Option<(Status, u32)> {
        if self.in_flight.contains_key(key) {
            return Some((Status::InFlight, 0));
        }
        self.index().get(key).map(|e| (e.status, e.revision))
    }

    /// Makes room in the index for `addresses` in all (records, and addresses a walk
    /// meets), once rather than grown into.
    pub fn reserve(&self, addresses: usize) {
        let mut index = self.state.index.write().expect("the index lock");
        let more = addresses.saturating_sub(index.len());
        index.reserve(more);
    }

    /// The index, as the send walk's record of the addresses it meets: no set of the
    /// walk's own, since the index holds most of them anyway (4 bytes a slot, not 16).
    /// One walk at a time per campaign (`None` while another holds it); it starts having
    /// met nobody.
    pub fn marks(&self) -> Option<Marks> {
        self.state
            .walking
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.state
            .index
            .write()
            .expect("the index lock")
            .forget_met();
        Some(Marks(Arc::clone(&self.state)))
    }

    /// Attempts made for one recipient so far (up to 31).
    pub fn attempts(&self, key: &str) -> u32 {
        self.index().get(key).map_or(0, |e| e.attempts)
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.state.index.read().expect("the index lock")
    }

    /// One recipient's full record, read from the journal: slow, for a few recipients only.
    pub fn get(&self, key: &str) -> Result<Option<RecipientRecord>, StoreError> {
        if self.index().get(key).is_none() {
            return Ok(None);
        }
        let mut found = None;
        self.history(|outcomes| {
            if let Some((_, record)) = outcomes.iter().rev().find(|(k, _)| k == key) {
                found = Some(record.clone());
            }
        })?;
        Ok(found)
    }

    /// Why a failed recipient failed, as recorded. The reasons of every failed recipient
    /// are read from the journal once, the first time one is asked for.
    pub fn failure(&self, key: &str) -> Result<Option<String>, StoreError> {
        let reasons = self.reasons.get_or_init(|| {
            let mut reasons = HashMap::new();
            self.history(|outcomes| {
                for (key, record) in outcomes {
                    let fingerprint = crate::keyhash::of(key);
                    match (&record.status, &record.reason) {
                        (Status::Failed, Some(reason)) => {
                            reasons.insert(fingerprint, reason.clone());
                        }
                        _ => {
                            reasons.remove(&fingerprint);
                        }
                    }
                }
            })
            .map(|()| reasons)
            .map_err(|error| error.to_string())
        });
        match reasons {
            Ok(reasons) => Ok(reasons.get(&crate::keyhash::of(key)).cloned()),
            Err(reason) => Err(StoreError::Io {
                path: self.store.0.path.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Calls `each` with this campaign's outcomes, call by call, in the order written.
    fn history(
        &self,
        mut each: impl FnMut(&[(String, RecipientRecord)]),
    ) -> Result<(), StoreError> {
        journal::scan(&self.store.0.path, 0, |entry, _| {
            if let Entry::Outcomes {
                campaign, outcomes, ..
            } = entry
            {
                if campaign == self.name {
                    each(&outcomes);
                }
            }
            Ok(())
        })
        .map(|_| ())
    }

    /// Every intent not yet closed: calls under way, or a killed run's.
    pub fn intents(&self) -> Vec<(IntentKey, Intent)> {
        self.state
            .intents
            .lock()
            .expect("the intents lock")
            .iter()
            .map(|(key, intent)| (*key, intent.clone()))
            .collect()
    }

    /// Records the intent of a call: on disk when this returns. Call it before the call.
    pub fn begin(&self, intent: &Intent) -> Result<IntentKey, StoreError> {
        let (call, answer) = self.queue_begin(intent)?;
        self.begun(
            call,
            journal::wait(&self.store.0.path, answer).map(|()| call),
        )
    }

    /// `begin`, awaiting the write rather than blocking on it.
    pub async fn begin_async(&self, intent: &Intent) -> Result<IntentKey, StoreError> {
        let (call, answer) = self.queue_begin(intent)?;
        let written = journal::settle(&self.store.0.path, answer).await;
        self.begun(call, written.map(|()| call))
    }

    fn queue_begin(&self, intent: &Intent) -> Result<(IntentKey, journal::Answer), StoreError> {
        let call = self.store.next_call();
        let mut frame = Vec::with_capacity(64 * intent.recipients.len());
        Entry::Intent {
            campaign: self.name.clone(),
            call,
            intent: intent.clone(),
        }
        .frame(&mut frame);
        self.state
            .intents
            .lock()
            .expect("the intents lock")
            .insert(call, intent.clone());
        let answer = self
            .store
            .queue(frame, |ledger| self.entry(ledger).seq += 1);
        self.begun(call, answer.map(|answer| (call, answer)))
    }

    /// What became of an intent's write: a failed one is forgotten.
    fn begun<T>(&self, call: IntentKey, written: Result<T, StoreError>) -> Result<T, StoreError> {
        if written.is_err() {
            self.state
                .intents
                .lock()
                .expect("the intents lock")
                .remove(&call);
        }
        written
    }

    /// Records a call's outcomes and closes its intent: on disk when this returns.
    /// Recipients of the call without a change keep what they had.
    pub fn finish(&self, intent: Option<&IntentKey>, changes: &[Change]) -> Result<(), StoreError> {
        let (entry, answer) = self.queue_finish(intent, changes)?;
        journal::wait(&self.store.0.path, answer)?;
        // Known in memory once on disk.
        self.state.apply(entry);
        Ok(())
    }

    /// `finish` in two steps: queued in the journal now, in the order of every other
    /// write (so an intent queued after it is never on disk without it); on disk when the
    /// answer's `settle` returns.
    pub fn finish_queued(
        &self,
        intent: Option<&IntentKey>,
        changes: &[Change],
    ) -> Result<Recording, StoreError> {
        let (entry, answer) = self.queue_finish(intent, changes)?;
        Ok(Recording {
            entry,
            answer,
            store: self.clone(),
        })
    }

    fn queue_finish(
        &self,
        intent: Option<&IntentKey>,
        changes: &[Change],
    ) -> Result<(Entry, journal::Answer), StoreError> {
        let outcomes: Vec<(String, RecipientRecord)> = changes
            .iter()
            .map(|c| (c.key.clone(), scrubbed(&c.record)))
            .collect();
        let mut frame = Vec::with_capacity(64 * outcomes.len());
        let entry = Entry::Outcomes {
            campaign: self.name.clone(),
            call: intent.copied().unwrap_or(0),
            outcomes,
        };
        entry.frame(&mut frame);
        let answer = self.store.queue(frame, |ledger| {
            // Counts move as the index says each recipient stood before.
            let index = self.index();
            let ledger = self.entry(ledger);
            let mut counts = ledger.counts();
            for change in changes {
                if let Some(before) = index.get(&change.key) {
                    let slot = match before.status {
                        Status::Sent => &mut counts.sent,
                        Status::Failed => &mut counts.failed,
                        Status::Uncertain | Status::InFlight => &mut counts.uncertain,
                        Status::Expired => &mut counts.expired,
                    };
                    *slot = slot.saturating_sub(1);
                }
                counts.add(change.record.status);
            }
            ledger.set_counts(&counts);
            ledger.seq += 1;
        })?;
        Ok((entry, answer))
    }

    fn entry<'a>(&self, ledger: &'a mut Ledger) -> &'a mut CampaignLedger {
        ledger.campaigns.entry(self.name.clone()).or_default()
    }

    /// Recipients by status, from the ledger (kept exact by every write).
    pub fn counts(&self) -> StatusCounts {
        let mut counts = self.store.0.keeper.counts(&self.name);
        counts.sent -= self.shadowed.sent.min(counts.sent);
        counts.failed -= self.shadowed.failed.min(counts.failed);
        counts.uncertain -= self.shadowed.uncertain.min(counts.uncertain);
        counts.expired -= self.shadowed.expired.min(counts.expired);
        counts.in_flight = self.in_flight.len() as u64;
        counts
    }

    /// How many recipients with `status` are of each revision (their latest record's).
    pub fn by_revision(&self, status: Status) -> BTreeMap<u32, u64> {
        self.index().by_revision(status)
    }

    /// Every recipient with `status`, in address order, read from the journal.
    pub fn list(&self, status: Status) -> Result<Vec<(String, RecipientRecord)>, StoreError> {
        if status == Status::InFlight {
            let mut listed: Vec<_> = self
                .intents()
                .iter()
                .flat_map(|(_, i)| {
                    i.records(Status::InFlight, RECOVERED, i.started)
                        .collect::<Vec<_>>()
                })
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(listed);
        }
        let mut latest: BTreeMap<String, RecipientRecord> = BTreeMap::new();
        self.history(|outcomes| {
            for (key, record) in outcomes {
                if record.status == status {
                    latest.insert(key.clone(), record.clone());
                } else {
                    latest.remove(key);
                }
            }
        })?;
        Ok(latest
            .into_iter()
            .filter(|(key, _)| !self.in_flight.contains_key(key))
            .collect())
    }
}

//! One campaign's part of the store: its record, its recipients and its calls under way.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::index::{Entry, Index, Place};
use super::ledger::Ledger;
use super::record::{CampaignRecord, Intent, RecipientRecord, Status, StatusCounts};
use super::{IN_FLIGHT, OUTCOMES, SEQ, Store, StoreError, encoding, in_flight, io_error};

pub const RECOVERED: &str = "herald stopped before the outcome of this call was recorded";

/// The key of the intent numbered `id`: `\0in-flight\0` and the number.
pub fn intent_key(id: u64) -> Vec<u8> {
    let mut key = IN_FLIGHT.to_vec();
    key.push(0);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The key of the outcomes of the call recorded with sequence number `seq`:
/// `\0outcomes\0` and the number, so they sort in the order they were written.
fn outcomes_key(seq: u64) -> Vec<u8> {
    let mut key = OUTCOMES.to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Reads a campaign's tree whole: where every recipient stands (records under their own
/// address first, then each call's outcomes in the order written, a later one replacing
/// an earlier), and the tree's sequence number. Anything unreadable is damage.
pub(super) fn load(tree: &sled::Tree, path: &Path, name: &str) -> Result<(Index, u64), StoreError> {
    let io = io_error(path);
    let corrupt = |key: String, reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason: format!("the record `{name}/{key}` cannot be read: {reason}"),
    };
    let mut index = Index::default();
    for entry in tree.range(&[1u8][..]..) {
        let (key, value) = entry.map_err(&io)?;
        let key = String::from_utf8_lossy(&key).into_owned();
        // Records kept under their own address are from before outcomes were kept per
        // call: few, and read whole for their revision.
        let record = encoding::decode(&value).map_err(|reason| corrupt(key.clone(), reason))?;
        index.set(
            &key,
            Entry {
                status: record.status,
                revision: record.revision,
                place: Place::Own,
            },
        );
    }
    for entry in tree.scan_prefix(OUTCOMES) {
        let (key, value) = entry.map_err(&io)?;
        let seq = outcomes_seq(&key).ok_or_else(|| {
            corrupt(
                String::from_utf8_lossy(&key).into_owned(),
                "a bad key".to_owned(),
            )
        })?;
        let outcomes = encoding::decode_outcomes(&value)
            .map_err(|reason| corrupt(format!("outcomes {seq}"), reason))?;
        for (key, record) in outcomes {
            match record {
                Some(record) => index.set(
                    &key,
                    Entry {
                        status: record.status,
                        revision: record.revision,
                        place: Place::Call(seq),
                    },
                ),
                None => index.remove(&key),
            }
        }
    }
    let seq = tree
        .get(SEQ)
        .map_err(&io)?
        .and_then(|v| v.as_ref().try_into().ok())
        .map_or(0, u64::from_be_bytes);
    Ok((index, seq))
}

fn outcomes_seq(key: &[u8]) -> Option<u64> {
    let number = key.strip_prefix(OUTCOMES)?.strip_prefix(&[0])?;
    Some(u64::from_be_bytes(number.try_into().ok()?))
}

/// `record` as it may be stored: a provider's reason can echo a secret herald sent it.
fn scrubbed(record: &RecipientRecord) -> std::borrow::Cow<'_, RecipientRecord> {
    use crate::secret::scrub;
    let dirty = |text: &Option<String>| {
        text.as_deref()
            .is_some_and(|t| matches!(scrub(t), std::borrow::Cow::Owned(_)))
    };
    if !dirty(&record.reason) && !dirty(&record.provider_id) {
        return std::borrow::Cow::Borrowed(record);
    }
    let clean = |text: &Option<String>| text.as_deref().map(|t| scrub(t).into_owned());
    std::borrow::Cow::Owned(RecipientRecord {
        reason: clean(&record.reason),
        provider_id: clean(&record.provider_id),
        ..record.clone()
    })
}

/// One campaign's part of the store. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct CampaignStore {
    name: String,
    tree: sled::Tree,
    /// Who was in a call under way when this view was made (a killed run's, since only
    /// one process opens the store): key -> attempt.
    in_flight: HashMap<String, u32>,
    /// Records those recipients already had (re-sends of the uncertain), not counted twice.
    shadowed: StatusCounts,
    /// Where every recipient stands; shared by every view of this campaign.
    index: Arc<RwLock<Index>>,
    store: Store,
}

/// Which call an intent belongs to, for `finish`.
pub type IntentKey = Vec<u8>;

/// One recipient's record after a call (`None` removes it), and their status before.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    pub before: Option<Status>,
    pub after: Option<RecipientRecord>,
}

/// How the counts by status move with a batch of changes.
#[derive(Default)]
struct Delta {
    added: StatusCounts,
    removed: StatusCounts,
}

impl Delta {
    fn add(&mut self, status: Status) {
        self.added.add(status);
    }

    fn remove(&mut self, status: Status) {
        self.removed.add(status);
    }

    fn apply(&self, counts: &mut StatusCounts) {
        for (count, added, removed) in [
            (&mut counts.sent, self.added.sent, self.removed.sent),
            (&mut counts.failed, self.added.failed, self.removed.failed),
            (
                &mut counts.uncertain,
                self.added.uncertain,
                self.removed.uncertain,
            ),
        ] {
            *count = (*count + added).saturating_sub(removed);
        }
    }
}

impl CampaignStore {
    pub(super) fn new(
        name: &str,
        tree: sled::Tree,
        index: Arc<RwLock<Index>>,
        store: Store,
    ) -> Result<Self, StoreError> {
        let mut campaign = Self {
            name: name.to_owned(),
            tree,
            in_flight: HashMap::new(),
            shadowed: StatusCounts::default(),
            index,
            store,
        };
        campaign.in_flight = in_flight(&campaign.intents()?);
        for key in campaign.in_flight.keys() {
            if let Some(status) = campaign.stored_status(key) {
                campaign.shadowed.add(status);
            }
        }
        Ok(campaign)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's suppression list (shared by every campaign), by address.
    pub fn suppressions(&self) -> std::collections::BTreeMap<String, super::Suppression> {
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

    /// The status of one recipient, without decoding the rest of its record.
    pub fn status(&self, key: &str) -> Result<Option<Status>, StoreError> {
        if self.in_flight.contains_key(key) {
            return Ok(Some(Status::InFlight));
        }
        Ok(self.stored_status(key))
    }

    /// The status of one recipient and the revision it is of; a call under way (a killed
    /// run's, before recovery) counts as of no revision known.
    pub fn standing(&self, key: &str) -> Option<(Status, u32)> {
        if self.in_flight.contains_key(key) {
            return Some((Status::InFlight, 0));
        }
        self.index().get(key).map(|e| (e.status, e.revision))
    }

    fn stored_status(&self, key: &str) -> Option<Status> {
        self.index().get(key).map(|e| e.status)
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().expect("the index lock")
    }

    pub fn get(&self, key: &str) -> Result<Option<RecipientRecord>, StoreError> {
        let Some(entry) = self.index().get(key) else {
            return Ok(None);
        };
        match entry.place {
            Place::Own => {
                let value = self.tree.get(key).map_err(self.io())?;
                value.map(|v| self.decode(key, &v)).transpose()
            }
            Place::Call(seq) => {
                let value = self.tree.get(outcomes_key(seq)).map_err(self.io())?;
                let outcomes = self.outcomes(seq, value.as_deref().unwrap_or_default())?;
                Ok(outcomes
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, record)| record))
            }
        }
    }

    fn outcomes(
        &self,
        seq: u64,
        value: &[u8],
    ) -> Result<Vec<(String, Option<RecipientRecord>)>, StoreError> {
        encoding::decode_outcomes(value).map_err(|reason| StoreError::Corrupt {
            path: self.store.0.path.clone(),
            key: format!("{}/outcomes {seq}", self.name),
            reason,
        })
    }

    /// Every intent in the tree: calls under way, or a killed run's.
    pub fn intents(&self) -> Result<Vec<(IntentKey, Intent)>, StoreError> {
        let mut intents = Vec::new();
        for entry in self.tree.scan_prefix(IN_FLIGHT) {
            let (key, value) = entry.map_err(self.io())?;
            let intent = serde_json::from_slice(&value).map_err(|error| StoreError::Corrupt {
                path: self.store.0.path.clone(),
                key: format!("{}/in-flight", self.name),
                reason: error.to_string(),
            })?;
            intents.push((key.to_vec(), intent));
        }
        Ok(intents)
    }

    /// Records the intent of a call and flushes: call this before the call.
    pub fn begin(&self, intent: &Intent) -> Result<IntentKey, StoreError> {
        let value = serde_json::to_vec(intent).expect("an intent serializes");
        self.store.commit(
            &self.tree,
            |ledger| &mut self.entry(ledger).seq,
            |batch, ledger| {
                // The tree's next sequence number is unique: it names the intent.
                let key = intent_key(self.entry(ledger).seq + 1);
                batch.insert(key.clone(), value);
                Ok(key)
            },
        )
    }

    /// Records a call's outcomes (`None` removes a record) and removes its intent, in one
    /// atomic batch, and flushes: when this returns, the change is durable.
    ///
    /// Each change says what the recipient's status was before (`before`), as the caller
    /// knows it from the walk that found them due, so the counts follow without a read
    /// per recipient; `changes_from_store` looks them up where the caller does not know.
    pub fn finish(&self, intent: Option<&IntentKey>, changes: &[Change]) -> Result<(), StoreError> {
        // Encoded before the ledger's lock is taken: only the batch is applied under it.
        let mut delta = Delta::default();
        for change in changes {
            if let Some(before) = change.before {
                delta.remove(before);
            }
            if let Some(record) = &change.after {
                delta.add(record.status);
            }
        }
        let scrubbed: Vec<_> = changes
            .iter()
            .map(|c| c.after.as_ref().map(scrubbed))
            .collect();
        let mut value = Vec::with_capacity(64 * changes.len());
        encoding::encode_outcomes(
            changes
                .iter()
                .zip(&scrubbed)
                .map(|(c, record)| (c.key.as_str(), record.as_deref())),
            &mut value,
        );
        let seq = self.store.commit(
            &self.tree,
            |ledger| &mut self.entry(ledger).seq,
            |batch, ledger| {
                if let Some(key) = intent {
                    batch.remove(key.as_slice());
                }
                let entry = self.entry(ledger);
                // The tree's next sequence number is unique: it names the outcomes.
                let seq = entry.seq + 1;
                if !changes.is_empty() {
                    batch.insert(outcomes_key(seq), value);
                }
                let mut counts = entry.counts();
                delta.apply(&mut counts);
                entry.set_counts(&counts);
                Ok(seq)
            },
        )?;
        let mut index = self.index.write().expect("the index lock");
        for change in changes {
            match &change.after {
                Some(record) => index.set(
                    &change.key,
                    Entry {
                        status: record.status,
                        revision: record.revision,
                        place: Place::Call(seq),
                    },
                ),
                None => index.remove(&change.key),
            }
        }
        Ok(())
    }

    /// `records` as changes, with what each recipient's status is in the store now.
    pub fn changes_from_store(
        &self,
        records: Vec<(String, Option<RecipientRecord>)>,
    ) -> Result<Vec<Change>, StoreError> {
        records
            .into_iter()
            .map(|(key, after)| {
                Ok(Change {
                    before: self.stored_status(&key),
                    key,
                    after,
                })
            })
            .collect()
    }

    fn entry<'a>(&self, ledger: &'a mut Ledger) -> &'a mut super::ledger::CampaignLedger {
        ledger.campaigns.entry(self.name.clone()).or_default()
    }

    /// Recipients by status, from the ledger (kept exact by every write).
    pub fn counts(&self) -> StatusCounts {
        let mut counts = self.store.0.keeper.counts(&self.name);
        counts.sent -= self.shadowed.sent.min(counts.sent);
        counts.failed -= self.shadowed.failed.min(counts.failed);
        counts.uncertain -= self.shadowed.uncertain.min(counts.uncertain);
        counts.in_flight = self.in_flight.len() as u64;
        counts
    }

    /// How many recipients with `status` are of each revision (their latest record's).
    pub fn by_revision(&self, status: Status) -> std::collections::BTreeMap<u32, u64> {
        self.index().by_revision(status)
    }

    /// Every recipient with `status`, in address order.
    pub fn list(&self, status: Status) -> Result<Vec<(String, RecipientRecord)>, StoreError> {
        if status == Status::InFlight {
            let mut listed: Vec<_> = self
                .intents()?
                .iter()
                .flat_map(|(_, i)| {
                    i.records(Status::InFlight, RECOVERED, i.started)
                        .collect::<Vec<_>>()
                })
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(listed);
        }
        let index = self.index();
        let wanted = |key: &str, place: Place| {
            !self.in_flight.contains_key(key)
                && index
                    .get(key)
                    .is_some_and(|e| e.status == status && e.place == place)
        };
        let mut listed = Vec::new();
        for entry in self.tree.range(&[1u8][..]..) {
            let (key, value) = entry.map_err(self.io())?;
            let key = String::from_utf8_lossy(&key).into_owned();
            if wanted(&key, Place::Own) {
                let record = self.decode(&key, &value)?;
                listed.push((key, record));
            }
        }
        for entry in self.tree.scan_prefix(OUTCOMES) {
            let (key, value) = entry.map_err(self.io())?;
            let Some(seq) = outcomes_seq(&key) else {
                continue;
            };
            for (key, record) in self.outcomes(seq, &value)? {
                if let Some(record) = record.filter(|_| wanted(&key, Place::Call(seq))) {
                    listed.push((key, record));
                }
            }
        }
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listed)
    }

    fn decode(&self, key: &str, value: &[u8]) -> Result<RecipientRecord, StoreError> {
        encoding::decode(value).map_err(|reason| StoreError::Corrupt {
            path: self.store.0.path.clone(),
            key: format!("{}/{key}", self.name),
            reason,
        })
    }
}

//! The state store: a typed wrapper over sled. sled types never leave this module.
//!
//! Layout: the default tree holds the format version; tree `campaigns` maps a campaign
//! name to its `CampaignRecord`; tree `recipients/<campaign>` maps a normalised address
//! to its `RecipientRecord`, encoded as one status byte followed by JSON, and holds, under
//! the key `\0in-flight`, the `Intent` of the call under way, if any.
//!
//! # Guarantees
//! - Every write that records a state change is flushed before the call returns, so a
//!   SIGKILL right after it loses nothing.
//! - Only one process has a store open at a time (sled's file lock); a second gets
//!   `StoreError::Locked` naming the process that holds it.
//! - A call's intent is one record, flushed before the call (`begin`); its outcomes
//!   replace it atomically, in one sled batch, flushed after (`finish`).
//! - `recover` turns intents left by a crashed run into `uncertain`, before anything else.

mod error;
mod record;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use record::{
    CampaignRecord, GitRevision, Intent, RecipientRecord, Status, StatusCounts, now, timestamp,
};

const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &str = "1";
/// sled's page cache; its default is 1 GiB.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
const PID_FILE: &str = "herald.pid";
const RECIPIENTS: &str = "recipients/";
const RECOVERED: &str = "herald stopped before the outcome of this call was recorded";
/// The key of the call under way; no address starts with a NUL byte.
const IN_FLIGHT: &[u8] = b"\0in-flight";

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    campaigns: sled::Tree,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and takes its lock.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|error| {
                let reason = error.to_string();
                if reason.contains("could not acquire lock") {
                    StoreError::Locked {
                        path: path.to_owned(),
                        pid: std::fs::read_to_string(path.join(PID_FILE))
                            .ok()
                            .map(|p| p.trim().to_owned()),
                    }
                } else {
                    StoreError::Open {
                        path: path.to_owned(),
                        reason,
                    }
                }
            })?;
        let io = io_error(path);
        match db.get(FORMAT_KEY).map_err(&io)? {
            Some(found) if found != FORMAT.as_bytes() => {
                return Err(StoreError::Format {
                    path: path.to_owned(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: FORMAT,
                });
            }
            Some(_) => {}
            None => {
                db.insert(FORMAT_KEY, FORMAT).map_err(&io)?;
            }
        }
        std::fs::write(path.join(PID_FILE), std::process::id().to_string())
            .map_err(|e| io_error(path)(e.into()))?;
        let campaigns = db.open_tree("campaigns").map_err(&io)?;
        Ok(Self {
            db,
            campaigns,
            path: path.to_owned(),
        })
    }

    /// Opens the store at `path` if one exists there; `None` when nothing was applied yet.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        if path.join("db").exists() {
            Self::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns the intent of a call that never got its outcomes (the run that made it was
    /// killed) into `uncertain` recipients; returns how many, per campaign.
    pub fn recover(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut recovered = BTreeMap::new();
        for name in self.campaign_names()? {
            let campaign = self.campaign(&name)?;
            let Some(intent) = campaign.intent()? else {
                continue;
            };
            let records: Vec<_> = intent
                .records(Status::Uncertain, RECOVERED, now())
                .map(|(key, record)| (key, Some(record)))
                .collect();
            recovered.insert(name, records.len() as u64);
            campaign.finish(&records)?;
        }
        Ok(recovered)
    }

    /// The names of every campaign the store has a record or recipients for.
    pub fn campaign_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix(RECIPIENTS))
            .map(str::to_owned)
            .collect();
        for entry in &self.campaigns {
            let (key, _) = entry.map_err(io_error(&self.path))?;
            names.push(String::from_utf8_lossy(&key).into_owned());
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn campaign(&self, name: &str) -> Result<CampaignStore, StoreError> {
        let recipients = self
            .db
            .open_tree(format!("{RECIPIENTS}{name}"))
            .map_err(io_error(&self.path))?;
        let mut campaign = CampaignStore {
            name: name.to_owned(),
            recipients,
            in_flight: HashMap::new(),
            campaigns: self.campaigns.clone(),
            db: self.db.clone(),
            path: self.path.clone(),
        };
        if let Some(intent) = campaign.intent()? {
            campaign.in_flight = intent.recipients.into_iter().collect();
        }
        Ok(campaign)
    }
}

/// One campaign's part of the store. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct CampaignStore {
    name: String,
    recipients: sled::Tree,
    /// Who was in the call under way when this view was made (a killed run's, since only
    /// one process opens the store): key -> attempt.
    in_flight: HashMap<String, u32>,
    campaigns: sled::Tree,
    db: sled::Db,
    path: PathBuf,
}

impl CampaignStore {
    pub fn record(&self) -> Result<Option<CampaignRecord>, StoreError> {
        let Some(value) = self
            .campaigns
            .get(&self.name)
            .map_err(io_error(&self.path))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                path: self.path.clone(),
                key: self.name.clone(),
                reason: error.to_string(),
            })
    }

    /// Writes the campaign record and flushes.
    pub fn save(&self, record: &CampaignRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(record).expect("a campaign record serializes");
        self.campaigns
            .insert(&self.name, value)
            .map_err(io_error(&self.path))?;
        self.flush()
    }

    /// The status of one recipient, without decoding the rest of its record.
    pub fn status(&self, key: &str) -> Result<Option<Status>, StoreError> {
        if self.in_flight.contains_key(key) {
            return Ok(Some(Status::InFlight));
        }
        let value = self.recipients.get(key).map_err(io_error(&self.path))?;
        Ok(value.and_then(|v| v.first().copied().and_then(Status::from_code)))
    }

    pub fn get(&self, key: &str) -> Result<Option<RecipientRecord>, StoreError> {
        let value = self.recipients.get(key).map_err(io_error(&self.path))?;
        value.map(|v| self.decode(key, &v)).transpose()
    }

    /// The intent of the call under way (or of a killed run's), if any.
    pub fn intent(&self) -> Result<Option<Intent>, StoreError> {
        let value = self
            .recipients
            .get(IN_FLIGHT)
            .map_err(io_error(&self.path))?;
        value
            .map(|v| {
                serde_json::from_slice(&v).map_err(|error| StoreError::Corrupt {
                    path: self.path.clone(),
                    key: format!("{}/in-flight", self.name),
                    reason: error.to_string(),
                })
            })
            .transpose()
    }

    /// Records the intent of a call and flushes: call this before the call.
    pub fn begin(&self, intent: &Intent) -> Result<(), StoreError> {
        let value = serde_json::to_vec(intent).expect("an intent serializes");
        self.recipients
            .insert(IN_FLIGHT, value)
            .map_err(io_error(&self.path))?;
        self.flush()
    }

    /// Records a call's outcomes (`None` removes a record) and removes its intent, in one
    /// atomic batch, and flushes: when this returns, the change is durable.
    pub fn finish(&self, records: &[(String, Option<RecipientRecord>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.remove(IN_FLIGHT);
        for (key, record) in records {
            let Some(record) = record else {
                batch.remove(key.as_bytes());
                continue;
            };
            let mut value = Vec::with_capacity(96);
            value.push(record.status.code());
            serde_json::to_writer(&mut value, record).expect("a recipient record serializes");
            batch.insert(key.as_bytes(), value);
        }
        self.recipients
            .apply_batch(batch)
            .map_err(io_error(&self.path))?;
        self.flush()
    }

    /// Recipients by status, from the status bytes alone.
    pub fn counts(&self) -> Result<StatusCounts, StoreError> {
        let mut counts = StatusCounts::default();
        for entry in &self.recipients {
            let (key, value) = entry.map_err(io_error(&self.path))?;
            if self
                .in_flight
                .contains_key(String::from_utf8_lossy(&key).as_ref())
            {
                continue;
            }
            if let Some(status) = value.first().copied().and_then(Status::from_code) {
                counts.add(status);
            }
        }
        counts.in_flight = self.in_flight.len() as u64;
        Ok(counts)
    }

    /// Every recipient with `status`, in address order.
    pub fn list(&self, status: Status) -> Result<Vec<(String, RecipientRecord)>, StoreError> {
        if status == Status::InFlight {
            let intent = self.intent()?;
            let mut listed: Vec<_> = intent
                .iter()
                .flat_map(|i| i.records(Status::InFlight, RECOVERED, i.started))
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(listed);
        }
        let mut listed = Vec::new();
        for entry in &self.recipients {
            let (key, value) = entry.map_err(io_error(&self.path))?;
            if value.first() == Some(&status.code()) {
                let key = String::from_utf8_lossy(&key).into_owned();
                let record = self.decode(&key, &value)?;
                listed.push((key, record));
            }
        }
        Ok(listed)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io_error(&self.path))?;
        Ok(())
    }

    fn decode(&self, key: &str, value: &[u8]) -> Result<RecipientRecord, StoreError> {
        serde_json::from_slice(value.get(1..).unwrap_or_default()).map_err(|error| {
            StoreError::Corrupt {
                path: self.path.clone(),
                key: format!("{}/{key}", self.name),
                reason: error.to_string(),
            }
        })
    }
}

fn io_error(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status) -> RecipientRecord {
        RecipientRecord {
            status,
            attempts: 1,
            revision: 1,
            provider_id: None,
            reason: None,
            updated: now(),
        }
    }

    #[test]
    fn intents_left_behind_become_uncertain_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let campaign = store.campaign("launch").unwrap();
            campaign
                .finish(&[("a@example.com".into(), Some(record(Status::Sent)))])
                .unwrap();
            campaign
                .begin(&Intent {
                    revision: 1,
                    started: now(),
                    recipients: vec![("b@example.com".into(), 1)],
                })
                .unwrap();
        }
        // sled's flusher thread may hold the file lock a moment after the drop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let store = loop {
            match Store::open(dir.path()) {
                Ok(store) => break store,
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => panic!("{error}"),
            }
        };
        assert_eq!(
            store.recover().unwrap(),
            BTreeMap::from([("launch".to_owned(), 1)])
        );
        let campaign = store.campaign("launch").unwrap();
        assert_eq!(
            campaign.status("b@example.com").unwrap(),
            Some(Status::Uncertain)
        );
        let counts = campaign.counts().unwrap();
        assert_eq!((counts.sent, counts.uncertain, counts.in_flight), (1, 1, 0));
        assert_eq!(store.campaign_names().unwrap(), ["launch"]);
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let error = Store::open(dir.path()).err().expect("locked");
        assert!(
            error
                .to_string()
                .contains("is in use by another herald process"),
            "{error}"
        );
    }
}

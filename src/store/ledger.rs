//! The ledger: herald's own record of what the state store must hold, in
//! `herald-state.json` beside sled's files.
//!
//! sled recovers from a damaged file by dropping what follows the damage, and sometimes
//! opens a damaged store as an empty one: either would look like "nobody was sent yet".
//! The ledger is how herald notices. Every write to a tree also writes that tree's
//! sequence number in the same atomic batch; after the write is flushed, the ledger is
//! rewritten (temporary file, fsync, rename) with each tree's sequence number, each
//! campaign's exact counts by status, and the size of sled's data file.
//!
//! # Guarantees
//! - The ledger never claims more than sled holds durably: it is written only after the
//!   flush that made its contents durable. So on open, a tree whose sequence number is
//!   behind the ledger's has lost writes, and a campaign whose counts differ from the
//!   ledger's at the same sequence number has lost or gained records: both are refused.
//! - The ledger carries its own checksum; a damaged ledger is refused too.
//!
//! # Assumptions
//! - sled's data file shrinks only by whole segments at its end (it gives back free ones,
//!   checked in sled 0.34.7's source): a file shorter than the ledger recorded and not
//!   ending on a segment boundary was truncated by something else. (An earlier version
//!   assumed it never shrinks; the SIGKILL crash test found a store refused after sled
//!   had given back a segment.)

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::record::StatusCounts;

pub const FILE: &str = "herald-state.json";

/// What the store must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub format: u32,
    /// A random id given at creation, also stored in sled: a ledger from another store
    /// does not vouch for this one.
    pub store: String,
    /// The size of sled's data file when the ledger was written.
    pub db_bytes: u64,
    /// The length of the journal this ledger vouches for (format 3).
    #[serde(default)]
    pub journal_bytes: u64,
    /// The sequence number of the tree of campaign records.
    pub records: u64,
    /// The sequence number and size of the store's suppression list.
    #[serde(default)]
    pub suppressions: SuppressionsLedger,
    pub campaigns: BTreeMap<String, CampaignLedger>,
}

/// The suppression list's tree: its sequence number and how many addresses it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionsLedger {
    pub seq: u64,
    pub addresses: u64,
}

/// One campaign's recipients: how many journal entries it has (before format 3, its
/// tree's sequence number) and its counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignLedger {
    pub seq: u64,
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Recipients the schedule's `not_after` left unsent (absent in stores written
    /// before schedules: none).
    #[serde(default)]
    pub expired: u64,
}

impl CampaignLedger {
    pub fn counts(&self) -> StatusCounts {
        StatusCounts {
            sent: self.sent,
            failed: self.failed,
            uncertain: self.uncertain,
            in_flight: 0,
            expired: self.expired,
        }
    }

    pub fn set_counts(&mut self, counts: &StatusCounts) {
        self.sent = counts.sent;
        self.failed = counts.failed;
        self.uncertain = counts.uncertain;
        self.expired = counts.expired;
    }
}

/// The file as written: the ledger and a checksum of its JSON.
#[derive(Serialize, Deserialize)]
struct Sealed {
    sha256: String,
    ledger: serde_json::Value,
}

/// Reads the ledger of the store at `dir`; `None` when there is no ledger file.
pub fn read(dir: &Path) -> Result<Option<Ledger>, StoreError> {
    let path = dir.join(FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(StoreError::Io {
                path: dir.to_owned(),
                reason: format!("cannot read {FILE}: {error}"),
            });
        }
    };
    let damaged = |reason: &str| StoreError::Damaged {
        path: dir.to_owned(),
        reason: format!("its ledger {FILE} {reason}"),
    };
    let sealed: Sealed =
        serde_json::from_slice(&text).map_err(|_| damaged("cannot be read back"))?;
    let body = serde_json::to_vec(&sealed.ledger).expect("a JSON value serializes");
    if crate::digest::sha256(&body) != sealed.sha256 {
        return Err(damaged("does not match its checksum"));
    }
    serde_json::from_value(sealed.ledger)
        .map(Some)
        .map_err(|_| damaged("cannot be read back"))
}

/// Writes the ledger file for good: a temporary file, fsynced, renamed over the old one,
/// the folder fsynced.
pub fn write(dir: &Path, ledger: &Ledger) -> Result<(), StoreError> {
    let value = serde_json::to_value(ledger).expect("a ledger serializes");
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    let sealed = Sealed {
        sha256: crate::digest::sha256(&body),
        ledger: value,
    };
    let text = serde_json::to_vec_pretty(&sealed).expect("a ledger serializes");
    let temporary = dir.join(format!(".{FILE}.tmp"));
    let io = |error: std::io::Error| match super::error::room(&error) {
        Some(room) => StoreError::Full {
            path: dir.to_owned(),
            reason: format!("cannot write {FILE}: {room}"),
        },
        None => StoreError::Io {
            path: dir.to_owned(),
            reason: format!("cannot write {FILE}: {error}"),
        },
    };
    let mut file = fs::File::create(&temporary).map_err(io)?;
    file.write_all(&text).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&temporary, dir.join(FILE)).map_err(io)?;
    // The rename is durable only once the folder is: a power loss could otherwise bring
    // back the ledger before, and with it a journal length that leaves out intents whose
    // calls were made (see `vouched`: they would be taken for calls never made).
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// The ledger in memory, and the version last written to disk.
pub struct Keeper {
    dir: PathBuf,
    state: Mutex<Versioned>,
    written: Mutex<u64>,
}

struct Versioned {
    ledger: Ledger,
    version: u64,
}

impl Keeper {
    pub fn new(dir: &Path, ledger: Ledger) -> Self {
        Self {
            dir: dir.to_owned(),
            state: Mutex::new(Versioned { ledger, version: 0 }),
            written: Mutex::new(0),
        }
    }

    /// Runs `change` on the ledger under its lock, then `then` with its result and a
    /// snapshot of the ledger as changed, still under the lock: where the write the change
    /// describes is queued, so writes queue in the ledger's order.
    pub fn change_then<T, R>(
        &self,
        change: impl FnOnce(&mut Ledger) -> Result<T, StoreError>,
        then: impl FnOnce(T, Snapshot) -> R,
    ) -> Result<R, StoreError> {
        let mut state = self.state.lock().expect("ledger lock");
        let result = change(&mut state.ledger)?;
        state.version += 1;
        let snapshot = Snapshot {
            ledger: state.ledger.clone(),
            version: state.version,
        };
        Ok(then(result, snapshot))
    }

    /// Writes `snapshot`, vouching for a journal of `journal_bytes`, unless a newer one
    /// was written already. Call after the writes that made everything in it durable.
    pub fn persist(&self, mut snapshot: Snapshot, journal_bytes: u64) -> Result<(), StoreError> {
        let mut written = self.written.lock().expect("ledger file lock");
        if snapshot.version <= *written {
            return Ok(());
        }
        snapshot.ledger.db_bytes = fs::metadata(self.dir.join("db")).map_or(0, |m| m.len());
        snapshot.ledger.journal_bytes = journal_bytes;
        write(&self.dir, &snapshot.ledger)?;
        *written = snapshot.version;
        Ok(())
    }

    /// A campaign's counts as the ledger has them.
    pub fn counts(&self, campaign: &str) -> StatusCounts {
        let state = self.state.lock().expect("ledger lock");
        state
            .ledger
            .campaigns
            .get(campaign)
            .map(CampaignLedger::counts)
            .unwrap_or_default()
    }
}

/// The ledger as of one change.
#[derive(Default)]
pub struct Snapshot {
    ledger: Ledger,
    version: u64,
}

impl Snapshot {
    pub fn version(&self) -> u64 {
        self.version
    }
}

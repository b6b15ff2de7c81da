//! The state store: herald's journal of what happened to each recipient, a small sled
//! database beside it, and a ledger that vouches for both. Neither sled's types nor the
//! journal's frames leave this module.
//!
//! Layout of the state folder:
//! - `journal` (see `journal`): every call's intent and outcomes, for every campaign,
//!   appended and flushed in groups.
//! - sled's files: the default tree holds the format and the store's id; tree
//!   `campaigns` maps a campaign's name to its `CampaignRecord`; tree `suppressions` is
//!   the store's own suppression list, and under `\0seen\0<token>` the tokens of signed
//!   provider requests seen lately (see `tokens`). Each tree has a `\0seq` key written
//!   with every change.
//! - `herald-state.json`, the ledger (see `ledger`): the journal's length, each tree's
//!   sequence number, and each campaign's counts by status.
//!
//! Where each recipient stands is kept in memory (`index`, four bytes and a fingerprint
//! each), built when the store is opened by reading the journal once.
//!
//! # Guarantees
//! - Every write that records a state change is on disk and vouched for by the ledger
//!   before the call returns, so a SIGKILL right after it loses nothing.
//! - A store that cannot be read back whole is refused (`StoreError::Damaged`), never
//!   taken for an empty one: a journal cut short or failing its checksums, lost sled
//!   writes, missing records and a missing or damaged ledger are all caught on open (see
//!   `verify`). A folder that is not a store is refused too (`StoreError::Foreign`).
//! - Only one process has a store open at a time (sled's file lock); a second gets
//!   `StoreError::Locked` naming the process that holds it.
//! - A call's intent is in the journal before the call (`begin`); its outcomes after it
//!   (`finish`). Several calls may be under way at once, each with its own intent; a
//!   connection's outcome and the next call's intent may share one flush.
//! - `recover` turns intents left by a crashed run into `uncertain`, before anything else.
//!   An intent the ledger never vouched for was never acted on (its write failed, on a
//!   full disk say, or the process died before it was vouched for, so its call was never
//!   made): it is closed when the store opens, and its recipients stay due (see `vouched`).
//!
//! # Caveats
//! - A store restored whole from an older backup is consistent with its own ledger:
//!   recipients sent after the backup was taken would be sent again.

mod campaign;
pub mod claims;
mod encoding;
mod error;
mod index;
mod journal;
mod ledger;
mod legacy;
mod open;
mod record;
pub mod shards;
mod summary;
mod suppressions;
mod tokens;
mod upgrade;
mod verify;
mod vouched;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use campaign::{CampaignStore, Change, IntentKey, Recording};
pub use error::StoreError;
pub use record::{
    CallLatency, CampaignRecord, Intent, RecipientRecord, Status, StatusCounts, TransportDown, now,
    timestamp,
};
pub use summary::{CampaignSummary, Summary};
pub use suppressions::Suppression;
pub use tokens::{Once, Recorded};

use campaign::CampaignState;
use journal::Journal;
use ledger::{Keeper, Ledger};
use open::Found;

const FORMAT_KEY: &[u8] = b"format";
/// Since the journal; stores of formats 1 and 2 kept recipients in sled and are carried
/// over into the journal once, on open.
const FORMAT: &str = "3";
const STORE_KEY: &[u8] = b"store";
/// A tree's sequence number, written in every batch that changes the tree.
const SEQ: &[u8] = b"\0seq";

/// The socket a running herald serves in the state folder (see `serve::socket`).
pub const SOCKET_FILE: &str = "herald.sock";

/// What `Store::open` does when there is no store at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    Create,
    /// `--require-state`: a missing store is an error, not a fresh start.
    Refuse,
}

/// An open state store. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct Store(Arc<Inner>);

struct Inner {
    db: sled::Db,
    campaigns: sled::Tree,
    path: PathBuf,
    keeper: Arc<Keeper>,
    journal: Journal,
    /// Each campaign's index and calls under way, by name.
    states: Mutex<HashMap<String, Arc<CampaignState>>>,
    /// The number of the next call.
    next_call: AtomicU64,
    suppression_tree: sled::Tree,
    /// The suppression list, read whole on open (see `suppressions`).
    suppressions: RwLock<BTreeMap<String, Suppression>>,
    /// Tokens of signed provider requests seen lately, and until when (see `tokens`).
    seen: Mutex<HashMap<String, u64>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.journal.close();
    }
}

/// What opening found in the journal, for `assemble`.
struct Opened {
    ledger: Ledger,
    /// The journal's length after its last whole entry.
    journal_bytes: u64,
    states: HashMap<String, Arc<CampaignState>>,
    next_call: u64,
}

impl Store {
    /// Opens the store at `path` for sending, checking that it can be read back whole;
    /// a missing store is created or refused as `if_missing` says.
    pub fn open(path: &Path, if_missing: IfMissing) -> Result<Self, StoreError> {
        match open::find(path)? {
            Found::Nothing | Found::Unfinished if if_missing == IfMissing::Create => {
                Self::create(path)
            }
            Found::Nothing | Found::Unfinished => Err(StoreError::Missing {
                path: path.to_owned(),
            }),
            Found::Store(ledger) => Self::verify(path, &ledger),
            Found::Unledgered => Self::upgrade(path, None),
        }
    }

    /// Opens the store at `path` if there is one; `None` when nothing was applied yet.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        match open::find(path)? {
            Found::Nothing | Found::Unfinished => Ok(None),
            Found::Store(ledger) => Self::verify(path, &ledger).map(Some),
            Found::Unledgered => Self::upgrade(path, None).map(Some),
        }
    }

    /// Creates a new, empty store at `path` (`herald init`); refuses an existing one.
    pub fn init(path: &Path) -> Result<Self, StoreError> {
        match open::find(path)? {
            Found::Nothing | Found::Unfinished => Self::create(path),
            Found::Store(_) | Found::Unledgered => Err(StoreError::Exists {
                path: path.to_owned(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Creates a store at `path`. A marker file is written first and removed once the
    /// ledger is: a creation killed half-way leaves the marker, and the next open starts
    /// over instead of taking sled's files without a ledger for damage. (Nothing is sent
    /// before this returns, so an unfinished store never recorded anyone.)
    fn create(path: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let failed = |error: std::io::Error| StoreError::Io {
            path: path.to_owned(),
            reason: format!("cannot create the store: {error}"),
        };
        if open::find(path)? == Found::Unfinished {
            std::fs::remove_dir_all(path).map_err(failed)?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(failed)?;
        std::fs::File::create(path.join(open::CREATING))
            .and_then(|f| f.sync_all())
            .map_err(failed)?;
        let db = open::sled(path)?;
        let id = crate::digest::hex(&rand::random::<[u8; 16]>());
        let io = io_error(path);
        db.insert(FORMAT_KEY, FORMAT).map_err(&io)?;
        db.insert(STORE_KEY, id.as_bytes()).map_err(&io)?;
        db.flush().map_err(&io)?;
        let opened = Opened {
            ledger: Ledger {
                format: 3,
                store: id,
                ..Ledger::default()
            },
            journal_bytes: 0,
            states: HashMap::new(),
            next_call: 1,
        };
        let store = Self::assemble(path, db, opened)?;
        store.persist_ledger()?;
        std::fs::remove_file(path.join(open::CREATING)).map_err(failed)?;
        Ok(store)
    }

    fn assemble(path: &Path, db: sled::Db, opened: Opened) -> Result<Self, StoreError> {
        let io = io_error(path);
        let campaigns = db.open_tree("campaigns").map_err(&io)?;
        let suppression_tree = db.open_tree(suppressions::TREE).map_err(&io)?;
        let suppressions = suppressions::load(&suppression_tree, path)?;
        let seen = tokens::load(&suppression_tree, path)?;
        std::fs::write(path.join(open::PID_FILE), std::process::id().to_string())
            .map_err(|e| io(e.into()))?;
        let keeper = Arc::new(Keeper::new(path, opened.ledger));
        let journal = Journal::open(path, opened.journal_bytes, Arc::clone(&keeper))?;
        Ok(Self(Arc::new(Inner {
            db,
            campaigns,
            path: path.to_owned(),
            keeper,
            journal,
            states: Mutex::new(opened.states),
            next_call: AtomicU64::new(opened.next_call),
            suppression_tree,
            suppressions: RwLock::new(suppressions),
            seen: Mutex::new(seen),
        })))
    }

    /// Writes the ledger as it is now, through the journal's writer.
    fn persist_ledger(&self) -> Result<(), StoreError> {
        self.append(Vec::new(), |_| {})
    }

    /// Turns the intents of calls that never got their outcomes (the run that made them
    /// was killed) into `uncertain` recipients; returns how many, per campaign.
    pub fn recover(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut recovered = BTreeMap::new();
        for name in self.campaign_names()? {
            let campaign = self.campaign(&name)?;
            for (key, intent) in campaign.intents() {
                let changes: Vec<Change> = intent
                    .records(Status::Uncertain, campaign::RECOVERED, now())
                    .map(|(key, record)| Change { key, record })
                    .collect();
                *recovered.entry(name.clone()).or_insert(0) += changes.len() as u64;
                campaign.finish(Some(&key), &changes)?;
            }
        }
        Ok(recovered)
    }

    /// The names of every campaign the store has a record or recipients for.
    pub fn campaign_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .0
            .states
            .lock()
            .expect("the campaigns lock")
            .keys()
            .cloned()
            .collect();
        for entry in &self.0.campaigns {
            let (key, _) = entry.map_err(io_error(&self.0.path))?;
            if !key.starts_with(b"\0") {
                names.push(String::from_utf8_lossy(&key).into_owned());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn campaign(&self, name: &str) -> Result<CampaignStore, StoreError> {
        let state = Arc::clone(
            self.0
                .states
                .lock()
                .expect("the campaigns lock")
                .entry(name.to_owned())
                .or_default(),
        );
        Ok(CampaignStore::new(name, state, self.clone()))
    }

    /// Appends `frames` (whole journal entries) to the journal, changing the ledger as
    /// `change` says under its lock, in the order of every other change; returns once
    /// both are on disk.
    fn append(&self, frames: Vec<u8>, change: impl FnOnce(&mut Ledger)) -> Result<(), StoreError> {
        let answered = self.queue(frames, change)?;
        journal::wait(&self.0.path, answered)
    }

    /// Queues `frames` as `append` does, without waiting: the answer says when they are
    /// on disk.
    fn queue(
        &self,
        frames: Vec<u8>,
        change: impl FnOnce(&mut Ledger),
    ) -> Result<journal::Answer, StoreError> {
        self.0.keeper.change_then(
            |ledger| {
                change(ledger);
                Ok(())
            },
            |(), snapshot| self.0.journal.queue(frames, snapshot),
        )
    }

    /// A new call number.
    fn next_call(&self) -> u64 {
        self.0.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies `batch` to the sled tree `tree` with its next sequence number, changing
    /// the ledger as `build` says (under the ledger's lock, so counts and batch agree),
    /// flushes sled, then has the journal's writer rewrite the ledger: when this returns,
    /// the change is durable and vouched for.
    fn commit<T>(
        &self,
        tree: &sled::Tree,
        seq: impl FnOnce(&mut Ledger) -> &mut u64,
        build: impl FnOnce(&mut sled::Batch, &mut Ledger) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let io = io_error(&self.0.path);
        let (result, answered) = self.0.keeper.change_then(
            |ledger| {
                let mut next = ledger.clone();
                let mut batch = sled::Batch::default();
                let result = build(&mut batch, &mut next)?;
                let number = seq(&mut next);
                *number += 1;
                batch.insert(SEQ, &number.to_be_bytes());
                tree.apply_batch(batch).map_err(&io)?;
                // Flushed before the ledger can vouch for it: sled writes are few (campaign
                // records, suppressions), so the lock is held through the flush.
                self.0.db.flush().map_err(&io)?;
                *ledger = next;
                Ok(result)
            },
            |result, snapshot| (result, self.0.journal.queue(Vec::new(), snapshot)),
        )?;
        journal::wait(&self.0.path, answered)?;
        Ok(result)
    }
}

/// A tree's sequence number; 0 before its first write.
fn sequence(tree: &sled::Tree) -> Result<u64, sled::Error> {
    Ok(tree
        .get(SEQ)?
        .and_then(|v| v.as_ref().try_into().ok())
        .map_or(0, u64::from_be_bytes))
}

fn io_error(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |error| match error {
        sled::Error::Corruption { .. } => StoreError::Damaged {
            path: path.to_owned(),
            reason: format!("sled found damaged data in it ({error})"),
        },
        sled::Error::Io(io) if error::is_full(&io) => StoreError::Full {
            path: path.to_owned(),
            reason: error::room(&io).unwrap_or_default().to_owned(),
        },
        error => StoreError::Io {
            path: path.to_owned(),
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;

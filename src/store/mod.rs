//! The state store: a typed wrapper over sled. sled types never leave this module.
//!
//! Layout: the default tree holds the format version and the store's id; tree `campaigns`
//! maps a campaign name to its `CampaignRecord`; tree `recipients/<campaign>` holds the
//! recipients' records: one `\0outcomes\0<seq>` value per call, listing each of its
//! recipients with their `RecipientRecord` (see `encoding`), so a campaign of a million
//! is a thousand sled values, not a million. Stores written before hold records under the
//! normalised address itself; those are still read, and a later call's outcome replaces
//! them. Keys that start with NUL, which no address does, are herald's own: `\0seq` (the
//! tree's sequence number, see `ledger`), the outcomes, and one `\0in-flight\0<id>`
//! `Intent` per call under way. Where each recipient stands is kept in memory (`index`),
//! built when the store is opened. Beside sled's files, `herald-state.json` is the ledger
//! of what the store must hold.
//!
//! # Guarantees
//! - Every write that records a state change is flushed before the call returns, so a
//!   SIGKILL right after it loses nothing.
//! - A store that cannot be read back whole is refused (`StoreError::Damaged`), never
//!   taken for an empty one: truncated or corrupted files, lost writes, missing records
//!   and a missing or damaged ledger are all caught on open (see `ledger` and `open`).
//!   A folder that is not a store is refused too (`StoreError::Foreign`).
//! - Only one process has a store open at a time (sled's file lock); a second gets
//!   `StoreError::Locked` naming the process that holds it.
//! - A call's intent is one record, flushed before the call (`begin`); its outcomes
//!   replace it atomically, in one sled batch, flushed after (`finish`). Several calls may
//!   be under way at once, each with its own intent.
//! - `recover` turns intents left by a crashed run into `uncertain`, before anything else.
//!
//! # Caveats
//! - A store restored whole from an older backup is consistent with its own ledger:
//!   recipients sent after the backup was taken would be sent again.

mod campaign;
mod encoding;
mod error;
mod index;
mod ledger;
mod open;
mod record;
mod summary;
mod suppressions;
mod upgrade;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use campaign::{CampaignStore, Change};
pub use error::StoreError;
pub use record::{
    CallLatency, CampaignRecord, Intent, RecipientRecord, Status, StatusCounts, TransportDown, now,
    timestamp,
};
pub use summary::{CampaignSummary, Summary};
pub use suppressions::Suppression;

use index::Index;
use ledger::{Keeper, Ledger};
use open::Found;

const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &str = "2";
/// The format herald wrote before the ledger existed; such stores are upgraded on open.
const FIRST_FORMAT: &str = "1";
const STORE_KEY: &[u8] = b"store";
const RECIPIENTS: &str = "recipients/";
/// A tree's sequence number, written in every batch that changes the tree.
const SEQ: &[u8] = b"\0seq";
/// The prefix of intent keys; the first format had just this one key.
const IN_FLIGHT: &[u8] = b"\0in-flight";
/// The prefix of the keys of calls' outcomes.
const OUTCOMES: &[u8] = b"\0outcomes";

/// The socket a running herald serves in the state folder (see `serve::socket`).
pub const SOCKET_FILE: &str = "herald.sock";

/// What `Store::open` does when there is no store at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    Create,
    /// `--require-state`: a missing store is an error, not a fresh start.
    Refuse,
}

/// An open state store. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct Store(Arc<Inner>);

struct Inner {
    db: sled::Db,
    campaigns: sled::Tree,
    path: PathBuf,
    keeper: Keeper,
    /// The ledger version last made durable (see `Store::durable`).
    flushed: Mutex<u64>,
    /// Where each campaign's recipients stand, by campaign.
    indexes: Mutex<HashMap<String, Arc<RwLock<Index>>>>,
    suppression_tree: sled::Tree,
    /// The suppression list, read whole on open (see `suppressions`).
    suppressions: RwLock<BTreeMap<String, Suppression>>,
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
            Found::Unledgered => Self::upgrade(path),
        }
    }

    /// Opens the store at `path` if there is one; `None` when nothing was applied yet.
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        match open::find(path)? {
            Found::Nothing | Found::Unfinished => Ok(None),
            Found::Store(ledger) => Self::verify(path, &ledger).map(Some),
            Found::Unledgered => Self::upgrade(path).map(Some),
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
        let ledger = Ledger {
            format: 2,
            store: id,
            ..Ledger::default()
        };
        let store = Self::assemble(path, db, ledger, HashMap::new())?;
        store.persist_ledger()?;
        std::fs::remove_file(path.join(open::CREATING)).map_err(failed)?;
        Ok(store)
    }

    fn assemble(
        path: &Path,
        db: sled::Db,
        ledger: Ledger,
        indexes: HashMap<String, Arc<RwLock<Index>>>,
    ) -> Result<Self, StoreError> {
        let io = io_error(path);
        let campaigns = db.open_tree("campaigns").map_err(&io)?;
        let suppression_tree = db.open_tree(suppressions::TREE).map_err(&io)?;
        let suppressions = suppressions::load(&suppression_tree, path)?;
        std::fs::write(path.join(open::PID_FILE), std::process::id().to_string())
            .map_err(|e| io(e.into()))?;
        Ok(Self(Arc::new(Inner {
            db,
            campaigns,
            path: path.to_owned(),
            keeper: Keeper::new(path, ledger),
            flushed: Mutex::new(0),
            indexes: Mutex::new(indexes),
            suppression_tree,
            suppressions: RwLock::new(suppressions),
        })))
    }

    fn persist_ledger(&self) -> Result<(), StoreError> {
        let ((), snapshot) = self.0.keeper.change(|_| Ok(()))?;
        self.0.keeper.persist(snapshot)
    }

    /// Turns the intents of calls that never got their outcomes (the run that made them
    /// was killed) into `uncertain` recipients; returns how many, per campaign.
    pub fn recover(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut recovered = BTreeMap::new();
        for name in self.campaign_names()? {
            let campaign = self.campaign(&name)?;
            for (key, intent) in campaign.intents()? {
                let records: Vec<_> = intent
                    .records(Status::Uncertain, campaign::RECOVERED, now())
                    .map(|(key, record)| (key, Some(record)))
                    .collect();
                *recovered.entry(name.clone()).or_insert(0) += records.len() as u64;
                let changes = campaign.changes_from_store(records)?;
                campaign.finish(Some(&key), &changes)?;
            }
        }
        Ok(recovered)
    }

    /// The names of every campaign the store has a record or recipients for.
    pub fn campaign_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = tree_names(&self.0.db);
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
        let tree = self
            .0
            .db
            .open_tree(format!("{RECIPIENTS}{name}"))
            .map_err(io_error(&self.0.path))?;
        let index = Arc::clone(
            self.0
                .indexes
                .lock()
                .expect("the indexes lock")
                .entry(name.to_owned())
                .or_default(),
        );
        CampaignStore::new(name, tree, index, self.clone())
    }

    /// Applies `batch` to `tree` with its next sequence number, changing the ledger as
    /// `change` says (under the ledger's lock, so counts and batch agree), then flushes and
    /// writes the ledger: when this returns, the change is durable and vouched for.
    fn commit<T>(
        &self,
        tree: &sled::Tree,
        seq: impl FnOnce(&mut Ledger) -> &mut u64,
        build: impl FnOnce(&mut sled::Batch, &mut Ledger) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let io = io_error(&self.0.path);
        let (result, snapshot) = self.0.keeper.change(|ledger| {
            let mut next = ledger.clone();
            let mut batch = sled::Batch::default();
            let result = build(&mut batch, &mut next)?;
            let number = seq(&mut next);
            *number += 1;
            batch.insert(SEQ, &number.to_be_bytes());
            tree.apply_batch(batch).map_err(&io)?;
            *ledger = next;
            Ok(result)
        })?;
        self.durable(&snapshot)?;
        Ok(result)
    }

    /// Makes every change up to `snapshot` durable: flushed, then vouched for by the
    /// ledger. Commits group: one flush and one ledger write cover every change applied
    /// before them, so a commit whose change another thread's flush covered is done.
    fn durable(&self, snapshot: &ledger::Snapshot) -> Result<(), StoreError> {
        let mut flushed = self.0.flushed.lock().expect("flush lock");
        if *flushed >= snapshot.version() {
            return Ok(());
        }
        // Everything applied until now, mine included, goes with this flush.
        let latest = self.0.keeper.snapshot();
        self.0.db.flush().map_err(io_error(&self.0.path))?;
        let version = latest.version();
        self.0.keeper.persist(latest)?;
        *flushed = version;
        Ok(())
    }
}

/// The campaigns that have a recipients tree.
fn tree_names(db: &sled::Db) -> Vec<String> {
    db.tree_names()
        .iter()
        .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix(RECIPIENTS))
        .map(str::to_owned)
        .collect()
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
        error => StoreError::Io {
            path: path.to_owned(),
            reason: error.to_string(),
        },
    }
}

/// Who is in the intents of a tree: key -> attempt.
fn in_flight(intents: &[(Vec<u8>, Intent)]) -> HashMap<String, u32> {
    intents
        .iter()
        .flat_map(|(_, intent)| intent.recipients.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests;

//! Finding and opening a state store folder without trusting sled with damaged files.
//!
//! sled, given a damaged data file, may panic, fail, open it as an empty store, or spin
//! forever. So before sled sees a folder, herald decides what the folder is; a truncated
//! data file is refused on its size alone; and sled is opened on a thread of its own, where
//! a panic or a run past `OPEN_TIMEOUT` means the store cannot be read back.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::error::StoreError;
use super::ledger::{self, Ledger};

/// sled's page cache; its default is 1 GiB.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// How long opening may take before the store counts as unreadable, plus a second per
/// 16 MiB of data (a million recipients open in about 2 s on the CI machine).
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
pub const PID_FILE: &str = "herald.pid";
/// sled's segment size (its default, which herald keeps): the file grows and shrinks by it.
const SEGMENT_BYTES: u64 = 512 * 1024;

/// What a state folder holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Nothing there, or an empty folder.
    Nothing,
    /// A store with its ledger.
    Store(Ledger),
    /// sled's files without a ledger: a store of herald's first format, or damage.
    Unledgered,
    /// A store herald began to create and never finished (killed before its ledger was
    /// written): nothing was ever sent with it.
    Unfinished,
}

/// The file `Store::create` writes first and removes last.
pub const CREATING: &str = ".herald-creating";

/// Looks at `path` without opening anything.
pub fn find(path: &Path) -> Result<Found, StoreError> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(error) if path.exists() && !path.is_dir() => {
            let _ = error;
            return Err(StoreError::Foreign {
                path: path.to_owned(),
                reason: "it is a file, not a folder".to_owned(),
            });
        }
        Err(error) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                reason: error.to_string(),
            });
        }
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Shards' stores (and their claims) live inside the state folder; a folder of them
    // alone has no store of its own yet.
    if names
        .iter()
        .all(|n| super::shards::is_folder(n) || super::claims::is_claims(n))
    {
        return Ok(Found::Nothing);
    }
    if let Some(ledger) = ledger::read(path)? {
        return Ok(Found::Store(ledger));
    }
    // Only herald's marker beside sled's own files: never a folder with anything else,
    // since an unfinished store is wiped and created again.
    let sleds = |n: &String| {
        [
            "db",
            "conf",
            "blobs",
            PID_FILE,
            CREATING,
            super::SOCKET_FILE,
            super::journal::FILE,
        ]
        .contains(&n.as_str())
            || n.starts_with("snap.")
            || super::shards::is_folder(n)
            || super::claims::is_claims(n)
    };
    if names.iter().any(|n| n == CREATING) && names.iter().all(sleds) {
        return Ok(Found::Unfinished);
    }
    if names.iter().any(|n| n == "db") && names.iter().any(|n| n == "conf") {
        return Ok(Found::Unledgered);
    }
    Err(StoreError::Foreign {
        path: path.to_owned(),
        reason: format!(
            "it holds {} but neither a ledger ({}) nor sled's files",
            crate::text::List::and_ticked(&names[..names.len().min(5)]),
            ledger::FILE
        ),
    })
}

/// Refuses a data file cut short of what the ledger recorded: sled would hang on it.
///
/// sled shortens the file itself, though, and always to a segment boundary: it gives back
/// free segments at the end of the file, at any time (a SIGKILL after it did and before
/// the next ledger write leaves a file shorter than recorded that lost nothing). So a
/// shorter file ending on a segment boundary goes on to sled; whatever it lost is then
/// caught by the ledger's counts, checked against the records when the store opens.
pub fn check_size(path: &Path, ledger: &Ledger) -> Result<(), StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    // Opening sled where its file is gone would make a new, empty one: never in a store.
    let bytes = std::fs::metadata(path.join("db"))
        .map_err(|_| damaged("its data file `db` is missing".to_owned()))?
        .len();
    // sled gives back whole free segments at the end of its file, never the first one.
    if bytes < ledger.db_bytes && (bytes == 0 || bytes % SEGMENT_BYTES != 0) {
        return Err(damaged(format!(
            "its data file was cut short ({bytes} bytes, the ledger recorded {})",
            ledger.db_bytes
        )));
    }
    Ok(())
}

const OPENER: &str = "herald-open-store";

/// sled's panics on damaged files are answered with a message of herald's own; the
/// default hook would print a backtrace hint as well.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(OPENER) {
                previous(info);
            }
        }));
    });
}

/// Removes snapshots sled began and never finished: it writes `snap.<lsn>.generating`,
/// then renames it to `snap.<lsn>` (and only then removes the snapshot before), but when
/// it opens it reads the newest `snap.` file, finished or not, and a SIGKILL while it was
/// being written leaves one cut short: sled then refuses the whole store as corrupt.
/// Without it, sled reads the snapshot before and its log, as it would have then; what
/// that loses, the ledger's checks still catch.
fn remove_unfinished_snapshots(path: &Path) -> Result<(), StoreError> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(|error| StoreError::Io {
                path: path.to_owned(),
                reason: format!("cannot remove sled's unfinished snapshot `{name}`: {error}"),
            })?;
        }
    }
    Ok(())
}

/// Opens sled at `path` (creating it when missing) on a thread of its own.
pub fn sled(path: &Path) -> Result<sled::Db, StoreError> {
    remove_unfinished_snapshots(path)?;
    let bytes = std::fs::metadata(path.join("db")).map_or(0, |m| m.len());
    let timeout = OPEN_TIMEOUT + Duration::from_secs(bytes / (16 * 1024 * 1024));
    let (sender, receiver) = mpsc::channel();
    let owned = path.to_owned();
    quiet_panics();
    std::thread::Builder::new()
        .name(OPENER.to_owned())
        .spawn(move || {
            // A panic here is an answer too: the files are damaged.
            let opened = std::panic::catch_unwind(|| {
                sled::Config::new()
                    .path(&owned)
                    .cache_capacity(CACHE_BYTES)
                    .open()
            });
            let _ = sender.send(opened);
        })
        .expect("a thread starts");
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    match receiver.recv_timeout(timeout) {
        Ok(Ok(Ok(db))) => Ok(db),
        Ok(Ok(Err(error))) => {
            let reason = error.to_string();
            if reason.contains("could not acquire lock") {
                Err(StoreError::Locked {
                    path: path.to_owned(),
                    pid: std::fs::read_to_string(path.join(PID_FILE))
                        .ok()
                        .map(|p| p.trim().to_owned()),
                })
            } else {
                Err(damaged(format!("sled cannot open it: {reason}")))
            }
        }
        Ok(Err(_)) => Err(damaged("sled failed while reading it back".to_owned())),
        Err(_) => Err(damaged(format!(
            "sled did not finish reading it back within {} s",
            timeout.as_secs()
        ))),
    }
}

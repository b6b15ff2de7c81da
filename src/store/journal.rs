//! The journal: herald's own append-only file of what happened to each call's
//! recipients, the intent before the call and the outcomes after it, for every campaign
//! of the store. sled keeps only what it indexes (campaign records, the suppression
//! list); a million outcomes are a million lines here, not a million sled values, so the
//! store's memory does not follow the audience.
//!
//! Each entry is a frame: its length and a CRC-32 (both little-endian `u32`), then the
//! payload: a kind byte (`I` intent, `O` outcomes), the campaign's name, the call's
//! number, and the entry (see `encoding`).
//!
//! Appends go through one writer thread that commits in groups: every append waiting
//! when it wakes is written, then one `fdatasync` covers them all, then the ledger is
//! rewritten to vouch for the new length, and only then is each append answered. So a
//! connection's outcome and the next call's intent share one durable write, and a run of
//! many calls in flight pays for few flushes.
//!
//! # Guarantees
//! - An append returns only once its frame is on disk and the ledger says so.
//! - A frame that fails its checksum, or a journal shorter than its ledger, is damage:
//!   the store is refused. Only a frame cut short at the very end, beyond what the ledger
//!   vouches for, is a write a crash interrupted (never answered, so never relied on);
//!   it is cut off when the store opens.
//! - After a write fails (a full disk), the journal is cut back to its last whole frame
//!   and takes no more appends: the store must be opened again.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;

use super::StoreError;
use super::encoding;
use super::ledger::{Keeper, Snapshot};
use super::record::{Intent, RecipientRecord};

pub const FILE: &str = "journal";

/// The most bytes one frame may hold: far above a call of 1,000 recipients.
const MOST: u32 = 64 * 1024 * 1024;

/// One entry of the journal.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Written and flushed before call `call` is made.
    Intent {
        campaign: String,
        call: u64,
        intent: Intent,
    },
    /// What became of the recipients of call `call` (0: of no call, such as records
    /// carried over from an older store). Recipients of the call not listed keep what they
    /// had: the call could not be made for them.
    Outcomes {
        campaign: String,
        call: u64,
        outcomes: Vec<(String, RecipientRecord)>,
    },
}

impl Entry {
    /// The frame of this entry: length, checksum, payload.
    pub fn frame(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        match self {
            Self::Intent {
                campaign,
                call,
                intent,
            } => {
                out.push(b'I');
                encoding::text(campaign, out);
                encoding::varint(*call, out);
                encoding::encode_intent(intent, out);
            }
            Self::Outcomes {
                campaign,
                call,
                outcomes,
            } => {
                out.push(b'O');
                encoding::text(campaign, out);
                encoding::varint(*call, out);
                encoding::encode_outcomes(
                    outcomes
                        .iter()
                        .map(|(key, record)| (key.as_str(), Some(record))),
                    out,
                );
            }
        }
        let payload = &out[start + 8..];
        let length = u32::try_from(payload.len()).expect("a frame under 4 GiB");
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&length.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn read(payload: &[u8]) -> Result<Self, String> {
        let (&kind, mut rest) = payload.split_first().ok_or("an empty entry")?;
        let campaign = encoding::read_text(&mut rest).ok_or("an entry cut short")?;
        let call = encoding::read_varint(&mut rest).ok_or("an entry cut short")?;
        match kind {
            b'I' => Ok(Self::Intent {
                campaign,
                call,
                intent: encoding::decode_intent(rest)?,
            }),
            b'O' => {
                let outcomes = encoding::decode_outcomes(rest)?
                    .into_iter()
                    .filter_map(|(key, record)| record.map(|record| (key, record)))
                    .collect();
                Ok(Self::Outcomes {
                    campaign,
                    call,
                    outcomes,
                })
            }
            other => Err(format!("an entry of unknown kind {other}")),
        }
    }
}

/// Reads the journal in `dir` from the start, calling `each` with every whole entry and
/// the offset just past it; returns the offset past the last whole entry. Damage is an
/// error; a frame cut short at the end, beyond the first `vouched` bytes, ends the read
/// there (to be cut off when the journal is opened for appending).
pub fn scan(
    dir: &Path,
    vouched: u64,
    mut each: impl FnMut(Entry, u64) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let path = dir.join(FILE);
    let damaged = |reason: String| StoreError::Damaged {
        path: dir.to_owned(),
        reason,
    };
    let io = |error: std::io::Error| StoreError::Io {
        path: dir.to_owned(),
        reason: format!("cannot read its journal: {error}"),
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && vouched == 0 => {
            return Ok(0);
        }
        Err(_) => return Err(damaged(format!("its journal `{FILE}` is missing"))),
    };
    let size = file.metadata().map_err(io)?.len();
    if size < vouched {
        return Err(damaged(format!(
            "its journal was cut short ({size} bytes, the ledger recorded {vouched})"
        )));
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut at = 0u64;
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 8];
        let whole = read_exact_or_end(&mut reader, &mut head).map_err(io)?;
        if whole == Whole::Nothing {
            return Ok(at);
        }
        let length = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let mut intact = whole == Whole::All && length <= MOST;
        if intact {
            payload.resize(length as usize, 0);
            intact = read_exact_or_end(&mut reader, &mut payload).map_err(io)? == Whole::All
                && crc32fast::hash(&payload) == crc;
        }
        if !intact {
            // A write a crash cut short, beyond what was ever answered: cut off.
            if at >= vouched {
                return Ok(at);
            }
            return Err(damaged(format!(
                "its journal fails its checksum at byte {at}"
            )));
        }
        let entry = Entry::read(&payload).map_err(|reason| {
            damaged(format!(
                "its journal holds an entry it cannot read at byte {at}: {reason}"
            ))
        })?;
        at += 8 + u64::from(length);
        each(entry, at)?;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Whole {
    All,
    Part,
    Nothing,
}

/// Fills `buffer`, or says how much of it the file still had.
fn read_exact_or_end(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<Whole> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Ok(if filled == 0 {
                    Whole::Nothing
                } else {
                    Whole::Part
                });
            }
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(Whole::All)
}

/// One append waiting to be written: its bytes, the ledger that vouches for it, and
/// where to answer.
struct Append {
    bytes: Vec<u8>,
    snapshot: Snapshot,
    answer: oneshot::Sender<Result<(), Refused>>,
}

/// Why an append was not made durable.
#[derive(Debug, Clone)]
pub enum Refused {
    /// No room left to write (`StoreError::Full`).
    Full(String),
    Failed(String),
}

/// The answer to a queued append: awaited by calls in flight, blocked on elsewhere.
pub type Answer = oneshot::Receiver<Result<(), Refused>>;

/// The journal file open for appending, through its writer thread.
pub struct Journal {
    queue: Mutex<Option<Sender<Append>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Journal {
    /// Opens the journal in `dir` for appending after its first `length` bytes (anything
    /// after them, a write a crash cut short, is cut off), rewriting the ledger through
    /// `keeper` after each group of appends.
    pub fn open(dir: &Path, length: u64, keeper: Arc<Keeper>) -> Result<Self, StoreError> {
        let io = |error: std::io::Error| StoreError::Io {
            path: dir.to_owned(),
            reason: format!("cannot open its journal: {error}"),
        };
        let path = dir.join(FILE);
        // Appends only: whatever the file's cursor, every write goes to its end.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != length {
            file.set_len(length).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let (queue, appends) = mpsc::channel();
        let writer = Writer {
            file,
            path,
            length,
            keeper,
            broken: None,
        };
        let handle = std::thread::Builder::new()
            .name("herald-journal".to_owned())
            .spawn(move || writer.run(&appends))
            .expect("a thread starts");
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Queues `bytes` (whole frames) with the ledger that vouches for them; call while
    /// the ledger's lock is held, so appends queue in the ledger's order. Wait on the
    /// answer outside it.
    pub fn queue(&self, bytes: Vec<u8>, snapshot: Snapshot) -> Answer {
        let (answer, answered) = oneshot::channel();
        let queue = self.queue.lock().expect("the journal queue lock");
        // Were the writer gone, `answer` is dropped and `wait` says the journal closed.
        if let Some(queue) = queue.as_ref() {
            let _ = queue.send(Append {
                bytes,
                snapshot,
                answer,
            });
        }
        answered
    }

    /// Stops the writer after the appends queued so far.
    pub fn close(&self) {
        self.queue.lock().expect("the journal queue lock").take();
        if let Some(handle) = self.writer.lock().expect("the writer lock").take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits for a queued append to be durable, blocking the thread.
pub fn wait(dir: &Path, answered: Answer) -> Result<(), StoreError> {
    futures::executor::block_on(settle(dir, answered))
}

/// Waits for a queued append to be durable.
pub async fn settle(dir: &Path, answered: Answer) -> Result<(), StoreError> {
    match answered.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Refused::Full(reason))) => Err(StoreError::Full {
            path: dir.to_owned(),
            reason,
        }),
        Ok(Err(Refused::Failed(reason))) => Err(StoreError::Io {
            path: dir.to_owned(),
            reason,
        }),
        Err(_) => Err(StoreError::Io {
            path: dir.to_owned(),
            reason: "its journal was closed".to_owned(),
        }),
    }
}

struct Writer {
    file: File,
    path: PathBuf,
    /// Bytes written and flushed: everything before is whole frames.
    length: u64,
    keeper: Arc<Keeper>,
    /// Why writing stopped, once it did.
    broken: Option<Refused>,
}

impl Writer {
    fn run(mut self, appends: &Receiver<Append>) {
        while let Ok(first) = appends.recv() {
            let mut group = vec![first];
            group.extend(appends.try_iter());
            let result = self.commit(&mut group);
            for append in group {
                let _ = append.answer.send(result.clone());
            }
        }
    }

    /// Writes the group, flushes it, and has the ledger vouch for it.
    fn commit(&mut self, group: &mut [Append]) -> Result<(), Refused> {
        if let Some(reason) = &self.broken {
            return Err(reason.clone());
        }
        let bytes: usize = group.iter().map(|a| a.bytes.len()).sum();
        let written = if bytes == 0 {
            Ok(())
        } else {
            let mut buffer = Vec::with_capacity(bytes);
            for append in group.iter() {
                buffer.extend_from_slice(&append.bytes);
            }
            self.file
                .write_all(&buffer)
                .and_then(|()| self.file.sync_data())
        };
        if let Err(error) = written {
            // Cut back to the last whole frame; nothing more is taken after a failure.
            let refused = match super::error::room(&error) {
                Some(room) => Refused::Full(format!("cannot write its journal: {room}")),
                None => Refused::Failed(format!(
                    "cannot write its journal `{}`: {error}",
                    self.path.display()
                )),
            };
            let _ = self.file.set_len(self.length);
            let _ = self.file.sync_all();
            self.broken = Some(match &refused {
                Refused::Full(reason) => Refused::Full(reason.clone()),
                Refused::Failed(reason) => Refused::Failed(format!(
                    "{reason}; it takes no more writes until herald opens it again"
                )),
            });
            return Err(refused);
        }
        self.length += bytes as u64;
        // The newest snapshot vouches for everything queued before it: all of it written.
        let snapshot = group
            .iter_mut()
            .map(|a| std::mem::take(&mut a.snapshot))
            .max_by_key(Snapshot::version)
            .expect("a group holds an append");
        if let Err(error) = self.keeper.persist(snapshot, self.length) {
            let refused = match error {
                StoreError::Full { reason, .. } => Refused::Full(reason),
                other => Refused::Failed(other.to_string()),
            };
            self.broken = Some(refused.clone());
            return Err(refused);
        }
        Ok(())
    }
}

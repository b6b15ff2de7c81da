//! Claims: which shards of which count a campaign was sent with, written into the state
//! folder before a shard's store sends anything, one file per shard and campaign:
//! `claims/<campaign>/shard-<index>-of-<count>`. Shards start at once on one folder, and a
//! store's ledger says nothing until its first write, so two runs of different counts could
//! each find the other's stores still empty; and a shard's folder deleted (by hand, by a
//! volume mix-up) would otherwise be recreated empty and its part sent again.
//!
//! # Guarantees
//! - Claims are read and written under an exclusive lock of `claims.lock`, so of two runs
//!   with different counts starting together, the second sees the first's claim.
//! - A claim is durable (file and folder synced) before the shard's store is created.
//! - A claimed shard whose store folder is gone or empty is refused, never recreated:
//!   whoever removes a store on purpose removes its claim too. Once the shard's store
//!   exists, the claim holds its id (`bind`): another store in its place (copied, moved,
//!   linked or created anew) is refused too.
//! - A campaign without shards claims too (`shard-0-of-1`), so a run without shards and
//!   one with them, started together, cannot both pass. Its store is the state folder
//!   itself, so it claims once the store is open (a folder that is no store is refused
//!   first, unwritten), still before anything is sent.

use std::fs::{self, File};
use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::ledger;
use super::shards::{folder, parse};
use crate::audience::Shard;

const FOLDER: &str = "claims";
const LOCK: &str = "claims.lock";

/// Why a shard may not send a campaign.
#[derive(Debug)]
pub enum Refusal {
    /// The campaign was claimed with other counts: these claims' shards.
    Changed {
        claimed: Vec<Shard>,
        folder: PathBuf,
    },
    /// The shard was claimed, and its store folder is gone.
    Lost {
        store: PathBuf,
        claim: PathBuf,
        since: String,
    },
    /// The shard's folder holds another store than the one that began it (copied, moved
    /// or linked from another shard's, or created anew).
    Replaced { store: PathBuf, claim: PathBuf },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// Claims `shard` of `campaign` in `state`, before its store sends anything: refused when
/// the campaign was claimed with another count (a single shard claims too, so a run
/// without shards and one with them cannot both pass), or the shard was claimed and its
/// folder now holds no store or another one than began it.
pub fn claim(
    state: &Path,
    campaign: &str,
    shard: Shard,
) -> Result<Result<(), Refusal>, StoreError> {
    fs::create_dir_all(state).map_err(io(state))?;
    let lock_path = state.join(LOCK);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    fs2::FileExt::lock_exclusive(&lock).map_err(io(&lock_path))?;
    let claims = state.join(FOLDER).join(campaign);
    if let Some(refusal) = changed(&claims, shard.count)? {
        return Ok(Err(refusal));
    }
    let claim = claims.join(name(shard));
    if claim.exists() {
        // A single shard's store is the state folder itself, which the claims are in.
        if shard.count.get() > 1 {
            if let Some(refusal) = replaced(state, shard, &claim)? {
                return Ok(Err(refusal));
            }
        }
        return Ok(Ok(()));
    }
    fs::create_dir_all(&claims).map_err(io(&claims))?;
    let mut file = File::create(&claim).map_err(io(&claim))?;
    writeln!(
        file,
        "{}",
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_default()
    )
    .and_then(|()| file.sync_all())
    .map_err(io(&claim))?;
    for dir in [&claims, &state.join(FOLDER)] {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(Ok(()))
}

/// Ties `shard`'s claim to the store its folder now holds (its ledger's id), once that
/// store exists: from then on another store in its place is refused.
pub fn bind(state: &Path, campaign: &str, shard: Shard) -> Result<(), StoreError> {
    if shard.count.get() == 1 {
        return Ok(());
    }
    let claim = state.join(FOLDER).join(campaign).join(name(shard));
    let Ok(text) = fs::read_to_string(&claim) else {
        return Ok(());
    };
    if text.lines().nth(1).is_some() {
        return Ok(());
    }
    let Some(ledger) = ledger::read(&folder(state, shard))? else {
        return Ok(());
    };
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&claim)
        .map_err(io(&claim))?;
    writeln!(file, "{}", ledger.store)
        .and_then(|()| file.sync_all())
        .map_err(io(&claim))
}

/// Whether `campaign` was claimed in `state` with another count than `count`: read only,
/// for plan.
pub fn claimed_otherwise(
    state: &Path,
    campaign: &str,
    count: NonZeroU32,
) -> Result<Option<Refusal>, StoreError> {
    changed(&state.join(FOLDER).join(campaign), count)
}

/// The count of shards `campaign` began with, or was claimed with, in `state`, when it
/// is not one: what watch, which sends from one store, must leave to the shards.
pub fn sharded_in(state: &Path, campaign: &str) -> Result<Option<NonZeroU32>, StoreError> {
    if let Some((shard, _)) = super::shards::began_elsewhere(state, campaign, NonZeroU32::MIN)?
        .into_iter()
        .next()
    {
        return Ok(Some(shard.count));
    }
    Ok(
        match changed(&state.join(FOLDER).join(campaign), NonZeroU32::MIN)? {
            Some(Refusal::Changed { claimed, .. }) => claimed.first().map(|s| s.count),
            _ => None,
        },
    )
}

fn changed(claims: &Path, count: NonZeroU32) -> Result<Option<Refusal>, StoreError> {
    let others: Vec<Shard> = claimed(claims)
        .map_err(io(claims))?
        .into_iter()
        .filter(|c| c.count != count)
        .collect();
    Ok((!others.is_empty()).then(|| Refusal::Changed {
        claimed: others,
        folder: claims.to_owned(),
    }))
}

/// A claimed shard's folder: gone or emptied, or holding another store than the claim
/// was tied to. Anything else is the store's to judge when it opens (an unfinished
/// creation is wiped, a damaged store refused).
fn replaced(state: &Path, shard: Shard, claim: &Path) -> Result<Option<Refusal>, StoreError> {
    let store = folder(state, shard);
    let text = fs::read_to_string(claim).map_err(io(claim))?;
    let mut lines = text.lines();
    let since = lines.next().unwrap_or_default().trim().to_owned();
    let bound = lines.next().map(str::trim).filter(|id| !id.is_empty());
    let present = fs::read_dir(&store).is_ok_and(|mut entries| entries.next().is_some());
    if !present {
        return Ok(Some(Refusal::Lost {
            store,
            claim: claim.to_owned(),
            since,
        }));
    }
    let found = ledger::read(&store)?.map(|ledger| ledger.store);
    let other = match (bound, found.as_deref()) {
        (Some(bound), Some(found)) => bound != found,
        _ => false,
    };
    // A link to another folder is never a shard's own store.
    let linked = fs::symlink_metadata(&store).is_ok_and(|m| m.file_type().is_symlink());
    Ok((other || linked).then(|| Refusal::Replaced {
        store,
        claim: claim.to_owned(),
    }))
}

fn name(shard: Shard) -> String {
    format!("shard-{}-of-{}", shard.index, shard.count)
}

/// The shards claimed in a campaign's claims folder.
fn claimed(claims: &Path) -> std::io::Result<Vec<Shard>> {
    let entries = match fs::read_dir(claims) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut shards = Vec::new();
    for entry in entries {
        if let Some(shard) = parse(&entry?.file_name().to_string_lossy()) {
            shards.push(shard);
        }
    }
    shards.sort_by_key(|s| (s.count, s.index));
    Ok(shards)
}

/// Whether `name` is the claims' folder or lock, which the state folder's own store
/// leaves alone.
pub fn is_claims(name: &str) -> bool {
    name == FOLDER || name == LOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, count: u32) -> Shard {
        Shard::of(index, count)
    }

    #[test]
    fn a_campaign_claimed_with_one_count_refuses_another() {
        let state = tempfile::tempdir().unwrap();
        assert!(claim(state.path(), "welcome", shard(0, 4)).unwrap().is_ok());
        assert!(claim(state.path(), "welcome", shard(3, 4)).unwrap().is_ok());
        let Err(Refusal::Changed { claimed, .. }) =
            claim(state.path(), "welcome", shard(1, 2)).unwrap()
        else {
            panic!("2 shards after 4");
        };
        assert_eq!(claimed, [shard(0, 4), shard(3, 4)]);
        assert!(matches!(
            claim(state.path(), "welcome", shard(0, 1)).unwrap(),
            Err(Refusal::Changed { .. })
        ));
        // Another campaign in the same folder is free to use another count.
        assert!(claim(state.path(), "other", shard(0, 2)).unwrap().is_ok());
        // Without shards it claims too: shards after it are refused, and it after them.
        assert!(claim(state.path(), "solo", shard(0, 1)).unwrap().is_ok());
        assert!(claim(state.path(), "solo", shard(0, 1)).unwrap().is_ok());
        assert!(matches!(
            claim(state.path(), "solo", shard(1, 4)).unwrap(),
            Err(Refusal::Changed { .. })
        ));
        assert!(matches!(
            claimed_otherwise(state.path(), "solo", NonZeroU32::new(4).unwrap()).unwrap(),
            Some(Refusal::Changed { .. })
        ));
        assert!(
            claimed_otherwise(state.path(), "solo", NonZeroU32::MIN)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_claimed_shard_without_its_store_is_refused() {
        let state = tempfile::tempdir().unwrap();
        assert!(claim(state.path(), "welcome", shard(2, 4)).unwrap().is_ok());
        // Claimed, store never created: taken as lost (the claim comes first).
        let Err(Refusal::Lost { store, .. }) = claim(state.path(), "welcome", shard(2, 4)).unwrap()
        else {
            panic!("lost");
        };
        assert_eq!(store, state.path().join("shard-2-of-4"));
    }
}

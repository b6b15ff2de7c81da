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
//!   whoever removes a store on purpose removes its claim too.

use std::fs::{self, File};
use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use super::error::StoreError;
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
}

/// Claims `shard` of `campaign` in `state` (a count of 1 claims nothing, but is refused
/// when the campaign was claimed with shards): refused when the campaign was claimed with
/// another count, or the shard was claimed and its store is gone.
pub fn claim(
    state: &Path,
    campaign: &str,
    shard: Shard,
) -> Result<Result<(), Refusal>, StoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error: std::io::Error| StoreError::Io {
            path: path.clone(),
            reason: error.to_string(),
        }
    };
    let lock_path = state.join(LOCK);
    if shard.count.get() == 1 && !lock_path.exists() {
        // No shard ever claimed anything here.
        return Ok(Ok(()));
    }
    fs::create_dir_all(state).map_err(io(state))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    fs2::FileExt::lock_exclusive(&lock).map_err(io(&lock_path))?;
    let claims = state.join(FOLDER).join(campaign);
    let claimed = claimed(&claims).map_err(io(&claims))?;
    let others: Vec<Shard> = claimed
        .iter()
        .copied()
        .filter(|c| c.count != shard.count)
        .collect();
    if !others.is_empty() {
        return Ok(Err(Refusal::Changed {
            claimed: others,
            folder: claims,
        }));
    }
    if shard.count.get() == 1 {
        return Ok(Ok(()));
    }
    let claim = claims.join(format!("shard-{}-of-{}", shard.index, shard.count));
    let store = folder(state, shard);
    if claimed.contains(&shard) {
        // Gone or emptied; anything else is the store's to judge when it opens (an
        // unfinished creation is wiped, a damaged store refused).
        let present = fs::read_dir(&store).is_ok_and(|mut entries| entries.next().is_some());
        if !present {
            let since = fs::read_to_string(&claim).unwrap_or_default();
            return Ok(Err(Refusal::Lost {
                store,
                claim,
                since: since.trim().to_owned(),
            }));
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

/// `count` as claims show it, for messages.
pub fn counts(claimed: &[Shard]) -> Vec<NonZeroU32> {
    let mut counts: Vec<NonZeroU32> = claimed.iter().map(|s| s.count).collect();
    counts.dedup();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, count: u32) -> Shard {
        Shard {
            index,
            count: NonZeroU32::new(count).unwrap(),
        }
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

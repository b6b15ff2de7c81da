//! Where shards keep their stores: one folder each inside the state folder,
//! `shard-<index>-of-<count>`, so that shards never contend for a lock and a store always
//! says which partition it belongs to. A campaign of one shard keeps the state folder's
//! own store, as before shards.
//!
//! # Guarantees
//! - Whether a campaign began in a store of another partition is read from that store's
//!   ledger alone: nothing is opened or locked, so a running shard is never in the way.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::ledger;
use crate::audience::Shard;

const PREFIX: &str = "shard-";

/// The store folder of `shard` inside `state`: `state` itself for a single shard.
pub fn folder(state: &Path, shard: Shard) -> PathBuf {
    if shard.count.get() == 1 {
        return state.to_owned();
    }
    state.join(format!("{PREFIX}{}-of-{}", shard.index, shard.count))
}

/// The shard a folder name stands for: `shard-2-of-4`.
pub fn parse(name: &str) -> Option<Shard> {
    let (index, count) = name.strip_prefix(PREFIX)?.split_once("-of-")?;
    let index: u32 = index.parse().ok()?;
    let count: NonZeroU32 = count.parse().ok()?;
    (index < count.get() && name == format!("{PREFIX}{index}-of-{count}"))
        .then_some(Shard { index, count })
}

/// The shard stores inside `state`, ordered by count then index.
pub fn stores(state: &Path) -> Result<Vec<(Shard, PathBuf)>, StoreError> {
    let entries = match std::fs::read_dir(state) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(StoreError::Io {
                path: state.to_owned(),
                reason: error.to_string(),
            });
        }
    };
    let mut found: Vec<(Shard, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((parse(&e.file_name().to_string_lossy())?, e.path())))
        .collect();
    found.sort_by_key(|(shard, _)| (shard.count, shard.index));
    Ok(found)
}

/// The stores in `state` of another partition than `count` shards (the state folder's own
/// store counts as one shard) in which `campaign` began, with their shard: sending it now
/// with `count` shards would send some of its recipients again.
pub fn began_elsewhere(
    state: &Path,
    campaign: &str,
    count: NonZeroU32,
) -> Result<Vec<(Shard, PathBuf)>, StoreError> {
    let mut candidates = Vec::new();
    if count.get() != 1 {
        candidates.push((Shard::WHOLE, state.to_owned()));
    }
    candidates.extend(
        stores(state)?
            .into_iter()
            .filter(|(shard, _)| shard.count != count),
    );
    let mut began = Vec::new();
    for (shard, path) in candidates {
        let Some(ledger) = ledger::read(&path)? else {
            continue;
        };
        if ledger.campaigns.get(campaign).is_some_and(|c| c.seq > 0) {
            began.push((shard, path));
        }
    }
    Ok(began)
}

/// Whether the state folder itself holds a store (`herald init` made one): what
/// `--require-state` asks of shards, whose own stores are created inside it on first use.
/// Read from its ledger, so shards starting at once do not contend for its lock.
pub fn initialized(state: &Path) -> Result<bool, StoreError> {
    Ok(ledger::read(state)?.is_some())
}

/// Whether `name` is a shard's folder, which the state folder's own store leaves alone.
pub fn is_folder(name: &str) -> bool {
    parse(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, count: u32) -> Shard {
        Shard::of(index, count)
    }

    #[test]
    fn folders_name_their_partition() {
        let state = Path::new("/srv/state");
        assert_eq!(folder(state, shard(0, 1)), state);
        assert_eq!(folder(state, shard(2, 4)), state.join("shard-2-of-4"));
        assert_eq!(parse("shard-2-of-4"), Some(shard(2, 4)));
        for name in [
            "shard-4-of-4",
            "shard-02-of-4",
            "shard-1-of-0",
            "shard-1",
            "db",
            "shard--of-",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }

    #[test]
    fn stores_are_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["shard-1-of-2", "shard-0-of-2", "shard-3-of-4", "other"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("shard-0-of-4"), "a file").unwrap();
        let found: Vec<Shard> = stores(dir.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(found, [shard(0, 2), shard(1, 2), shard(3, 4)]);
        assert!(
            began_elsewhere(dir.path(), "welcome", NonZeroU32::MIN)
                .unwrap()
                .is_empty()
        );
    }
}

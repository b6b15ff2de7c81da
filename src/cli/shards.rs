//! The shards a run sends: how many the selected campaigns are split into, which of them
//! this process takes (`--shard`, else `JOB_COMPLETION_INDEX`, else all in turn), and the
//! refusal of a partition changed after sending began.

use std::num::NonZeroU32;
use std::path::Path;

use super::{Exit, report};
use crate::audience::Shard;
use crate::manifest::Campaign;
use crate::store::{claims, shards};
use crate::text::List;

/// The number of shards the selected campaigns share. They live in one state folder, so
/// campaigns of different counts are applied one at a time (`--campaign`).
pub fn count(campaigns: &[&Campaign]) -> Result<NonZeroU32, Exit> {
    let Some(first) = campaigns.first() else {
        return Ok(NonZeroU32::MIN);
    };
    if let Some(other) = campaigns.iter().find(|c| c.shards != first.shards) {
        report::error(format_args!(
            "campaigns `{}` ({}) and `{}` ({}) differ in `spec.shards`; apply each on its own with \
             `--campaign NAME`; nothing was sent",
            first.name,
            crate::text::Count("shard", u64::from(first.shards.get())),
            other.name,
            crate::text::Count("shard", u64::from(other.shards.get())),
        ));
        return Err(Exit::Refused);
    }
    Ok(first.shards)
}

/// The shards this process sends: the one asked for, or every one in turn.
pub fn chosen(count: NonZeroU32, asked: Option<u32>, campaign: &str) -> Result<Vec<Shard>, Exit> {
    match asked {
        Some(index) if index >= count.get() => {
            report::error(format_args!(
                "shard `{index}` (from `--shard` or JOB_COMPLETION_INDEX) is out of range: campaign \
                 `{campaign}` has {}, numbered 0 to {}; nothing was sent",
                crate::text::Count("shard", u64::from(count.get())),
                count.get() - 1
            ));
            Err(Exit::Refused)
        }
        Some(index) => Ok(vec![Shard { index, count }]),
        None => Ok((0..count.get())
            .map(|index| Shard { index, count })
            .collect()),
    }
}

/// Refuses, before anything is sent, campaigns that began in stores of another partition:
/// their recipients would move to shards whose stores never saw them, and be sent again.
pub fn unchanged(state: &Path, campaigns: &[&Campaign], count: NonZeroU32) -> Result<(), Exit> {
    let mut refused = false;
    for campaign in campaigns {
        let began = shards::began_elsewhere(state, &campaign.name, count).map_err(|error| {
            report::error(format_args!("{error}; nothing was sent"));
            Exit::Refused
        })?;
        if began.is_empty() {
            // No store says so yet; the claims of shards about to send may.
            let claimed =
                claims::claimed_otherwise(state, &campaign.name, count).map_err(|error| {
                    report::error(format_args!("{error}; nothing was sent"));
                    Exit::Refused
                })?;
            if let Some(refusal) = claimed {
                refuse(&campaign.name, Shard { index: 0, count }, &refusal);
                refused = true;
            }
            continue;
        }
        let stores: Vec<String> = began.iter().map(|(_, p)| p.display().to_string()).collect();
        let began_with = counted(began.iter().map(|(s, _)| *s));
        report::refused(
            &campaign.name,
            format_args!(
                "`spec.shards` is {count}, but sending began with {began_with}, in {}; each recipient \
                 would move to a shard whose store never saw them and be sent again: set `shards` back",
                List::and_ticked(&stores)
            ),
        );
        refused = true;
    }
    if refused { Err(Exit::Refused) } else { Ok(()) }
}

/// Claims `shard` of every campaign in `state` before its store sends anything (see
/// `store::claims`): refused when a campaign was claimed with another count, or this
/// shard was claimed and its folder holds no store, or another one.
pub fn claim(state: &Path, campaigns: &[&Campaign], shard: Shard) -> Result<(), Exit> {
    for campaign in campaigns {
        let claimed = claims::claim(state, &campaign.name, shard).map_err(|error| {
            report::error(format_args!("{error}; nothing was sent"));
            Exit::Refused
        })?;
        if let Err(refusal) = claimed {
            refuse(&campaign.name, shard, &refusal);
            return Err(Exit::Refused);
        }
    }
    Ok(())
}

/// Ties each campaign's claim of `shard` to the store now in its folder.
pub fn bind(state: &Path, campaigns: &[&Campaign], shard: Shard) -> Result<(), Exit> {
    for campaign in campaigns {
        claims::bind(state, &campaign.name, shard).map_err(|error| {
            report::error(format_args!("{error}"));
            Exit::Failed
        })?;
    }
    Ok(())
}

/// The counts of `shards` (sorted by count), for a message: `1 shard`, `4 shards`, `2 or 4
/// shards`.
fn counted(shards: impl Iterator<Item = Shard>) -> String {
    let mut counts: Vec<u32> = shards.map(|s| s.count.get()).collect();
    counts.dedup();
    match counts.as_slice() {
        [one] => crate::text::Count("shard", u64::from(*one)).to_string(),
        many => {
            let many: Vec<String> = many.iter().map(u32::to_string).collect();
            format!("{} shards", many.join(" or "))
        }
    }
}

/// Says why `shard` of `campaign` may not be sent.
fn refuse(campaign: &str, shard: Shard, refusal: &claims::Refusal) {
    let message = match refusal {
        claims::Refusal::Changed { claimed, folder } => {
            let with = counted(claimed.iter().copied());
            format!(
                "`spec.shards` is {}, but it was claimed with {with} (in `{}`); each recipient would \
                 move to a shard whose store never saw them and be sent again: set `shards` back",
                shard.count,
                folder.display()
            )
        }
        claims::Refusal::Replaced { store, claim } => format!(
            "`{}` holds another store than the one shard {} of {} began with (copied, moved or \
             linked from elsewhere, or created anew): its recipients would be sent again. Put that \
             shard's own store back; if it really sent nothing, remove `{}`",
            store.display(),
            shard.index,
            shard.count,
            claim.display()
        ),
        claims::Refusal::Lost {
            store,
            claim,
            since,
        } => format!(
            "shard {} of {} began sending it ({since}), but its store `{}` is gone: a new store \
             would send everyone in that shard again. Bring the folder back (from a backup, or the \
             volume it was on); if that shard really sent nothing, remove `{}`",
            shard.index,
            shard.count,
            store.display(),
            claim.display()
        ),
    };
    report::refused(campaign, message);
}

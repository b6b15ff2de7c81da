//! The audience rows and suppression entries a merge adds and removes, counted, with a few
//! masked examples; and, from the same walk, one sample recipient per locale to render.
//!
//! Both audiences are streamed. The old one is walked first and kept as fingerprints (an
//! address's 16 bytes and 8 of its row, not the text), the new one is walked against it,
//! and the old one again, only as far as needed, for examples of removed rows.
//!
//! # Caveats
//! - A row counts as changed when a column both files have holds another value; a column
//!   added or removed is reported once, not as every row changing.
//! - Invalid rows are counted, not compared; the first row of an address is the one
//!   compared, as it is the one sent.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::mask::mask;
use crate::audience::{self, AudienceError, Recipient, Record, Suppressions};
use crate::manifest::Campaign;
use crate::render::Renderer;

/// Examples listed of each kind of change.
pub const EXAMPLES: usize = 3;
/// Recipients of each locale kept from the old side, to find one the new side still has:
/// the same person rendered on both sides shows what changed in the message, not who.
const CANDIDATES: usize = 16;

/// How an audience file's rows fall, on one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rows {
    pub rows: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub invalid: u64,
}

/// What changes in a campaign's audience.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AudienceDiff {
    pub old: Rows,
    pub new: Rows,
    pub added: u64,
    pub removed: u64,
    /// Addresses on both sides whose row holds other values.
    pub changed: u64,
    /// Masked, in file order.
    pub added_examples: Vec<String>,
    pub removed_examples: Vec<String>,
    pub changed_examples: Vec<String>,
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
}

/// What changes in the suppression lists a campaign names, taken together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SuppressionDiff {
    pub old: u64,
    pub new: u64,
    pub added: u64,
    pub removed: u64,
    /// Masked, in address order.
    pub added_examples: Vec<String>,
    pub removed_examples: Vec<String>,
}

/// Sample recipients per locale (as the renderer of each side reads the locale column).
#[derive(Debug, Default)]
pub struct Samples {
    pub old: BTreeMap<String, Recipient>,
    pub new: BTreeMap<String, Recipient>,
}

/// One side of a review: a campaign and the renderer that reads its locales.
pub struct Side<'a> {
    pub campaign: &'a Campaign,
    pub renderer: &'a Renderer,
}

/// A row as the walk sees it: valid and the first of its address.
struct Valid {
    key: String,
    recipient: Recipient,
}

/// Walks the audience of `side`, calling `each` with each row that has a valid address and
/// is the first of it, until `each` says stop. The counts are of the rows walked.
fn walk(side: &Side<'_>, mut each: impl FnMut(Valid) -> bool) -> Result<Rows, AudienceError> {
    let audience = &side.campaign.audience;
    let rows = audience::rows(&audience.file, &audience.email_field)?;
    let mut seen = crate::keyhash::Set::default();
    let mut counts = Rows::default();
    for row in rows {
        let row = row?;
        counts.rows += 1;
        let Some(email) = row.record.get(&audience.email_field) else {
            counts.invalid += 1;
            continue;
        };
        let email = email.trim();
        if !crate::address::is_valid(email) {
            counts.invalid += 1;
            continue;
        }
        let key = audience::normalize(email);
        if !seen.insert(crate::keyhash::of(&key)) {
            counts.duplicates += 1;
            continue;
        }
        counts.unique += 1;
        let go_on = each(Valid {
            key,
            recipient: Recipient {
                line: row.line,
                email: email.to_owned(),
                record: row.record,
            },
        });
        if !go_on {
            break;
        }
    }
    Ok(counts)
}

/// A digest of a row's values in `columns` (every column of the row when `None`), keyed
/// at random once per process like `keyhash`, so that no row can be made to look unchanged.
fn row_digest(record: &Record, columns: Option<&[String]>) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    let mut hasher = KEYS.get_or_init(std::hash::RandomState::new).build_hasher();
    let owned;
    let columns = if let Some(columns) = columns {
        columns
    } else {
        owned = record.columns();
        &owned
    };
    for column in columns {
        hasher.write(column.as_bytes());
        hasher.write_u8(0);
        hasher.write(record.get(column).unwrap_or_default().as_bytes());
        hasher.write_u8(0);
    }
    hasher.finish()
}

/// The audience diff and the samples, walking both audiences.
pub fn compare(old: &Side<'_>, new: &Side<'_>) -> Result<(AudienceDiff, Samples), AudienceError> {
    // Which columns to compare: those both CSV headers have (JSONL rows: every column).
    let old_headers = audience::rows(
        &old.campaign.audience.file,
        &old.campaign.audience.email_field,
    )?
    .headers()
    .map(<[String]>::to_vec);
    let new_headers = audience::rows(
        &new.campaign.audience.file,
        &new.campaign.audience.email_field,
    )?
    .headers()
    .map(<[String]>::to_vec);
    let mut diff = AudienceDiff::default();
    let common: Option<Vec<String>> = match (&old_headers, &new_headers) {
        (Some(a), Some(b)) => {
            diff.columns_added = b.iter().filter(|c| !a.contains(c)).cloned().collect();
            diff.columns_removed = a.iter().filter(|c| !b.contains(c)).cloned().collect();
            Some(a.iter().filter(|c| b.contains(c)).cloned().collect())
        }
        _ => None,
    };

    // The old side: every address's row digest, whether the new side has it, and the
    // first few recipients of each locale, the candidates for its sample.
    let mut known: crate::keyhash::Table<(u64, bool)> = crate::keyhash::Table::default();
    let mut candidates: BTreeMap<String, Vec<Recipient>> = BTreeMap::new();
    let mut wanted: HashSet<String> = HashSet::new();
    diff.old = walk(old, |valid| {
        let digest = row_digest(&valid.recipient.record, common.as_deref());
        known.insert(crate::keyhash::of(&valid.key), (digest, false));
        let locale = old.renderer.requested_locale(&valid.recipient.record);
        let list = candidates.entry(locale).or_default();
        if list.len() < CANDIDATES {
            wanted.insert(valid.key);
            list.push(valid.recipient);
        }
        true
    })?;
    let mut found: BTreeMap<String, Recipient> = BTreeMap::new();
    let mut first_new: BTreeMap<String, Recipient> = BTreeMap::new();
    diff.new = walk(new, |valid| {
        let digest = row_digest(&valid.recipient.record, common.as_deref());
        let fingerprint = crate::keyhash::of(&valid.key);
        match known.get(fingerprint) {
            None => {
                diff.added += 1;
                if diff.added_examples.len() < EXAMPLES {
                    diff.added_examples.push(mask(&valid.recipient.email));
                }
            }
            Some((old_digest, _)) => {
                known.insert(fingerprint, (old_digest, true));
                if old_digest != digest {
                    diff.changed += 1;
                    if diff.changed_examples.len() < EXAMPLES {
                        diff.changed_examples.push(mask(&valid.recipient.email));
                    }
                }
            }
        }
        let locale = new.renderer.requested_locale(&valid.recipient.record);
        if wanted.contains(&valid.key) {
            found.insert(valid.key.clone(), valid.recipient.clone());
        }
        first_new.entry(locale).or_insert(valid.recipient);
        true
    })?;
    diff.removed = known.iter().filter(|(_, (_, seen))| !*seen).count() as u64;

    if diff.removed > 0 {
        // Examples of removed rows: the old side again, as far as the first few.
        let mut listed = 0;
        walk(old, |valid| {
            let gone = known
                .get(crate::keyhash::of(&valid.key))
                .is_some_and(|(_, seen)| !seen);
            if gone {
                diff.removed_examples.push(mask(&valid.recipient.email));
                listed += 1;
            }
            listed < EXAMPLES
        })?;
    }

    // Per locale, the first candidate still in the new audience, on both sides; when
    // none is, the first recipient of each side.
    let mut samples = Samples::default();
    for (locale, list) in candidates {
        let kept = list
            .iter()
            .find_map(|r| found.get(&audience::normalize(&r.email)).map(|n| (r, n)));
        if let Some((before, after)) = kept {
            samples.old.insert(locale.clone(), before.clone());
            samples.new.insert(locale, after.clone());
        } else if let Some(first) = list.into_iter().next() {
            samples.old.insert(locale, first);
        }
    }
    for (locale, first) in first_new {
        samples.new.entry(locale).or_insert(first);
    }
    Ok((diff, samples))
}

/// The samples of an audience both sides share: its first recipient of each locale,
/// rendered on each side.
pub fn shared_samples(old: &Side<'_>, new: &Side<'_>) -> Result<Samples, AudienceError> {
    let mut samples = Samples::default();
    walk(new, |valid| {
        let old_locale = old.renderer.requested_locale(&valid.recipient.record);
        let new_locale = new.renderer.requested_locale(&valid.recipient.record);
        samples
            .old
            .entry(old_locale)
            .or_insert_with(|| valid.recipient.clone());
        samples.new.entry(new_locale).or_insert(valid.recipient);
        true
    })?;
    Ok(samples)
}

/// The samples of one side only (a campaign added or removed).
pub fn samples_of(side: &Side<'_>) -> Result<(Rows, BTreeMap<String, Recipient>), AudienceError> {
    let mut samples = BTreeMap::new();
    let rows = walk(side, |valid| {
        let locale = side.renderer.requested_locale(&valid.recipient.record);
        samples.entry(locale).or_insert(valid.recipient);
        true
    })?;
    Ok((rows, samples))
}

/// The entries the suppression lists of `new` add to and remove from those of `old`.
pub fn suppression(old: &Campaign, new: &Campaign) -> Result<SuppressionDiff, AudienceError> {
    let old = Suppressions::load(&old.audience.suppress)?;
    let new = Suppressions::load(&new.audience.suppress)?;
    let before: HashSet<&str> = old.addresses().collect();
    let after: HashSet<&str> = new.addresses().collect();
    let added: BTreeSet<&str> = after.difference(&before).copied().collect();
    let removed: BTreeSet<&str> = before.difference(&after).copied().collect();
    Ok(SuppressionDiff {
        old: before.len() as u64,
        new: after.len() as u64,
        added: added.len() as u64,
        removed: removed.len() as u64,
        added_examples: added.iter().take(EXAMPLES).map(|a| mask(a)).collect(),
        removed_examples: removed.iter().take(EXAMPLES).map(|a| mask(a)).collect(),
    })
}

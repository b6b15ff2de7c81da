//! Review before merge: what a pull request changes, as a reviewer reads it, and the
//! comment that says it on the pull request.
//!
//! - `diff`: two sets of manifests compared per campaign, from `fields` (the manifest),
//!   `audience` (rows and suppression entries added and removed, and the samples) and
//!   `samples` (one recipient per locale rendered on both sides, as unified diffs);
//!   `mask` hides the addresses it shows.
//! - `warning`: what must be said first, for `diff` and `plan --against` alike.
//! - `markdown`: the comment, within GitHub's size limit.

pub mod audience;
mod diff;
pub mod fields;
pub mod markdown;
pub mod mask;
pub mod samples;
pub mod warning;

pub use diff::{CampaignDiff, Change, Diff, Tree, diff};
pub use warning::Warning;

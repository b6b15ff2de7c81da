//! Who is due now under a campaign's schedule, judged in the walk that plan and apply
//! share (`select`), so the two agree by construction; and what plan tells of the
//! schedule: due now, when the next become due, when sending ends at the declared rate
//! within the windows, and how many would expire.
//!
//! # Guarantees
//! - A recipient is due only at an instant inside their own window (their zone's wall
//!   clock, `spec.schedule.timezone` without one), not before `not_before` and before
//!   `not_after`. Each due recipient carries the instant their window (or the campaign)
//!   closes, and apply checks it again right before the call: a window that closes during
//!   a run sends nobody late.
//! - At or after `not_after`, whoever the stage reaches and has no outcome is due to be
//!   recorded `expired`, never sent.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::Due;
use crate::audience::Recipient;
use crate::manifest::{Moment, Schedule, Slot};
use crate::store::Status;

/// Judges recipients under one schedule at one instant; remembers the zones it met.
pub struct Timing<'a> {
    schedule: &'a Schedule,
    at: Timestamp,
    /// Zone names met in the audience, each looked up once, and its number.
    zones: HashMap<String, u16>,
    /// The zones by number; the first is the schedule's own.
    known: Vec<TimeZone>,
    /// Where each zone stands at `at`, once worked out: the same for everyone in it.
    moments: Vec<Option<(Moment, Option<Slot>)>>,
}

/// What the schedule makes of one recipient the stage and the store find due.
#[derive(Debug, Clone, Copy)]
pub struct Judged {
    pub due: Due,
    /// When they may no longer be sent in this window, and when it opens next (`None`:
    /// any time).
    pub slot: Option<Slot>,
    /// Their zone's number in this timing.
    pub zone: u16,
}

impl<'a> Timing<'a> {
    pub fn new(schedule: &'a Schedule, at: Timestamp) -> Self {
        Self {
            schedule,
            at,
            zones: HashMap::new(),
            known: vec![schedule.timezone.clone()],
            moments: Vec::new(),
        }
    }

    /// The number of `recipient`'s zone: their column's, or the schedule's own for an
    /// empty value (an unknown name was an invalid row, screened out before).
    fn zone_of(&mut self, recipient: &Recipient) -> u16 {
        let Some(field) = &self.schedule.timezone_field else {
            return 0;
        };
        let Some(name) = recipient.record.get(field) else {
            return 0;
        };
        let name = name.trim();
        if name.is_empty() {
            return 0;
        }
        if let Some(number) = self.zones.get(name) {
            return *number;
        }
        let number = match crate::manifest::zone(name) {
            Some(zone) if self.known.len() < usize::from(u16::MAX) => {
                self.known.push(zone);
                u16::try_from(self.known.len() - 1).unwrap_or(0)
            }
            _ => 0,
        };
        self.zones.insert(name.to_owned(), number);
        number
    }

    /// What the schedule makes of `recipient`, whom the stage and the store find `due`.
    pub fn judge(&mut self, recipient: &Recipient, due: Due) -> Judged {
        let zone = self.zone_of(recipient);
        if !due.is_now() {
            return Judged {
                due,
                slot: None,
                zone,
            };
        }
        let (moment, slot) = self.moment(zone);
        let due = match moment {
            Moment::Open { .. } => due,
            Moment::Opens(at) => Due::Waiting(Some(at)),
            Moment::Never => Due::Waiting(None),
            // Only those without an outcome (or expired under an earlier revision) expire:
            // whoever a correction or a retry would have sent again keeps what they have.
            Moment::Expired => match due {
                Due::Now(None | Some(Status::Expired)) => Due::Expire,
                Due::Now(Some(status)) | Due::Again(status) => Due::Done(status),
                other => other,
            },
        };
        Judged { due, slot, zone }
    }

    /// Where the zone numbered `zone` stands at `at`, and its slot when it is open.
    fn moment(&mut self, zone: u16) -> (Moment, Option<Slot>) {
        let index = usize::from(zone);
        if self.moments.len() <= index {
            self.moments.resize(index + 1, None);
        }
        if let Some(known) = self.moments[index] {
            return known;
        }
        let tz = &self.known[index];
        let moment = self.schedule.moment(tz, self.at);
        let slot = match moment {
            Moment::Open { until: Some(until) } => Some(self.schedule.slot(tz, until)),
            _ => None,
        };
        self.moments[index] = Some((moment, slot));
        (moment, slot)
    }
}

/// The schedule as plan tells it. Serialized in `plan -o json` as each campaign's
/// `schedule`; see docs/output.md.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulePlan {
    /// The instant this plan is of (`--at`, or now).
    pub at: String,
    /// Due now: what apply sends at `at`.
    pub due_now: u64,
    /// When the next recipients become due; `null` when nobody is waiting.
    pub next_due: Option<String>,
    /// When the last would be sent at the campaign's rate within the windows; `null`
    /// when nobody would be.
    pub ends: Option<String>,
    /// Recipients `not_after` would leave unsent: already past it, no window of theirs
    /// before it, or not reached at the rate in time.
    pub expire: u64,
    /// When a pass has something to do next: the next due, or `not_after` while anybody
    /// is left to be sent or expired.
    #[serde(skip)]
    pub wake: Option<Timestamp>,
    /// `next_due` as an instant.
    #[serde(skip)]
    pub next_due_at: Option<Timestamp>,
}

/// Counts the recipients of one plan by when they become due, by zone, to tell the
/// schedule.
pub struct Forecast {
    at: Timestamp,
    /// Recipients due at each instant (`at` for those due now), by zone.
    pending: BTreeMap<(Timestamp, u16), u64>,
    due_now: u64,
    next_due: Option<Timestamp>,
    expire: u64,
    /// Of `expire`, those not past `not_after` yet: a pass at `not_after` records them.
    never: u64,
}

impl Forecast {
    pub fn new(at: Timestamp) -> Self {
        Self {
            at,
            pending: BTreeMap::new(),
            due_now: 0,
            next_due: None,
            expire: 0,
            never: 0,
        }
    }

    /// Counts one recipient as judged.
    pub fn add(&mut self, judged: Judged) {
        let at = match judged.due {
            Due::Now(_) | Due::Again(_) => {
                self.due_now += 1;
                self.at
            }
            Due::Waiting(Some(at)) => {
                self.next_due = Some(self.next_due.map_or(at, |next| next.min(at)));
                at
            }
            Due::Waiting(None) => {
                self.expire += 1;
                self.never += 1;
                return;
            }
            Due::Expire => {
                self.expire += 1;
                return;
            }
            Due::Later | Due::Done(_) => return,
        };
        *self.pending.entry((at, judged.zone)).or_default() += 1;
    }

    /// The schedule's figures, sending at `per_second` from `at` on, each recipient
    /// only inside their window and before `not_after`.
    pub fn finish(mut self, timing: &Timing<'_>, per_second: f64) -> SchedulePlan {
        let schedule = timing.schedule;
        let interval = SignedDuration::try_from_secs_f64(1.0 / per_second.max(1e-9))
            .unwrap_or(SignedDuration::MAX);
        let left = self.never > 0 || !self.pending.is_empty();
        let expires = schedule.not_after.filter(|after| left && *after > self.at);
        let wake = match (self.next_due, expires) {
            (Some(next), Some(after)) => Some(next.min(after)),
            (next, after) => next.or(after),
        };
        let mut cursor = self.at;
        let mut last: Option<Timestamp> = None;
        while let Some(((ready, zone), count)) = self.pending.pop_first() {
            let tz = &timing.known[usize::from(zone)];
            let start = cursor.max(ready);
            let (until, wait) = match schedule.moment(tz, start) {
                Moment::Open { until } => (until, None),
                Moment::Opens(at) => (None, Some(at)),
                Moment::Never | Moment::Expired => {
                    self.expire += count;
                    continue;
                }
            };
            if let Some(at) = wait {
                *self.pending.entry((at, zone)).or_default() += count;
                continue;
            }
            // How many fit before the window closes, one per interval from `start`.
            let room = until.map_or(u64::MAX, |until| {
                let seconds = until.duration_since(start).as_secs_f64();
                // Saturating: a fit beyond u64 is no limit.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let room = (seconds * per_second).ceil().max(1.0) as u64;
                room
            });
            let sent = count.min(room);
            let took = interval.checked_mul(i32::try_from(sent).unwrap_or(i32::MAX));
            cursor = took
                .and_then(|took| start.checked_add(took).ok())
                .unwrap_or(Timestamp::MAX);
            last = Some(cursor);
            if sent < count {
                let left = count - sent;
                match schedule.moment(tz, cursor) {
                    Moment::Opens(at) => *self.pending.entry((at, zone)).or_default() += left,
                    Moment::Open { .. } => *self.pending.entry((cursor, zone)).or_default() += left,
                    Moment::Never | Moment::Expired => self.expire += left,
                }
            }
        }
        SchedulePlan {
            at: crate::clock::format(self.at),
            due_now: self.due_now,
            next_due: self.next_due.map(crate::clock::format),
            ends: last.map(crate::clock::format),
            expire: self.expire,
            wake,
            next_due_at: self.next_due,
        }
    }
}

//! `spec.schedule` as the rest of herald reads it: instants, a window of days and hours in
//! local time, zones from the tz database built into herald; and the arithmetic of
//! windows, which validation (can anybody ever be sent?) and the plan (who is due now?)
//! share.
//!
//! # What a window means
//! A recipient may be sent at an instant when the clock on their wall reads a day in
//! `days` and a time from `from` up to (not including) `to`. With `to` earlier than
//! `from`, the window crosses midnight: it opens at `from` on a day in `days` and closes
//! at `to` the next day. The clock is the recipient's zone's at that instant, daylight
//! saving time included, so on the days clocks change:
//! - a local time that does not exist (clocks jump forward) is never on anyone's wall: a
//!   window whose `from` falls in the gap opens at the jump; one that lies wholly in it
//!   does not open that day;
//! - a local time that exists twice (clocks go back) is in the window both times: a
//!   window that closes inside the doubled hour reopens when clocks go back, and closes
//!   when the wall reads `to` the second time.
//!
//! Zones come from the tz database compiled into herald (jiff's bundled copy), never
//! from the machine's `/usr/share/zoneinfo`: the same answer on every machine.

use jiff::civil::{DateTime, Time};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{Span, Timestamp};

use super::diagnostic::Location;

/// When a campaign may send.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Nothing is sent earlier.
    pub not_before: Option<Timestamp>,
    /// Nothing is sent at or after it; whoever is left then is expired.
    pub not_after: Option<Timestamp>,
    pub window: Option<Window>,
    /// The window's zone for recipients without one of their own.
    pub timezone: TimeZone,
    /// The audience column holding each recipient's zone name.
    pub timezone_field: Option<String>,
    /// Where `spec.schedule` is written.
    pub at: Location,
}

/// Days and hours in local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first: the days a window opens on.
    pub days: [bool; 7],
    pub from: Time,
    pub to: Time,
}

/// A due recipient's window: open until `until`, then next open at `reopens` (`None`:
/// not before `not_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub until: Timestamp,
    pub reopens: Option<Timestamp>,
}

/// Where a recipient stands under a schedule at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Inside: they may be sent until `until` (`None`: for ever).
    Open { until: Option<Timestamp> },
    /// Not yet: their window opens then (before `not_after`).
    Opens(Timestamp),
    /// No window of theirs opens before `not_after`: they will expire.
    Never,
    /// `not_after` has passed.
    Expired,
}

/// How far ahead a window is looked for: two weeks hold every weekday twice, whatever
/// the clocks do.
const LOOK_AHEAD_DAYS: i64 = 16;

impl Schedule {
    /// Where a recipient in `zone` stands at `at`.
    pub fn moment(&self, zone: &TimeZone, at: Timestamp) -> Moment {
        if self.not_after.is_some_and(|after| at >= after) {
            return Moment::Expired;
        }
        let from = self.not_before.map_or(at, |before| before.max(at));
        let open = match &self.window {
            None => Some(from),
            Some(window) => window.next_open(zone, from),
        };
        let Some(open) = open.filter(|open| self.not_after.is_none_or(|after| *open < after))
        else {
            return Moment::Never;
        };
        if open > at {
            return Moment::Opens(open);
        }
        let closes = self.window.as_ref().map(|w| w.close(zone, at));
        let until = match (closes, self.not_after) {
            (Some(closes), Some(after)) => Some(closes.min(after)),
            (closes, after) => closes.or(after),
        };
        Moment::Open { until }
    }

    /// The slot of a recipient in `zone` for whom it is open until `until`.
    pub fn slot(&self, zone: &TimeZone, until: Timestamp) -> Slot {
        let reopens = match self.moment(zone, until) {
            Moment::Opens(at) => Some(at),
            Moment::Open { .. } => Some(until),
            Moment::Never | Moment::Expired => None,
        };
        Slot { until, reopens }
    }

    /// Whether some recipient, in some zone, could be sent: a window opens between
    /// `not_before` and `not_after` in the default zone, or (with `timezone_field`) in any
    /// zone on Earth, whose offsets run from -12:00 to +14:00.
    pub fn can_send(&self) -> bool {
        let Some(window) = &self.window else {
            return true;
        };
        if !window.days.contains(&true) {
            return false;
        }
        let (Some(before), Some(after)) = (self.not_before, self.not_after) else {
            return true;
        };
        let opens = |zone: &TimeZone| window.next_open(zone, before).is_some_and(|o| o < after);
        if opens(&self.timezone) {
            return true;
        }
        self.timezone_field.is_some()
            && (-48..=56)
                .filter_map(|quarters| Offset::from_seconds(quarters * 900).ok())
                .any(|offset| opens(&TimeZone::fixed(offset)))
    }
}

impl Window {
    /// Whether the wall clock in `zone` at `at` reads a time inside the window.
    pub fn contains(&self, zone: &TimeZone, at: Timestamp) -> bool {
        let local = zone.to_datetime(at);
        let time = local.time();
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
        let yesterday = (day + 6) % 7;
        if self.from < self.to {
            self.days[day] && self.from <= time && time < self.to
        } else {
            (self.days[day] && time >= self.from) || (self.days[yesterday] && time < self.to)
        }
    }

    /// The first instant at or after `at` inside the window, if one comes within two
    /// weeks.
    pub fn next_open(&self, zone: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        if self.contains(zone, at) {
            return Some(at);
        }
        // The window is entered when the wall reads `from`, or when the clocks change.
        candidates(zone, at, self.from)
            .filter(|t| self.contains(zone, *t))
            .min()
    }

    /// The first instant after `at` outside the window (`at` inside it).
    pub fn close(&self, zone: &TimeZone, at: Timestamp) -> Timestamp {
        // The window is left when the wall reads `to`, or when the clocks change.
        candidates(zone, at, self.to)
            .filter(|t| !self.contains(zone, *t))
            .min()
            .unwrap_or_else(|| ahead(at))
    }
}

/// The instants after `at`, within the look-ahead, when the wall in `zone` reads
/// `time` (both, when it reads it twice), and when the zone's clocks change.
fn candidates(zone: &TimeZone, at: Timestamp, time: Time) -> impl Iterator<Item = Timestamp> {
    let end = ahead(at);
    let first = zone.to_datetime(at).date();
    let mut found = Vec::new();
    for day in -1..=LOOK_AHEAD_DAYS {
        let Ok(date) = first.checked_add(Span::new().days(day)) else {
            continue;
        };
        found.extend(instants(zone, date.to_datetime(time)));
    }
    found.extend(
        zone.following(at)
            .map(|transition| transition.timestamp())
            .take_while(|t| *t <= end),
    );
    found.into_iter().filter(move |t| *t > at && *t <= end)
}

/// The end of the look-ahead from `at`.
fn ahead(at: Timestamp) -> Timestamp {
    at.saturating_add(jiff::SignedDuration::from_hours(LOOK_AHEAD_DAYS * 24))
        .unwrap_or(Timestamp::MAX)
}

/// Every instant at which the wall in `zone` reads `local`: none in a gap, two in a fold.
fn instants(zone: &TimeZone, local: DateTime) -> Vec<Timestamp> {
    let at = |offset: Offset| offset.to_timestamp(local).ok();
    match zone.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => at(offset).into_iter().collect(),
        AmbiguousOffset::Gap { .. } => Vec::new(),
        AmbiguousOffset::Fold { before, after } => {
            [at(before), at(after)].into_iter().flatten().collect()
        }
    }
}

/// The zone an IANA name stands for, from the bundled database.
pub fn zone(name: &str) -> Option<TimeZone> {
    jiff::tz::db().get(name.trim()).ok()
}

/// The zone names the bundled database knows, for suggestions.
pub fn zone_names() -> Vec<String> {
    jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_owned())
        .collect()
}

/// An RFC 3339 time with its offset (`Z` included); `None` for anything else.
pub fn instant(value: &str) -> Option<Timestamp> {
    let value = value.trim();
    // A date and time without an offset names no instant; jiff would refuse it too, but
    // say it here, where the rule is.
    let has_offset = value.ends_with(['Z', 'z'])
        || value
            .get(value.len().saturating_sub(6)..)
            .is_some_and(|tail| tail.starts_with(['+', '-']) && tail.as_bytes()[3] == b':');
    if !has_offset || value.contains('[') {
        return None;
    }
    value.parse().ok()
}

/// `HH:MM`, 00:00 to 23:59.
pub fn time_of_day(value: &str) -> Option<Time> {
    let bytes = value.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digits = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| i8::try_from((a - b'0') * 10 + (b - b'0')).ok())?
    };
    let (hour, minute) = (digits(bytes[0], bytes[1])?, digits(bytes[3], bytes[4])?);
    Time::new(hour, minute, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(value: &str) -> Timestamp {
        value.parse().unwrap()
    }

    fn weekdays(from: &str, to: &str) -> Window {
        Window {
            days: [true, true, true, true, true, false, false],
            from: time_of_day(from).unwrap(),
            to: time_of_day(to).unwrap(),
        }
    }

    fn zone(name: &str) -> TimeZone {
        super::zone(name).unwrap()
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(time_of_day("09:00"), Some(Time::new(9, 0, 0, 0).unwrap()));
        assert_eq!(time_of_day("23:59"), Some(Time::new(23, 59, 0, 0).unwrap()));
        for bad in ["9:00", "24:00", "09:60", "09:00:00", "0900", "", "ab:cd"] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_need_an_offset() {
        assert_eq!(
            instant("2026-12-08T09:00:00+01:00"),
            Some(t("2026-12-08T08:00:00Z"))
        );
        assert_eq!(
            instant("2026-12-08T08:00:00Z"),
            Some(t("2026-12-08T08:00:00Z"))
        );
        for bad in [
            "2026-12-08T09:00:00",
            "2026-12-08",
            "tomorrow",
            "2026-12-08T09:00:00+01:00[Europe/Berlin]",
        ] {
            assert_eq!(instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_bundled_database_knows_the_zones_and_not_made_up_ones() {
        for name in ["Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"] {
            assert!(super::zone(name).is_some(), "{name}");
        }
        assert!(super::zone("Mars/Olympus_Mons").is_none());
    }

    /// Europe moves its clocks on 29 March 2026, North America on 8 March: a window of
    /// 09:00 local follows each zone's own change, so its UTC opening moves on each one's
    /// own date.
    #[test]
    fn a_window_follows_each_zones_own_daylight_saving_change() {
        let window = weekdays("09:00", "17:00");
        let opens = |name: &str, at: &str| window.next_open(&zone(name), t(at)).unwrap();
        // Berlin: CET (+01) before, CEST (+02) after the last Sunday of March.
        assert_eq!(
            opens("Europe/Berlin", "2026-03-27T17:00:00Z"),
            t("2026-03-30T07:00:00Z")
        );
        assert_eq!(
            opens("Europe/Berlin", "2026-03-26T17:00:00Z"),
            t("2026-03-27T08:00:00Z")
        );
        // New York: EST (-05) before, EDT (-04) after the second Sunday of March.
        assert_eq!(
            opens("America/New_York", "2026-03-06T23:00:00Z"),
            t("2026-03-09T13:00:00Z")
        );
        assert_eq!(
            opens("America/New_York", "2026-03-05T23:00:00Z"),
            t("2026-03-06T14:00:00Z")
        );
        // Tokyo has no daylight saving time.
        assert_eq!(
            opens("Asia/Tokyo", "2026-03-27T09:00:00Z"),
            t("2026-03-30T00:00:00Z")
        );
        // Closing follows the same clocks.
        assert_eq!(
            window.close(&zone("Europe/Berlin"), t("2026-03-30T07:00:00Z")),
            t("2026-03-30T15:00:00Z")
        );
    }

    /// 29 March 2026 in Berlin: the wall goes from 01:59:59 to 03:00. A window from 02:30
    /// opens at the jump; one inside the gap does not open that day.
    #[test]
    fn a_local_time_that_does_not_exist_opens_the_window_at_the_jump() {
        let every_day = |from: &str, to: &str| Window {
            days: [true; 7],
            from: time_of_day(from).unwrap(),
            to: time_of_day(to).unwrap(),
        };
        let berlin = zone("Europe/Berlin");
        let jump = t("2026-03-29T01:00:00Z");
        assert_eq!(
            every_day("02:30", "04:00").next_open(&berlin, t("2026-03-28T23:00:00Z")),
            Some(jump)
        );
        assert_eq!(
            every_day("02:10", "02:50").next_open(&berlin, t("2026-03-28T23:00:00Z")),
            Some(t("2026-03-30T00:10:00Z")),
            "the next day's 02:10, CEST"
        );
        // A window closing in the gap closes at the jump.
        assert_eq!(
            every_day("01:00", "02:30").close(&berlin, t("2026-03-29T00:30:00Z")),
            jump
        );
    }

    /// 25 October 2026 in Berlin: the wall goes from 02:59:59 CEST back to 02:00 CET. Both
    /// 02:xx are inside a window that holds them.
    #[test]
    fn a_local_time_that_exists_twice_is_inside_both_times() {
        let window = Window {
            days: [true; 7],
            from: time_of_day("02:15").unwrap(),
            to: time_of_day("02:45").unwrap(),
        };
        let berlin = zone("Europe/Berlin");
        let first = t("2026-10-25T00:15:00Z");
        let second = t("2026-10-25T01:15:00Z");
        assert_eq!(
            window.next_open(&berlin, t("2026-10-24T22:00:00Z")),
            Some(first)
        );
        assert_eq!(window.close(&berlin, first), t("2026-10-25T00:45:00Z"));
        assert_eq!(
            window.next_open(&berlin, t("2026-10-25T00:45:00Z")),
            Some(second)
        );
        assert_eq!(window.close(&berlin, second), t("2026-10-25T01:45:00Z"));
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_opens() {
        let window = Window {
            days: [false, false, false, false, true, false, false],
            from: time_of_day("22:00").unwrap(),
            to: time_of_day("02:00").unwrap(),
        };
        let utc = TimeZone::UTC;
        // Friday 2026-03-06 22:00 to Saturday 02:00.
        assert!(window.contains(&utc, t("2026-03-07T01:59:00Z")));
        assert!(
            !window.contains(&utc, t("2026-03-06T01:00:00Z")),
            "Friday 01:00 is Thursday's"
        );
        assert_eq!(
            window.next_open(&utc, t("2026-03-05T12:00:00Z")),
            Some(t("2026-03-06T22:00:00Z"))
        );
        assert_eq!(
            window.close(&utc, t("2026-03-06T23:00:00Z")),
            t("2026-03-07T02:00:00Z")
        );
    }

    #[test]
    fn moments_under_not_before_and_not_after() {
        let schedule = Schedule {
            not_before: Some(t("2026-03-02T00:00:00Z")),
            not_after: Some(t("2026-03-03T12:00:00Z")),
            window: Some(weekdays("09:00", "17:00")),
            timezone: TimeZone::UTC,
            timezone_field: None,
            at: Location {
                file: "x.yaml".into(),
                line: 1,
                column: 1,
            },
        };
        let utc = TimeZone::UTC;
        let tokyo = zone("Asia/Tokyo");
        assert_eq!(
            schedule.moment(&utc, t("2026-02-27T10:00:00Z")),
            Moment::Opens(t("2026-03-02T09:00:00Z"))
        );
        assert_eq!(
            schedule.moment(&utc, t("2026-03-03T10:00:00Z")),
            Moment::Open {
                until: Some(t("2026-03-03T12:00:00Z"))
            }
        );
        assert_eq!(
            schedule.moment(&utc, t("2026-03-02T10:00:00Z")),
            Moment::Open {
                until: Some(t("2026-03-02T17:00:00Z"))
            }
        );
        // Tokyo's Tuesday window (00:00 to 08:00 UTC) opens before not_after; nothing after.
        assert_eq!(
            schedule.moment(&tokyo, t("2026-03-03T08:00:00Z")),
            Moment::Never
        );
        assert_eq!(
            schedule.moment(&utc, t("2026-03-03T12:00:00Z")),
            Moment::Expired
        );
        assert!(schedule.can_send());
        let weekend = Schedule {
            not_before: Some(t("2026-03-07T00:00:00Z")),
            not_after: Some(t("2026-03-08T12:00:00Z")),
            ..schedule.clone()
        };
        assert!(!weekend.can_send(), "a weekend: no weekday window anywhere");
        let short = Schedule {
            not_before: Some(t("2026-03-02T20:00:00Z")),
            not_after: Some(t("2026-03-02T21:00:00Z")),
            ..schedule.clone()
        };
        assert!(!short.can_send(), "after hours in UTC");
        let anywhere = Schedule {
            timezone_field: Some("tz".into()),
            ..short
        };
        assert!(anywhere.can_send(), "09:00 somewhere east");
    }
}

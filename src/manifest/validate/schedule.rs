//! The rules of `spec.schedule`: instants with offsets in order, a window of real times
//! that is not empty, zones the bundled database knows, and somebody who could be sent.

use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::{CampaignDoc, ScheduleSpec};
use crate::manifest::schedule::{self, Schedule, Window};
use crate::manifest::source::Loaded;

/// The typed schedule, or every problem with it (the whole-schedule rules only once each
/// value is right).
pub fn typed(
    loaded: &Loaded<CampaignDoc>,
    spec: &ScheduleSpec,
) -> Result<Schedule, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let instant = |key: &str, value: &Option<String>, out: &mut Vec<Diagnostic>| {
        let value = value.as_ref()?;
        let parsed = schedule::instant(value);
        if parsed.is_none() {
            let problem = Problem::ScheduleInstant {
                value: value.clone(),
            };
            out.push(loaded.at_value(key, problem));
        }
        parsed
    };
    let not_before = instant("spec.schedule.not_before", &spec.not_before, &mut out);
    let not_after = instant("spec.schedule.not_after", &spec.not_after, &mut out);
    if let (Some(before), Some(after)) = (not_before, not_after) {
        if after <= before {
            let problem = Problem::ScheduleOrder {
                value: spec.not_after.clone().unwrap_or_default(),
                not_before: spec.not_before.clone().unwrap_or_default(),
            };
            out.push(loaded.at_value("spec.schedule.not_after", problem));
        }
    }
    let window = spec.window.as_ref().and_then(|window| {
        let time = |key: &str, value: &str, out: &mut Vec<Diagnostic>| {
            let parsed = schedule::time_of_day(value);
            if parsed.is_none() {
                let problem = Problem::WindowTime {
                    value: value.to_owned(),
                };
                out.push(loaded.at_value(key, problem));
            }
            parsed
        };
        let from = time("spec.schedule.window.from", &window.from, &mut out);
        let to = time("spec.schedule.window.to", &window.to, &mut out);
        let mut days = [window.days.is_none(); 7];
        for day in window.days.iter().flatten() {
            days[day.index()] = true;
        }
        if !days.contains(&true) {
            out.push(loaded.at_value("spec.schedule.window.days", Problem::WindowNoDays));
        }
        let (from, to) = (from?, to?);
        if from == to {
            let problem = Problem::WindowEmpty {
                value: window.from.clone(),
            };
            out.push(loaded.at_value("spec.schedule.window.to", problem));
        }
        Some(Window { days, from, to })
    });
    let name = spec.timezone.as_deref().unwrap_or("UTC");
    let timezone = schedule::zone(name);
    if timezone.is_none() {
        out.push(loaded.at_value("spec.schedule.timezone", zone_unknown(name)));
    }
    if !out.is_empty() {
        return Err(out);
    }
    let schedule = Schedule {
        not_before,
        not_after,
        window,
        timezone: timezone.unwrap_or(jiff::tz::TimeZone::UTC),
        timezone_field: spec.timezone_field.clone(),
        at: crate::manifest::Location::new(
            loaded.file.clone(),
            loaded.index.value("spec.schedule"),
        ),
    };
    if !schedule.can_send() {
        let zones = if schedule.timezone_field.is_some() {
            "in any time zone".to_owned()
        } else {
            format!("in `{name}`")
        };
        return Err(vec![loaded.at_value(
            "spec.schedule.window",
            Problem::ScheduleNeverOpens { zones },
        )]);
    }
    Ok(schedule)
}

/// An unknown zone name, with the closest known one when there is one.
pub fn zone_unknown(name: &str) -> Problem {
    let names = schedule::zone_names();
    let near = crate::text::closest(name, names.iter().map(String::as_str))
        .map(|near| format!(" (did you mean `{near}`?)"))
        .unwrap_or_default();
    Problem::ZoneUnknown {
        value: name.to_owned(),
        near,
    }
}

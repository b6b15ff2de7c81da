//! A declared rate, checked once: messages per second, and how it was written.

use std::fmt;
use std::num::NonZeroU32;

use super::diagnostic::Problem;
use super::model::RateSpec;

/// The slowest rate herald takes: one message an hour.
pub const SLOWEST: f64 = 1.0 / 3600.0;
/// The fastest rate herald takes: past this, no rate limiter can tell the difference.
pub const FASTEST: f64 = 1e9;

/// A rate in messages per second, between `SLOWEST` and `FASTEST`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    per_second: f64,
    /// As declared: `50/s`, `600/min`, `1000/h`.
    text: String,
}

impl Rate {
    /// The rate `spec` declares, or what is wrong with it and under which key.
    pub fn parse(spec: &RateSpec) -> Result<Self, (Option<&'static str>, Problem)> {
        let set: Vec<(&'static str, &'static str, f64, f64)> = [
            ("per_second", "s", spec.per_second, 1.0),
            ("per_minute", "min", spec.per_minute, 60.0),
            ("per_hour", "h", spec.per_hour, 3600.0),
        ]
        .into_iter()
        .filter_map(|(field, unit, value, seconds)| value.map(|v| (field, unit, v, seconds)))
        .collect();
        match set.as_slice() {
            [] => Err((None, Problem::RateEmpty)),
            [(field, unit, value, seconds)] => {
                let per_second = value / seconds;
                if !(value.is_finite() && *value > 0.0) {
                    return Err((Some(field), Problem::RateNotPositive { value: *value }));
                }
                if !(SLOWEST..=FASTEST).contains(&per_second) {
                    return Err((Some(field), Problem::RateOutOfRange { value: *value }));
                }
                Ok(Self {
                    per_second,
                    text: format!("{value}/{unit}"),
                })
            }
            many => {
                let found: Vec<&str> = many.iter().map(|(f, ..)| *f).collect();
                let found = crate::text::List::and_ticked(&found).to_string();
                Err((None, Problem::RateAmbiguous { found }))
            }
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// One shard's share of this rate among `shards`: the rate divided by `shards`, not
    /// rounded (50/s over 4 shards is 12.5/s each), so that together they never pass it.
    #[must_use]
    pub fn shared(&self, shards: NonZeroU32) -> Self {
        if shards.get() == 1 {
            return self.clone();
        }
        Self {
            per_second: self.per_second / f64::from(shards.get()),
            text: format!("{} over {shards} shards", self.text),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: Option<f64>, m: Option<f64>, h: Option<f64>) -> Result<Rate, String> {
        Rate::parse(&RateSpec {
            per_second: s,
            per_minute: m,
            per_hour: h,
        })
        .map_err(|(_, problem)| problem.to_string())
    }

    #[test]
    fn a_shard_gets_its_share_unrounded() {
        let fifty = rate(Some(50.0), None, None).unwrap();
        let share = fifty.shared(NonZeroU32::new(4).unwrap());
        assert!((share.per_second() - 12.5).abs() < 1e-12);
        assert_eq!(share.to_string(), "50/s over 4 shards");
        assert_eq!(fifty.shared(NonZeroU32::MIN), fifty);
        let hourly = rate(None, None, Some(10.0)).unwrap();
        let third = hourly.shared(NonZeroU32::new(3).unwrap());
        assert!((third.per_second() * 3.0 - 10.0 / 3600.0).abs() < 1e-15);
    }

    #[test]
    fn rates_are_checked_once_and_said_as_declared() {
        let fifty = rate(Some(50.0), None, None).unwrap();
        assert!((fifty.per_second() - 50.0).abs() < 1e-9);
        assert_eq!(fifty.to_string(), "50/s");
        let hourly = rate(None, None, Some(1000.0)).unwrap();
        assert_eq!(hourly.to_string(), "1000/h");
        assert!((rate(None, Some(600.0), None).unwrap().per_second() - 10.0).abs() < 1e-9);
        assert_eq!(
            rate(Some(5e9), None, None).unwrap_err(),
            "`5000000000` is out of range: herald sends at most 1,000,000,000 per second and at least 1 per hour"
        );
        assert!(
            rate(None, None, Some(1e-300)).is_err(),
            "a rate governor would panic on"
        );
        assert!(rate(Some(f64::NAN), None, None).is_err());
        assert!(rate(Some(0.0), None, None).is_err());
        assert_eq!(
            rate(Some(1.0), Some(1.0), None).unwrap_err(),
            "declare exactly one of `per_second`, `per_minute` or `per_hour`, found `per_second` and `per_minute`"
        );
    }
}

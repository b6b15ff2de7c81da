//! How long a campaign takes, said the way a person would say it.

/// `about 10 h 25 m`, `about 3 m 20 s`, `about 2 d 4 h`, `under 1 s`.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        return "under 1 s".to_owned();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let text = if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} m")
    } else if minutes > 0 {
        format!("{minutes} m {secs} s")
    } else {
        format!("{secs} s")
    };
    format!("about {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incident_in_words() {
        // 1,875,000 recipients at 50/s: what the incident's team learnt only after starting.
        assert_eq!(human_duration(1_875_000.0 / 50.0), "about 10 h 25 m");
        assert_eq!(human_duration(200.0), "about 3 m 20 s");
        assert_eq!(human_duration(19.74), "about 20 s");
        assert_eq!(human_duration(0.2), "under 1 s");
        assert_eq!(human_duration(187_200.0), "about 2 d 4 h");
    }
}

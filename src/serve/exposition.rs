//! The two text formats `/metrics` speaks, and which one a scraper asked for.
//!
//! `prometheus-client` encodes OpenMetrics 1.0 only. Prometheus prefers that, but other
//! readers take the older Prometheus text format 0.0.4 (`promtool check metrics`, many
//! agents, `Accept: text/plain`), where OpenMetrics lines mean something else: a counter's
//! `# HELP` and `# TYPE` name the family without `_total`, so the `_total` samples look
//! undocumented (`herald_provider_calls_total no help text`), and `# EOF` and `# UNIT` do
//! not exist. So `/metrics` negotiates on `Accept`, q-values honoured, and converts the
//! OpenMetrics text to 0.0.4 line by line when that is what was asked for.
//!
//! # Caveats
//! The conversion knows the family types `prometheus-client` writes (counter, gauge,
//! histogram, info, unknown) and summaries; a `stateset` or `gaugehistogram` family would
//! pass through unchanged, which 0.0.4 readers reject.

/// A format `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0, as `prometheus-client` encodes it.
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The format the `Accept` header prefers: OpenMetrics when it is preferred (ties
    /// included, and without a header), the text format when that is preferred or when
    /// OpenMetrics is not accepted at all.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Self::OpenMetrics;
        };
        let openmetrics = quality(accept, "application", "openmetrics-text", "1.0.0");
        let text = quality(accept, "text", "plain", "0.0.4");
        if openmetrics > 0.0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The q-value `accept` gives `kind/sub` in `version`: that of the most specific media
/// range matching it (RFC 9110, 12.5.1), 0 when none does. A range naming another
/// `version` does not match; parameters other than `q` and `version` do not matter.
fn quality(accept: &str, kind: &str, sub: &str, version: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let Some((range_kind, range_sub)) = parts.next().and_then(|m| m.split_once('/')) else {
            continue;
        };
        let (range_kind, range_sub) = (range_kind.trim(), range_sub.trim());
        let mut q = 1.0;
        let mut versioned = false;
        let mut matches = true;
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => match value.parse::<f32>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => q = v,
                    _ => matches = false,
                },
                "version" => {
                    versioned = true;
                    matches &= value == version;
                }
                _ => {}
            }
        }
        let specificity = if range_kind == "*" && range_sub == "*" {
            0
        } else if range_kind.eq_ignore_ascii_case(kind) && range_sub == "*" {
            1
        } else if range_kind.eq_ignore_ascii_case(kind) && range_sub.eq_ignore_ascii_case(sub) {
            2 + u8::from(versioned)
        } else {
            continue;
        };
        if !matches {
            continue;
        }
        best = match best {
            Some((s, b)) if s > specificity || (s == specificity && b >= q) => Some((s, b)),
            _ => Some((specificity, q)),
        };
    }
    best.map_or(0.0, |(_, q)| q)
}

/// `openmetrics` (as `prometheus-client` encodes it) in the Prometheus text format 0.0.4.
pub fn to_text(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len());
    // The family the lines belong to, and its OpenMetrics type.
    let mut family: Option<(&str, &str)> = None;
    let types: Vec<(&str, &str)> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let type_of = |name: &str| {
        types
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("unknown", |(_, t)| *t)
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            text.push_str("# HELP ");
            text.push_str(&renamed(name, type_of(name)));
            text.push(' ');
            // OpenMetrics escapes `"` in help text; 0.0.4 escapes only `\` and newlines.
            text.push_str(&help.replace("\\\"", "\""));
            text.push('\n');
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family = Some((name, kind));
            let kind = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                other => other,
            };
            text.push_str("# TYPE ");
            text.push_str(&renamed(name, type_of(name)));
            text.push(' ');
            text.push_str(kind);
            text.push('\n');
        } else if line.starts_with('#') {
            text.push_str(line);
            text.push('\n');
        } else if let Some(sample) = sample(line, family) {
            text.push_str(&sample);
            text.push('\n');
        }
    }
    text
}

/// A family's name in 0.0.4, where HELP and TYPE name the sample a counter or an info
/// family writes, not the family.
fn renamed(name: &str, kind: &str) -> String {
    match kind {
        "counter" => format!("{name}_total"),
        "info" => format!("{name}_info"),
        _ => name.to_owned(),
    }
}

/// A sample line in 0.0.4: exemplar dropped, timestamp in milliseconds, and `None` for a
/// `_created` sample, which 0.0.4 does not have.
fn sample(line: &str, family: Option<(&str, &str)>) -> Option<String> {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..end];
    if let Some((family, kind)) = family
        && matches!(kind, "counter" | "histogram" | "summary")
        && name.strip_suffix("_created") == Some(family)
    {
        return None;
    }
    let labels_end = if line[end..].starts_with('{') {
        end + closing_brace(&line[end..])? + 1
    } else {
        end
    };
    let rest = &line[labels_end..];
    let rest = rest.split_once(" # ").map_or(rest, |(before, _)| before);
    let mut fields = rest.split_whitespace();
    let value = fields.next()?;
    let labelled = &line[..labels_end];
    Some(match fields.next().and_then(|t| t.parse::<f64>().ok()) {
        Some(seconds) => format!("{labelled} {value} {:.0}", seconds * 1000.0),
        None => format!("{labelled} {value}"),
    })
}

/// The index of the `}` closing the label set `labels` opens, quoted values skipped.
fn closing_brace(labels: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2 sends by default, and Prometheus 3.
    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    macro_rules! negotiates {
        ($($name:ident: $accept:expr => $format:ident,)*) => {$(
            #[test]
            fn $name() {
                let accept: Option<&str> = $accept;
                assert_eq!(Format::negotiate(accept), Format::$format, "{accept:?}");
            }
        )*};
    }

    negotiates! {
        no_header_is_openmetrics: None => OpenMetrics,
        an_empty_header_is_openmetrics: Some(" ") => OpenMetrics,
        anything_is_openmetrics: Some("*/*") => OpenMetrics,
        prometheus_2_gets_openmetrics: Some(PROMETHEUS_2) => OpenMetrics,
        prometheus_3_gets_openmetrics: Some(PROMETHEUS_3) => OpenMetrics,
        the_issue_s_example_gets_openmetrics: Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1") => OpenMetrics,
        text_0_0_4_alone_is_text: Some("text/plain;version=0.0.4") => Text,
        text_plain_alone_is_text: Some("text/plain") => Text,
        text_in_capitals_with_spaces_is_text: Some("Text/Plain ; Version=0.0.4") => Text,
        text_preferred_by_q_is_text: Some("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.3") => Text,
        text_preferred_by_wildcards_is_text: Some("text/*;q=0.9, application/*;q=0.8") => Text,
        openmetrics_refused_is_text: Some("application/openmetrics-text;q=0, */*") => Text,
        another_openmetrics_version_only_is_text: Some("application/openmetrics-text;version=0.0.1") => Text,
        neither_is_text: Some("application/json") => Text,
        the_most_specific_range_decides: Some("text/plain;version=0.0.4;q=0.1, text/plain;q=1, application/openmetrics-text;q=0.5") => OpenMetrics,
        a_malformed_q_ignores_its_range: Some("application/openmetrics-text;q=high, text/plain") => Text,
        a_tie_is_openmetrics: Some("text/plain;q=0.5, application/openmetrics-text;q=0.5") => OpenMetrics,
    }

    /// What `prometheus-client` 0.26 wrote for a running herald, and a family of each
    /// other kind it can write.
    const OPENMETRICS: &str = r#"# HELP herald_recipients Recipients of each campaign by state (sent, failed).
# TYPE herald_recipients gauge
herald_recipients{campaign="index-methodology-2019-11",state="sent"} 200
# HELP herald_provider_calls Provider calls by transport and outcome.
# TYPE herald_provider_calls counter
herald_provider_calls_total{transport="outbox",outcome="sent"} 4
herald_provider_calls_created{transport="outbox",outcome="sent"} 1700000000.5
# HELP herald_provider_call_duration_seconds How long provider calls take, by transport.
# TYPE herald_provider_call_duration_seconds histogram
# UNIT herald_provider_call_duration_seconds seconds
herald_provider_call_duration_seconds_sum{transport="outbox"} 0.107887106
herald_provider_call_duration_seconds_count{transport="outbox"} 4
herald_provider_call_duration_seconds_bucket{le="0.01",transport="outbox"} 0
herald_provider_call_duration_seconds_bucket{le="+Inf",transport="outbox"} 4
# HELP herald_build Which herald runs, \"quoted\" and \\ escaped.
# TYPE herald_build info
herald_build_info{version="0.1.0"} 1
# HELP herald_odd Labels holding } and # , an exemplar and a timestamp.
# TYPE herald_odd unknown
herald_odd{note="a } b # {c} \" d"} 1.5 1700000000.25 # {trace_id="x"} 1.0
herald_odd 2
# EOF
"#;

    #[test]
    fn openmetrics_becomes_text_0_0_4() {
        assert_eq!(
            to_text(OPENMETRICS),
            r#"# HELP herald_recipients Recipients of each campaign by state (sent, failed).
# TYPE herald_recipients gauge
herald_recipients{campaign="index-methodology-2019-11",state="sent"} 200
# HELP herald_provider_calls_total Provider calls by transport and outcome.
# TYPE herald_provider_calls_total counter
herald_provider_calls_total{transport="outbox",outcome="sent"} 4
# HELP herald_provider_call_duration_seconds How long provider calls take, by transport.
# TYPE herald_provider_call_duration_seconds histogram
herald_provider_call_duration_seconds_sum{transport="outbox"} 0.107887106
herald_provider_call_duration_seconds_count{transport="outbox"} 4
herald_provider_call_duration_seconds_bucket{le="0.01",transport="outbox"} 0
herald_provider_call_duration_seconds_bucket{le="+Inf",transport="outbox"} 4
# HELP herald_build_info Which herald runs, "quoted" and \\ escaped.
# TYPE herald_build_info gauge
herald_build_info{version="0.1.0"} 1
# HELP herald_odd Labels holding } and # , an exemplar and a timestamp.
# TYPE herald_odd untyped
herald_odd{note="a } b # {c} \" d"} 1.5 1700000000250
herald_odd 2
"#
        );
    }

    #[test]
    fn a_label_set_that_never_closes_drops_the_line() {
        assert_eq!(to_text("# TYPE x gauge\nx{a=\"b\" 1\n"), "# TYPE x gauge\n");
    }

    #[test]
    fn content_types_name_the_version() {
        assert_eq!(
            Format::Text.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }
}

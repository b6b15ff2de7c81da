//! Rules about single values that campaigns and transports share: names, senders,
//! single-line text, rates.

use crate::address;
use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::{Address, RateSpec};
use crate::manifest::rate::Rate;
use crate::manifest::source::Loaded;

pub fn name<T>(loaded: &Loaded<T>, name: &str, out: &mut Vec<Diagnostic>) {
    let valid = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        let problem = Problem::NameInvalid {
            name: name.to_owned(),
        };
        out.push(loaded.at_value("metadata.name", problem));
    }
}

pub fn sender<T>(loaded: &Loaded<T>, key: &str, value: &Address, out: &mut Vec<Diagnostic>) {
    let email_key = format!("{key}.email");
    if !address::is_valid(&value.email) {
        let problem = if has_line_break(&value.email) {
            line_break(&value.email)
        } else {
            Problem::AddressInvalid {
                value: value.email.clone(),
            }
        };
        out.push(loaded.at_value(&email_key, problem));
    }
    if let Some(display) = &value.name {
        single_line(loaded, &format!("{key}.name"), display, out);
    }
}

pub fn single_line<T>(loaded: &Loaded<T>, key: &str, value: &str, out: &mut Vec<Diagnostic>) {
    if has_line_break(value) {
        out.push(loaded.at_value(key, line_break(value)));
    }
}

fn has_line_break(value: &str) -> bool {
    value.contains(['\r', '\n'])
}

fn line_break(value: &str) -> Problem {
    Problem::LineBreak {
        value: format!("`{}`", value.escape_debug()),
    }
}

pub fn rate<T>(loaded: &Loaded<T>, key: &str, value: &RateSpec, out: &mut Vec<Diagnostic>) {
    match Rate::parse(value) {
        Ok(_) => {}
        Err((Some(field), problem)) => {
            out.push(loaded.at_value(&format!("{key}.{field}"), problem));
        }
        Err((None, problem)) => out.push(loaded.at_key(key, problem)),
    }
}

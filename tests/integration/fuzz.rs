//! Generated hostile input through plan and apply: audience rows and suppression lines full
//! of control characters, quotes, angle brackets, separators, template syntax and non-ASCII.
//! Whatever comes in, herald either refuses the run (exit 2, nothing sent) or writes
//! messages that each have one `To` with one address, no header line over 998 characters,
//! and exactly one URI in `List-Unsubscribe`; nobody suppressed is mailed; nothing panics.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::Test;

/// Pieces hostile text is made of.
const PIECES: &[&str] = &[
    "a",
    "Zoë",
    "李",
    "😀",
    " ",
    ",",
    ";",
    "\"",
    "'",
    "<",
    ">",
    "&",
    "%",
    "#",
    "?",
    "/",
    "\\",
    "{{",
    "}}",
    "{%",
    "@",
    "mailto:",
    "\t",
    "=",
    "x@example.com",
    "-hx1-",
    "%recipient.name%",
    "\u{200b}",
    "\u{2028}",
    "é",
];
/// Pieces that refuse a run when they reach a header or a body.
const CONTROL: &[&str] = &["\r\n", "\n", "\r", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}"];

fn hostile(control: bool) -> impl Strategy<Value = String> {
    let pieces = if control {
        prop::sample::select([PIECES, CONTROL].concat()).boxed()
    } else {
        prop::sample::select(PIECES.to_vec()).boxed()
    };
    prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

/// A row's address: mostly a valid, unique one; sometimes garbage or a variant of another.
fn address(i: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(format!("user{i}@example.com")),
        1 => Just(format!("USER{}@Example.com ", i / 2)),
        1 => hostile(false),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    rows: Vec<(String, String, String)>,
    suppress: Vec<String>,
}

/// About one case in seven has control characters in names, and one in ten a suppression
/// line that is not an address: those must be refused; the rest must be sent.
fn case() -> impl Strategy<Value = Case> {
    let control = prop::bool::weighted(0.15);
    let broken_list = prop::bool::weighted(0.1);
    (control, broken_list, 150usize..300).prop_flat_map(|(control, broken_list, n)| {
        let rows = (0..n)
            .map(|i| {
                (
                    address(i),
                    hostile(control),
                    prop::sample::select(vec!["en", "ja", "", "xx-YY", "<b>"]),
                )
                    .prop_map(|(a, n, l)| (a, n, l.to_owned()))
            })
            .collect::<Vec<_>>();
        let line = (0usize..300).prop_map(|i| format!("  User{i}@EXAMPLE.com"));
        let broken = if broken_list {
            hostile(true).prop_map(Some).boxed()
        } else {
            Just(None).boxed()
        };
        (rows, prop::collection::vec(line, 0..40), broken).prop_map(
            |(rows, mut suppress, broken)| {
                suppress.extend(broken);
                Case { rows, suppress }
            },
        )
    })
}

fn csv_field(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut audience = String::from("email,name,locale\n");
    for (email, name, locale) in &case.rows {
        let _ = writeln!(
            audience,
            "{},{},{}",
            csv_field(email),
            csv_field(name),
            csv_field(locale)
        );
    }
    let suppress = case.suppress.join("\n") + "\n";
    let workspace = Test::campaign()
        .file("campaigns/audiences/customers.csv", &audience)
        .file("campaigns/audiences/optout.txt", &suppress)
        .file("campaigns/locales/ja.yaml", "hello: \"こんにちは {name}\"\n")
        .edit(
            "campaigns/welcome.yaml",
            "suppress: [audiences/unsubscribed.csv]",
            "suppress: [audiences/optout.txt]\n    on_invalid: skip",
        )
        .edit(
            "campaigns/welcome.yaml",
            "  batch:\n",
            "  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}/{{ recipient.name }}\"}\n  batch:\n",
        )
        .edit("campaigns/welcome.yaml", "per_second: 50", "per_second: 100000")
        .workspace();
    let plan = workspace.run(["plan"]);
    let apply = workspace.run(["apply"]);
    for run in [&plan, &apply] {
        prop_assert!(!run.stderr.contains("panicked"), "a panic: {}", run.stderr);
    }
    let mails = workspace.outbox("welcome");
    match apply.code {
        0 => prop_assert_eq!(plan.code, 0, "plan and apply agree: {}", plan.stderr),
        2 => {
            prop_assert!(apply.stderr.starts_with("error: "), "{}", apply.stderr);
            prop_assert!(mails.is_empty(), "a refusal sends nothing");
            return Ok(());
        }
        other => prop_assert!(false, "exit {other}: {}", apply.stderr),
    }
    let suppressed: BTreeSet<String> = case
        .suppress
        .iter()
        .map(|l| l.trim().to_lowercase())
        .collect();
    let mut seen = BTreeSet::new();
    for mail in &mails {
        prop_assert_eq!(mail.to.len(), 1, "{}: one address in To", &mail.file);
        let to = mail.recipient().to_lowercase();
        prop_assert!(seen.insert(to.clone()), "{} twice", to);
        prop_assert!(!suppressed.contains(&to), "{} is suppressed", to);
        let headers = mail.raw.split("\r\n\r\n").next().unwrap_or_default();
        for line in headers.split("\r\n") {
            prop_assert!(
                line.len() <= 998,
                "{}: a header line of {}",
                &mail.file,
                line.len()
            );
        }
        let unsubscribe: Vec<&str> = headers
            .split("\r\n")
            .filter_map(|l| l.strip_prefix("List-Unsubscribe: "))
            .collect();
        prop_assert_eq!(unsubscribe.len(), 1, "{}", &mail.file);
        let value = unsubscribe[0];
        prop_assert!(
            value.starts_with("<https://example.com/u/")
                && value.ends_with('>')
                && value.matches('<').count() == 1
                && value.matches('>').count() == 1,
            "{}: {}",
            &mail.file,
            value
        );
    }
    Ok(())
}

#[test]
fn hostile_audiences_and_suppression_lists_never_break_a_message() {
    let _alone = crate::harness::exclusive();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| check(&case));
    if let Err(error) = result {
        panic!("{error}");
    }
}

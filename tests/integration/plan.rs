//! `herald plan`: exact counts on a crafted audience, and refusals before anything is sent.

use crate::harness::Test;

const WELCOME: &str = "campaigns/welcome.yaml";
const HTML: &str = "campaigns/templates/welcome.html.j2";
const AUDIENCE: &str = "campaigns/audiences/customers.csv";

/// Three catalogs (ko lacks `bye`), case-variant duplicates, a suppressed address, a row
/// without a locale.
pub fn multilingual() -> Test {
    Test::campaign()
        .file(
            HTML,
            "<p>{{ t('hello', name=recipient.name) }}</p>\n<p>{{ t('bye') }}</p>\n",
        )
        .file(
            "campaigns/templates/welcome.txt.j2",
            "{{ t('hello', name=recipient.name) }}\n{{ t('bye') }}\n",
        )
        .file(
            "campaigns/locales/en.yaml",
            "subject: Welcome\nhello: \"Hello {name}\"\nbye: Bye\n",
        )
        .file(
            "campaigns/locales/ja.yaml",
            "subject: ようこそ\nhello: \"こんにちは {name}\"\nbye: さようなら\n",
        )
        .file(
            "campaigns/locales/ko.yaml",
            "subject: 환영합니다\nhello: \"안녕하세요 {name}\"\n",
        )
        .file(
            AUDIENCE,
            "email,name,locale\n\
             ann@example.com,Ann,en\n\
             ken@example.com,Ken,ja\n\
             min@example.com,Min,ko\n\
             ANN@Example.com,Ann again,en\n\
             joon@example.com,Joon,ko\n\
             sue@example.com,<b>Sue</b>,\n\
             bob@example.com,Bob,en\n\
             yuki@example.com,Yuki,ja-JP\n \
             ken@EXAMPLE.com ,Ken again,ja\n",
        )
        .file(
            "campaigns/audiences/unsubscribed.csv",
            "email\nBob@Example.com\nnobody@example.com\n",
        )
}

#[test]
fn counts_every_bucket_exactly() {
    let run = multilingual()
        .args(["plan", "-o", "json"])
        .run()
        .code(0)
        .stderr("");
    let plan = &run.json()["campaigns"][0];
    assert_eq!(plan["name"], "welcome");
    assert_eq!(
        plan["audience"],
        serde_json::json!({"rows": 9, "unique": 7, "duplicates": 2, "invalid": 0, "suppressed": 1})
    );
    assert_eq!(plan["to_send"], 6);
    assert_eq!(plan["stage"], "full");
    assert_eq!(
        plan["locales"],
        serde_json::json!([
            {"locale": "en", "catalog": "en", "reached": "catalog", "recipients": 1, "fallbacks": 0, "fallback_keys": []},
            {"locale": "en", "catalog": "en", "reached": "empty", "recipients": 1, "fallbacks": 0, "fallback_keys": []},
            {"locale": "ja", "catalog": "ja", "reached": "catalog", "recipients": 1, "fallbacks": 0, "fallback_keys": []},
            {"locale": "ja-JP", "catalog": "ja", "reached": "catalog", "recipients": 1, "fallbacks": 0, "fallback_keys": []},
            {"locale": "ko", "catalog": "ko", "reached": "catalog", "recipients": 2, "fallbacks": 2, "fallback_keys": ["bye"]},
        ])
    );
    assert_eq!(
        plan["catalogs"],
        serde_json::json!([
            {"catalog": "en", "recipients": 2},
            {"catalog": "ja", "recipients": 2},
            {"catalog": "ko", "recipients": 2},
        ])
    );
    assert_eq!(
        plan["defaulted"],
        serde_json::json!({"catalog": "en", "recipients": 0, "share": 0.0, "no_catalog": 0, "unknown": 0})
    );
    assert_eq!(plan["unknown_locales"], serde_json::json!([]));
    assert_eq!(plan["fallback_recipients"], 2);
    assert_eq!(plan["provider_calls"], 1);
    assert_eq!(plan["duration"], "under 1 s");
    assert_eq!(plan["call_size"], 50, "one second's worth at 50/s");
}

#[test]
fn text_output_says_how_long_it_takes() {
    multilingual()
        .edit(WELCOME, "size: 100", "size: 4")
        .edit(WELCOME, "per_second: 50", "per_minute: 2")
        .args(["plan"])
        .run()
        .code(0)
        .stdout(
            "campaign welcome (revision 1, stage full, transport outbox)
  state     campaigns/.herald (none yet: apply creates it)
  audience  9 rows: 7 unique, 2 duplicates, 0 invalid, 1 suppressed
  suppress  campaigns/audiences/unsubscribed.csv: 1
  to send   6 in stage full
  locales
    en               2  en 1, empty 1
    ja               2  ja 1, ja-JP 1
    ko               2  1 key from fallback: bye
  fallbacks 2 recipients got at least one fallback string
  calls     6 provider calls of up to 1 recipient, up to 2 in flight
  duration  about 2 m 30 s at 2/min (the campaign's rate binds)
",
        );
}

#[test]
fn stages_select_seeds_then_a_stable_canary_then_everyone() {
    let staged = |stage: &str| {
        let seeds = "[qa@example.com, Ann@example.com, bob@example.com]";
        let rollout =
            format!("  stage: {stage}\n  rollout: {{seed: {seeds}, canary_percent: 50}}\n  rate:");
        let run = multilingual()
            .edit(WELCOME, "  rate:", &rollout)
            .args(["plan", "-o", "json"])
            .run()
            .code(0);
        run.json()["campaigns"][0]["to_send"].as_u64().unwrap()
    };
    // Seeds: qa (outside the audience) and ann (inside); bob is suppressed, so never sent.
    assert_eq!(staged("seed"), 2);
    let canary = staged("canary");
    assert!((2..=7).contains(&canary), "{canary}");
    assert_eq!(
        staged("canary"),
        canary,
        "the canary is the same people on every run"
    );
    // Everyone in the audience, plus the seed outside it.
    assert_eq!(staged("full"), 7);
}

#[test]
fn a_template_syntax_error_is_refused_with_its_location() {
    Test::campaign()
        .file(HTML, "<p>\n{{ t('hello' }}\n</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:2: syntax error: unexpected `}`, \
             expected `,`; nothing was sent\n",
        );
}

#[test]
fn an_undefined_variable_names_template_line_and_audience_row() {
    Test::campaign()
        .file(HTML, "<p>\n{{ recipient.nickname }}\n</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:2: undefined value: \
             `recipient.nickname` is undefined; the audience columns are `email`, `name` and `locale` (audience \
             row campaigns/audiences/customers.csv:2); nothing was sent\n",
        );
}

/// A misspelt column is named with the one it most likely meant, in a template and in a
/// value passed to `t()`.
#[test]
fn a_misspelt_column_is_named_with_the_nearest_one() {
    Test::campaign()
        .file(HTML, "<p>\n{{ recipient.nmae }}\n</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr("error: campaign `welcome`: campaigns/templates/welcome.html.j2:2: undefined value: \
            `recipient.nmae` is undefined (did you mean `recipient.name`?); the audience columns are \
            `email`, `name` and `locale` (audience row campaigns/audiences/customers.csv:2); nothing \
            was sent\n");
    Test::campaign()
        .file(HTML, "<p>{{ t('hello', name=recipient.nmae) }}</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr("error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: undefined value: \
            t(`hello`): the value passed as `name` is undefined: `recipient.nmae` is not a column \
            (did you mean `recipient.name`?); the audience columns are `email`, `name` and `locale` \
            (audience row campaigns/audiences/customers.csv:2); nothing was sent\n");
}

/// A value passed to `t()` that the row does not have is blamed as such, not as an
/// argument missing from the call.
#[test]
fn an_undefined_value_passed_to_t_is_named_with_the_columns() {
    Test::campaign()
        .file(HTML, "<p>{{ t('hello', name=recipient.nickname) }}</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: undefined value: \
             t(`hello`): the value passed as `name` is undefined: `recipient.nickname` is not a column; the \
             audience columns are `email`, `name` and `locale` (audience row campaigns/audiences/customers.csv:2); \
             nothing was sent\n",
        );
}

/// An argument left out of `t()` is blamed as missing, with how to pass it.
#[test]
fn an_argument_missing_from_t_says_how_to_pass_it() {
    Test::campaign()
        .file(HTML, "<p>{{ t('hello') }}</p>\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: invalid operation: \
             t(`hello`) needs `name`: pass t('hello', name=...) (audience row campaigns/audiences/customers.csv:2); \
             nothing was sent\n",
        );
}

#[test]
fn a_key_missing_from_the_default_catalog_is_refused() {
    Test::campaign()
        .file(HTML, "{{ t('farewell') }}\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: invalid operation: t(`farewell`): \
             no such key in the default catalog `campaigns/locales/en.yaml` (audience row \
             campaigns/audiences/customers.csv:2); nothing was sent\n",
        );
}

#[test]
fn a_missing_placeholder_argument_is_refused() {
    Test::campaign()
        .file(HTML, "{{ t('hello') }}\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: invalid operation: t(`hello`) \
             needs `name`: pass t('hello', name=...) (audience row campaigns/audiences/customers.csv:2); \
             nothing was sent\n",
        );
}

#[test]
fn one_broken_row_among_good_ones_refuses_the_run() {
    Test::campaign()
        .file(HTML, "{{ t('hello', name=recipient.name) }} {{ recipient.code | int * 2 }}\n")
        .file(AUDIENCE, "email,name,code\nann@example.com,Ann,1\nbea@example.com,Bea,2\ncid@example.com,Cid,x\n")
        .args(["plan"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: invalid operation: invalid float \
             literal (audience row campaigns/audiences/customers.csv:4); nothing was sent\n",
        );
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    Test::campaign()
        .file(
            HTML,
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
        )
        .args(["plan"])
        .run()
        .code(2)
        .stderr("error: campaign `welcome`: campaigns/templates/welcome.html.j2:1: engine ran out of fuel \
            (audience row campaigns/audiences/customers.csv:2); nothing was sent\n");
}

#[test]
fn invalid_addresses_are_refused_with_their_lines() {
    Test::campaign()
        .file(AUDIENCE, "email,name\nann@example.com,Ann\nnot-an-address,X\n,Nobody\nbea@example.com,Bea\n")
        .args(["plan"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "error: campaign `welcome`: campaigns/audiences/customers.csv:3: `not-an-address` is not a valid email address
campaigns/audiences/customers.csv:4: `` is not a valid email address
2 rows without a valid address in `campaigns/audiences/customers.csv`; fix them, or set `audience.on_invalid: skip`; nothing was sent
",
        );
}

#[test]
fn invalid_addresses_can_be_skipped_and_are_reported() {
    let run = Test::campaign()
        .file(
            AUDIENCE,
            "email,name\nann@example.com,Ann\nnot-an-address,X\nbea@example.com,Bea\n",
        )
        .edit(
            WELCOME,
            "suppress: [audiences/unsubscribed.csv]",
            "suppress: [audiences/unsubscribed.csv]\n    on_invalid: skip",
        )
        .args(["plan", "-o", "json"])
        .run()
        .code(0);
    let plan = &run.json()["campaigns"][0];
    assert_eq!(plan["audience"]["invalid"], 1);
    assert_eq!(
        plan["invalid_rows"],
        serde_json::json!([{"line": 3, "value": "not-an-address", "problem": "`not-an-address` is not a valid email address"}])
    );
    assert_eq!(plan["to_send"], 2);
}

#[test]
fn jsonl_audiences_plan_like_csv() {
    let run = Test::campaign()
        .file(
            "campaigns/audiences/customers.jsonl",
            "{\"email\": \"ann@example.com\", \"name\": \"Ann\"}\n{\"email\": \"ANN@example.com\", \"name\": \"A\"}\n",
        )
        .edit(WELCOME, "customers.csv", "customers.jsonl")
        .args(["plan", "-o", "json"])
        .run()
        .code(0);
    let plan = &run.json()["campaigns"][0];
    assert_eq!(plan["audience"]["unique"], 1);
    assert_eq!(plan["audience"]["duplicates"], 1);
}

#[test]
fn the_shipped_example_plans() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns");
    // A store of its own (never created by plan), not the one the README's main job
    // leaves in the checkout.
    let run = Test::new()
        .args(["plan", dir, "--state", "state", "-o", "json"])
        .run()
        .code(0);
    let plan = &run.json()["campaigns"][0];
    assert_eq!(
        plan["audience"],
        serde_json::json!({"rows": 1000, "unique": 997, "duplicates": 3, "invalid": 0, "suppressed": 10})
    );
    // 987 customers and the QA seed, at 50/s.
    assert_eq!(plan["to_send"], 988);
    assert_eq!(
        plan["duration"],
        "about 19 s at 50/s (the campaign's rate binds)"
    );
}

#[test]
fn an_unknown_campaign_is_refused() {
    Test::campaign()
        .args(["plan", "--campaign", "welcom"])
        .run()
        .code(2)
        .stderr("error: no campaign named `welcom`; defined: `welcome`\n");
}

//! `herald validate`: bad manifests are refused with exit code 2 and a message that names
//! file, line, column and key. Each test asserts the whole of what the user sees.

use crate::harness::{self, CAMPAIGN, Test};

const WELCOME: &str = "campaigns/welcome.yaml";
const ONE: &str = "error: 1 problem found in the manifests; nothing was sent\n";

/// `refused!(name, [from => to, ...], "expected diagnostics")`: edits the valid `welcome`
/// campaign and expects `herald validate` to refuse it with exactly these lines.
macro_rules! refused {
    ($name:ident, [$($from:expr => $to:expr),* $(,)?], $expected:expr $(,)?) => {
        #[test]
        fn $name() {
            Test::campaign()
                $(.edit(WELCOME, $from, $to))*
                .args(["validate"])
                .run()
                .code(2)
                .stdout("")
                .stderr(&format!("{}\n{ONE}", $expected));
        }
    };
}

#[test]
fn the_valid_campaign_passes() {
    Test::campaign()
        .args(["validate"])
        .run()
        .code(0)
        .stdout("campaigns: 1 campaign and 1 transport in 2 files, all valid\n")
        .stderr("");
}

#[test]
fn the_shipped_example_passes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns");
    Test::new()
        .args(["validate", dir])
        .run()
        .code(0)
        .stdout(&format!(
            "{dir}: 1 campaign and 1 transport in 2 files, all valid\n"
        ));
}

// Isolation: the rule herald exists for. Every way of not saying `per-recipient` is refused.

refused!(isolation_shared, ["isolation: per-recipient" => "isolation: shared"],
    "campaigns/welcome.yaml:19:16: spec.batch.isolation: `shared` is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_per_batch, ["isolation: per-recipient" => "isolation: per-batch"],
    "campaigns/welcome.yaml:19:16: spec.batch.isolation: `per-batch` is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_is_case_sensitive, ["isolation: per-recipient" => "isolation: Per-Recipient"],
    "campaigns/welcome.yaml:19:16: spec.batch.isolation: `Per-Recipient` is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_empty_string, ["isolation: per-recipient" => "isolation: \"\""],
    "campaigns/welcome.yaml:19:16: spec.batch.isolation: an empty value is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_boolean, ["isolation: per-recipient" => "isolation: true"],
    "campaigns/welcome.yaml:19:16: spec.batch.isolation: `true` is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_list, ["isolation: per-recipient" => "isolation: [per-recipient, shared]"],
    "campaigns/welcome.yaml:19:5: spec.batch.isolation: a list is refused: recipients who share an \
     envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
     addresses exactly one recipient");

refused!(isolation_missing, ["    isolation: per-recipient\n" => ""],
    "campaigns/welcome.yaml:17:3: spec.batch.isolation: missing: set `isolation: per-recipient`, so that \
     every envelope addresses exactly one recipient; herald never guesses here, because recipients who \
     share an envelope see each other's addresses");

refused!(isolation_null, ["isolation: per-recipient" => "isolation:"],
    "campaigns/welcome.yaml:19:5: spec.batch.isolation: missing: set `isolation: per-recipient`, so that \
     every envelope addresses exactly one recipient; herald never guesses here, because recipients who \
     share an envelope see each other's addresses");

#[test]
fn batch_missing_refuses_isolation_and_size() {
    Test::campaign()
        .edit(WELCOME, "  batch:\n    size: 100\n    isolation: per-recipient\n", "")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/welcome.yaml:5:1: spec.batch.isolation: missing: set `isolation: per-recipient`, so that \
             every envelope addresses exactly one recipient; herald never guesses here, because recipients who \
             share an envelope see each other's addresses\n\
             campaigns/welcome.yaml:5:1: spec.batch.size: missing: how many recipients one provider call \
             carries, from 1 to 1000\n\
             error: 2 problems found in the manifests; nothing was sent\n",
        );
}

// The rest of the format.

/// A misspelt `isolation` is an unknown key, and then isolation is missing: both are said.
#[test]
fn unknown_key() {
    Test::campaign()
        .edit(WELCOME, "    isolation: per-recipient", "    isolaton: per-recipient")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/welcome.yaml:17:3: spec.batch.isolation: missing: set `isolation: per-recipient`, so \
             that every envelope addresses exactly one recipient; herald never guesses here, because recipients \
             who share an envelope see each other's addresses\n\
             campaigns/welcome.yaml:19:5: spec.batch.isolaton: unknown key; did you mean `isolation`? (expected \
             `size` or `isolation`)\n\
             error: 2 problems found in the manifests; nothing was sent\n",
        );
}

/// A structural error (an unknown key, a bad enum value) does not hide the file's other
/// problems, and above all not a refused isolation; nor does it add problems of its own
/// (the key taken out is not reported missing again).
#[test]
fn a_structural_error_hides_no_other_problem() {
    Test::campaign()
        .edit(WELCOME, "    isolation: per-recipient", "    isolation: shared")
        .edit(WELCOME, "  rate: {per_second: 50}", "  rate: {per_second: 50}\n  stage: fast\n  colour: red")
        .edit(WELCOME, "{email: news@example.com, name: Example}", "{email: news@example, name: Example}")
        .edit(WELCOME, "    size: 100", "    size: many")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/welcome.yaml:7:17: spec.from.email: `news@example` is not a valid email address\n\
             campaigns/welcome.yaml:17:3: spec.stage: unknown variant `fast`, expected one of `seed`, `canary`, \
             `full`\n\
             campaigns/welcome.yaml:18:3: spec.colour: unknown key, expected one of `transport`, `from`, \
             `reply_to`, `template`, `locales`, `audience`, `rate`, `batch`, `unsubscribe`, `stage`, `rollout`, \
             `paused`, `halt`, `schedule`, `revision`, `allow_outside`, `shards`\n\
             campaigns/welcome.yaml:20:5: spec.batch.size: invalid type: string \"many\", expected u32\n\
             campaigns/welcome.yaml:21:16: spec.batch.isolation: `shared` is refused: recipients who share an \
             envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
             addresses exactly one recipient\n\
             error: 5 problems found in the manifests; nothing was sent\n",
        );
}

/// A campaign that cannot be read as one at all (a required key missing) is still judged
/// on its isolation, and a transport that cannot be read is not also called unknown.
#[test]
fn isolation_is_judged_even_when_nothing_else_can_be() {
    Test::campaign()
        .edit(WELCOME, "  from: {email: news@example.com, name: Example}\n", "")
        .edit(WELCOME, "    isolation: per-recipient", "    isolation: [per-recipient]")
        .edit("campaigns/transports.yaml", "type: outbox", "type: outbx")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/transports.yaml:4:8: spec.type: unknown variant `outbx`, expected one of `outbox`, \
             `sendgrid`, `mailgun`, `postmark`, `smtp`\n\
             campaigns/welcome.yaml:5:1: spec: missing field `from`\n\
             campaigns/welcome.yaml:18:5: spec.batch.isolation: a list is refused: recipients who share an \
             envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
             addresses exactly one recipient\n\
             error: 3 problems found in the manifests; nothing was sent\n",
        );
}

refused!(unknown_key_far_from_any, ["    isolation: per-recipient" => "    isolation: per-recipient\n    xyzzy: 1"],
    "campaigns/welcome.yaml:20:5: spec.batch.xyzzy: unknown key, expected `size` or `isolation`");

/// Structural problems (unknown keys, values of the wrong kind) do not hide each other:
/// every one in the file is reported in one run.
#[test]
fn every_structural_problem_of_a_file_is_reported() {
    const FILE: &str = "campaigns/welcome.yaml";
    Test::campaign()
        .edit(FILE, "    suppress:", "    supress:")
        .edit(FILE, "  rate: {per_second: 50}", "  rate: {per_second: 50}\n  stage: fast\n  pausd: false")
        .edit(FILE, "    size: 100", "    size: many")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/welcome.yaml:15:5: spec.audience.supress: unknown key; did you mean `suppress`? \
             (expected one of `file`, `email_field`, `suppress`, `on_invalid`)\n\
             campaigns/welcome.yaml:17:3: spec.stage: unknown variant `fast`, expected one of `seed`, `canary`, `full`\n\
             campaigns/welcome.yaml:18:3: spec.pausd: unknown key; did you mean `paused`? (expected one of \
             `transport`, `from`, `reply_to`, `template`, `locales`, `audience`, `rate`, `batch`, `unsubscribe`, \
             `stage`, `rollout`, `paused`, `halt`, `schedule`, `revision`, `allow_outside`, `shards`)\n\
             campaigns/welcome.yaml:20:5: spec.batch.size: invalid type: string \"many\", expected u32\n\
             error: 4 problems found in the manifests; nothing was sent\n",
        );
}

refused!(wrong_api_version, ["apiVersion: herald/v1" => "apiVersion: herald/v2"],
    "campaigns/welcome.yaml:1:13: apiVersion: expected `herald/v1`, found `herald/v2`");

refused!(unknown_kind, ["kind: Campaign" => "kind: Campagin"],
    "campaigns/welcome.yaml:2:7: kind: expected `Campaign` or `Transport`, found `Campagin`");

refused!(bad_name, ["name: welcome" => "name: Welcome_2019"],
    "campaigns/welcome.yaml:4:9: metadata.name: `Welcome_2019` is not a valid name: use 1 to 63 \
     characters from `a-z`, `0-9` and `-`");

refused!(rate_missing, ["  rate: {per_second: 50}\n" => ""],
    "campaigns/welcome.yaml:5:1: spec.rate: missing: declare a ceiling such as `rate: {per_second: 50}`");

refused!(rate_zero, ["per_second: 50" => "per_second: 0"],
    "campaigns/welcome.yaml:16:22: spec.rate.per_second: `0` must be a number greater than zero");

refused!(rate_two_units, ["per_second: 50" => "per_second: 50, per_hour: 1000"],
    "campaigns/welcome.yaml:16:3: spec.rate: declare exactly one of `per_second`, `per_minute` or \
     `per_hour`, found `per_second` and `per_hour`");

refused!(batch_larger_than_the_provider_takes, ["size: 100" => "size: 5000"],
    "campaigns/welcome.yaml:18:11: spec.batch.size: `5000` is out of range: transport `outbox` (outbox) \
     takes 1 to 1000 recipients per call");

refused!(batch_of_zero, ["size: 100" => "size: 0"],
    "campaigns/welcome.yaml:18:11: spec.batch.size: `0` is out of range: transport `outbox` (outbox) \
     takes 1 to 1000 recipients per call");

refused!(unknown_transport, ["transport: outbox" => "transport: sendgrid"],
    "campaigns/welcome.yaml:6:14: spec.transport: no transport named `sendgrid`; defined: `outbox`");

refused!(bad_from_address, ["email: news@example.com" => "email: news@example"],
    "campaigns/welcome.yaml:7:17: spec.from.email: `news@example` is not a valid email address");

refused!(line_break_in_sender_name, ["name: Example}" => "name: \"Example\\r\\nBcc: all@example.com\"}"],
    "campaigns/welcome.yaml:7:41: spec.from.name: `Example\\r\\nBcc: all@example.com` contains a line \
     break; header values must be a single line");

refused!(line_break_in_subject, ["subject: \"{{ t('subject') }}\"" => "subject: \"Hi\\nBcc: x@example.com\""],
    "campaigns/welcome.yaml:9:14: spec.template.subject: `Hi\\nBcc: x@example.com` contains a line \
     break; header values must be a single line");

refused!(missing_template_file, ["html: templates/welcome.html.j2" => "html: templates/welcom.html.j2"],
    "campaigns/welcome.yaml:10:11: spec.template.html: `templates/welcom.html.j2` not found (looked for \
     `campaigns/templates/welcom.html.j2`)");

refused!(missing_suppression_list, ["audiences/unsubscribed.csv" => "audiences/optout.csv"],
    "campaigns/welcome.yaml:15:16: spec.audience.suppress[0]: `audiences/optout.csv` not found (looked \
     for `campaigns/audiences/optout.csv`)");

refused!(no_body_template, ["    html: templates/welcome.html.j2\n    text: templates/welcome.txt.j2\n" => ""],
    "campaigns/welcome.yaml:8:3: spec.template: declare at least one of `html` and `text`");

refused!(seed_stage_without_seeds, ["  rate:" => "  stage: seed\n  rate:"],
    "campaigns/welcome.yaml:16:10: spec.stage: `stage: seed` needs at least one address in `rollout.seed`");

refused!(canary_percent_out_of_range, ["  rate:" => "  rollout: {canary_percent: 150}\n  rate:"],
    "campaigns/welcome.yaml:16:29: spec.rollout.canary_percent: `150` is out of range: expected more than \
     0 and at most 100");

refused!(bad_seed_address, ["  rate:" => "  rollout: {seed: [qa.example.com]}\n  rate:"],
    "campaigns/welcome.yaml:16:20: spec.rollout.seed[0]: `qa.example.com` is not a valid email address");

refused!(malformed_yaml, ["  batch:\n" => "  batch:\n   - size: 1\n"],
    "campaigns/welcome.yaml:19:9: invalid YAML: while parsing a block collection, did not find expected '-' indicator");

#[test]
fn duplicate_names_across_files() {
    Test::campaign()
        .file("campaigns/welcome-copy.yaml", CAMPAIGN)
        .args(["validate"])
        .run()
        .code(2)
        .stderr(&format!(
            "campaigns/welcome.yaml:4:9: metadata.name: campaign `welcome` is already defined at \
             campaigns/welcome-copy.yaml:4:9\n{ONE}"
        ));
}

#[test]
fn inline_secret_is_refused_and_never_echoed() {
    let run = Test::campaign()
        .file(
            "campaigns/sendgrid.yaml",
            "apiVersion: herald/v1\nkind: Transport\nmetadata: {name: sendgrid}\nspec:\n  type: sendgrid\n  \
             api_key: SG.very-secret-key\n",
        )
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/sendgrid.yaml:4:1: spec.api_key_env: missing: `sendgrid` transports need it\n\
             campaigns/sendgrid.yaml:6:3: spec.api_key: inline secrets are refused: put the secret in an \
             environment variable and name it with `api_key_env`\n\
             error: 2 problems found in the manifests; nothing was sent\n",
        );
    assert!(!run.stderr.contains("very-secret") && !run.stdout.contains("very-secret"));
}

#[test]
fn transport_settings_belong_to_their_type() {
    Test::campaign()
        .edit("campaigns/transports.yaml", "dir: ../outbox}", "dir: ../outbox, host: smtp.example.com, api_key_env: lower}")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/transports.yaml:4:38: spec.host: not a setting of `outbox` transports\n\
             campaigns/transports.yaml:4:62: spec.api_key_env: not a setting of `outbox` transports\n\
             campaigns/transports.yaml:4:75: spec.api_key_env: `lower` is not an environment variable name: \
             use `A-Z`, `0-9` and `_`\n\
             error: 3 problems found in the manifests; nothing was sent\n",
        );
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let run = Test::campaign()
        .edit(WELCOME, "isolation: per-recipient", "isolation: shared")
        .edit(WELCOME, "name: welcome", "name: Welcome")
        .edit(WELCOME, "per_second: 50", "per_second: -5")
        .edit(
            "campaigns/transports.yaml",
            "apiVersion: herald/v1",
            "apiVersion: v1",
        )
        .args(["validate"])
        .run()
        .code(2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stderr);
    assert!(lines[0].starts_with(
        "campaigns/transports.yaml:1:13: apiVersion: expected `herald/v1`, found `v1`"
    ));
    assert!(
        lines[1].starts_with(
            "campaigns/welcome.yaml:4:9: metadata.name: `Welcome` is not a valid name"
        )
    );
    assert!(
        lines[2].starts_with(
            "campaigns/welcome.yaml:6:14: spec.transport: no transport named `outbox`"
        )
    );
    assert!(
        lines[3].starts_with("campaigns/welcome.yaml:16:22: spec.rate.per_second: `-5` must be")
    );
    assert!(
        lines[4]
            .starts_with("campaigns/welcome.yaml:19:16: spec.batch.isolation: `shared` is refused")
    );
    assert_eq!(
        lines[5],
        "error: 5 problems found in the manifests; nothing was sent"
    );
}

#[test]
fn json_output_lists_problems_on_stdout() {
    let run = Test::campaign()
        .edit(WELCOME, "isolation: per-recipient", "isolation: shared")
        .args(["validate", "campaigns", "-o", "json"])
        .run()
        .code(2)
        .stderr("");
    let json = run.json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["error"], "1 problem found in the manifests");
    let problem = &json["problems"][0];
    assert_eq!(problem["file"], "campaigns/welcome.yaml");
    assert_eq!(problem["line"], 19);
    assert_eq!(problem["column"], 16);
    assert_eq!(problem["key"], "spec.batch.isolation");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .starts_with("`shared` is refused")
    );
}

#[test]
fn a_missing_path_is_refused() {
    Test::new()
        .args(["validate", "nowhere"])
        .run()
        .code(2)
        .stderr("error: `nowhere`: no such file or folder\n");
}

#[test]
fn a_folder_without_manifests_is_refused() {
    Test::new()
        .file("campaigns/readme.txt", "nothing here")
        .args(["validate"])
        .run()
        .code(2)
        .stderr("error: no `*.yaml` or `*.yml` manifests in `campaigns`\n");
}

#[test]
fn usage_errors_exit_2() {
    Test::new()
        .args(["validate", "--output", "xml"])
        .run()
        .code(2)
        .stderr(
            "error: invalid value 'xml' for '--output <OUTPUT>'\n  [possible values: text, \
            json]\n\nFor more information, try '--help'.\n",
        );
}

#[test]
fn templates_and_audiences_are_checked_too() {
    Test::campaign()
        .file("campaigns/templates/welcome.txt.j2", "{{ recipient.nickname }}\n")
        .args(["validate"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "error: campaign `welcome`: campaigns/templates/welcome.txt.j2:1: undefined value: `recipient.nickname` \
             is undefined; the audience columns are `email`, `name` and `locale` (audience row \
             campaigns/audiences/customers.csv:2); nothing was sent\n",
        );
}

#[test]
fn event_settings_belong_to_their_provider_and_a_topic_is_an_sns_arn() {
    Test::campaign()
        .file(
            "campaigns/transports.yaml",
            &format!(
                "{}---\n\
                 apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: postmark}}\n\
                 spec: {{type: postmark, server_token_env: PM_TOKEN, events: {{username_env: PM_HOOK_USER}}}}\n\
                 ---\n\
                 apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: ses}}\n\
                 spec: {{type: smtp, host: email-smtp.us-east-1.amazonaws.com, events: {{topic_arn: \"arn:aws:sns:us-east-1:1234:ses\"}}}}\n\
                 ---\n\
                 apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: sendgrid}}\n\
                 spec: {{type: sendgrid, api_key_env: SG_KEY, events: {{public_key_env: SG_EVENTS, password_env: lower}}}}\n",
                harness::TRANSPORTS
            ),
        )
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/transports.yaml:9:52: spec.events.password_env: missing: `postmark` transports need it\n\
             campaigns/transports.yaml:14:82: spec.events.topic_arn: `arn:aws:sns:us-east-1:1234:ses` is not \
             the ARN of an SNS topic, like `arn:aws:sns:us-east-1:123456789012:ses-feedback`\n\
             campaigns/transports.yaml:19:81: spec.events.password_env: not a setting of `sendgrid` transports\n\
             campaigns/transports.yaml:19:95: spec.events.password_env: `lower` is not an environment variable \
             name: use `A-Z`, `0-9` and `_`\n\
             error: 4 problems found in the manifests; nothing was sent\n",
        );
}

refused!(shards_zero, ["  rate: {per_second: 50}" => "  rate: {per_second: 50}\n  shards: 0"],
    "campaigns/welcome.yaml:17:11: spec.shards: `0` is out of range: expected 1 to 1,024 shards");

refused!(shards_too_many, ["  rate: {per_second: 50}" => "  rate: {per_second: 50}\n  shards: 5000"],
    "campaigns/welcome.yaml:17:11: spec.shards: `5000` is out of range: expected 1 to 1,024 shards");

//! Audiences and opt-out lists as people export them: a spreadsheet's CSV (UTF-8 byte
//! order mark, CRLF, `E-mail Address`, `First Name` and `Language` holding `Deutsch`,
//! `日本語`, `es-419`, `de_DE` or nothing), and a Mailchimp export of unsubscribes. Counts
//! are compared with the truth the test generated, lines with the file's own lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::harness::{Test, Workspace};

const CAMPAIGN: &str = "campaigns/notice.yaml";
const AUDIENCE: &str = "campaigns/audiences/export.csv";

/// Locale values as a spreadsheet holds them, and the catalog each should reach.
const VALUES: &[(&str, &str)] = &[
    ("Deutsch", "de"),
    ("日本語", "ja"),
    ("Español", "es"),
    ("de-AT", "de"),
    ("es-419", "es"),
    ("ES", "es"),
    ("de_DE", "de"),
    ("", "en"),
    ("es", "es"),
    ("de-at", "de"),
    ("ja", "ja"),
    ("Deutsch", "de"),
    ("Deutsch", "de"),
];

/// `rows` recipients cycling through `VALUES`, every fifth without a first name; with the
/// truth: each address's catalog, and each value's rows and first line.
struct Export {
    csv: String,
    catalog_of: BTreeMap<String, &'static str>,
    value_rows: BTreeMap<&'static str, (u64, u64)>,
}

fn export(rows: usize, line_end: &str, bom: bool) -> Export {
    let mut csv = String::new();
    if bom {
        csv.push('\u{feff}');
    }
    let _ = write!(csv, "E-mail Address,First Name,Language{line_end}");
    let mut catalog_of = BTreeMap::new();
    let mut value_rows: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for i in 0..rows {
        let (value, catalog) = VALUES[i % VALUES.len()];
        let name = if i % 5 == 4 {
            String::new()
        } else {
            format!("P{i}")
        };
        let address = format!("p{i:04}@example.com");
        let _ = write!(csv, "{address},{name},{value}{line_end}");
        catalog_of.insert(address, catalog);
        let line = i as u64 + 2;
        let entry = value_rows.entry(value).or_insert((0, line));
        entry.0 += 1;
    }
    Export {
        csv,
        catalog_of,
        value_rows,
    }
}

fn campaign(locales: &str) -> String {
    format!(
        "apiVersion: herald/v1
kind: Campaign
metadata: {{name: notice}}
spec:
  transport: outbox
  from: {{email: security@example.com}}
  template:
    subject: \"{{{{ t('subject') }}}}\"
    html: templates/notice.html.j2
    text: templates/notice.txt.j2
  locales: {locales}
  audience:
    file: audiences/export.csv
    email_field: E-mail Address
  rate: {{per_second: 100000}}
  batch: {{size: 100, isolation: per-recipient}}
---
apiVersion: herald/v1
kind: Transport
metadata: {{name: outbox}}
spec: {{type: outbox, dir: ../outbox}}
"
    )
}

const MAPPED: &str = "{default: en, catalog: locales, field: Language, map: {Deutsch: de, German: de, 日本語: ja, Español: es}}";

fn notice(export: &Export, locales: &str) -> Test {
    Test::new()
        .file(CAMPAIGN, &campaign(locales))
        .file(
            "campaigns/templates/notice.html.j2",
            "<p>{% if recipient['First Name'] %}{{ t('dear', name=recipient['First Name']) }}{% else %}{{ t('dear_customer') }}{% endif %}</p>\n<p><a href=\"https://example.com/security\">{{ t('more') }}</a></p>\n",
        )
        .file(
            "campaigns/templates/notice.txt.j2",
            "{% if recipient['First Name'] %}{{ t('dear', name=recipient['First Name']) }}{% else %}{{ t('dear_customer') }}{% endif %}\n",
        )
        .file(
            "campaigns/locales/en.yaml",
            "subject: Security notice\ndear: \"Dear {name},\"\ndear_customer: Dear customer,\nmore: Read more\n",
        )
        .file(
            "campaigns/locales/de.yaml",
            "subject: Sicherheitshinweis\ndear: \"Hallo {name},\"\ndear_customer: Liebe Kundin, lieber Kunde,\nmore: Mehr\n",
        )
        .file(
            "campaigns/locales/ja.yaml",
            "subject: セキュリティのお知らせ\ndear: \"{name} 様\"\ndear_customer: お客様\nmore: 詳細\n",
        )
        .file(
            "campaigns/locales/es.yaml",
            "subject: Aviso de seguridad\ndear: \"Hola {name}:\"\ndear_customer: \"Estimado cliente:\"\nmore: Más\n",
        )
        .file(AUDIENCE, &export.csv)
}

/// The subject each catalog's recipients get.
fn subject(catalog: &str) -> &'static str {
    match catalog {
        "de" => "Sicherheitshinweis",
        "ja" => "セキュリティのお知らせ",
        "es" => "Aviso de seguridad",
        _ => "Security notice",
    }
}

/// Line `n` of the file at `path` in `workspace`, as `sed -n 'Np'` prints it.
fn sed(workspace: &Workspace, path: &str, n: u64) -> String {
    let output = std::process::Command::new("sed")
        .args(["-n", &format!("{n}p"), path])
        .current_dir(workspace.path())
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn language_names_that_are_not_tags_are_refused_with_counts_and_a_line_each() {
    let export = export(300, "\r\n", true);
    let workspace = notice(&export, "{default: en, catalog: locales, field: Language}").workspace();
    let run = workspace.run(["plan"]).code(2);
    let (deutsch, deutsch_line) = export.value_rows["Deutsch"];
    let (japanese, japanese_line) = export.value_rows["日本語"];
    let (spanish, spanish_line) = export.value_rows["Español"];
    assert_eq!(
        run.stderr,
        format!(
            "error: campaign `notice`: campaigns/audiences/export.csv: {} rows have a `Language` that is neither a language tag nor in `locales.map`:\n  \
             Deutsch: {deutsch} rows, e.g. line {deutsch_line}\n  \
             日本語: {japanese} rows, e.g. line {japanese_line}\n  \
             Español: {spanish} rows, e.g. line {spanish_line}\n\
             map them to catalogs in `locales.map` (`{{Deutsch: de}}`), or set `locales.on_unknown: default` to send them in `en`; nothing was sent\n",
            deutsch + japanese + spanish
        )
    );
    for (value, line) in [
        ("Deutsch", deutsch_line),
        ("日本語", japanese_line),
        ("Español", spanish_line),
    ] {
        assert!(
            sed(&workspace, AUDIENCE, line).trim_end().ends_with(value),
            "line {line}"
        );
    }
    // validate refuses it too: "all valid" would have sent 21% in English.
    workspace.run(["validate"]).code(2);
    workspace.run(["apply"]).code(2);
    assert!(workspace.outbox("notice").is_empty());
}

#[test]
fn mapped_and_tagged_values_reach_their_catalogs_exactly_as_generated() {
    let export = export(300, "\r\n", true);
    let workspace = notice(&export, MAPPED).workspace();
    let plan = workspace.run(["plan", "-o", "json"]).code(0);
    assert_eq!(plan.stderr, "");
    let plan = &plan.json()["campaigns"][0];
    let mut truth: BTreeMap<&str, u64> = BTreeMap::new();
    for catalog in export.catalog_of.values() {
        *truth.entry(catalog).or_default() += 1;
    }
    let counted: BTreeMap<&str, u64> = plan["catalogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["catalog"].as_str().unwrap(),
                c["recipients"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, truth);
    assert_eq!(plan["defaulted"]["recipients"], 0);
    let reached = |locale: &str| -> (String, String) {
        let entry = plan["locales"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["locale"] == locale)
            .unwrap_or_else(|| panic!("{locale} in {}", plan["locales"]));
        (
            entry["catalog"].as_str().unwrap().to_owned(),
            entry["reached"].as_str().unwrap().to_owned(),
        )
    };
    let own = |catalog: &str| (catalog.to_owned(), "catalog".to_owned());
    // `ES` and `es` are one tag; `de_DE` is `de-DE`, `de-at` is `de-AT`.
    assert_eq!(reached("es"), own("es"));
    assert_eq!(reached("de-DE"), own("de"));
    assert_eq!(reached("de-AT"), own("de"));
    assert_eq!(reached("es-419"), own("es"));
    assert_eq!(reached("Deutsch"), ("de".to_owned(), "map".to_owned()));
    assert_eq!(reached("日本語"), ("ja".to_owned(), "map".to_owned()));
    assert!(
        plan["locales"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["locale"] != "ES" && l["locale"] != "de_DE")
    );

    workspace.run(["apply"]).code(0);
    let mails = workspace.outbox("notice");
    assert_eq!(mails.len(), export.catalog_of.len());
    for mail in &mails {
        let to = mail.recipient();
        assert_eq!(mail.subject, subject(export.catalog_of[to]), "{to}");
        assert!(
            mail.html.contains("href=\"https://example.com/security\""),
            "{}",
            mail.html
        );
    }
}

#[test]
fn plan_text_counts_per_catalog_with_the_values_that_chose_it() {
    let export = export(26, "\n", false);
    notice(&export, MAPPED).args(["plan"]).run().code(0).stdout(
        "campaign notice (revision 1, stage full, transport outbox)
  state     campaigns/.herald (none yet: apply creates it)
  audience  26 rows: 26 unique, 0 duplicates, 0 invalid, 0 suppressed
  to send   26 in stage full
  locales
    de              12  Deutsch 6 (map), de-AT 4, de-DE 2
    en               2  empty 2
    es               8  es 4, Español 2 (map), es-419 2
    ja               4  ja 2, 日本語 2 (map)
  fallbacks 0 recipients got at least one fallback string
  calls     1 provider call of up to 100 recipients, up to 2 in flight
  duration  under 1 s
",
    );
}

#[test]
fn values_without_a_catalog_or_unknown_are_sent_in_the_default_and_said_so() {
    let mut csv = String::from("email,First Name,locale\n");
    for (i, value) in ["pt-BR", "fr", "Klingon", "en", "en", "de"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(csv, "u{i}@example.com,U{i},{value}");
    }
    let run = notice(
        &export(0, "\n", false),
        "{default: en, catalog: locales, on_unknown: default}",
    )
    .edit(CAMPAIGN, "    email_field: E-mail Address\n", "")
    .file(AUDIENCE, &csv)
    .args(["plan"])
    .run()
    .code(0);
    assert!(
        run.stdout.contains(
            "    en               5  en 2, Klingon 1 (unknown), fr 1 (no catalog), pt-BR 1 (no catalog)\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  defaulted 3 recipients (50.0%) get en for want of a catalog of their own: Klingon 1, fr 1, pt-BR 1\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "warning: campaign `notice`: 3 recipients (50.0%) get `en`, the default, for want of a catalog of their own (Klingon 1, fr 1 and pt-BR 1); add catalogs, or map their values in `locales.map`\n"
    );
}

/// plan's `-o json` counts who get the default apart from each catalog, and the warning
/// starts above 1% of the recipients: 1 of 200 (0.5%) and 2 of 200 (1.0%) pass quietly,
/// 3 of 200 (1.5%) are warned of.
#[test]
fn the_default_language_is_counted_in_json_and_warned_of_above_one_percent() {
    for (defaulted, warned) in [(1u64, false), (2, false), (3, true)] {
        let mut csv = String::from("email,First Name,locale\n");
        for i in 0..200 {
            let value = if i < defaulted { "pt-BR" } else { "en" };
            let _ = writeln!(csv, "u{i}@example.com,U{i},{value}");
        }
        let run = notice(&export(0, "\n", false), "{default: en, catalog: locales}")
            .edit(CAMPAIGN, "    email_field: E-mail Address\n", "")
            .file(AUDIENCE, &csv)
            .args(["plan", "-o", "json"])
            .run()
            .code(0);
        let plan = &run.json()["campaigns"][0];
        assert_eq!(plan["defaulted"]["recipients"], defaulted, "{plan}");
        assert_eq!(plan["defaulted"]["no_catalog"], defaulted);
        assert_eq!(plan["defaulted"]["unknown"], 0);
        assert_eq!(plan["defaulted"]["catalog"], "en");
        assert_eq!(
            run.stderr.contains("for want of a catalog of their own"),
            warned,
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_locale_field_that_is_not_a_column_is_refused_like_a_wrong_email_field() {
    let export = export(5, "\r\n", true);
    notice(&export, "{default: en, catalog: locales, field: Locale}")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `notice`: campaigns/audiences/export.csv:1: no column `Locale`, which `locales.field` names; \
             the header has `E-mail Address`, `First Name` and `Language`; nothing was sent\n",
        );
    notice(&export, "{default: en, catalog: locales, field: language}")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `notice`: campaigns/audiences/export.csv:1: no column `language`, which `locales.field` names; \
             the header has `E-mail Address`, `First Name` and `Language` (did you mean `Language`?); nothing was sent\n",
        );
}

#[test]
fn locales_map_entries_are_checked() {
    notice(&export(3, "\n", false), "{default: en, catalog: locales, field: Language, map: {Deutsch: de, deutsch: de, Français: fr, Klingon: xx}}")
        .args(["validate"])
        .run()
        .code(2)
        .stderr(
            "campaigns/notice.yaml:11:80: spec.locales.map.deutsch: `deutsch` is mapped twice (keys compare case-insensitively), the other at line 11
campaigns/notice.yaml:11:103: spec.locales.map.Français: `fr` has no catalog in `locales`: add `fr.yaml` (or one for its language), or map the value to a locale that has one
campaigns/notice.yaml:11:116: spec.locales.map.Klingon: `xx` is not a language tag such as `en` or `zh-TW`: `xx` is not a registered language subtag (IANA registry of 2025-08-25)
error: 3 problems found in the manifests; nothing was sent
",
        );
}

/// For LF, CRLF and byte-order-marked files, with blank lines: every message about a row
/// names the line that `sed -n Np` prints for it, in CSV and in JSONL.
#[test]
fn every_message_names_the_line_an_editor_shows() {
    for (variant, line_end, bom) in [
        ("lf", "\n", false),
        ("crlf", "\r\n", false),
        ("bom-crlf", "\r\n", true),
        ("bom-lf", "\n", true),
    ] {
        lines_in(variant, line_end, bom);
        jsonl_lines_in(variant, line_end, bom);
    }
}

/// The checks of `every_message_names_the_line_an_editor_shows` for one kind of file.
fn lines_in(variant: &str, line_end: &str, bom: bool) {
    let header = if bom {
        "\u{feff}E-mail Address,First Name,Language"
    } else {
        "E-mail Address,First Name,Language"
    };
    let rows = [
        "ann@example.com,Ann,de",
        "",
        "bob@example.com,,es",
        "not-an-address,Cy,de",
        "",
        "",
        "dan@example.com,\"Dan\nthe second\",ja",
        "eve@example.com,Eve,en",
    ];
    let csv = std::iter::once(header)
        .chain(rows)
        .fold(String::new(), |mut csv, row| {
            let _ = write!(csv, "{row}{line_end}");
            csv
        });
    let base = notice(&export(0, line_end, bom), MAPPED).file(AUDIENCE, &csv);
    let workspace = base.workspace();

    // An invalid address: plan refuses with the row's line.
    let run = workspace.run(["plan"]).code(2);
    let line = 5;
    assert!(
        run.stderr.starts_with(&format!("error: campaign `notice`: campaigns/audiences/export.csv:{line}: `not-an-address` is not a valid email address\n")),
        "{variant}: {}",
        run.stderr
    );
    assert!(
        sed(&workspace, AUDIENCE, line).starts_with("not-an-address,"),
        "{variant}"
    );

    // preview --row N picks the row `sed -n Np` shows; a row after a quoted line break
    // is on the line it starts on.
    workspace.edit(
        CAMPAIGN,
        "    email_field: E-mail Address\n",
        "    email_field: E-mail Address\n    on_invalid: skip\n",
    );
    for (line, address) in [
        (4, "bob@example.com"),
        (8, "dan@example.com"),
        (10, "eve@example.com"),
    ] {
        assert!(
            sed(&workspace, AUDIENCE, line).starts_with(address),
            "{variant} line {line}"
        );
        workspace
            .run(["preview", "--row", &line.to_string(), "--out", "preview"])
            .code(0)
            .stdout(&format!(
                "the message of `{address}` (campaigns/audiences/export.csv:{line}) rendered to preview; open preview/index.html\n"
            ));
    }
    let plan = workspace.run(["plan", "-o", "json"]).code(0).json();
    assert_eq!(
        plan["campaigns"][0]["invalid_rows"][0]["line"], 5,
        "{variant}"
    );

    // A template error names the row's line, not the header's.
    workspace.write(
        "campaigns/templates/notice.txt.j2",
        "{{ recipient['First Name'] | int(strict=true) }}\n",
    );
    let run = workspace.run(["plan"]).code(2);
    assert!(
        run.stderr
            .contains("(audience row campaigns/audiences/export.csv:2)"),
        "{variant}: {}",
        run.stderr
    );
    assert!(
        sed(&workspace, AUDIENCE, 2).starts_with("ann@example.com"),
        "{variant}"
    );

    // A suppression list, likewise.
    let list = format!(
        "{}Email Address,First Name{line_end}ann@example.com,Ann{line_end}{line_end}Bob <bob@example.com>,Bob{line_end}",
        if bom { "\u{feff}" } else { "" }
    );
    workspace.write("campaigns/audiences/mailchimp.csv", &list);
    workspace.write("campaigns/templates/notice.txt.j2", "Hi\n");
    workspace.edit(
        CAMPAIGN,
        "    on_invalid: skip\n",
        "    on_invalid: skip\n    suppress: [{file: audiences/mailchimp.csv, email_field: Email Address}]\n",
    );
    workspace
        .run(["plan"])
        .code(2)
        .stderr("error: campaign `notice`: campaigns/audiences/mailchimp.csv:4: `Bob <bob@example.com>` is not an email address (write `bob@example.com`); suppression lists hold one bare address per entry; nothing was sent\n");
    assert!(
        sed(&workspace, "campaigns/audiences/mailchimp.csv", 4).starts_with("Bob <bob@"),
        "{variant}"
    );
}

/// A Mailchimp export of unsubscribes, as it comes: `Email Address` header, quoted, CRLF.
#[test]
fn a_mailchimp_export_is_read_with_email_field_and_a_damaged_one_is_refused() {
    let export = export(40, "\r\n", true);
    let mailchimp = "\"Email Address\",\"First Name\",\"Last Name\",\"UNSUB_TIME\"\r\n\
                     \"p0001@example.com\",\"P1\",\"\",\"2026-01-02 10:00:00\"\r\n\
                     \"P0007@Example.com\",\"P7\",\"\",\"2026-01-03 11:00:00\"\r\n\
                     \"nobody@example.com\",\"\",\"\",\"2026-01-04 12:00:00\"\r\n";
    let workspace = notice(&export, MAPPED)
        .file("campaigns/audiences/mailchimp.csv", mailchimp)
        .edit(
            CAMPAIGN,
            "    email_field: E-mail Address\n",
            "    email_field: E-mail Address\n    suppress:\n      - {file: audiences/mailchimp.csv, email_field: Email Address}\n",
        )
        .workspace();
    let plan = workspace.run(["plan", "-o", "json"]).code(0).json();
    assert_eq!(plan["campaigns"][0]["audience"]["suppressed"], 2);
    assert_eq!(
        plan["campaigns"][0]["suppressed_by"],
        serde_json::json!([{"source": "campaigns/audiences/mailchimp.csv", "recipients": 2}])
    );
    workspace.run(["apply"]).code(0);
    let sent: Vec<String> = workspace
        .outbox("notice")
        .iter()
        .map(|m| m.recipient().to_owned())
        .collect();
    assert_eq!(sent.len(), 38);
    assert!(
        !sent
            .iter()
            .any(|a| a == "p0001@example.com" || a == "p0007@example.com")
    );

    // The same export named as a plain path is read strictly, and refused.
    workspace.edit(
        CAMPAIGN,
        "      - {file: audiences/mailchimp.csv, email_field: Email Address}\n",
        "      - audiences/mailchimp.csv\n",
    );
    workspace.run(["plan"]).code(2).stderr(
        "error: campaign `notice`: campaigns/audiences/mailchimp.csv:1: no column `email` in the header; \
         the header has `Email Address`, `First Name`, `Last Name` and `UNSUB_TIME`; nothing was sent\n",
    );

    // Damaged: a row cut short is refused with its line, never read in part.
    workspace.edit(
        CAMPAIGN,
        "      - audiences/mailchimp.csv\n",
        "      - {file: audiences/mailchimp.csv, email_field: Email Address}\n",
    );
    workspace.write(
        "campaigns/audiences/mailchimp.csv",
        &mailchimp.replace("\"P7\",\"\",\"2026-01-03 11:00:00\"", "\"P7\""),
    );
    workspace.run(["plan"]).code(2).stderr(
        "error: campaign `notice`: campaigns/audiences/mailchimp.csv:3: expected 4 fields, found 2; nothing was sent\n",
    );
    assert!(sed(&workspace, "campaigns/audiences/mailchimp.csv", 3).starts_with("\"P0007@"));
    // `email_field` with a `.txt` list makes no sense, and is refused.
    workspace.write("campaigns/audiences/list.txt", "a@example.com\n");
    workspace.edit(
        CAMPAIGN,
        "      - {file: audiences/mailchimp.csv, email_field: Email Address}\n",
        "      - {file: audiences/list.txt, email_field: Email Address}\n",
    );
    workspace.run(["validate"]).code(2).stderr(
        "campaigns/notice.yaml:16:16: spec.audience.suppress[0].file: `audiences/list.txt`: `email_field` is for `.csv` and `.jsonl` lists; a `.txt` list holds one address per line\nerror: 1 problem found in the manifests; nothing was sent\n",
    );
}

/// `lines` joined by `line_end`, each ended by it, after a byte order mark if `bom`.
fn file_of(lines: &[&str], line_end: &str, bom: bool) -> String {
    let start = if bom { "\u{feff}" } else { "" }.to_owned();
    lines.iter().fold(start, |mut text, line| {
        let _ = write!(text, "{line}{line_end}");
        text
    })
}

/// The checks of `lines_in` for a JSONL audience and JSONL and `.txt` suppression lists,
/// whose first line is a row (after the byte order mark, if any).
fn jsonl_lines_in(variant: &str, line_end: &str, bom: bool) {
    const JSONL: &str = "campaigns/audiences/export.jsonl";
    let rows = [
        r#"{"E-mail Address": "ann@example.com", "First Name": "Ann", "Language": "de"}"#,
        "",
        r#"{"E-mail Address": "bob@example.com", "First Name": "", "Language": "es"}"#,
        r#"{"E-mail Address": "not-an-address", "First Name": "Cy", "Language": "de"}"#,
        "",
        "",
        r#"{"E-mail Address": "dan@example.com", "First Name": "Dan\nthe second", "Language": "ja"}"#,
        r#"{"E-mail Address": "eve@example.com", "First Name": "Eve", "Language": "en"}"#,
    ];
    let workspace = notice(&export(0, line_end, bom), MAPPED)
        .edit(
            CAMPAIGN,
            "file: audiences/export.csv",
            "file: audiences/export.jsonl",
        )
        .file(JSONL, &file_of(&rows, line_end, bom))
        .workspace();

    let run = workspace.run(["plan"]).code(2);
    assert!(
        run.stderr.starts_with(&format!(
            "error: campaign `notice`: {JSONL}:4: `not-an-address` is not a valid email address\n"
        )),
        "jsonl {variant}: {}",
        run.stderr
    );
    assert!(
        sed(&workspace, JSONL, 4).contains("not-an-address"),
        "jsonl {variant}"
    );

    workspace.edit(
        CAMPAIGN,
        "    email_field: E-mail Address\n",
        "    email_field: E-mail Address\n    on_invalid: skip\n",
    );
    for (line, address) in [
        (1, "ann@example.com"),
        (3, "bob@example.com"),
        (7, "dan@example.com"),
        (8, "eve@example.com"),
    ] {
        assert!(
            sed(&workspace, JSONL, line).contains(address),
            "jsonl {variant} line {line}"
        );
        workspace
            .run(["preview", "--row", &line.to_string(), "--out", "preview"])
            .code(0)
            .stdout(&format!(
                "the message of `{address}` ({JSONL}:{line}) rendered to preview; open preview/index.html\n"
            ));
    }

    // A template error names the first row's line: 1, the byte order mark before it.
    workspace.write(
        "campaigns/templates/notice.txt.j2",
        "{{ recipient['First Name'] | int(strict=true) }}\n",
    );
    let run = workspace.run(["plan"]).code(2);
    assert!(
        run.stderr.contains(&format!("(audience row {JSONL}:1)")),
        "jsonl {variant}: {}",
        run.stderr
    );
    workspace.write("campaigns/templates/notice.txt.j2", "Hi\n");
    suppression_lines_in(&workspace, variant, line_end, bom);
}

/// Suppression lists in JSONL (`{file, email_field}`) and plain text, read by the
/// campaign in `workspace` (its invalid rows skipped): each message names the line `sed`
/// prints, the first line too after a byte order mark.
fn suppression_lines_in(workspace: &Workspace, variant: &str, line_end: &str, bom: bool) {
    let list = [
        r#"{"Email Address": "ann@example.com"}"#,
        "",
        r#"{"Email Address": "Bob <bob@example.com>"}"#,
    ];
    workspace.write(
        "campaigns/audiences/unsubscribed.jsonl",
        &file_of(&list, line_end, bom),
    );
    workspace.edit(
        CAMPAIGN,
        "    on_invalid: skip\n",
        "    on_invalid: skip\n    suppress: [{file: audiences/unsubscribed.jsonl, email_field: Email Address}]\n",
    );
    workspace
        .run(["plan"])
        .code(2)
        .stderr("error: campaign `notice`: campaigns/audiences/unsubscribed.jsonl:3: `Bob <bob@example.com>` is not an email address (write `bob@example.com`); suppression lists hold one bare address per entry; nothing was sent\n");
    assert!(
        sed(workspace, "campaigns/audiences/unsubscribed.jsonl", 3).contains("Bob <bob@"),
        "jsonl {variant}"
    );
    workspace.write(
        "campaigns/audiences/unsubscribed.txt",
        &file_of(&["Ann <ann@example.com>", "bob@example.com"], line_end, bom),
    );
    workspace.edit(
        CAMPAIGN,
        "[{file: audiences/unsubscribed.jsonl, email_field: Email Address}]",
        "[audiences/unsubscribed.txt]",
    );
    workspace
        .run(["plan"])
        .code(2)
        .stderr("error: campaign `notice`: campaigns/audiences/unsubscribed.txt:1: `Ann <ann@example.com>` is not an email address (write `ann@example.com`); suppression lists hold one bare address per entry; nothing was sent\n");

    // Fixed, both lists suppress and plan counts them.
    workspace.write(
        "campaigns/audiences/unsubscribed.jsonl",
        &file_of(&[list[0], list[1]], line_end, bom),
    );
    workspace.write(
        "campaigns/audiences/unsubscribed.txt",
        &file_of(&["bob@example.com"], line_end, bom),
    );
    workspace.edit(
        CAMPAIGN,
        "[audiences/unsubscribed.txt]",
        "[{file: audiences/unsubscribed.jsonl, email_field: Email Address}, audiences/unsubscribed.txt]",
    );
    let plan = workspace.run(["plan", "-o", "json"]).code(0).json();
    assert_eq!(
        plan["campaigns"][0]["audience"]["suppressed"], 2,
        "jsonl {variant}"
    );
    assert_eq!(
        plan["campaigns"][0]["suppressed_by"],
        serde_json::json!([
            {"source": "campaigns/audiences/unsubscribed.jsonl", "recipients": 1},
            {"source": "campaigns/audiences/unsubscribed.txt", "recipients": 1},
        ]),
        "jsonl {variant}"
    );
}

/// A catalog named after something that is no language tag (`日本語.yaml`, `german.yaml`)
/// could never be chosen for anybody: refused, naming the file, rather than skipped.
#[test]
fn a_catalog_whose_name_is_no_language_tag_is_refused() {
    for name in ["日本語", "german"] {
        let run = notice(&export(3, "\n", false), "{default: en, catalog: locales}")
            .file(
                &format!("campaigns/locales/{name}.yaml"),
                "subject: x\ndear: \"{name}\"\ndear_customer: x\nmore: x\n",
            )
            .args(["validate"])
            .run()
            .code(2);
        assert!(
            run.stderr.contains(&format!(
                "campaigns/locales/{name}.yaml`: a catalog is named after the language tag it holds, and `{name}` is none ("
            )) && run.stderr.contains("name the file after the tag (`ja.yaml`) and map other values to it in `locales.map`"),
            "{}",
            run.stderr
        );
    }
}

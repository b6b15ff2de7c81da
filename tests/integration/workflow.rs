//! The GitHub Actions recipe in `deploy/`, read for what a review before merge needs: the
//! pull request's job on `pull_request` (never `pull_request_target`) with the read token
//! as its only secret, both sides checked out, validate, plan against the live store, diff,
//! one comment found again by its marker, two shares of the comment that fit GitHub's
//! limit, and herald's command lines as herald parses them; valid by the `SchemaStore` schema of
//! GitHub workflows, its scripts clean by shellcheck.

use std::collections::BTreeSet;

use serde_json::Value;

use std::process::Command;

use crate::tools::{self, assert_herald_parses, checkout, printed, run_with_input};

const FILE: &str = "deploy/github-actions.yml";

fn text() -> String {
    std::fs::read_to_string(checkout().join(FILE)).unwrap()
}

fn workflow() -> Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text()).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// The names of the secrets `value` refers to, as `secrets.NAME`.
fn secrets(value: &Value) -> BTreeSet<String> {
    let text = value.to_string();
    text.match_indices("secrets.")
        .map(|(at, found)| {
            text[at + found.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every `run:` script of `job`, joined.
fn scripts(job: &Value) -> String {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_pull_requests_job_has_the_read_token_only_and_comments_once() {
    let workflow = workflow();
    let on = workflow["on"].as_object().unwrap();
    assert_eq!(
        on.keys().map(String::as_str).collect::<Vec<_>>(),
        ["pull_request", "push"],
        "pull_request, never pull_request_target, which would give the token to a fork's files"
    );
    assert_eq!(workflow["permissions"], serde_json::json!({}));
    let review = &workflow["jobs"]["review"];
    assert_eq!(review["if"], "github.event_name == 'pull_request'");
    assert_eq!(
        secrets(review),
        BTreeSet::from(["HERALD_READ_TOKEN".to_owned()]),
        "no provider key reaches a pull request"
    );
    assert!(secrets(&workflow["jobs"]["apply"]).contains("SENDGRID_API_KEY"));
    assert_eq!(
        workflow["jobs"]["apply"]["if"],
        "github.event_name == 'push'"
    );

    let checkouts: Vec<&Value> = review["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["uses"] == "actions/checkout@v4")
        .map(|s| &s["with"]["path"])
        .collect();
    assert_eq!(checkouts, ["head", "base"]);
    let run = scripts(review);
    for expected in [
        "cargo install --locked --path base",
        "herald validate head/campaigns",
        "herald plan head/campaigns --against \"$HERALD_SERVICE\" -o markdown --limit 16000",
        "herald diff base/campaigns head/campaigns -o markdown --limit 48000",
        "marker='<!-- herald-review -->'",
        "--method PATCH",
    ] {
        assert!(run.contains(expected), "{expected} missing from\n{run}");
    }
    // The two shares, the marker and the line between them fit in one comment.
    assert!(16_000 + 48_000 + "<!-- herald-review -->\n\n".len() < 65_536);
}

#[test]
fn herald_takes_every_command_line_of_the_recipe() {
    let text = text();
    let lines: Vec<Vec<String>> = text
        .lines()
        .map(str::trim)
        .map(|line| line.trim_start_matches("- ").trim_start_matches("run: "))
        .filter_map(|line| line.strip_prefix("herald "))
        .map(|line| {
            line.split_whitespace()
                .take_while(|word| !matches!(*word, ">" | "||" | "|"))
                .map(|word| {
                    word.trim_matches('"')
                        .replace("$HERALD_SERVICE", "https://herald.example.com")
                })
                .collect()
        })
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    for words in &lines {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_herald_parses(&words);
    }
}

#[test]
fn the_recipe_is_a_valid_workflow_by_schemastores_schema() {
    let Some(check) = tools::check_jsonschema() else {
        return;
    };
    let output = Command::new(check)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(checkout().join(FILE))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", printed(&output));
}

#[test]
fn every_script_of_the_recipe_passes_shellcheck() {
    let Some(shellcheck) = tools::shellcheck() else {
        return;
    };
    let workflow = workflow();
    for (name, job) in workflow["jobs"].as_object().unwrap() {
        for step in job["steps"].as_array().unwrap() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            // GitHub puts the values of `${{ }}` in before bash runs the script.
            let script = script.replace("${{", "\"$").replace("}}", "\"");
            let output = run_with_input(
                Command::new(&shellcheck).args(["--shell=bash", "--severity=style", "-"]),
                &script,
            );
            assert!(
                output.status.success(),
                "{name}: {script}\n{}",
                printed(&output)
            );
        }
    }
}

//! Review before merge: `plan --against` a real `herald watch --listen` that has sent a
//! campaign (and against its state folder, through its socket and directly), the read
//! token, `diff` of two checkouts, and `-o markdown` for a pull request comment.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::harness::{self, Test, Workspace};
use crate::http;

const TOKEN: &str = "review-test-read-token-5b1d0c";
const RECIPIENTS: usize = 6;

fn address(i: usize) -> String {
    format!("user{i:02}@example.com")
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies the manifests, templates, catalogs and audiences under `from` to `to`: a
/// checkout of the same repository elsewhere, without the state store.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".herald" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// The pull request's check: `plan head/campaigns --against SOURCE`, with `token` (if any).
fn plan_against(workspace: &Workspace, source: &str, token: Option<&str>) -> harness::Run {
    plan_against_as(workspace, source, token, "text")
}

/// `plan_against`, printing `output` (`text`, `json` or `markdown`).
fn plan_against_as(
    workspace: &Workspace,
    source: &str,
    token: Option<&str>,
    output: &str,
) -> harness::Run {
    let env: Vec<(&str, &str)> = token
        .map(|t| ("HERALD_READ_TOKEN", t))
        .into_iter()
        .collect();
    workspace.run_env(
        ["plan", "head/campaigns", "--against", source, "-o", output],
        &env,
    )
}

/// What plan says of the sent campaign after the revision bump, against `source`.
fn bumped(source: &str) -> String {
    format!(
        "campaign welcome (revision 2, stage full, transport outbox)
  state     {source} (the live store's counts: revision 1, stage full)
  audience  6 rows: 6 unique, 0 duplicates, 0 invalid, 0 suppressed
  suppress  head/campaigns/audiences/unsubscribed.csv: 0
  state     6 already sent, 0 failed, 0 uncertain (not re-sent); 0 addresses on the store's suppression list
  to send   about 0 in stage full (estimated from counts: 6 reached, less those with an outcome or on the store's list)
  locales
    en               6
  fallbacks 0 recipients got at least one fallback string
  calls     0 provider calls of up to 100 recipients, up to 2 in flight
  duration  under 1 s
"
    )
}

/// `GET /summary` answers 401 without a token and 403 with another, and with the token
/// the counts and digests of the sent campaign; no answer holds an address.
fn assert_summary_guarded(port: u16) {
    let anonymous = http::get(port, "/summary");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"herald\"")
    );
    let wrong = http::request(
        "GET",
        port,
        "/summary",
        &[("Authorization", "Bearer not-the-read-token")],
        "",
    );
    assert_eq!(wrong.status, 403);
    let granted = http::request(
        "GET",
        port,
        "/summary",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(granted.status, 200);
    for answer in [&anonymous, &wrong, &granted] {
        assert!(!answer.body.contains('@'), "{}", answer.body);
        for i in 0..RECIPIENTS {
            assert!(!answer.body.contains(&address(i)), "{}", answer.body);
        }
    }
    let summary = granted.json();
    assert_eq!(summary["suppressed"], 0);
    let campaign = &summary["campaigns"][0];
    assert_eq!(
        (
            &campaign["name"],
            &campaign["revision"],
            &campaign["stage"],
            &campaign["sent"]
        ),
        (
            &"welcome".into(),
            &1.into(),
            &"full".into(),
            &RECIPIENTS.into()
        )
    );
    // Per revision, for the estimate of a correction; counts, never who.
    assert_eq!(
        campaign["sent_by_revision"],
        serde_json::json!({"1": RECIPIENTS})
    );
    let parts: Vec<&str> = campaign["fingerprint"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        parts,
        [
            "catalog en.yaml",
            "from",
            "subject",
            "template.html (welcome.html.j2)",
            "template.text (welcome.txt.j2)"
        ]
    );
}

/// A wrong token, or none, is refused by plan, in text and in a comment.
fn assert_tokens_refused(workspace: &Workspace, url: &str) {
    plan_against(workspace, url, Some("not-the-read-token"))
        .code(2)
        .stdout("")
        .stderr(&format!(
            "error: {url}/summary refused the read token in HERALD_READ_TOKEN (403: not the read token); nothing was read\n"
        ));
    let comment = plan_against_as(workspace, url, Some("not-the-read-token"), "markdown").code(2);
    assert!(
        comment.stdout.contains(&format!(
            "- ⚠️ refused: cannot plan against the live store: {url}/summary refused the read token"
        )),
        "{}",
        comment.stdout
    );
    plan_against(workspace, url, None)
        .code(2)
        .stdout("")
        .stderr(&format!(
            "error: `--against {url}` needs the service's read token in HERALD_READ_TOKEN; nothing was read\n"
        ));
}

/// Two rows added on the pull request: the estimate counts them, and says it estimates.
fn assert_estimate_counts_growth(workspace: &Workspace, url: &str) {
    let audience = workspace.read("head/campaigns/audiences/customers.csv");
    workspace.write(
        "head/campaigns/audiences/customers.csv",
        &(audience + "new1@example.com,New 1,en\nnew2@example.com,New 2,en\n"),
    );
    let json = plan_against_as(workspace, url, Some(TOKEN), "json")
        .code(0)
        .json();
    assert_eq!(
        json["state"],
        serde_json::json!({"against": url, "suppressed": 0})
    );
    let plan = &json["campaigns"][0];
    assert_eq!(
        (
            &plan["to_send"],
            &plan["already_sent"],
            &plan["to_send_estimated"]
        ),
        (&2.into(), &RECIPIENTS.into(), &true.into())
    );
    assert_eq!(
        plan["live"],
        serde_json::json!({"known": true, "revision": 1, "stage": "full", "reached": 8, "store_suppressed": 0})
    );
    workspace.write(
        "head/campaigns/audiences/customers.csv",
        &harness::audience(RECIPIENTS, 2),
    );
}

/// A correction (`resend: all`) against the live store: those who got revision 1 are
/// counted as due again, as a plan against the store itself counts them one by one.
fn assert_correction_estimated(workspace: &Workspace, url: &str) {
    let manifest = workspace.read("head/campaigns/welcome.yaml");
    workspace.write(
        "head/campaigns/welcome.yaml",
        &manifest.replace("  revision: 2\n", "  revision: {number: 2, resend: all}\n"),
    );
    let text = plan_against(workspace, url, Some(TOKEN)).code(0).stderr("");
    assert!(
        text.stdout.starts_with(
            "campaign welcome (revision 2, resend: all, stage full, transport outbox)\n"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "  to send   about {RECIPIENTS} in stage full, about {RECIPIENTS} of them again: they got an \
             earlier revision (estimated from counts: {RECIPIENTS} reached,"
        )),
        "{}",
        text.stdout
    );
    let json = plan_against_as(workspace, url, Some(TOKEN), "json")
        .code(0)
        .json();
    let plan = &json["campaigns"][0];
    assert_eq!(
        (&plan["to_send"], &plan["resend"], &plan["revision"]),
        (
            &RECIPIENTS.into(),
            &RECIPIENTS.into(),
            &serde_json::json!({"number": 2, "resend": "all"})
        )
    );
    let comment = plan_against_as(workspace, url, Some(TOKEN), "markdown").code(0);
    assert!(
        comment.stdout.contains(&format!(
            "- revision 2, resend: all: about {RECIPIENTS} of those to send again, as they got an earlier revision\n"
        )),
        "{}",
        comment.stdout
    );
    workspace.write("head/campaigns/welcome.yaml", &manifest);
}

#[test]
fn plan_against_the_live_service_refuses_an_unrevised_change_as_apply_would_and_shows_no_address() {
    let workspace = Test::campaign()
        .file(
            "campaigns/audiences/customers.csv",
            &harness::audience(RECIPIENTS, 2),
        )
        .file("campaigns/audiences/unsubscribed.csv", "email\n")
        .edit(
            "campaigns/welcome.yaml",
            "per_second: 50",
            "per_second: 1000",
        )
        .workspace();
    let port = http::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = workspace.spawn_env(
        ["watch", "--listen", &format!("127.0.0.1:{port}")],
        &[("HERALD_READ_TOKEN", TOKEN)],
    );
    wait_until("everyone is sent", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http::get(port, "/status").json()["campaigns"][0]["sent"] == RECIPIENTS
    });

    // The pull request's checkout, beside the one watch follows, with the text template
    // changed and the revision left as it was.
    copy_tree(
        &workspace.path().join("campaigns"),
        &workspace.path().join("head/campaigns"),
    );
    workspace.edit(
        "head/campaigns/templates/welcome.txt.j2",
        "{{ t('hello', name=recipient.name) }}\n",
        "{{ t('hello', name=recipient.name) }}!\n",
    );
    // The message apply (and a local plan) gives, word for word.
    let refusal = "error: campaign `welcome`: head/campaigns/welcome.yaml:5:1: spec.revision: content changed \
         after sending began (template.text (welcome.txt.j2)); 6 recipients already got revision 1. Bump \
         spec.revision to 2 to send the new content to those not sent yet, or undo the change; nothing was sent\n";
    plan_against(&workspace, &url, Some(TOKEN))
        .code(2)
        .stdout("")
        .stderr(refusal);
    // The comment says it first, and the check still fails.
    let comment = plan_against_as(&workspace, &url, Some(TOKEN), "markdown")
        .code(2)
        .stderr(refusal);
    assert!(
        comment.stdout.starts_with(&format!(
            "### herald plan\n\nagainst `{url}`: 0 planned, 1 refused\n\n**Warnings**\n\n- ⚠️ campaign `welcome` is \
             refused: head/campaigns/welcome.yaml:5:1: spec.revision: content changed after sending began \
             (template.text (welcome.txt.j2)); 6 recipients already got revision 1. Bump spec.revision to 2"
        )),
        "{}",
        comment.stdout
    );
    // The state folder, while watch holds it: through its socket, the same answer.
    plan_against(&workspace, "campaigns/.herald", None)
        .code(2)
        .stdout("")
        .stderr(refusal);

    assert_tokens_refused(&workspace, &url);
    assert_summary_guarded(port);

    // With the revision bumped, the check passes, and says how it counted.
    let manifest = workspace.read("head/campaigns/welcome.yaml");
    workspace.write(
        "head/campaigns/welcome.yaml",
        &(manifest + "  revision: 2\n"),
    );
    plan_against(&workspace, &url, Some(TOKEN))
        .code(0)
        .stderr("")
        .stdout(&bumped(&url));
    plan_against(&workspace, "campaigns/.herald", None)
        .code(0)
        .stderr("")
        .stdout(&bumped("campaigns/.herald"));

    assert_estimate_counts_growth(&workspace, &url);
    assert_correction_estimated(&workspace, &url);

    child.interrupt();
    child.finish().code(0);
    // The folder read directly, once nobody holds it: the same again.
    plan_against(&workspace, "campaigns/.herald", None)
        .code(0)
        .stderr("")
        .stdout(&bumped("campaigns/.herald"));
}

#[test]
fn without_a_read_token_the_summary_is_not_served_and_a_short_one_is_refused() {
    let workspace = Test::campaign().workspace();
    let port = http::free_port();
    let listen = format!("127.0.0.1:{port}");
    workspace
        .run_env(["watch", "--listen", &listen], &[("HERALD_READ_TOKEN", "short")])
        .code(2)
        .stdout("")
        .stderr(
            "error: HERALD_READ_TOKEN is shorter than 8 characters, too short to keep out of what herald \
             prints; make it long and random (`openssl rand -hex 32`); nothing was sent\n",
        );
    assert!(workspace.outbox("welcome").is_empty());

    let child = workspace.spawn(["watch", "--listen", &listen]);
    wait_until("it is ready", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http::get(port, "/readyz").status == 200
    });
    let answer = http::request(
        "GET",
        port,
        "/summary",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(answer.status, 503);
    assert_eq!(
        answer.body,
        "the summary is not served: HERALD_READ_TOKEN is not set\n"
    );
    let url = format!("http://{listen}");
    workspace
        .run_env(["plan", "--against", &url], &[("HERALD_READ_TOKEN", TOKEN)])
        .code(2)
        .stdout("")
        .stderr(&format!(
            "error: {url}/summary does not serve the summary (503: the summary is not served: HERALD_READ_TOKEN \
             is not set): is it a `herald watch --listen` with HERALD_READ_TOKEN set?\n"
        ));
    child.interrupt();
    child.finish().code(0);
}

/// The campaign of the diff tests under `root`: English and Japanese, six recipients
/// alternating between them, at stage canary, 50 per second.
fn review_tree(workspace: &Workspace, root: &str) {
    let write = |path: &str, contents: &str| workspace.write(&format!("{root}/{path}"), contents);
    write(
        "welcome.yaml",
        &harness::CAMPAIGN.replace(
            "  batch:\n",
            "  stage: canary\n  rollout: {canary_percent: 50}\n  batch:\n",
        ),
    );
    write("transports.yaml", harness::TRANSPORTS);
    write(
        "templates/welcome.html.j2",
        "<p>{{ t('hello', name=recipient.name) }}</p>\n<p>{{ t('news') }}</p>\n",
    );
    write(
        "templates/welcome.txt.j2",
        "{{ t('hello', name=recipient.name) }}\n{{ t('news') }}\n",
    );
    write(
        "locales/en.yaml",
        "subject: Welcome\nhello: \"Hello {name}\"\nnews: The index changes.\n",
    );
    write(
        "locales/ja.yaml",
        "subject: ようこそ\nhello: \"{name} 様\"\nnews: 指数が変わります。\n",
    );
    let mut audience = String::from("email,name,locale\n");
    for i in 0..6 {
        let locale = if i % 2 == 0 { "en" } else { "ja" };
        let _ = writeln!(audience, "{},User {i},{locale}", address(i));
    }
    write("audiences/customers.csv", &audience);
    write("audiences/unsubscribed.csv", "email\nbob@example.com\n");
}

/// `old/campaigns` as `review_tree` writes it, and `new/campaigns` with one sentence of
/// the Japanese catalog, the rate, the stage and the audience changed (the first English
/// recipient removed, a Japanese one added).
fn changed_trees() -> Workspace {
    let workspace = Test::new().workspace();
    review_tree(&workspace, "old/campaigns");
    review_tree(&workspace, "new/campaigns");
    workspace.edit(
        "new/campaigns/locales/ja.yaml",
        "news: 指数が変わります。",
        "news: 指数の算出方法が変わります。",
    );
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "per_second: 50",
        "per_second: 5000",
    );
    workspace.edit("new/campaigns/welcome.yaml", "stage: canary", "stage: full");
    let audience = workspace.read("new/campaigns/audiences/customers.csv");
    workspace.write(
        "new/campaigns/audiences/customers.csv",
        &(audience.replace(&format!("{},User 0,en\n", address(0)), "")
            + &format!("{},User 6,ja\n", address(6))),
    );
    workspace
}

/// No audience address appears whole in `text`.
fn assert_masked(text: &str) {
    for i in 0..=6 {
        assert!(
            !text.contains(&address(i)),
            "{} is shown:\n{text}",
            address(i)
        );
    }
}

#[test]
fn diff_shows_the_locale_the_rate_the_stage_and_the_audience_that_changed_and_nothing_else() {
    let workspace = changed_trees();
    let run = workspace
        .run(["diff", "old/campaigns", "new/campaigns"])
        .code(0)
        .stderr("")
        .stdout(
            "warnings
  campaign `welcome`: content changed (catalog ja.yaml) and the revision stays 1; if sending began, apply refuses it until spec.revision is 2 (`herald plan --against` tells)
  campaign `welcome`: the rate goes from 50/s to 5000/s, 100 times as fast
  campaign `welcome`: the stage moves from `canary` (the base branch) to `full`: everyone in the audience not sent yet gets the message

campaign welcome: changed
  spec.rate                    50/s -> 5000/s
  spec.stage                   canary -> full
  content                      catalog ja.yaml
  audience                     6 -> 6 unique addresses: 1 added, 1 removed, 0 changed
    added                      u***@example.com
    removed                    u***@example.com
  locale ja                    sample u***@example.com (line 3 before, 2 now)
    --- old/ja/text
    +++ new/ja/text
    @@ -1,2 +1,2 @@
     User 1 様
    -指数が変わります。
    +指数の算出方法が変わります。
    --- old/ja/html
    +++ new/ja/html
    @@ -1,2 +1,2 @@
     <p>User 1 様</p>
    -<p>指数が変わります。</p>
    +<p>指数の算出方法が変わります。</p>
  locales unchanged            en
",
        );
    assert_masked(&run.stdout);

    let json = workspace
        .run(["diff", "old/campaigns", "new/campaigns", "-o", "json"])
        .code(0)
        .json();
    assert_masked(&json.to_string());
    let kinds: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unrevised", "rate_jump", "stage_to_full"]);
    let campaign = &json["campaigns"][0];
    assert_eq!(campaign["change"], "changed");
    assert_eq!(
        campaign["fields"],
        serde_json::json!([
            {"field": "spec.rate", "old": "50/s", "new": "5000/s"},
            {"field": "spec.stage", "old": "canary", "new": "full"},
        ])
    );
    assert_eq!(campaign["content"], serde_json::json!(["catalog ja.yaml"]));
    assert_eq!(
        campaign["audience"],
        serde_json::json!({
            "old": {"rows": 6, "unique": 6, "duplicates": 0, "invalid": 0},
            "new": {"rows": 6, "unique": 6, "duplicates": 0, "invalid": 0},
            "added": 1, "removed": 1, "changed": 0,
            "added_examples": ["u***@example.com"],
            "removed_examples": ["u***@example.com"],
            "changed_examples": [],
            "columns_added": [], "columns_removed": [],
        })
    );
    assert_eq!(campaign["suppression"], serde_json::Value::Null);
    assert_eq!(campaign["unchanged_locales"], serde_json::json!(["en"]));
    let locales = campaign["locales"].as_array().unwrap();
    assert_eq!(locales.len(), 1);
    assert_eq!(locales[0]["locale"], "ja");
    assert_eq!(locales[0]["subject"], serde_json::Value::Null);
    assert_eq!(locales[0]["same_recipient"], true);

    // Nothing changed: nothing to show.
    workspace
        .run(["diff", "old/campaigns", "old/campaigns"])
        .code(0)
        .stdout("unchanged: `welcome`\n");
}

#[test]
fn diff_names_campaigns_added_and_removed_and_suppression_changes_masked() {
    let workspace = Test::new().workspace();
    review_tree(&workspace, "old/campaigns");
    review_tree(&workspace, "new/campaigns");
    workspace.write(
        "old/campaigns/gone.yaml",
        &harness::another_campaign("gone", "customers.csv", 50),
    );
    workspace.write(
        "new/campaigns/second.yaml",
        &harness::another_campaign("second", "customers.csv", 50),
    );
    workspace.write(
        "new/campaigns/audiences/unsubscribed.csv",
        &format!("email\n{}\n", address(3)),
    );
    let run = workspace
        .run(["diff", "old/campaigns", "new/campaigns"])
        .code(0)
        .stderr("")
        .stdout(
            "warnings
  campaign `second` starts at stage `full`: everyone in the audience gets the message at once

campaign gone: removed
  spec.transport               outbox
  spec.rate                    50/s
  spec.batch.size              1
  spec.stage                   full
  spec.revision                1
  spec.from                    news@example.com
  spec.audience.file           audiences/customers.csv
campaign second: added
  spec.transport               outbox
  spec.rate                    50/s
  spec.batch.size              1
  spec.stage                   full
  spec.revision                1
  spec.from                    news@example.com
  spec.audience.file           audiences/customers.csv
  audience                     0 -> 6 unique addresses: 6 added, 0 removed, 0 changed
  locale en                    new locale, sample u***@example.com, line 2
    --- old/en/subject
    +++ new/en/subject
    @@ -0,0 +1 @@
    +Other
    --- old/en/text
    +++ new/en/text
    @@ -0,0 +1,2 @@
    +Hello User 0
    +The index changes.
  locale ja                    new locale, sample u***@example.com, line 3
    --- old/ja/subject
    +++ new/ja/subject
    @@ -0,0 +1 @@
    +Other
    --- old/ja/text
    +++ new/ja/text
    @@ -0,0 +1,2 @@
    +User 1 様
    +指数が変わります。
campaign welcome: changed
  suppression lists            1 -> 1 addresses: 1 added, 1 removed
    added                      u***@example.com
    removed                    b***@example.com
",
        );
    assert_masked(&run.stdout);
    assert!(!run.stdout.contains("bob@example.com"));
}

/// The Markdown of a comment, parsed as `CommonMark` with GitHub's tables: the events in
/// order, and the structure a review relies on checked.
fn assert_comment(markdown: &str, limit: usize) -> Vec<Event<'_>> {
    assert!(
        markdown.len() <= limit,
        "{} bytes, over {limit}",
        markdown.len()
    );
    assert!(markdown.chars().count() <= 65_536);
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    // Every <details> is an HTML block of its own, closed by one, never inside code.
    let mut open = 0_i32;
    let mut in_code = false;
    for event in &events {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Html(html) if html.starts_with("<details>") => {
                assert!(!in_code);
                open += 1;
            }
            Event::Html(html) if html.starts_with("</details>") => {
                assert!(!in_code);
                open -= 1;
                assert!(open >= 0, "a </details> without its <details>");
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                assert!(
                    html.starts_with("<details>") || html.starts_with("</details>"),
                    "HTML from text: {html}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(open, 0, "every <details> is closed");
    assert!(!in_code, "every code block is closed");
    events
}

/// The positions of the first warning list, table and details block in `events`.
fn layout(events: &[Event<'_>]) -> (Option<usize>, Option<usize>, Option<usize>) {
    let list = events
        .iter()
        .position(|e| matches!(e, Event::Start(Tag::List(_))));
    let table = events
        .iter()
        .position(|e| matches!(e, Event::Start(Tag::Table(_))));
    let details = events
        .iter()
        .position(|e| matches!(e, Event::Html(h) if h.starts_with("<details>")));
    (list, table, details)
}

#[test]
fn markdown_for_a_comment_is_commonmark_with_the_warnings_first_and_the_diffs_folded() {
    let workspace = changed_trees();
    let run = workspace
        .run(["diff", "old/campaigns", "new/campaigns", "-o", "markdown"])
        .code(0);
    assert_masked(&run.stdout);
    let events = assert_comment(&run.stdout, 65_000);
    let (list, table, details) = layout(&events);
    assert!(
        list < table && table < details,
        "{list:?} {table:?} {details:?}"
    );
    let rows = events
        .iter()
        .filter(|e| matches!(e, Event::Start(Tag::TableRow)))
        .count();
    assert_eq!(rows, 1, "one campaign, one row below the header");
    let diffs: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Start(Tag::CodeBlock(pulldown_cmark::CodeBlockKind::Fenced(info))) => {
                Some(info.as_ref())
            }
            _ => None,
        })
        .collect();
    assert_eq!(diffs, ["diff", "diff"], "the ja text and HTML");
    assert!(
        run.stdout.contains("+指数の算出方法が変わります。\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Cut to stay under"));

    // A side that breaks the one rule herald exists for: said first, and refused.
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "isolation: per-recipient",
        "isolation: shared",
    );
    let refused = workspace
        .run(["diff", "old/campaigns", "new/campaigns", "-o", "markdown"])
        .code(2);
    assert_comment(&refused.stdout, 65_000);
    assert!(
        refused.stdout.contains(
            "**Warnings**\n\n- ⚠️ refused: new/campaigns/welcome.yaml:21:16: spec.batch.isolation: `shared` is refused"
        ),
        "{}",
        refused.stdout
    );
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "isolation: shared",
        "isolation: per-recipient",
    );

    // plan: refused campaigns first, as warnings; the table; the details.
    workspace.write(
        "new/campaigns/templates/welcome.txt.j2",
        "{{ t('hello', name=recipient.nmae) }}\n",
    );
    let plan = workspace
        .run(["plan", "new/campaigns", "-o", "markdown"])
        .code(2);
    let events = assert_comment(&plan.stdout, 65_000);
    let (list, table, _) = layout(&events);
    assert!(list < table);
    assert!(
        plan.stdout
            .contains("| `welcome` | **refused** | — | — | — | — | — | — | — | — |"),
        "{}",
        plan.stdout
    );
}

/// Thirty languages, as the catalogs of a large exchange would have them.
const LANGUAGES: [&str; 30] = [
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "sk", "hu", "ro",
    "bg", "el", "tr", "ru", "uk", "ja", "ko", "zh", "ar", "he", "hi", "th", "vi", "id",
];

/// A catalog of 120 paragraphs; `revised` changes every other one.
fn long_catalog(locale: &str, revised: bool) -> String {
    let mut catalog = format!("subject: Welcome ({locale})\nhello: \"Hello {{name}}\"\nbody: |\n");
    for i in 0..120 {
        let state = if revised && i % 2 == 1 {
            "as revised in review"
        } else {
            "as first written"
        };
        let _ = writeln!(
            catalog,
            "  Paragraph {i} of the {locale} announcement, {state}."
        );
    }
    catalog
}

/// A campaign in thirty locales under `root`, its catalogs revised or not, reading the
/// audience at `audience` (relative to the manifest).
fn thirty_locales(workspace: &Workspace, root: &str, revised: bool) {
    let write = |path: &str, contents: &str| workspace.write(&format!("{root}/{path}"), contents);
    write("welcome.yaml", harness::CAMPAIGN);
    write("transports.yaml", harness::TRANSPORTS);
    write(
        "templates/welcome.html.j2",
        "<p>{{ t('hello', name=recipient.name) }}</p>\n<pre>{{ t('body') }}</pre>\n",
    );
    write(
        "templates/welcome.txt.j2",
        "{{ t('hello', name=recipient.name) }}\n\n{{ t('body') }}\n",
    );
    for locale in LANGUAGES {
        write(
            &format!("locales/{locale}.yaml"),
            &long_catalog(locale, revised),
        );
    }
    write("audiences/unsubscribed.csv", "email\n");
}

/// An audience of `n` recipients spread over the thirty locales.
fn write_audience(path: &Path, n: usize) {
    use std::io::Write as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "email,name,locale").unwrap();
    for i in 0..n {
        writeln!(
            file,
            "user{i:07}@example.com,User {i},{}",
            LANGUAGES[i % 30]
        )
        .unwrap();
    }
    file.flush().unwrap();
}

#[test]
fn the_comment_of_a_million_recipients_in_thirty_locales_stays_under_githubs_limit() {
    let workspace = Test::new().workspace();
    thirty_locales(&workspace, "old/campaigns", false);
    thirty_locales(&workspace, "new/campaigns", true);
    let old = workspace
        .path()
        .join("old/campaigns/audiences/customers.csv");
    write_audience(&old, 1_000_000);
    std::fs::copy(
        &old,
        workspace
            .path()
            .join("new/campaigns/audiences/customers.csv"),
    )
    .unwrap();

    let started = Instant::now();
    let run = workspace
        .run(["diff", "old/campaigns", "new/campaigns", "-o", "markdown"])
        .code(0);
    let took = started.elapsed();
    let events = assert_comment(&run.stdout, 65_000);
    let (list, table, details) = layout(&events);
    assert!(list < table && table < details);
    assert!(
        run.stdout
            .contains("Run `herald diff old/campaigns new/campaigns` to see everything."),
        "{}",
        &run.stdout[run.stdout.len().saturating_sub(500)..]
    );
    // Thirty locales changed, too much for one comment: each shows its first changes.
    let shown = run.stdout.matches("<details><summary>welcome · ").count();
    assert_eq!(shown, 30, "every locale is shown");
    for locale in LANGUAGES {
        assert!(
            run.stdout.contains(&format!(
                "+Paragraph 1 of the {locale} announcement, as revised in review.\n"
            )),
            "{locale}"
        );
    }
    eprintln!(
        "diff -o markdown of 1,000,000 recipients in 30 locales: {} bytes, {shown} locales shown, {took:.1?}",
        run.stdout.len()
    );
    // A share of the comment, as plan and diff share one.
    let small = workspace
        .run([
            "diff",
            "old/campaigns",
            "new/campaigns",
            "-o",
            "markdown",
            "--limit",
            "20000",
        ])
        .code(0);
    assert_comment(&small.stdout, 20_000);

    // plan's comment grows with campaigns and locales, not recipients: thirty locales.
    write_audience(
        &workspace
            .path()
            .join("new/campaigns/audiences/customers.csv"),
        3_000,
    );
    let plan = workspace
        .run(["plan", "new/campaigns", "-o", "markdown"])
        .code(0);
    let events = assert_comment(&plan.stdout, 65_000);
    let tables = events
        .iter()
        .filter(|e| matches!(e, Event::Start(Tag::Table(_))))
        .count();
    assert_eq!(tables, 2, "the summary and the locales of the campaign");
    // One row per catalog, its own locale value beside it.
    assert_eq!(
        plan.stdout.matches(" 100 | 0 |").count(),
        30,
        "{}",
        plan.stdout
    );
}

#[test]
fn what_plan_warns_of_is_in_the_comment_and_the_locales_are_per_catalog() {
    // Two of six in French, for which there is no catalog: plan warns (above 1%).
    let mut csv = String::from("email,name,locale\n");
    for (i, locale) in ["en", "en", "fr", "EN", "", "fr"].iter().enumerate() {
        let _ = writeln!(csv, "{},User {i},{locale}", address(i));
    }
    let workspace = Test::campaign()
        .file("campaigns/audiences/customers.csv", &csv)
        .workspace();
    let warning = "campaign `welcome`: 2 recipients (33.3%) get `en`, the default, for want of a catalog of \
                   their own (fr 2); add catalogs, or map their values in `locales.map`";
    let comment = workspace
        .run(["plan", "campaigns", "-o", "markdown"])
        .code(0)
        .stderr(&format!("warning: {warning}\n"));
    assert_comment(&comment.stdout, 65_000);
    assert!(
        comment
            .stdout
            .contains(&format!("**Warnings**\n\n- ⚠️ {warning}\n")),
        "{}",
        comment.stdout
    );
    assert!(
        comment.stdout.contains(
            "- defaulted: 2 recipients (33.3%) get en for want of a catalog of their own: fr 2\n"
        ),
        "{}",
        comment.stdout
    );
    assert!(
        comment
            .stdout
            .contains("| en | 6 | en 3, fr 2 (no catalog), empty 1 | 0 |\n"),
        "{}",
        comment.stdout
    );
    let json = workspace
        .run(["plan", "campaigns", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(
        json["warnings"],
        serde_json::json!([{"kind": "plan", "campaign": "welcome", "message": warning}])
    );
}

#[test]
fn diff_names_a_correction_a_locale_map_and_an_exports_address_column() {
    let workspace = Test::new().workspace();
    review_tree(&workspace, "old/campaigns");
    review_tree(&workspace, "new/campaigns");
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "locales: {default: en, catalog: locales}",
        "locales: {default: en, catalog: locales, map: {日本語: ja}, on_unknown: default}",
    );
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "suppress: [audiences/unsubscribed.csv]",
        "suppress: [{file: audiences/unsubscribed.csv, email_field: email}]",
    );
    let manifest = workspace.read("new/campaigns/welcome.yaml");
    workspace.write(
        "new/campaigns/welcome.yaml",
        &(manifest + "  revision: {number: 2, resend: all}\n"),
    );
    let json = workspace
        .run(["diff", "old/campaigns", "new/campaigns", "-o", "json"])
        .code(0)
        .json();
    let campaign = &json["campaigns"][0];
    assert_eq!(
        campaign["fields"],
        serde_json::json!([
            {"field": "spec.revision", "old": "1", "new": "2, resend: all"},
            {"field": "spec.locales.map", "old": "none", "new": "日本語: ja"},
            {"field": "spec.locales.on_unknown", "old": "refuse", "new": "default"},
            {
                "field": "spec.audience.suppress",
                "old": "audiences/unsubscribed.csv",
                "new": "audiences/unsubscribed.csv (email_field email)"
            },
        ])
    );
    // The messages are the same: the map only names what the catalogs already answer.
    assert_eq!(campaign["locales"], serde_json::json!([]));
    assert_eq!(
        campaign["unchanged_locales"],
        serde_json::json!(["en", "ja"])
    );
}

/// A schedule added on the new side: diff shows each of its fields, and warns first when
/// it lets the campaign send within the hour of now (the clock set as the schedule tests
/// set it: `not_before` within the hour, or passed inside the window); not when it starts
/// later or its window is shut. plan's comment warns of it as of `--at`.
#[test]
fn diff_and_plan_name_a_schedule_and_warn_when_it_starts_within_the_hour() {
    let workspace = Test::new().workspace();
    review_tree(&workspace, "old/campaigns");
    review_tree(&workspace, "new/campaigns");
    workspace.edit(
        "new/campaigns/welcome.yaml",
        "  stage: canary\n",
        "  stage: canary\n  schedule:\n    not_before: 2026-12-08T09:30:00+01:00\n    \
         window: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\"}\n    \
         timezone: Europe/Berlin\n",
    );
    let clock = "HERALD_TEST_ONLY_NOW";
    let json = workspace
        .run_env(
            ["diff", "old/campaigns", "new/campaigns", "-o", "json"],
            &[(clock, "2026-12-08T08:00:00Z")],
        )
        .code(0)
        .json();
    assert_eq!(
        json["warnings"],
        serde_json::json!([{
            "kind": "schedule_soon",
            "campaign": "welcome",
            "message": "campaign `welcome`: its schedule lets it send within the hour, from \
                        2026-12-08T08:30:00Z; merged now, it sends then",
        }])
    );
    assert_eq!(
        json["campaigns"][0]["fields"],
        serde_json::json!([
            {"field": "spec.schedule.not_before", "old": "none", "new": "2026-12-08T08:30:00Z"},
            {"field": "spec.schedule.window", "old": "none", "new": "mon,tue,wed,thu,fri 09:00-17:00"},
            {"field": "spec.schedule.timezone", "old": "none", "new": "Europe/Berlin"},
        ])
    );
    // Two hours ahead: the fields, no warning.
    let later = workspace
        .run_env(
            ["diff", "old/campaigns", "new/campaigns", "-o", "json"],
            &[(clock, "2026-12-08T06:29:00Z")],
        )
        .code(0)
        .json();
    assert_eq!(later["warnings"], serde_json::json!([]));
    // Written yesterday, merged after not_before inside the window: it sends at once.
    let past = workspace
        .run_env(
            ["diff", "old/campaigns", "new/campaigns", "-o", "json"],
            &[(clock, "2026-12-08T10:00:00Z")],
        )
        .code(0)
        .json();
    // From now: the set clock runs on from 10:00:00 while herald starts.
    let message = past["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "campaign `welcome`: its schedule lets it send within the hour, from 2026-12-08T10:00:"
        ) && message.ends_with("Z; merged now, it sends then"),
        "{message}"
    );
    // Saturday: the window opens on Monday, no warning.
    let weekend = workspace
        .run_env(
            ["diff", "old/campaigns", "new/campaigns", "-o", "json"],
            &[(clock, "2026-12-12T10:00:00Z")],
        )
        .code(0)
        .json();
    assert_eq!(weekend["warnings"], serde_json::json!([]));
    // plan's comment, as of an instant within the hour.
    let comment = workspace
        .run([
            "plan",
            "new/campaigns",
            "--at",
            "2026-12-08T09:00:00+01:00",
            "-o",
            "markdown",
        ])
        .code(0);
    assert!(
        comment.stdout.contains(
            "campaign `welcome`: its schedule lets it send within the hour, from 2026-12-08T08:30:00Z"
        ),
        "{}",
        comment.stdout
    );
}

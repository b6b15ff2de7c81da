//! Safety off the happy path: opt-out lists in every shape a careless export takes, damaged
//! and lost state stores, recipient data that tries to add a header or a link, inputs that
//! are not files. Every test asserts what a user would check: the exit code, the exact
//! message, and which files the outbox holds.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::harness::{Test, Workspace};

const CAMPAIGN: &str = "campaigns/welcome.yaml";
const AUDIENCE: &str = "campaigns/audiences/customers.csv";
const OPTOUT: &str = "campaigns/audiences/unsubscribed.csv";

/// Addresses with a message in the outbox, sorted (one entry per file).
fn sent(workspace: &Workspace) -> Vec<String> {
    workspace
        .outbox("welcome")
        .iter()
        .map(|m| m.recipient().to_owned())
        .collect()
}

/// Five recipients, nobody suppressed.
fn five() -> Test {
    Test::campaign()
        .file(
            AUDIENCE,
            "email,name,locale\nann@example.com,Ann,en\nbob@example.com,Bob,en\ncat@example.com,Cat,en\ndan@example.com,Dan,en\neve@example.com,Eve,en\n",
        )
        .file(OPTOUT, "email\n")
}

#[test]
fn suppression_lists_in_every_accepted_shape_suppress_and_are_counted_per_list() {
    let lists = [
        (
            "campaigns/audiences/bom.txt",
            "\u{feff}ann@example.com\r\n# asked by phone\n\n",
        ),
        (
            "campaigns/audiences/quoted.csv",
            "\"email\",\"reason\"\n\"BOB@example.com\",\"asked\"\n",
        ),
        (
            "campaigns/audiences/excel.csv",
            "\u{feff}name;email\nCat;cat@example.com\n",
        ),
        (
            "campaigns/audiences/list.jsonl",
            "{\"email\": \"dan@example.com\", \"at\": 1}\n",
        ),
    ];
    let mut test = five().edit(
        CAMPAIGN,
        "suppress: [audiences/unsubscribed.csv]",
        "suppress: [audiences/bom.txt, audiences/quoted.csv, audiences/excel.csv, audiences/list.jsonl]",
    );
    for (path, text) in lists {
        test = test.file(path, text);
    }
    let workspace = test.workspace();
    workspace.run(["plan"]).code(0).stdout(
        "campaign welcome (revision 1, stage full, transport outbox)\n\
         \x20 state     campaigns/.herald (none yet: apply creates it)\n\
         \x20 audience  5 rows: 5 unique, 0 duplicates, 0 invalid, 4 suppressed\n\
         \x20 suppress  campaigns/audiences/bom.txt: 1\n\
         \x20 suppress  campaigns/audiences/quoted.csv: 1\n\
         \x20 suppress  campaigns/audiences/excel.csv: 1\n\
         \x20 suppress  campaigns/audiences/list.jsonl: 1\n\
         \x20 to send   1 in stage full\n\
         \x20 locales\n\
         \x20   en               1\n\
         \x20 fallbacks 0 recipients got at least one fallback string\n\
         \x20 calls     1 provider call of up to 50 recipients, up to 2 in flight\n\
         \x20 duration  under 1 s\n",
    );
    workspace.run(["apply"]).code(0);
    assert_eq!(sent(&workspace), ["eve@example.com"]);
}

#[test]
fn a_suppression_list_that_cannot_be_read_entry_by_entry_refuses_the_run() {
    for (name, text, message) in [
        (
            "names.txt",
            "ann@example.com\nBob <bob@example.com>\n",
            "campaigns/audiences/names.txt:2: `Bob <bob@example.com>` is not an email address (write `bob@example.com`); suppression lists hold one bare address per entry",
        ),
        (
            "links.txt",
            "mailto:bob@example.com\n",
            "campaigns/audiences/links.txt:1: `mailto:bob@example.com` is not an email address (write `bob@example.com`); suppression lists hold one bare address per entry",
        ),
        (
            "two.csv",
            "email\n\"ann@example.com, bob@example.com\"\n",
            "campaigns/audiences/two.csv:2: `ann@example.com, bob@example.com` is not an email address; suppression lists hold one bare address per entry",
        ),
        (
            "wrong.csv",
            "address\nbob@example.com\n",
            "campaigns/audiences/wrong.csv:1: no column `email` in the header; the header has `address`",
        ),
    ] {
        let workspace = five()
            .file(&format!("campaigns/audiences/{name}"), text)
            .edit(
                CAMPAIGN,
                "suppress: [audiences/unsubscribed.csv]",
                &format!("suppress: [audiences/{name}]"),
            )
            .workspace();
        for command in ["plan", "apply"] {
            workspace.run([command]).code(2).stdout("").stderr(&format!(
                "error: campaign `welcome`: {message}; nothing was sent\n"
            ));
        }
        assert!(sent(&workspace).is_empty(), "{name}: nothing was sent");
    }

    // A format herald does not know is refused in the manifest, never guessed.
    five()
        .file("campaigns/audiences/optout.tsv", "bob@example.com\n")
        .edit(
            CAMPAIGN,
            "suppress: [audiences/unsubscribed.csv]",
            "suppress: [audiences/optout.tsv]",
        )
        .args(["apply"])
        .run()
        .code(2)
        .stderr(
            "campaigns/welcome.yaml:15:16: spec.audience.suppress[0]: `audiences/optout.tsv`: expected a `.csv` \
             (with an `email` column), `.jsonl` (objects with an `email` field) or `.txt` (one address per line) \
             suppression list\nerror: 1 problem found in the manifests; nothing was sent\n",
        );
}

/// Every way of finding a store damaged after a real apply is refused, and nothing is sent.
#[test]
fn a_damaged_store_is_refused_and_nothing_is_sent() {
    /// Damages a store, and says the reason herald is to give.
    type Damage = fn(&std::path::Path) -> String;
    fn recorded(state: &std::path::Path) -> u64 {
        let ledger: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(state.join("herald-state.json")).unwrap(),
        )
        .unwrap();
        ledger["ledger"]["db_bytes"].as_u64().unwrap()
    }
    let damages: [(&str, Damage); 5] = [
        ("truncated", |state| {
            let db = state.join("db");
            let size = std::fs::metadata(&db).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            file.set_len(size / 2).unwrap();
            format!(
                "its data file was cut short ({} bytes, the ledger recorded {})",
                size / 2,
                recorded(state)
            )
        }),
        ("emptied", |state| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(state.join("db"))
                .unwrap()
                .set_len(0)
                .unwrap();
            format!(
                "its data file was cut short (0 bytes, the ledger recorded {})",
                recorded(state)
            )
        }),
        ("data file removed", |state| {
            std::fs::remove_file(state.join("db")).unwrap();
            "its data file `db` is missing".to_owned()
        }),
        ("ledger removed", |state| {
            std::fs::remove_file(state.join("herald-state.json")).unwrap();
            "its ledger herald-state.json is missing".to_owned()
        }),
        ("ledger edited", |state| {
            let ledger = state.join("herald-state.json");
            let text = std::fs::read_to_string(&ledger).unwrap();
            std::fs::write(&ledger, text.replace("\"sent\": 5", "\"sent\": 0")).unwrap();
            "its ledger herald-state.json does not match its checksum".to_owned()
        }),
    ];
    for (what, damage) in damages {
        let workspace = five().workspace();
        workspace.run(["apply"]).code(0);
        assert_eq!(sent(&workspace).len(), 5);
        // sled lets go of its files a moment after the process exits.
        std::thread::sleep(Duration::from_millis(200));
        let reason = damage(&workspace.path().join("campaigns/.herald"));
        for command in ["plan", "apply"] {
            let run = workspace.run([command]).code(2);
            let end = if command == "apply" {
                "; nothing was sent"
            } else {
                ""
            };
            assert_eq!(
                run.stderr,
                format!(
                    "error: the state store campaigns/.herald cannot be read back whole: {reason}. herald never \
                     takes lost state for \"nobody was sent\": restore the folder from a backup (or move it \
                     aside and start over, knowing that everyone will be sent again){end}\n"
                ),
                "{what}, {command}"
            );
        }
        assert_eq!(sent(&workspace).len(), 5, "{what}: nothing more was sent");
    }
}

#[test]
fn flipped_bytes_in_a_real_store_never_lead_to_a_second_message() {
    let mut audience = String::from("email,name,locale\n");
    for i in 0..2000 {
        let _ = writeln!(audience, "user{i:04}@example.com,U{i},en");
    }
    let mut refused = 0;
    for offset in [100_u64, 20_000, 60_000, 150_000, 300_000] {
        let workspace = Test::campaign()
            .file(AUDIENCE, &audience)
            .edit(
                CAMPAIGN,
                "rate: {per_second: 50}",
                "rate: {per_second: 100000}",
            )
            .workspace();
        workspace.run(["apply"]).code(0);
        std::thread::sleep(Duration::from_millis(200));
        let db = workspace.path().join("campaigns/.herald/db");
        if std::fs::metadata(&db).unwrap().len() <= offset {
            continue;
        }
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff])
                .unwrap();
        }
        let run = workspace.run(["apply"]);
        match run.code {
            0 => assert_eq!(
                run.stdout,
                "welcome: nothing to send\n  earlier runs: 2000 already sent\n"
            ),
            2 => refused += 1,
            other => panic!("offset {offset}: exit {other}: {}", run.stderr),
        }
        assert_eq!(
            sent(&workspace).len(),
            2000,
            "offset {offset}: nobody twice"
        );
    }
    assert!(refused > 0, "some damage was noticed");
}

#[test]
fn a_folder_that_is_not_a_store_is_refused() {
    let workspace = five().workspace();
    workspace.write("elsewhere/notes.txt", "my notes\n");
    workspace
        .run(["apply", "--state", "elsewhere"])
        .code(2)
        .stderr(
            "error: elsewhere is not a herald state store: it holds `notes.txt` but neither a ledger \
             (herald-state.json) nor sled's files; point --state at the store, or at a folder that does not \
             exist yet; nothing was sent\n",
        );
    assert!(sent(&workspace).is_empty());
}

/// The store belongs to the manifests, not to the working directory.
#[test]
fn the_same_manifests_applied_from_two_working_directories_send_nobody_twice() {
    let workspace = five().workspace();
    workspace.run(["apply", "campaigns"]).code(0);
    assert_eq!(sent(&workspace).len(), 5);
    let inside = workspace
        .command(["apply", "."])
        .current_dir(workspace.path().join("campaigns"))
        .output()
        .unwrap();
    assert_eq!(inside.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&inside.stdout),
        "welcome: nothing to send\n  earlier runs: 5 already sent\n"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let absolute = workspace
        .command([
            "apply".as_ref(),
            workspace.path().join("campaigns").as_os_str(),
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(absolute.status.code(), Some(0));
    assert_eq!(sent(&workspace).len(), 5, "nobody twice");
    assert!(
        workspace
            .path()
            .join("campaigns/.herald/herald-state.json")
            .is_file()
    );
}

#[test]
fn a_store_kept_where_herald_used_to_keep_it_is_not_silently_replaced() {
    let workspace = five().workspace();
    workspace.run(["apply", "--state", ".herald"]).code(0);
    workspace.run(["apply"]).code(2).stderr(
        "error: there is no state store at campaigns/.herald, but there is one at ./.herald, where herald kept it \
         before; move it (`mv .herald campaigns/.herald`) or pass `--state .herald`, so that nobody is sent again \
         from a new store\n",
    );
    assert_eq!(sent(&workspace).len(), 5, "nobody twice");
}

#[test]
fn a_lost_store_is_never_a_silent_fresh_start_when_one_is_required() {
    let workspace = five().workspace();
    let expected = "error: there is no state store at campaigns/.herald, and this run requires one (--require-state); \
         if this is the first apply, create it with `herald init`; if a store existed, restore it: a new one would \
         send to everyone again; nothing was sent\n";
    workspace
        .run(["apply", "--require-state"])
        .code(2)
        .stderr(expected);
    workspace
        .run_env(["apply"], &[("HERALD_REQUIRE_STATE", "1")])
        .code(2)
        .stderr(expected);
    assert!(!workspace.path().join("campaigns/.herald").exists());
    let plan = workspace.run(["plan"]).code(0);
    assert!(
        plan.stdout
            .contains("  state     campaigns/.herald (none yet: apply creates it)\n"),
        "{}",
        plan.stdout
    );

    workspace
        .run(["init"])
        .code(0)
        .stdout("created the state store campaigns/.herald; keep it where it is not lost (not a CI cache), and run apply with --require-state\n");
    workspace
        .run(["init"])
        .code(2)
        .stderr("error: a state store already exists at campaigns/.herald\n");
    workspace.run(["apply", "--require-state"]).code(0);
    assert_eq!(sent(&workspace).len(), 5);
    let plan = workspace.run(["plan"]).code(0);
    assert!(
        plan.stdout
            .contains("  state     campaigns/.herald (read)\n"),
        "{}",
        plan.stdout
    );

    // Lost after all: refused, not sent again.
    std::fs::remove_dir_all(workspace.path().join("campaigns/.herald")).unwrap();
    workspace
        .run(["apply", "--require-state"])
        .code(2)
        .stderr(expected);
    assert_eq!(sent(&workspace).len(), 5);
}

#[test]
fn the_outbox_never_overwrites_a_message() {
    let workspace = five().workspace();
    workspace.run(["apply"]).code(0);
    let dir = workspace.path().join("outbox/welcome");
    let first: Vec<(String, Vec<u8>)> = {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    // The store is lost and the run starts over: every message is sent a second time,
    // and the outbox shows it as a second file beside the first.
    std::fs::remove_dir_all(workspace.path().join("campaigns/.herald")).unwrap();
    workspace.run(["apply"]).code(0);
    let mut twice = sent(&workspace);
    twice.dedup();
    assert_eq!(twice.len(), 5);
    assert_eq!(
        sent(&workspace).len(),
        10,
        "a second message is a second file"
    );
    for (name, bytes) in &first {
        assert_eq!(
            &std::fs::read(dir.join(name)).unwrap(),
            bytes,
            "{name} unchanged"
        );
        let copy = name.replace(".eml", "-2.eml");
        assert!(dir.join(&copy).is_file(), "{copy}");
    }
}

/// The unsubscribe link, from the message's own `List-Unsubscribe` header.
fn unsubscribe_header(raw: &str) -> String {
    let headers = raw.split("\r\n\r\n").next().unwrap();
    let mut value = None;
    let mut previous = "";
    for line in headers.split("\r\n") {
        if let Some(v) = line.strip_prefix("List-Unsubscribe: ") {
            assert!(value.is_none(), "one List-Unsubscribe header");
            value = Some(v.to_owned());
        } else if previous.starts_with("List-Unsubscribe: ") && line.starts_with([' ', '\t']) {
            panic!("List-Unsubscribe is folded: {line}");
        }
        if !line.starts_with([' ', '\t']) {
            previous = line;
        }
    }
    value.expect("a List-Unsubscribe header")
}

#[test]
fn recipient_data_in_the_unsubscribe_link_is_percent_encoded_and_cannot_add_a_link() {
    let workspace = Test::campaign()
        .file(
            AUDIENCE,
            "email,name,locale\n\
             ann@example.com,\"x>, <mailto:evil@attacker.example>\",en\n\
             bob@example.com,Bob Smith Jr.,en\n\
             cat@example.com,Zoë 李,en\n\
             dan@example.com,a&b=c?d#e/f%20,en\n\
             eve@example.com,\"Eve\r\nBcc: all@example.com\",en\n",
        )
        .file(OPTOUT, "email\n")
        .edit(
            CAMPAIGN,
            "  batch:\n",
            "  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}?n={{ recipient.name }}\"}\n  batch:\n",
        )
        .workspace();
    workspace.run(["apply"]).code(0);
    let mails = workspace.outbox("welcome");
    assert_eq!(mails.len(), 5);
    let expected = [
        (
            "ann@example.com",
            "x%3E%2C%20%3Cmailto%3Aevil%40attacker.example%3E",
        ),
        ("bob@example.com", "Bob%20Smith%20Jr."),
        ("cat@example.com", "Zo%C3%AB%20%E6%9D%8E"),
        ("dan@example.com", "a%26b%3Dc%3Fd%23e%2Ff%2520"),
        ("eve@example.com", "Eve%0D%0ABcc%3A%20all%40example.com"),
    ];
    for (mail, (to, name)) in mails.iter().zip(expected) {
        assert_eq!(mail.recipient(), to);
        let header = unsubscribe_header(&mail.raw);
        assert!(
            header.starts_with("<https://example.com/u/")
                && header.ends_with(&format!("?n={name}>")),
            "{to}: {header}"
        );
        assert_eq!(header.matches('<').count(), 1, "{to}: one URI: {header}");
        let headers = mail.raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.contains("attacker.example>"), "{to}: {headers}");
    }
}

#[test]
fn an_unsubscribe_link_that_is_not_one_https_url_is_refused_with_its_row() {
    let long = "a".repeat(1000);
    let cases = [
        (
            "http://example.com/u/{{ unsubscribe_token }}",
            "email,name,locale\nann@example.com,Ann,en\n".to_owned(),
            "error: campaign `welcome`: campaigns/welcome.yaml: spec.unsubscribe.url: the link `http://example.com/u/00000000000000000000000000000000` is a `http:` link; one-click unsubscribe needs an `https:` (or `mailto:`) link; nothing was sent\n".to_owned(),
        ),
        (
            "https://example.com/u/{{ unsubscribe_token }}?n={{ recipient.name }}",
            format!("email,name,locale\nann@example.com,Ann,en\nbob@example.com,{long},en\n"),
            "error: campaign `welcome`: campaigns/welcome.yaml: spec.unsubscribe.url: the rendered link is 1057 characters long; `List-Unsubscribe` holds a link of at most 978 (audience row campaigns/audiences/customers.csv:3); nothing was sent\n".to_owned(),
        ),
        (
            "{{ recipient.name }}",
            "email,name,locale\nann@example.com,https://a.example/x,en\n".to_owned(),
            "error: campaign `welcome`: campaigns/welcome.yaml: spec.unsubscribe.url: the rendered link `https%3A%2F%2Fa.example%2Fx` is not an absolute URL: relative URL without a base (audience row campaigns/audiences/customers.csv:2); nothing was sent\n".to_owned(),
        ),
    ];
    for (url, audience, message) in cases {
        let workspace = Test::campaign()
            .file(AUDIENCE, &audience)
            .file(OPTOUT, "email\n")
            .edit(
                CAMPAIGN,
                "  batch:\n",
                &format!("  unsubscribe: {{url: \"{url}\"}}\n  batch:\n"),
            )
            .workspace();
        workspace.run(["apply"]).code(2).stderr(&message);
        assert!(sent(&workspace).is_empty(), "{url}");
    }
}

#[test]
fn line_breaks_and_control_characters_from_the_audience_are_refused_with_their_row() {
    for (name, part, problem) in [
        (
            "\"Ann\r\nBcc: all@example.com\"",
            "subject",
            "contains a line break (U+000D); header values must be a single line of text",
        ),
        (
            "\"Ann\nX-Evil: 1\"",
            "subject",
            "contains a line break (U+000A); header values must be a single line of text",
        ),
        (
            "Ann\u{1b}[31m",
            "subject",
            "contains a control character (U+001B); header values must be a single line of text",
        ),
        (
            "Ann\u{85}",
            "subject",
            "contains a control character (U+0085); header values must be a single line of text",
        ),
    ] {
        let workspace = Test::campaign()
            .file(
                AUDIENCE,
                &format!("email,name,locale\nbob@example.com,Bob,en\nann@example.com,{name},en\n"),
            )
            .edit(
                CAMPAIGN,
                "subject: \"{{ t('subject') }}\"",
                "subject: \"Hi {{ recipient.name }}\"",
            )
            .workspace();
        workspace.run(["apply"]).code(2).stderr(&format!(
            "error: campaign `welcome`: campaigns/welcome.yaml: spec.template.subject: the rendered {part} {problem} \
             (audience row campaigns/audiences/customers.csv:3); nothing was sent\n"
        ));
        assert!(sent(&workspace).is_empty());
    }
    // In a body: a NUL or an escape would go out raw in a 7bit part.
    for (byte, code) in [("\u{0}", "0000"), ("\u{7}", "0007"), ("\u{7f}", "007F")] {
        let workspace = Test::campaign()
            .file(
                AUDIENCE,
                &format!("email,name,locale\nann@example.com,Ann{byte}x,en\n"),
            )
            .workspace();
        workspace.run(["apply"]).code(2).stderr(&format!(
            "error: campaign `welcome`: campaigns/templates/welcome.html.j2: the rendered html body contains a control \
             character (U+{code}) (audience row campaigns/audiences/customers.csv:2); nothing was sent\n"
        ));
    }
}

#[test]
fn inputs_that_are_not_regular_files_inside_the_manifest_folder_are_refused() {
    // A device behind a symlink, where the audience should be.
    let workspace = five().workspace();
    std::fs::remove_file(workspace.path().join(AUDIENCE)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", workspace.path().join(AUDIENCE)).unwrap();
    workspace.run(["plan"]).code(2).stderr(
        "campaigns/welcome.yaml:14:11: spec.audience.file: `audiences/customers.csv` is a device, not a regular file; \
         herald reads only regular files\nerror: 1 problem found in the manifests; nothing was sent\n",
    );

    // A FIFO: refused at once, not waited on.
    let workspace = five().workspace();
    std::fs::remove_file(workspace.path().join(AUDIENCE)).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(workspace.path().join(AUDIENCE))
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let mut child = workspace.spawn(["apply"]);
    loop {
        if let Some(status) = child.exited() {
            assert_eq!(status.code(), Some(2));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "apply hangs on a FIFO"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A template outside the manifest's folder, such as the process environment.
    let workspace = five()
        .edit(
            CAMPAIGN,
            "html: templates/welcome.html.j2",
            "html: /proc/self/environ",
        )
        .workspace();
    let run = workspace.run(["plan"]).code(2);
    let folder = std::fs::canonicalize(workspace.path().join("campaigns")).unwrap();
    // `/proc/self` resolves to herald's own pid, which the test cannot know.
    let (before, after) = run.stderr.split_once("resolves to `/proc/").unwrap();
    let (pid, after) = after.split_once('/').unwrap();
    assert!(pid.bytes().all(|b| b.is_ascii_digit()), "{}", run.stderr);
    assert_eq!(
        format!("{before}resolves to `/proc/PID/{after}"),
        format!(
            "campaigns/welcome.yaml:10:11: spec.template.html: `/proc/self/environ` resolves to \
             `/proc/PID/environ`, outside the manifest's folder `{}`; list its folder in \
             `spec.allow_outside` to read files from there\nerror: 1 problem found in the manifests; \
             nothing was sent\n",
            folder.display()
        )
    );
}

#[test]
fn files_outside_the_manifest_folder_need_allow_outside() {
    let workspace = five().workspace();
    workspace.write(
        "exports/customers.csv",
        "email,name,locale\nzed@example.com,Zed,en\n",
    );
    workspace.edit(
        CAMPAIGN,
        "file: audiences/customers.csv",
        "file: ../exports/customers.csv",
    );
    let campaigns = std::fs::canonicalize(workspace.path().join("campaigns")).unwrap();
    let exports = std::fs::canonicalize(workspace.path().join("exports/customers.csv")).unwrap();
    workspace.run(["plan"]).code(2).stderr(&format!(
        "campaigns/welcome.yaml:14:11: spec.audience.file: `../exports/customers.csv` resolves to `{}`, outside the \
         manifest's folder `{}`; list its folder in `spec.allow_outside` to read files from there\n\
         error: 1 problem found in the manifests; nothing was sent\n",
        exports.display(),
        campaigns.display()
    ));
    workspace.write(
        CAMPAIGN,
        &(workspace.read(CAMPAIGN) + "  allow_outside: [../exports]\n"),
    );
    workspace.run(["apply"]).code(0);
    assert_eq!(sent(&workspace), ["zed@example.com"]);
}

#[test]
fn an_audience_without_its_address_column_is_refused_by_name() {
    five()
        .file(AUDIENCE, "mail,name,locale\nann@example.com,Ann,en\n")
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/audiences/customers.csv:1: no column `email` in the header; the \
             header has `mail`, `name` and `locale`; nothing was sent\n",
        );
}

#[test]
fn a_row_past_one_megabyte_is_refused() {
    let long = "x".repeat(1_100_000);
    five()
        .file(AUDIENCE, &format!("email,name,locale\nann@example.com,{long},en\n"))
        .args(["plan"])
        .run()
        .code(2)
        .stderr(
            "error: campaign `welcome`: campaigns/audiences/customers.csv:2: a row of more than 1048576 bytes; herald \
             refuses rows that long; nothing was sent\n",
        );
}

#[test]
fn unsubscribe_links_need_a_key_on_a_transport_that_delivers_mail() {
    let with_link = |transport: &str| {
        five()
            .file(
                "campaigns/transports.yaml",
                &format!("apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\nspec: {transport}\n"),
            )
            .edit(
                CAMPAIGN,
                "  batch:\n",
                "  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}\"}\n  batch:\n",
            )
            .env("HERALD_TEST_KEY", "SG.not-used-0123456789")
            .workspace()
    };
    for transport in [
        "{type: sendgrid, api_key_env: HERALD_TEST_KEY, endpoint: \"http://127.0.0.1:9\"}",
        "{type: smtp, host: 127.0.0.1, port: 9, tls: none}",
    ] {
        with_link(transport).run(["apply"]).code(2).stderr(
            "error: campaign `welcome`: campaigns/welcome.yaml:17:22: spec.unsubscribe.url: HERALD_UNSUBSCRIBE_KEY is \
             not set, so every unsubscribe link would be signed with a fixed key anyone can use to unsubscribe anyone; \
             transport `outbox` delivers mail, so herald refuses: export a random secret there (`openssl rand -hex \
             32`) and keep it for as long as the links must work; nothing was sent\n",
        );
    }
    // The local outbox keeps the placeholder key, and says so.
    let outbox = with_link("{type: outbox, dir: ../outbox}");
    outbox.run(["apply"]).code(0).stderr(
        "warning: campaign `welcome`: HERALD_UNSUBSCRIBE_KEY is not set: the unsubscribe links in \
        the outbox are signed with a fixed, guessable key (fine for trying herald out; transports \
        that deliver mail refuse this)\n",
    );
    assert_eq!(sent(&outbox).len(), 5);
}

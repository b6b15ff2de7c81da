//! Shards: one campaign sent by several herald processes at once, each its part of the
//! audience and its own store inside the state folder, together everyone exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::harness::{Test, Workspace};

const CAMPAIGN: &str = "campaigns/welcome.yaml";
/// Recipients of the large test. Measured in a debug build on the 2-core CI machine: see
/// the report in docs/performance.md ("Shards").
const RECIPIENTS: usize = 100_000;

/// `n` recipients `user<i>@example.com`, with every 50th repeated in capitals (a case
/// duplicate), every 1,000th followed by an invalid row, and every 100th on the
/// suppression list. Returns the files and the addresses the campaign must reach.
fn audience(n: usize) -> (String, String, BTreeSet<String>) {
    let mut csv = String::from("email,name,locale\n");
    let mut suppressed = String::from("email\n");
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let _ = writeln!(csv, "user{i}@example.com,User {i},en");
        if i % 50 == 7 {
            let _ = writeln!(csv, "  USER{i}@Example.COM,Again {i},en");
        }
        if i % 1000 == 3 {
            let _ = writeln!(csv, "not-an-address-{i},Nobody,en");
        }
        if i % 100 == 11 {
            let _ = writeln!(suppressed, "user{i}@example.com");
        } else {
            expected.insert(format!("user{i}@example.com"));
        }
    }
    (csv, suppressed, expected)
}

fn sharded(n: usize, shards: u32) -> (Workspace, BTreeSet<String>) {
    let (csv, suppressed, expected) = audience(n);
    let workspace = Test::campaign()
        .file("campaigns/audiences/customers.csv", &csv)
        .file("campaigns/audiences/unsubscribed.csv", &suppressed)
        .edit(
            CAMPAIGN,
            "rate: {per_second: 50}",
            &format!("rate: {{per_second: 1000000}}\n  shards: {shards}"),
        )
        .edit(
            CAMPAIGN,
            "    suppress: [audiences/unsubscribed.csv]",
            "    suppress: [audiences/unsubscribed.csv]\n    on_invalid: skip",
        )
        .edit(CAMPAIGN, "    html: templates/welcome.html.j2\n", "")
        .workspace();
    (workspace, expected)
}

/// Every address in the outbox of `welcome`, with how many messages each got. Reads the
/// `To:` header only: 100,000 messages parse too slowly in a debug build.
fn outbox(workspace: &Workspace) -> BTreeMap<String, u32> {
    let dir = workspace.path().join("outbox/welcome");
    let mut got = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read_to_string(&path).unwrap();
        let to = raw
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_else(|| panic!("{} has a To header", path.display()));
        *got.entry(to.trim().to_lowercase()).or_default() += 1;
    }
    got
}

/// What a shard's ledger says it sent, read as any tool may read it while it runs.
fn ledger_sent(workspace: &Workspace, shard: u32, shards: u32) -> u64 {
    let path = workspace.path().join(format!(
        "campaigns/.herald/shard-{shard}-of-{shards}/herald-state.json"
    ));
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return 0;
    };
    value["ledger"]["campaigns"]["welcome"]["sent"]
        .as_u64()
        .unwrap_or(0)
}

/// The shard the documented contract puts an address in (docs/DESIGN.md, "Shards"),
/// computed here on its own.
fn shard_of(address: &str, shards: u32) -> u32 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(address.trim().to_lowercase().as_bytes());
    let first = u64::from_be_bytes(digest[..8].try_into().unwrap());
    u32::try_from(first % u64::from(shards)).unwrap()
}

/// The recipients `status` lists as uncertain in the store at `state`.
fn uncertain_in(workspace: &Workspace, state: &str) -> BTreeSet<String> {
    let status = workspace
        .run([
            "status",
            "welcome",
            "--recipients",
            "uncertain",
            "-o",
            "json",
            "--state",
            state,
        ])
        .code(0)
        .json();
    status["campaigns"][0]["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_lowercase())
        .collect()
}

/// Each of 4 shards owns within 20% of a quarter of `expected`, and its store has them
/// sent (shard 2: sent or left `uncertain` by its kill).
fn assert_shares(workspace: &Workspace, expected: &BTreeSet<String>, uncertain: &BTreeSet<String>) {
    let mut per_shard = [0u64; 4];
    for address in expected {
        per_shard[shard_of(address, 4) as usize] += 1;
    }
    let total = expected.len() as u64;
    for shard in 0..4u32 {
        let count = per_shard[shard as usize];
        // count / (total / 4) within 0.8 to 1.2, in whole numbers.
        assert!(
            (8 * total..=12 * total).contains(&(40 * count)),
            "shard {shard}: {count} ({per_shard:?})"
        );
        let in_flight = if shard == 2 {
            uncertain.len() as u64
        } else {
            0
        };
        assert_eq!(
            ledger_sent(workspace, shard, 4) + in_flight,
            count,
            "shard {shard}"
        );
    }
}

/// `shards` changed from 4 to 3 after sending began: refused by every shard, and by the
/// run of them all.
fn refused_by_every_shard(workspace: &Workspace) {
    workspace.edit(CAMPAIGN, "shards: 4", "shards: 3");
    let stores = "`campaigns/.herald/shard-0-of-4`, `campaigns/.herald/shard-1-of-4`, \
                  `campaigns/.herald/shard-2-of-4` and `campaigns/.herald/shard-3-of-4`";
    let refusal = format!(
        "error: campaign `welcome`: `spec.shards` is 3, but sending began with 4 shards, in \
         {stores}; each recipient would move to a shard whose store never saw them and be sent \
         again: set `shards` back; nothing was sent\n"
    );
    for args in [
        &["--shard", "0"][..],
        &["--shard", "1"],
        &["--shard", "2"],
        &[],
    ] {
        workspace
            .run(["apply", "campaigns"].iter().chain(args))
            .code(2)
            .stdout("")
            .stderr(&refusal);
    }
}

/// `status` of the state folder: one campaign whose counts are the sums of its 4 shards'.
fn assert_status_adds_up(workspace: &Workspace, audience: u64, uncertain: u64) {
    let status = workspace
        .run(["status", "--path", "campaigns", "-o", "json"])
        .code(0)
        .json();
    let campaign = &status["campaigns"][0];
    let shards = campaign["shards"].as_array().expect("shards");
    let indexes: Vec<u64> = shards
        .iter()
        .map(|s| s["shard"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    for key in ["sent", "failed", "uncertain", "in_flight", "expired"] {
        let sum: u64 = shards.iter().map(|s| s[key].as_u64().unwrap()).sum();
        assert_eq!(campaign[key].as_u64(), Some(sum), "{key}");
    }
    // The uncertain were in flight when shard 2 was killed: some reached the outbox.
    assert_eq!(campaign["uncertain"].as_u64(), Some(uncertain));
    assert_eq!(campaign["sent"].as_u64(), Some(audience - uncertain));
}

/// Four shard processes at once over 100,000 recipients with case duplicates, invalid
/// rows and a suppression list, one of them killed with SIGKILL mid-way and run again:
/// together they reach exactly the expected audience, nobody twice, each shard close to a
/// quarter; then a changed `shards` is refused by every shard and nothing more is sent.
#[test]
fn four_shards_at_once_send_everyone_once_even_when_one_is_killed() {
    let _exclusive = crate::harness::exclusive();
    let started = Instant::now();
    let (workspace, expected) = sharded(RECIPIENTS, 4);
    let mut running: Vec<_> = (0..4)
        .map(|i| {
            // Shard 3 takes its index as a Kubernetes Indexed Job gives it.
            if i == 3 {
                workspace.spawn_env(["apply", "campaigns"], &[("JOB_COMPLETION_INDEX", "3")])
            } else {
                workspace.spawn(["apply", "campaigns", "--shard", &i.to_string()])
            }
        })
        .collect();

    // SIGKILL shard 2 once its ledger shows it part of the way through.
    let quarter = expected.len() as u64 / 4;
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        let sent = ledger_sent(&workspace, 2, 4);
        if sent >= quarter / 5 {
            assert!(
                running[2].exited().is_none(),
                "shard 2 finished before it could be killed (sent {sent})"
            );
            running[2].signal("-KILL");
            break sent;
        }
        assert!(Instant::now() < deadline, "shard 2 never got going");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut runs = Vec::new();
    for (i, shard) in running.into_iter().enumerate() {
        if i == 2 {
            drop(shard); // reaped: killed already
        } else {
            runs.push(shard.finish().code(0));
        }
    }
    let concurrent = started.elapsed();
    assert!(
        killed_at < quarter,
        "killed at {killed_at} of about {quarter}"
    );

    // Run again: shard 2 continues where it stopped.
    let rerun = workspace.run(["apply", "campaigns", "--shard", "2"]);

    let got = outbox(&workspace);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "sent twice: {:?}",
        &twice[..twice.len().min(5)]
    );
    let unexpected: Vec<_> = got.keys().filter(|a| !expected.contains(*a)).collect();
    assert!(unexpected.is_empty(), "not in the audience: {unexpected:?}");
    // Who is missing was in flight when shard 2 was killed: uncertain, in shard 2, never
    // sent again without `--resend-uncertain`.
    let uncertain = uncertain_in(&workspace, "campaigns/.herald/shard-2-of-4");
    // Calls in flight at the kill (if it fell on any) are uncertain, which exits 1 as
    // without shards.
    assert_eq!(
        rerun.code,
        i32::from(!uncertain.is_empty()),
        "{}",
        rerun.stderr
    );
    let missing: BTreeSet<String> = expected
        .iter()
        .filter(|a| !got.contains_key(*a))
        .cloned()
        .collect();
    assert!(
        missing.is_subset(&uncertain),
        "missing and not uncertain: {:?}",
        missing.difference(&uncertain).take(5).collect::<Vec<_>>()
    );
    assert!(uncertain.iter().all(|a| shard_of(a, 4) == 2));

    // Every shard holds a share within 20% of a quarter, as the contract places them.
    assert_shares(&workspace, &expected, &uncertain);
    assert_status_adds_up(&workspace, expected.len() as u64, uncertain.len() as u64);

    // `shards` changed afterwards: refused by every shard, and by the run of them all.
    refused_by_every_shard(&workspace);
    assert_eq!(outbox(&workspace).len(), got.len(), "nothing more was sent");
    eprintln!(
        "{RECIPIENTS} recipients, 4 shards at once: {:.1} s until the three that ran through \
         ended; {:.1} s in all",
        concurrent.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// A shard index past the campaign's shards is refused, from `--shard` and from
/// `JOB_COMPLETION_INDEX` alike, before a store is created.
#[test]
fn a_shard_out_of_range_is_refused() {
    let (workspace, _) = sharded(10, 4);
    let refusal = "error: shard `4` (from `--shard` or JOB_COMPLETION_INDEX) is out of range: \
                   campaign `welcome` has 4 shards, numbered 0 to 3; nothing was sent\n";
    workspace
        .run(["apply", "campaigns", "--shard", "4"])
        .code(2)
        .stderr(refusal);
    workspace
        .run_env(["apply", "campaigns"], &[("JOB_COMPLETION_INDEX", "4")])
        .code(2)
        .stderr(refusal);
    assert!(!workspace.path().join("campaigns/.herald").exists());
}

/// Without `--shard`, one process sends every shard in turn, each into its own store,
/// and from then on a campaign without `shards` is refused: its recipients are in them.
#[test]
fn one_process_sends_every_shard_in_turn() {
    let (workspace, expected) = sharded(200, 2);
    workspace.run(["apply", "campaigns"]).code(0);
    let got = outbox(&workspace);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1));
    for shard in 0..2 {
        assert!(
            workspace
                .path()
                .join(format!("campaigns/.herald/shard-{shard}-of-2"))
                .is_dir()
        );
    }
    let status = workspace.run(["status", "--path", "campaigns"]).code(0);
    let shown: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| !l.starts_with("  last apply"))
        .collect();
    let (first, second) = (
        expected.iter().filter(|a| shard_of(a, 2) == 0).count(),
        expected.iter().filter(|a| shard_of(a, 2) == 1).count(),
    );
    assert_eq!(
        shown.join("\n"),
        format!(
            "campaign welcome (revision 1, stage full, active)\n  sent       {}\n  failed     0\n  \
             uncertain  0\n  shard 0 of 2: sent {first}, failed 0, uncertain 0\n  shard 1 of 2: sent \
             {second}, failed 0, uncertain 0",
            expected.len()
        )
    );
    workspace.edit(CAMPAIGN, "  shards: 2\n", "");
    // plan refuses it in the same words as apply (it said "0 already sent" before).
    let planned = workspace.run(["plan", "campaigns"]).code(2);
    workspace
        .run(["apply", "campaigns"])
        .code(2)
        .stderr(&planned.stderr)
        .stderr(
            "error: campaign `welcome`: `spec.shards` is 1, but sending began with 2 shards, in \
         `campaigns/.herald/shard-0-of-2` and `campaigns/.herald/shard-1-of-2`; each recipient \
         would move to a shard whose store never saw them and be sent again: set `shards` back; \
         nothing was sent\n",
        );
}

/// `plan` of a sharded campaign: one line per shard, and totals equal to the plan of the
/// same campaign without shards, before sending and after one shard sent.
#[test]
fn plan_totals_equal_the_unsharded_plan() {
    let (workspace, expected) = sharded(2_000, 4);
    let plan = |workspace: &Workspace| {
        workspace
            .run(["plan", "campaigns", "-o", "json"])
            .code(0)
            .json()["campaigns"][0]
            .clone()
    };
    let unsharded = {
        let (other, _) = sharded(2_000, 1);
        plan(&other)
    };
    let check = |sharded: &serde_json::Value, sent: u64| {
        for key in ["audience", "locales", "seeds"] {
            assert_eq!(sharded[key], unsharded[key], "{key}");
        }
        let shards = sharded["shards"].as_array().expect("shards");
        assert_eq!(shards.len(), 4);
        for key in [
            "recipients",
            "to_send",
            "already_sent",
            "failed",
            "uncertain",
        ] {
            let sum: u64 = shards.iter().map(|s| s[key].as_u64().unwrap()).sum();
            let total = if key == "recipients" {
                expected.len() as u64
            } else {
                sharded[key].as_u64().unwrap()
            };
            assert_eq!(sum, total, "{key}");
        }
        assert_eq!(sharded["already_sent"].as_u64(), Some(sent));
        assert_eq!(
            sharded["to_send"].as_u64().unwrap() + sent,
            unsharded["to_send"].as_u64().unwrap()
        );
    };
    check(&plan(&workspace), 0);
    workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(0);
    let sent = expected.iter().filter(|a| shard_of(a, 4) == 1).count() as u64;
    check(&plan(&workspace), sent);
    let run = workspace.run(["plan", "campaigns"]).code(0);
    let text = &run.stdout;
    assert!(
        text.contains(
            "\n  state     campaigns/.herald (a store per shard: shard-<i>-of-4 inside it)\n"
        ),
        "{text}"
    );
    let second = text
        .lines()
        .find(|l| l.starts_with("  shard 1 of 4: "))
        .expect("a line for shard 1");
    assert!(
        second.starts_with(&format!(
            "  shard 1 of 4: {sent} recipients, {sent} already sent, 0 to send in 0 calls"
        )),
        "{second}"
    );
}

/// A `rollout.seed` address goes to the shard that owns it, inside the audience or not:
/// in stage `seed`, shards together send each seed once, each from its owner's store.
#[test]
fn seeds_go_to_the_shards_that_own_them() {
    const SEEDS: [&str; 4] = [
        "alice@example.com",
        "bob@example.com",
        "user3@example.com",
        "dave@example.net",
    ];
    let (workspace, _) = sharded(20, 4);
    workspace.edit(
        CAMPAIGN,
        "  shards: 4",
        &format!(
            "  shards: 4\n  stage: seed\n  rollout: {{seed: [{}]}}",
            SEEDS.join(", ")
        ),
    );
    for shard in 0..4 {
        workspace
            .run(["apply", "campaigns", "--shard", &shard.to_string()])
            .code(0);
    }
    let got = outbox(&workspace);
    assert_eq!(
        got.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        SEEDS.into_iter().collect()
    );
    assert!(got.values().all(|n| *n == 1));
    for seed in SEEDS {
        let owner = shard_of(seed, 4);
        for shard in 0..4 {
            let listed = workspace
                .run([
                    "status",
                    "welcome",
                    "--recipients",
                    "sent",
                    "-o",
                    "json",
                    "--state",
                    &format!("campaigns/.herald/shard-{shard}-of-4"),
                ])
                .code(0)
                .json();
            let has = listed["campaigns"][0]["recipients"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["address"] == seed));
            assert_eq!(has, shard == owner, "{seed} in shard {shard}");
        }
    }
}

/// `shards` added to a campaign that began without: refused, naming the folder's own store.
#[test]
fn shards_added_after_sending_began_are_refused() {
    let (workspace, _) = sharded(30, 1);
    workspace.run(["apply", "campaigns"]).code(0);
    let sent = outbox(&workspace).len();
    workspace.edit(CAMPAIGN, "shards: 1", "shards: 2");
    for args in [&["--shard", "1"][..], &[]] {
        workspace
            .run(["apply", "campaigns"].iter().chain(args))
            .code(2)
            .stderr(
                "error: campaign `welcome`: `spec.shards` is 2, but sending began with 1 shard, in \
                 `campaigns/.herald`; each recipient would move to a shard whose store never saw \
                 them and be sent again: set `shards` back; nothing was sent\n",
            );
    }
    assert_eq!(outbox(&workspace).len(), sent);
}

/// `--require-state` with shards asks for the state folder's own store (`herald init`);
/// each shard creates its store inside it on first use.
#[test]
fn require_state_asks_for_the_initialized_folder() {
    let (workspace, expected) = sharded(40, 2);
    let require = [("HERALD_REQUIRE_STATE", "1")];
    workspace
        .run_env(["apply", "campaigns", "--shard", "0"], &require)
        .code(2)
        .stderr(
            "error: campaigns/.herald: no state store, and --require-state is set: create it with \
             `herald init --state campaigns/.herald` (each shard keeps its own store inside it); \
             nothing was sent\n",
        );
    workspace
        .run(["init", "--state", "campaigns/.herald"])
        .code(0);
    for shard in ["0", "1"] {
        workspace
            .run_env(["apply", "campaigns", "--shard", shard], &require)
            .code(0);
    }
    assert_eq!(
        outbox(&workspace).keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let status = workspace
        .run(["status", "--path", "campaigns", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(
        status["campaigns"][0]["sent"].as_u64(),
        Some(expected.len() as u64)
    );
}

const SUPPRESSIONS_TOKEN: &str = "shards-test-suppressions-token-5f0c2a9e";

/// Waits until something listens on `port`, at most 30 s.
fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `--suppressions-from` a source that cannot be read: nothing sent, exit 2 for what the
/// user must fix (the token missing or refused), 1 for what may pass (unreachable).
fn assert_unreadable_lists_send_nothing(workspace: &Workspace, url: &str) {
    let shard0 = |env: &[(&str, &str)], from: &str| {
        workspace.run_env(
            [
                "apply",
                "campaigns",
                "--shard",
                "0",
                "--suppressions-from",
                from,
            ],
            env,
        )
    };
    shard0(&[], url).code(2).stderr(&format!(
        "error: cannot read the suppression list from {url}: `--suppressions-from {url}` needs the \
         service's suppressions token in HERALD_SUPPRESSIONS_TOKEN; nothing was sent\n"
    ));
    shard0(
        &[(
            "HERALD_SUPPRESSIONS_TOKEN",
            "another-token-of-forty-characters-long!!",
        )],
        url,
    )
    .code(2)
    .stderr(&format!(
        "error: cannot read the suppression list from {url}: {url}/suppressions refused the \
             suppressions token in HERALD_SUPPRESSIONS_TOKEN (403: not the suppressions token); \
             nothing was sent\n"
    ));
    let down = format!("http://127.0.0.1:{}", crate::http::free_port());
    let unreachable = shard0(&[("HERALD_SUPPRESSIONS_TOKEN", SUPPRESSIONS_TOKEN)], &down).code(1);
    assert!(
        unreachable.stderr.starts_with(&format!(
            "error: cannot read the suppression list from {down}: cannot ask {down}/suppressions: "
        )) && unreachable.stderr.contains("Connection refused"),
        "{}",
        unreachable.stderr
    );
    // A 503 from something in between (a proxy, a service starting) may pass: retried.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_url = format!("http://{}", busy.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for mut stream in busy.incoming().flatten() {
            let _ = stream.read(&mut [0; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n");
        }
    });
    shard0(
        &[("HERALD_SUPPRESSIONS_TOKEN", SUPPRESSIONS_TOKEN)],
        &busy_url,
    )
    .code(1)
    .stderr(&format!(
        "error: cannot read the suppression list from {busy_url}: {busy_url}/suppressions answered \
             503: busy; nothing was sent\n"
    ));
    // A password in the URL is refused, and never shown.
    let with_password = url.replace("http://", "http://mailer:s3cret-in-url@");
    let shown = url.replace("http://", "http://***@");
    let run = shard0(
        &[("HERALD_SUPPRESSIONS_TOKEN", SUPPRESSIONS_TOKEN)],
        &with_password,
    )
    .code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot read the suppression list from {shown}: `--suppressions-from {shown}` holds a \
             user name or password in the URL; herald authenticates with the suppressions token in \
             HERALD_SUPPRESSIONS_TOKEN alone: take them out; nothing was sent\n"
        )
    );
    // A token no header can carry is the user's to fix.
    shard0(&[("HERALD_SUPPRESSIONS_TOKEN", "a-token-of-forty-characters\nwith-a-break")], url)
        .code(2)
        .stderr(&format!(
            "error: cannot read the suppression list from {url}: the suppressions token in \
             HERALD_SUPPRESSIONS_TOKEN holds a line break or another control character, which no HTTP \
             header can carry; nothing was sent\n"
        ));
}

/// `herald suppressions add ADDRESS` on the service's store (through its socket while it runs).
fn suppress(workspace: &Workspace, address: &str) {
    let args = ["suppressions", "add", address, "--reason", "complained"];
    workspace
        .run(args.into_iter().chain(["--state", "service"]))
        .code(0);
}

/// The store-wide suppression list of the service (`watch --listen`, a store of its own)
/// reaches shards sending from other processes: each reads it over the authenticated
/// endpoint (or the service's state folder) before sending; a shard that cannot read it
/// sends nothing. The service itself leaves the sharded campaign to its shards.
#[test]
fn shards_skip_the_services_suppression_list_and_send_nothing_without_it() {
    let (workspace, mut expected) = sharded(400, 2);
    workspace.run(["init", "--state", "service"]).code(0);
    // One address of each shard opted out at the service before it starts, one while it runs.
    let by_shard = |shard: u32, nth: usize| {
        expected
            .iter()
            .filter(|a| shard_of(a, 2) == shard)
            .nth(nth)
            .unwrap()
            .clone()
    };
    let (early0, early1, late) = (by_shard(0, 0), by_shard(1, 0), by_shard(1, 5));
    for address in [&early0, &early1] {
        suppress(&workspace, address);
    }
    let port = crate::http::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let service = workspace.spawn_env(
        [
            "watch",
            "campaigns",
            "--state",
            "service",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[("HERALD_SUPPRESSIONS_TOKEN", SUPPRESSIONS_TOKEN)],
    );
    wait_listening(port);
    // The port is bound before the store opens; an answer means both are up.
    assert_eq!(crate::http::get(port, "/livez").status, 200);
    suppress(&workspace, &late);

    // The endpoint: only for the bearer of its token.
    assert_eq!(crate::http::get(port, "/suppressions").status, 401);
    let auth = format!("Bearer {SUPPRESSIONS_TOKEN}");
    let listed = crate::http::request(
        "GET",
        port,
        "/suppressions",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["count"], 3, "{}", listed.body);

    assert_unreadable_lists_send_nothing(&workspace, &url);
    assert!(
        outbox(&workspace).is_empty(),
        "nothing is sent without the list"
    );

    // Both shards at once, one over HTTP, one through the service's state folder.
    let token = [("HERALD_SUPPRESSIONS_TOKEN", SUPPRESSIONS_TOKEN)];
    let first = workspace.spawn_env(
        [
            "apply",
            "campaigns",
            "--shard",
            "0",
            "--suppressions-from",
            &url,
        ],
        &token,
    );
    let second = workspace.spawn_env(
        [
            "apply",
            "campaigns",
            "--shard",
            "1",
            "--suppressions-from",
            "service",
        ],
        &[],
    );
    let runs = [first.finish().code(0), second.finish().code(0)];
    for address in [&early0, &early1, &late] {
        expected.remove(address);
    }
    let got = outbox(&workspace);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1), "nobody twice");
    assert!(
        runs[0].stderr.contains(&format!(
            "3 addresses on the suppression list from {url}, 3 of them new to `campaigns/.herald/shard-0-of-2`\n"
        )),
        "{}",
        runs[0].stderr
    );
    // The list was copied into each shard's store: a shard run again without the flag
    // (a retry by hand, say) still skips everyone who opted out.
    let again = workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(0);
    assert_eq!(outbox(&workspace), got, "{}", again.stdout);

    service.signal("-TERM");
    let service = service.finish().code(0);
    assert!(
        service.stdout.contains(
            "welcome: 2 shards send it (`herald apply --shard I`, see docs/operations.md); watch \
             does not, and takes its unsubscribes and events\n"
        ),
        "{}",
        service.stdout
    );
    let mut all: Vec<&crate::harness::Run> = runs.iter().collect();
    all.push(&service);
    crate::harness::assert_nowhere(SUPPRESSIONS_TOKEN, &workspace, &all);
}

/// Guarantee 4 across shards: four processes at once, each at a quarter of the declared
/// rate, against the SendGrid fake answering after 100 ms as a distant provider does.
/// Accepted messages in any window of W seconds stay under `rate * W + max(1, rate)`
/// for the whole campaign, and everyone is taken once.
#[test]
fn four_shards_together_keep_the_declared_rate() {
    use crate::fake_sendgrid::{FakeSendGrid, Scenario};
    use crate::sendgrid::{KEY, KEY_ENV, busiest};
    const RATE: u32 = 40;
    const N: usize = 320;
    let fake = FakeSendGrid::start(Scenario::Latency(Duration::from_millis(100)));
    let workspace = crate::sendgrid::workspace(&fake, N, 1000, true);
    workspace.edit(
        CAMPAIGN,
        "rate: {per_second: 100000}",
        &format!("rate: {{per_second: {RATE}}}\n  shards: 4"),
    );
    let started = Instant::now();
    let shards: Vec<_> = (0..4)
        .map(|i| {
            let index = i.to_string();
            workspace.spawn_env(["apply", "--shard", &index], &[(KEY_ENV, KEY)])
        })
        .collect();
    for shard in shards {
        shard.finish().code(0);
    }
    let took = started.elapsed();
    let log = fake.log();
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    let mut taken: BTreeMap<&str, u32> = BTreeMap::new();
    for accepted in &log.accepted {
        *taken.entry(accepted.to.as_str()).or_default() += 1;
    }
    assert_eq!(taken.len(), N, "everyone");
    assert!(taken.values().all(|n| *n == 1), "nobody twice");
    let times: Vec<std::time::SystemTime> = log.accepted.iter().map(|a| a.at).collect();
    for seconds in [1u32, 2, 3, 5] {
        let most = busiest(&times, Duration::from_secs(seconds.into()));
        let bound = RATE * seconds + RATE;
        assert!(
            most <= bound as usize,
            "{most} accepted within {seconds} s, bound {bound}"
        );
    }
    // The shares add up to the rate, not four times it: a second's worth at once, then
    // the rest at the rate (the slowest shard bounds it, so allow its share's excess).
    let least = f64::from(u32::try_from(N).unwrap() - RATE) / f64::from(RATE);
    assert!(took.as_secs_f64() >= least * 0.8, "{took:?}");
}

/// Suspending the Job sends SIGTERM to every shard: each finishes and records its calls in
/// flight and exits 1 (interrupted); resumed, each continues where it stopped, nobody twice.
#[test]
fn shards_stopped_by_sigterm_continue_where_each_stopped() {
    let (workspace, expected) = sharded(600, 2);
    workspace.edit(
        CAMPAIGN,
        "rate: {per_second: 1000000}",
        "rate: {per_second: 100}",
    );
    let shards: Vec<_> = (0..2)
        .map(|i| workspace.spawn(["apply", "campaigns", "--shard", &i.to_string()]))
        .collect();
    let start = Instant::now();
    while outbox(&workspace).len() < 100 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    for shard in &shards {
        shard.signal("-TERM");
    }
    for shard in shards {
        let run = shard.finish().code(1);
        assert!(
            run.stdout.contains("welcome: interrupted: sent "),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr
                .contains("stopping: finishing the calls in flight"),
            "{}",
            run.stderr
        );
    }
    let stopped = outbox(&workspace);
    assert!(
        stopped.len() < expected.len(),
        "stopped early: {}",
        stopped.len()
    );
    // Every message written is recorded sent: nothing in flight was lost.
    let sent: u64 = (0..2).map(|i| ledger_sent(&workspace, i, 2)).sum();
    assert_eq!(sent, stopped.len() as u64);
    for i in 0..2 {
        workspace
            .run(["apply", "campaigns", "--shard", &i.to_string()])
            .code(0);
    }
    let got = outbox(&workspace);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1), "nobody twice");
}

/// A shard whose store folder is gone after it began sending is refused, never recreated
/// empty (which would send its whole part again); so is a run with another count that
/// starts while the first shards have not written anything yet (their claims say so).
#[test]
fn a_shard_whose_store_is_gone_is_refused_not_sent_again() {
    let (workspace, expected) = sharded(300, 2);
    for i in 0..2 {
        workspace
            .run(["apply", "campaigns", "--shard", &i.to_string()])
            .code(0);
    }
    let sent = outbox(&workspace);
    assert_eq!(sent.len(), expected.len());
    let store = workspace.path().join("campaigns/.herald/shard-1-of-2");
    std::fs::remove_dir_all(&store).unwrap();
    let refused = workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(2);
    assert!(
        refused.stderr.starts_with("error: campaign `welcome`: shard 1 of 2 began sending it (")
            && refused.stderr.contains(
                "), but its store `campaigns/.herald/shard-1-of-2` is gone: a new store would send everyone \
                 in that shard again. Bring the folder back (from a backup, or the volume it was on); if that \
                 shard really sent nothing, remove `campaigns/.herald/claims/welcome/shard-1-of-2`; nothing was sent\n"
            ),
        "{}",
        refused.stderr
    );
    // Emptied rather than removed: the same.
    std::fs::create_dir(&store).unwrap();
    workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(2);
    // Another shard's store copied, or linked, into its place: refused as not its own.
    std::fs::remove_dir(&store).unwrap();
    let other = workspace.path().join("campaigns/.herald/shard-0-of-2");
    copy_tree(&other, &store);
    let copied = workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(2);
    assert!(
        copied.stderr.contains(
            "error: campaign `welcome`: `campaigns/.herald/shard-1-of-2` holds another store than the one \
             shard 1 of 2 began with"
        ),
        "{}",
        copied.stderr
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::os::unix::fs::symlink("shard-0-of-2", &store).unwrap();
    workspace
        .run(["apply", "campaigns", "--shard", "1"])
        .code(2);
    // A shard's store is not a state folder of its own.
    workspace
        .run(["apply", "campaigns", "--state", "campaigns/.herald/shard-0-of-2"])
        .code(2)
        .stderr(
            "error: `campaigns/.herald/shard-0-of-2` is the store of shard 0 of 2: give the state folder \
             that holds it (`--state campaigns/.herald`), in which herald finds each shard's store; \
             nothing was sent\n",
        );
    assert_eq!(outbox(&workspace), sent, "nobody twice");

    // Claims without a single store written: another count is refused all the same.
    let (fresh, _) = sharded(50, 4);
    std::fs::create_dir_all(fresh.path().join("campaigns/.herald/claims/welcome")).unwrap();
    std::fs::write(
        fresh
            .path()
            .join("campaigns/.herald/claims/welcome/shard-0-of-2"),
        "2026-12-05T00:00:00Z\n",
    )
    .unwrap();
    let changed = fresh.run(["apply", "campaigns", "--shard", "0"]).code(2);
    assert!(
        changed
            .stderr
            .contains("`spec.shards` is 4, but it was claimed with 2 shards"),
        "{}",
        changed.stderr
    );
    assert!(outbox(&fresh).is_empty());
}

/// Copies the folder `from` to `to`, files and folders alike.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every shard in turn in one process: a halt of the first (a relay refusing a fifth of
/// the recipients with 550) exits 3, the code the Job fails on, and the shards after it
/// are not sent: the same cause would halt them too.
#[test]
fn a_halt_exits_3_and_stops_the_shards_after_it() {
    use crate::servers::{Smtpd, smtpd};
    let Some(server) = smtpd(&Smtpd {
        reject: Some(r"^user\d*[05]@"),
        ..Smtpd::default()
    }) else {
        return;
    };
    let (workspace, _) = sharded(400, 2);
    workspace.write(
        "campaigns/transports.yaml",
        &format!(
            "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
             spec: {{type: smtp, host: 127.0.0.1, port: {}, tls: none, timeout_seconds: 5}}\n",
            server.port
        ),
    );
    let run = workspace.run(["apply", "campaigns", "-o", "json"]).code(3);
    let reports = run.json()["campaigns"].as_array().unwrap().clone();
    assert_eq!(
        reports.len(),
        1,
        "shard 1 not sent after shard 0 halted: {reports:?}"
    );
    assert_eq!(reports[0]["shard"], 0);
    assert_eq!(reports[0]["ending"], "halted");
    let to_shard_1 = server
        .recipients()
        .iter()
        .filter(|a| shard_of(a, 2) == 1)
        .count();
    assert_eq!(to_shard_1, 0);
}

/// A campaign that began with shards stays its shards' after its manifest loses
/// `shards`: apply refuses it, and watch, which sends from one store, leaves it alone
/// rather than send everyone again from the state folder's own store.
#[test]
fn watch_never_sends_a_campaign_that_began_with_shards() {
    let (workspace, expected) = sharded(200, 2);
    workspace.run(["apply", "campaigns"]).code(0);
    assert_eq!(outbox(&workspace).len(), expected.len());
    workspace.edit(CAMPAIGN, "  shards: 2\n", "");
    let watching = workspace.spawn(["watch", "campaigns", "--interval", "1h"]);
    std::thread::sleep(Duration::from_secs(3));
    watching.signal("-TERM");
    let run = watching.finish().code(0);
    assert!(
        run.stdout.contains("welcome: 2 shards send it"),
        "{}",
        run.stdout
    );
    let got = outbox(&workspace);
    assert_eq!(got.len(), expected.len(), "nobody twice: {}", run.stdout);
    assert!(got.values().all(|n| *n == 1));
}

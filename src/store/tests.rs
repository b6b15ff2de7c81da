use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

fn record(status: Status) -> RecipientRecord {
    RecipientRecord {
        status,
        attempts: 1,
        revision: 1,
        provider_id: None,
        reason: None,
        updated: now(),
    }
}

/// Records `records` as they are, their prior statuses looked up.
fn finish(campaign: &CampaignStore, records: Vec<(String, Option<RecipientRecord>)>) {
    let changes = campaign.changes_from_store(records).unwrap();
    campaign.finish(None, &changes).unwrap();
}

/// Opens the store at `path` again once sled's flusher has let go of the last one.
fn reopen(path: &Path) -> Result<Store, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path, IfMissing::Refuse) {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A store with `n` sent recipients in campaign `launch`, written in batches of 100.
fn filled(path: &Path, n: usize) {
    let store = Store::open(path, IfMissing::Create).unwrap();
    let campaign = store.campaign("launch").unwrap();
    for batch in 0..n.div_ceil(100) {
        let records: Vec<_> = (batch * 100..(batch * 100 + 100).min(n))
            .map(|i| {
                (
                    format!("user{i:05}@example.com"),
                    Some(record(Status::Sent)),
                )
            })
            .collect();
        finish(&campaign, records);
    }
}

#[test]
fn intents_left_behind_become_uncertain_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), IfMissing::Create).unwrap();
        let campaign = store.campaign("launch").unwrap();
        finish(
            &campaign,
            vec![("a@example.com".into(), Some(record(Status::Sent)))],
        );
        for who in ["b@example.com", "c@example.com"] {
            campaign
                .begin(&Intent {
                    revision: 1,
                    started: now(),
                    recipients: vec![(who.into(), 1)],
                })
                .unwrap();
        }
    }
    let store = reopen(dir.path()).unwrap();
    let campaign = store.campaign("launch").unwrap();
    assert_eq!(
        campaign.status("b@example.com").unwrap(),
        Some(Status::InFlight)
    );
    assert_eq!(campaign.counts().in_flight, 2);
    assert_eq!(
        store.recover().unwrap(),
        BTreeMap::from([("launch".to_owned(), 2)])
    );
    let campaign = store.campaign("launch").unwrap();
    assert_eq!(
        campaign.status("c@example.com").unwrap(),
        Some(Status::Uncertain)
    );
    let counts = campaign.counts();
    assert_eq!((counts.sent, counts.uncertain, counts.in_flight), (1, 2, 0));
    assert_eq!(store.campaign_names().unwrap(), ["launch"]);
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), IfMissing::Create).unwrap();
    let error = Store::open(dir.path(), IfMissing::Create)
        .err()
        .expect("locked");
    assert!(
        error
            .to_string()
            .contains("is in use by another herald process"),
        "{error}"
    );
}

#[test]
fn counts_follow_every_write_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 250);
    let store = reopen(dir.path()).unwrap();
    let campaign = store.campaign("launch").unwrap();
    assert_eq!(campaign.counts().sent, 250);
    finish(
        &campaign,
        vec![
            ("user00000@example.com".into(), Some(record(Status::Failed))),
            ("user00001@example.com".into(), None),
            ("new@example.com".into(), Some(record(Status::Uncertain))),
        ],
    );
    let counts = campaign.counts();
    assert_eq!((counts.sent, counts.failed, counts.uncertain), (248, 1, 1));
    drop((campaign, store));
    let counts = reopen(dir.path())
        .unwrap()
        .campaign("launch")
        .unwrap()
        .counts();
    assert_eq!((counts.sent, counts.failed, counts.uncertain), (248, 1, 1));
}

/// What the next open says about a store damaged by `damage` after it was filled.
fn after(damage: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 3000);
    // Let sled's flusher let go before the files are touched.
    drop(reopen(dir.path()).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    damage(dir.path());
    match reopen(dir.path()) {
        Ok(store) => format!(
            "opened with {} sent",
            store.campaign("launch").unwrap().counts().sent
        ),
        Err(error) => error.to_string(),
    }
}

fn expect_damaged(outcome: &str, what: &str) {
    assert!(
        outcome.contains("cannot be read back whole"),
        "{what}: {outcome}"
    );
}

/// Damage may be refused, or may have hit nothing sled still needed: then every record is
/// there. Opening with fewer records is the one outcome that must never happen.
fn expect_whole_or_refused(outcome: &str, what: &str) {
    assert!(
        outcome == "opened with 3000 sent" || outcome.contains("cannot be read back whole"),
        "{what}: {outcome}"
    );
}

#[test]
fn truncated_data_files_are_refused() {
    // A cut into what the ledger vouches for is always refused; a cut of the few bytes
    // sled adds when it closes may lose nothing, and then everything must be there.
    for keep in [
        Keep::Recorded(1),
        Keep::Recorded(4096),
        Keep::Half,
        Keep::Recorded(0),
    ] {
        let outcome = after(|path| {
            let db = path.join("db");
            let recorded = ledger::read(path).unwrap().unwrap().db_bytes;
            let size = std::fs::metadata(&db).unwrap().len();
            let length = match keep {
                Keep::Recorded(less) => recorded - less,
                Keep::Half => size / 2,
            };
            let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            file.set_len(length).unwrap();
        });
        match keep {
            Keep::Recorded(0) => expect_whole_or_refused(&outcome, "cut to the recorded size"),
            _ => expect_damaged(&outcome, &format!("{keep:?}")),
        }
    }
}

/// sled gives back free segments at the end of its file whenever it likes; killed after
/// it did and before herald's next ledger write, the file is a segment or more shorter
/// than the ledger recorded and has lost nothing (the crash test found this).
#[test]
fn a_file_sled_shortened_by_whole_segments_opens_whole() {
    let outcome = after(|path| {
        // A closed store ends a byte short of its last segment; sled's own cut is to the
        // boundary.
        let db = path.join("db");
        let segment = 512 * 1024;
        let size = std::fs::metadata(&db)
            .unwrap()
            .len()
            .next_multiple_of(segment);
        let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.set_len(size).unwrap();
        let mut recorded = ledger::read(path).unwrap().unwrap();
        recorded.db_bytes = size + 2 * segment;
        ledger::write(path, &recorded).unwrap();
    });
    assert_eq!(outcome, "opened with 3000 sent");
}

#[derive(Debug, Clone, Copy)]
enum Keep {
    /// The size the ledger recorded, less this many bytes.
    Recorded(u64),
    Half,
}

#[test]
fn flipped_bytes_are_refused() {
    let mut refused = 0;
    for offset in (20..1_000_000).step_by(110_000) {
        let outcome = after(|path| {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path.join("db"))
                .unwrap();
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&[0xff, 0x00, 0xaa, 0x55, 0x13]).unwrap();
        });
        expect_whole_or_refused(&outcome, &format!("flipped at {offset}"));
        refused += usize::from(outcome.contains("cannot be read back whole"));
    }
    assert!(refused > 0, "no flip was noticed at all");
}

#[test]
fn a_missing_or_damaged_ledger_or_data_file_is_refused() {
    let outcome = after(|path| std::fs::remove_file(path.join(ledger::FILE)).unwrap());
    assert!(
        outcome.contains("its ledger herald-state.json is missing"),
        "{outcome}"
    );

    let outcome = after(|path| {
        let file = path.join(ledger::FILE);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("\"sent\": 3000", "\"sent\": 2000")).unwrap();
    });
    assert!(outcome.contains("does not match its checksum"), "{outcome}");

    let outcome = after(|path| std::fs::remove_file(path.join("db")).unwrap());
    expect_damaged(&outcome, "data file removed");

    let outcome = after(|path| {
        std::fs::remove_file(path.join("db")).unwrap();
        std::fs::remove_file(path.join("conf")).unwrap();
    });
    expect_damaged(&outcome, "sled's files removed");
}

#[test]
fn a_store_restored_from_an_older_copy_of_its_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    filled(dir.path(), 100);
    std::thread::sleep(Duration::from_millis(100));
    for name in ["db", "conf"] {
        std::fs::copy(dir.path().join(name), backup.path().join(name)).unwrap();
    }
    {
        let store = reopen(dir.path()).unwrap();
        let campaign = store.campaign("launch").unwrap();
        finish(
            &campaign,
            vec![("late@example.com".into(), Some(record(Status::Sent)))],
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    for name in ["db", "conf"] {
        std::fs::copy(backup.path().join(name), dir.path().join(name)).unwrap();
    }
    let error = reopen(dir.path()).err().expect("refused");
    expect_damaged(&error.to_string(), "an older copy of the data");
}

#[test]
fn folders_that_are_not_stores_are_refused_and_missing_ones_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let error = Store::open(dir.path(), IfMissing::Create).err().unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a herald state store: it holds `notes.txt` but neither a ledger (herald-state.json) nor sled's files; point --state at the store, or at a folder that does not exist yet",
            dir.path().display()
        )
    );
    let missing = dir.path().join("state");
    let error = Store::open(&missing, IfMissing::Refuse).err().unwrap();
    assert!(matches!(error, StoreError::Missing { .. }), "{error}");
    assert!(!missing.exists(), "refusing creates nothing");
    drop(Store::init(&missing).unwrap());
    assert!(matches!(
        Store::init(&missing).err().unwrap(),
        StoreError::Exists { .. } | StoreError::Locked { .. }
    ));
}

/// A store as herald's first format wrote it: records under each address (status byte,
/// then JSON), one intent under `\0in-flight`, no ledger.
fn first_format(path: &Path) {
    let db = sled::open(path).unwrap();
    db.insert(FORMAT_KEY, FIRST_FORMAT).unwrap();
    let tree = db.open_tree(format!("{RECIPIENTS}launch")).unwrap();
    for (address, status) in [
        ("a@example.com", Status::Sent),
        ("b@example.com", Status::Uncertain),
        ("c@example.com", Status::Failed),
    ] {
        let mut value = vec![status.code()];
        serde_json::to_writer(&mut value, &record(status)).unwrap();
        tree.insert(address, value).unwrap();
    }
    let intent = Intent {
        revision: 1,
        started: now(),
        recipients: vec![("d@example.com".to_owned(), 1)],
    };
    tree.insert(IN_FLIGHT, serde_json::to_vec(&intent).unwrap())
        .unwrap();
    db.flush().unwrap();
}

/// A first-format store is upgraded in place: its records under each address read as
/// before, its intent recovers as uncertain, and a later call's outcome for someone
/// replaces their old record, also after reopening.
#[test]
fn records_of_the_first_format_are_read_and_later_outcomes_replace_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    first_format(&path);
    let store = reopen(&path).unwrap();
    assert_eq!(store.recover().unwrap().get("launch"), Some(&1));
    let campaign = store.campaign("launch").unwrap();
    let counts = campaign.counts();
    assert_eq!((counts.sent, counts.failed, counts.uncertain), (1, 1, 2));
    assert_eq!(
        campaign.get("c@example.com").unwrap().map(|r| r.status),
        Some(Status::Failed)
    );
    // b, uncertain, is sent again and accepted.
    finish(
        &campaign,
        vec![("b@example.com".to_owned(), Some(record(Status::Sent)))],
    );
    let listed = |campaign: &CampaignStore, status| -> Vec<String> {
        campaign
            .list(status)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        listed(&campaign, Status::Sent),
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(listed(&campaign, Status::Uncertain), ["d@example.com"]);
    drop((campaign, store));

    let store = reopen(&path).unwrap();
    let campaign = store.campaign("launch").unwrap();
    let counts = campaign.counts();
    assert_eq!((counts.sent, counts.failed, counts.uncertain), (2, 1, 1));
    assert_eq!(
        campaign.status("b@example.com").unwrap(),
        Some(Status::Sent)
    );
    assert_eq!(
        listed(&campaign, Status::Sent),
        ["a@example.com", "b@example.com"]
    );
    assert_eq!(
        campaign
            .get("d@example.com")
            .unwrap()
            .unwrap()
            .reason
            .as_deref(),
        Some(campaign::RECOVERED)
    );
}

#[test]
fn the_suppression_list_lasts_and_keeps_the_first_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let store = Store::open(&path, IfMissing::Create).unwrap();
    let unsubscribed = Suppression::new("unsubscribed", Some("launch"));
    assert!(store.suppress("a@example.com", &unsubscribed).unwrap());
    assert!(
        !store
            .suppress("a@example.com", &Suppression::new("bounced", None))
            .unwrap()
    );
    assert!(
        store
            .suppress("b@example.com", &Suppression::new("bounced", None))
            .unwrap()
    );
    drop(store);
    let store = reopen(&path).unwrap();
    assert_eq!(store.suppressed("a@example.com"), Some(unsubscribed));
    assert!(store.unsuppress("b@example.com").unwrap());
    assert!(!store.unsuppress("b@example.com").unwrap());
    drop(store);
    let store = reopen(&path).unwrap();
    assert_eq!(
        store.suppressions().keys().collect::<Vec<_>>(),
        ["a@example.com"]
    );
}

/// A creation killed before its ledger was written leaves its marker: nothing was ever
/// recorded there, so the store is created again, not refused as damaged.
#[test]
fn a_creation_killed_half_way_is_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join(open::CREATING), "").unwrap();
    drop(sled::open(&path).unwrap());
    assert!(Store::open_existing(&path).unwrap().is_none());
    assert!(matches!(reopen(&path), Err(StoreError::Missing { .. })));
    let store = Store::open(&path, IfMissing::Create).unwrap();
    assert!(!path.join(open::CREATING).exists());
    drop(store);
    reopen(&path).unwrap();

    // A marker beside anything but sled's files is not herald's: never wiped.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join(open::CREATING), "").unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        Store::open(&other, IfMissing::Create),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
}

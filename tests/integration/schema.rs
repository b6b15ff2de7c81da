//! `herald schema` and the checked-in schema must not drift apart.

use crate::harness::Test;

#[test]
fn schema_output_equals_the_checked_in_file() {
    let checked_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/herald-v1.schema.json"
    ))
    .expect("schemas/herald-v1.schema.json exists");
    let run = Test::new().args(["schema"]).run().code(0);
    assert!(
        run.stdout == checked_in,
        "schemas/herald-v1.schema.json is stale: run `cargo run -- schema > schemas/herald-v1.schema.json`"
    );
}

#[test]
fn schema_requires_per_recipient_isolation() {
    let run = Test::new().args(["schema"]).run().code(0);
    let schema = run.json();
    let batch = &schema["$defs"]["CampaignSpec"]["properties"]["batch"];
    assert_eq!(batch["properties"]["isolation"]["const"], "per-recipient");
    let required: Vec<&str> = batch["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"isolation"), "{required:?}");
}

#[test]
fn shipped_manifests_point_editors_at_the_schema() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with(
                    "# yaml-language-server: $schema=../schemas/herald-v1.schema.json\n"
                ),
                "{} lacks the schema comment",
                path.display()
            );
        }
    }
}

//! The JSON Schema of the `herald/v1` manifest format, generated from the serde types.
//!
//! `schemas/herald-v1.schema.json` is this output, checked in so that editors can validate
//! manifests as they are typed; a test fails when the two drift apart.

use super::model::Document;

/// The schema as pretty-printed JSON, ending in a newline.
pub fn json() -> String {
    let schema = schemars::schema_for!(Document);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

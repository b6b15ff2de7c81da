//! Rules over a whole set of manifests, isolation first: what no document can be judged
//! on alone.
//!
//! # Guarantees
//! - No campaign loads unless `spec.batch.isolation` is exactly `per-recipient`. A missing
//!   value is refused too: herald never picks a default for the rule it exists to enforce.
//!   The transports check the same property again on every batch, right before each call.
//! - Every campaign names a transport that exists, and its `batch.size` fits that
//!   transport's limit, so no batch is ever cut larger than a provider call can carry.

use std::collections::HashMap;

use serde_yaml::Value;

use super::model::{CampaignDoc, PER_RECIPIENT, TransportDoc};
use super::{Diagnostic, Documents, Loaded, Location, Problem};

pub fn check(documents: &Documents, out: &mut Vec<Diagnostic>) {
    let transports: HashMap<&str, &Loaded<TransportDoc>> = documents
        .transports
        .iter()
        .map(|t| (t.doc.metadata.name.as_str(), t))
        .collect();

    for campaign in &documents.campaigns {
        let mut found = Vec::new();
        rules(campaign, &transports, documents, &mut found);
        // What a key taken out of the document explains is not a problem of its own.
        out.extend(found.into_iter().filter(|d| !campaign.explains(d)));
    }
}

/// What is wrong with a campaign's isolation, if anything.
pub struct Isolation {
    problem: Problem,
    /// Whether the problem is the value written (else that none is).
    at_value: bool,
}

impl Isolation {
    pub fn at<T>(self, loaded: &Loaded<T>) -> Diagnostic {
        if self.at_value {
            loaded.at_value(ISOLATION, self.problem)
        } else {
            loaded.at_key(ISOLATION, self.problem)
        }
    }
}

const ISOLATION: &str = "spec.batch.isolation";

/// Judges `spec.batch.isolation` as written: only `per-recipient` passes.
pub fn isolation(found: Option<&Value>) -> Option<Isolation> {
    match found {
        Some(Value::String(value)) if value == PER_RECIPIENT => None,
        None | Some(Value::Null) => Some(Isolation {
            problem: Problem::IsolationMissing,
            at_value: false,
        }),
        Some(other) => Some(Isolation {
            problem: Problem::IsolationRefused {
                found: describe(other),
            },
            at_value: true,
        }),
    }
}

/// The rules of one campaign that need the other documents.
fn rules(
    campaign: &Loaded<CampaignDoc>,
    transports: &HashMap<&str, &Loaded<TransportDoc>>,
    documents: &Documents,
    out: &mut Vec<Diagnostic>,
) {
    let spec = &campaign.doc.spec;
    let batch = spec.batch.as_ref();
    if let Some(problem) = isolation(batch.and_then(|b| b.isolation.as_ref())) {
        out.push(problem.at(campaign));
    }

    let transport = transports.get(spec.transport.as_str());
    let untyped = documents.untyped_transports.contains(&spec.transport);
    if transport.is_none() && !untyped {
        let mut names: Vec<&str> = transports.keys().copied().collect();
        names.sort_unstable();
        let known = if names.is_empty() {
            "no transports are defined".to_owned()
        } else {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("defined: {}", list.join(", "))
        };
        let problem = Problem::TransportUnknown {
            name: spec.transport.clone(),
            known,
        };
        out.push(campaign.at_value("spec.transport", problem));
    }

    let max = transport.map_or(1000, |t| t.doc.spec.kind.max_batch());
    match batch.and_then(|b| b.size) {
        None => out.push(campaign.at_key("spec.batch.size", Problem::BatchSizeMissing { max })),
        Some(size) if size == 0 || size > max => {
            if let Some(transport) = transport {
                let problem = Problem::BatchSizeOutOfRange {
                    size,
                    transport: transport.doc.metadata.name.clone(),
                    kind: transport.doc.spec.kind.as_str(),
                    max,
                };
                out.push(campaign.at_value("spec.batch.size", problem));
            }
        }
        Some(_) => {}
    }
}

/// How a refused isolation value is named in the message.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.trim().is_empty() => "an empty value".to_owned(),
        Value::String(s) => format!("`{}`", s.escape_debug()),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Null => "`null`".to_owned(),
        Value::Tagged(_) => "a tagged value".to_owned(),
    }
}

/// Names are unique per kind across all files; the first definition wins the message.
pub fn unique_names(documents: &Documents, out: &mut Vec<Diagnostic>) {
    fn check<T>(
        kind: &'static str,
        items: &[Loaded<T>],
        name: impl Fn(&T) -> &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut seen: HashMap<&str, Location> = HashMap::new();
        for item in items {
            let this = name(&item.doc);
            match seen.get(this) {
                Some(first) => {
                    let problem = Problem::NameDuplicate {
                        kind,
                        name: this.to_owned(),
                        first: first.clone(),
                    };
                    out.push(item.at_value("metadata.name", problem));
                }
                None => {
                    seen.insert(this, item.location());
                }
            }
        }
    }
    check("campaign", &documents.campaigns, |d| &d.metadata.name, out);
    check(
        "transport",
        &documents.transports,
        |d| &d.metadata.name,
        out,
    );
}

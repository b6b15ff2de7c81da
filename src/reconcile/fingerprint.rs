//! The content of a campaign as digests per part, so that a change after sending began
//! can be refused with what changed: subject, sender, each template, each catalog file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::digest::sha256;
use crate::input::InputError;
use crate::manifest::Campaign;

/// Part name -> SHA-256 of its content.
pub type Fingerprint = BTreeMap<String, String>;

pub fn of(campaign: &Campaign) -> Result<Fingerprint, InputError> {
    let mut parts = Fingerprint::new();
    parts.insert(
        "subject".into(),
        sha256(campaign.template.subject.as_bytes()),
    );
    let sender = |a: &crate::manifest::Address| {
        format!("{} <{}>", a.name.as_deref().unwrap_or_default(), a.email)
    };
    parts.insert("from".into(), sha256(sender(&campaign.from).as_bytes()));
    if let Some(reply_to) = &campaign.reply_to {
        parts.insert("reply_to".into(), sha256(sender(reply_to).as_bytes()));
    }
    for (part, path) in [
        ("html", &campaign.template.html),
        ("text", &campaign.template.text),
    ] {
        if let Some(path) = path {
            parts.insert(
                format!("template.{part} ({})", file_name(path)),
                sha256(&crate::input::read(path)?),
            );
        }
    }
    let folder = &campaign.locales.catalog;
    let catalogs = crate::input::catalog_files(folder).map_err(|source| InputError::Open {
        path: folder.clone(),
        source,
    })?;
    for path in catalogs {
        parts.insert(
            format!("catalog {}", file_name(&path)),
            sha256(&crate::input::read(&path)?),
        );
    }
    Ok(parts)
}

/// The parts that differ, were added or were removed, by name.
pub fn changed(before: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(now.keys())
        .filter(|k| before.get(*k) != now.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_names_every_part_that_differs_appears_or_goes() {
        let before = Fingerprint::from([
            ("subject".to_owned(), "1".to_owned()),
            ("catalog en.yaml".to_owned(), "2".to_owned()),
            ("catalog ru.yaml".to_owned(), "3".to_owned()),
        ]);
        let now = Fingerprint::from([
            ("subject".to_owned(), "1".to_owned()),
            ("catalog en.yaml".to_owned(), "changed".to_owned()),
            ("catalog zh.yaml".to_owned(), "4".to_owned()),
        ]);
        assert_eq!(
            changed(&before, &now),
            ["catalog en.yaml", "catalog ru.yaml", "catalog zh.yaml"]
        );
        assert!(changed(&now, &now).is_empty());
    }
}

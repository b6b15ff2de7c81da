//! What customers will see change: one sample recipient per locale, rendered on each side
//! by the renderer apply uses, subject, text and HTML compared as unified diffs.
//!
//! # Guarantees
//! - The sample's address is masked wherever the message shows it, and the unsubscribe
//!   token (a working link, when `HERALD_UNSUBSCRIBE_KEY` is set) is replaced by `[token]`.
//! - Both sides render the same person when the old side's sample is still in the new
//!   audience, so a diff shows what changed in the message, not who was picked.

use serde::Serialize;

use super::audience::Side;
use super::mask::{mask, mask_in};
use crate::audience::Recipient;
use crate::render::{RenderError, Rendered};

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Who was rendered, as a review may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleInfo {
    /// Masked.
    pub address: String,
    /// The audience line.
    pub line: u64,
}

/// The parts of one locale's message that change, each a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocaleDiff {
    pub locale: String,
    pub old_sample: Option<SampleInfo>,
    pub new_sample: Option<SampleInfo>,
    /// Whether both samples are the same recipient (else none was on both sides).
    pub same_recipient: bool,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// A message as a review shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Shown {
    subject: String,
    text: String,
    html: String,
}

fn render(side: &Side<'_>, recipient: &Recipient) -> Result<Shown, RenderError> {
    let row = crate::plan::row_label(side.campaign, recipient);
    let rendered: Rendered = side
        .renderer
        .render(&recipient.email, &recipient.record, &row)?;
    let token = side.renderer.token(&recipient.email);
    let clean = |text: &str| mask_in(&text.replace(&token, "[token]"), &recipient.email);
    Ok(Shown {
        subject: clean(&rendered.subject),
        text: rendered.text.as_deref().map(clean).unwrap_or_default(),
        html: rendered.html.as_deref().map(clean).unwrap_or_default(),
    })
}

/// The diff of `locale` between the old sample (if any) and the new one (if any); `None`
/// when the message is the same.
pub fn compare(
    locale: &str,
    old: Option<(&Side<'_>, &Recipient)>,
    new: Option<(&Side<'_>, &Recipient)>,
) -> Result<Option<LocaleDiff>, RenderError> {
    let before = old.map(|(side, r)| render(side, r)).transpose()?;
    let after = new.map(|(side, r)| render(side, r)).transpose()?;
    let (before, after) = (before.unwrap_or_default(), after.unwrap_or_default());
    if before == after && old.is_some() && new.is_some() {
        return Ok(None);
    }
    let info = |side: Option<(&Side<'_>, &Recipient)>| {
        side.map(|(_, r)| SampleInfo {
            address: mask(&r.email),
            line: r.line,
        })
    };
    Ok(Some(LocaleDiff {
        locale: locale.to_owned(),
        old_sample: info(old),
        new_sample: info(new),
        same_recipient: match (old, new) {
            (Some((_, a)), Some((_, b))) => {
                crate::audience::normalize(&a.email) == crate::audience::normalize(&b.email)
            }
            _ => false,
        },
        subject: unified(locale, "subject", &before.subject, &after.subject),
        text: unified(locale, "text", &before.text, &after.text),
        html: unified(locale, "html", &before.html, &after.html),
    }))
}

/// A unified diff of `old` and `new`, or `None` when they are the same.
pub fn unified(locale: &str, part: &str, old: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    // One line each, ending in a line break, so that the last line compares like the others.
    let old = with_newline(old);
    let new = with_newline(new);
    let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str());
    Some(
        diff.unified_diff()
            .context_radius(CONTEXT)
            .header(
                &format!("old/{locale}/{part}"),
                &format!("new/{locale}/{part}"),
            )
            .to_string(),
    )
}

fn with_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn a_changed_line_is_shown_with_its_context() {
        let old = "Hello Ann\nWe changed the index.\nBye\n";
        let new = "Hello Ann\nWe changed the index methodology.\nBye\n";
        assert_eq!(
            unified("en", "text", old, new).unwrap(),
            "--- old/en/text\n+++ new/en/text\n@@ -1,3 +1,3 @@\n Hello Ann\n-We changed the index.\n+We changed the index methodology.\n Bye\n"
        );
        assert_eq!(unified("en", "text", old, old), None);
        assert_eq!(
            unified("ja", "subject", "", "ようこそ").unwrap(),
            "--- old/ja/subject\n+++ new/ja/subject\n@@ -0,0 +1 @@\n+ようこそ\n"
        );
    }
}

//! The unsubscribe link of each recipient: most are `https://host/path/{{ unsubscribe_token }}`,
//! text around the token, which needs no template run per recipient; any other is a
//! template, its values percent-encoded.

use minijinja::Environment;

use super::RenderError;
use super::check;
use super::environment::{UNSUBSCRIBE, add};
use crate::manifest::Campaign;

/// How the unsubscribe link is made: most are `https://host/path/{{ unsubscribe_token }}`,
/// text around the token, which needs no template run per recipient.
pub(super) enum Link {
    Around { before: String, after: String },
    Template,
}

impl Link {
    pub(super) fn new(source: &str) -> Self {
        let plain = |text: &str| !text.contains(['{', '}']);
        match source.split_once("{{ unsubscribe_token }}") {
            Some((before, after)) if plain(before) && plain(after) => Self::Around {
                before: before.to_owned(),
                after: after.to_owned(),
            },
            _ => Self::Template,
        }
    }
}

/// The campaign's unsubscribe link, compiled, and its name in messages. A link that is text
/// around the token is checked here once: only the (hex) token varies.
pub(super) fn compile(
    env: &mut Environment<'static>,
    campaign: &Campaign,
) -> Result<(Option<Link>, String), RenderError> {
    let name = format!("{}: spec.unsubscribe.url", campaign.location.file.display());
    let Some(unsubscribe) = &campaign.unsubscribe else {
        return Ok((None, name));
    };
    add(env, UNSUBSCRIBE, unsubscribe.url.clone())?;
    let link = Link::new(&unsubscribe.url);
    if let Link::Around { before, after } = &link {
        let sample = format!("{before}{}{after}", "0".repeat(32));
        check::link(&sample).map_err(|message| RenderError::Syntax {
            template: name.clone(),
            message: format!("the link {message}"),
        })?;
    }
    Ok((Some(link), name))
}

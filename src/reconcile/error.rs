use crate::manifest::Location;
use crate::plan::PlanError;
use crate::store::StoreError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "{at}: spec.revision: content changed after sending began ({}); {sent} {} already got revision {revision}. \
         Bump spec.revision to {} to send the new content to those not sent yet, or undo the change",
        changed.join(", "),
        if *sent == 1 { "recipient" } else { "recipients" },
        revision + 1
    )]
    ContentChanged {
        at: Location,
        changed: Vec<String>,
        sent: u64,
        revision: u32,
    },
    #[error(
        "{at}: spec.revision: `{manifest}` is older than revision {stored}, which was already sent; revisions only move forward"
    )]
    RevisionWentBack {
        at: Location,
        manifest: u32,
        stored: u32,
    },
    #[error("cannot read the campaign's content to fingerprint it: {0}")]
    Content(crate::input::InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "{at}: spec.unsubscribe.url: {} is not set, so every unsubscribe link would be signed with a fixed key anyone can use to unsubscribe anyone; transport `{transport}` delivers mail, so herald refuses: export a random secret there (`openssl rand -hex 32`) and keep it for as long as the links must work",
        crate::render::UNSUBSCRIBE_KEY_ENV
    )]
    UnsubscribeUnkeyed {
        at: crate::manifest::Location,
        transport: String,
    },
}

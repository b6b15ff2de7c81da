//! What a send reports as it goes, for whoever shows it. The core only says what
//! happened; the command line draws a bar from it, and anything else (a test, a service)
//! may listen the same way.

use std::sync::Arc;

/// One step of a campaign's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Sending began, with `due` recipients to go.
    Started { campaign: &'a str, due: u64 },
    /// `settled` more recipients have an outcome.
    Settled { campaign: &'a str, settled: u64 },
    /// The send is over, however it ended.
    Finished { campaign: &'a str },
}

type Listen = dyn Fn(Progress<'_>) + Send + Sync;

/// Who hears a send's progress. Cheap to clone.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<Listen>>);

impl Observer {
    pub fn new(listen: impl Fn(Progress<'_>) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(listen)))
    }

    pub fn tell(&self, progress: Progress<'_>) {
        if let Some(listen) = &self.0 {
            listen(progress);
        }
    }
}

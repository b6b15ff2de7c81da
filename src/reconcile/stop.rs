//! A request to stop sending (Ctrl-C, SIGTERM, or watch seeing the campaign change),
//! shared by everything that waits: the executor before each call, and every wait for
//! the rate or a backoff, which it cuts short.

/// The side that waits for the request. Cheap to clone.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

/// The side that asks to stop.
pub struct StopHandle(tokio::sync::watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopHandle, Self) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        (StopHandle(sender), Self(receiver))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopping was asked for.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

//! How recipients share provider calls, decided the same way by plan (to count calls) and
//! by apply (to make them).
//!
//! - Transports that take complete messages (outbox, Postmark, SMTP) put any recipients
//!   in one call, up to its size.
//! - Transports that take shared content and each recipient's values (SendGrid
//!   `substitutions`, Mailgun `recipient-variables`) put together only recipients whose
//!   messages have the same shape (`render::Shape`: a locale's text between the values);
//!   a recipient whose message has no shape, or whose values pass the provider's limits,
//!   gets a call of their own.
//!
//! # Guarantees
//! - A call never holds more than its size, which is never more than one second's worth
//!   of the declared rate (campaign's and transport's), nor the provider's limit.
//! - The same recipients in the same order make the same calls: plan's count is apply's.
//! - At most `BUFFERED` calls' worth of recipients wait for their group to fill; past
//!   that, the fullest group goes out as it is, so memory stays flat however many shapes.

use crate::manifest::TransportKind;
use crate::render::Rendered;

/// How many calls' worth of recipients may wait for their group to fill.
const BUFFERED: usize = 8;
/// The most bytes of personal values (and their tags) one recipient may carry in a call
/// that shares content: SendGrid's limit on `substitutions` per personalization.
pub const MAX_PERSONAL_BYTES: usize = 10_000;
/// The length of a substitution tag herald makes: `-h<8-char nonce><index>-`, at most.
pub const TAG_BYTES: usize = 16;

/// What a recipient's message packs under: `Some(key)` shares a call with others of the
/// same key; `None` gets a call of its own.
pub fn key(kind: TransportKind, rendered: &Rendered) -> Option<String> {
    if !kind.shares_content() {
        return Some(String::new());
    }
    let personal = rendered.personal.as_ref()?;
    let bytes: usize = personal
        .html
        .iter()
        .chain(&personal.text)
        .map(|(start, end)| end - start + TAG_BYTES)
        .sum();
    (bytes <= MAX_PERSONAL_BYTES).then(|| personal.shape.catalog.clone())
}

/// The most recipients one call carries: the batch size, the provider's limit, and one
/// second's worth of each declared rate (at least one).
pub fn call_size(kind: TransportKind, batch: u32, rates: &[f64]) -> usize {
    let mut size = batch.min(kind.max_call());
    for rate in rates {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let second = rate.floor().clamp(1.0, f64::from(u32::MAX)) as u32;
        size = size.min(second);
    }
    size.max(1) as usize
}

/// Groups recipients into calls as they come.
pub struct Packer<T> {
    size: usize,
    /// Groups waiting to fill, in the order their first member came.
    open: Vec<(String, Vec<T>)>,
    waiting: usize,
}

impl<T> Packer<T> {
    pub fn new(size: usize) -> Self {
        Self {
            size,
            open: Vec::new(),
            waiting: 0,
        }
    }

    /// Adds a recipient under `key`; full calls go to `out`.
    pub fn push(&mut self, key: Option<&str>, item: T, out: &mut Vec<Vec<T>>) {
        let Some(key) = key else {
            out.push(vec![item]);
            return;
        };
        let index = if let Some(index) = self.open.iter().position(|(k, _)| k == key) {
            index
        } else {
            self.open
                .push((key.to_owned(), Vec::with_capacity(self.size)));
            self.open.len() - 1
        };
        let group = &mut self.open[index].1;
        group.push(item);
        self.waiting += 1;
        if group.len() == self.size {
            self.waiting -= group.len();
            out.push(self.open.remove(index).1);
        } else if self.waiting > BUFFERED * self.size {
            let fullest = (0..self.open.len())
                .max_by_key(|&i| (self.open[i].1.len(), usize::MAX - i))
                .expect("something is waiting");
            let (_, group) = self.open.remove(fullest);
            self.waiting -= group.len();
            out.push(group);
        }
    }

    /// The groups still waiting, each as a call.
    pub fn finish(self, out: &mut Vec<Vec<T>>) {
        out.extend(self.open.into_iter().map(|(_, group)| group));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fill_per_group_and_solos_go_alone() {
        let mut packer = Packer::new(3);
        let mut calls = Vec::new();
        for (i, key) in ["en", "ja", "en", "en", "ja", "solo", "en"]
            .into_iter()
            .enumerate()
        {
            let key = (key != "solo").then_some(key);
            packer.push(key, i, &mut calls);
        }
        packer.finish(&mut calls);
        assert_eq!(calls, [vec![0, 2, 3], vec![5], vec![1, 4], vec![6]]);
    }

    #[test]
    fn many_shapes_never_hold_more_than_a_few_calls_back() {
        let mut packer = Packer::new(10);
        let mut calls = Vec::new();
        let mut held = 0usize;
        for i in 0..10_000 {
            packer.push(Some(&format!("shape{}", i % 500)), i, &mut calls);
            held = held.max(i + 1 - calls.iter().map(Vec::len).sum::<usize>());
        }
        assert!(held <= BUFFERED * 10 + 1, "{held} waiting at most");
        packer.finish(&mut calls);
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 10_000);
        assert!(calls.iter().all(|c| c.len() <= 10));
    }

    #[test]
    fn a_call_carries_at_most_one_seconds_worth_of_the_rate() {
        assert_eq!(call_size(TransportKind::Sendgrid, 1000, &[50.0]), 50);
        assert_eq!(
            call_size(TransportKind::Sendgrid, 1000, &[100_000.0, 300.0]),
            300
        );
        assert_eq!(call_size(TransportKind::Sendgrid, 1000, &[0.01]), 1);
        assert_eq!(call_size(TransportKind::Sendgrid, 200, &[1e9]), 200);
        assert_eq!(call_size(TransportKind::Smtp, 1000, &[1e6]), 1);
    }
}

//! Streaming an audience: one thread reads and screens rows while the caller works on the
//! previous chunk. Shared by plan (which renders everyone) and apply (which sends the due).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use super::{InvalidRow, PlanError, Rollout};
use crate::audience::{self, Recipient, Record, Screen, Tally, Verdict};
use crate::manifest::Campaign;
use crate::text::List;

/// Recipients handed over together.
pub const CHUNK: usize = 4096;
/// Invalid rows listed by line; the rest are only counted.
const LISTED_INVALID: usize = 20;

/// What the audience held, once walked.
pub struct Walked {
    pub tally: Tally,
    /// Audience addresses each suppression source removed.
    pub suppressed_by: Vec<(String, u64)>,
    /// Up to 20 rows without a valid address.
    pub invalid_rows: Vec<InvalidRow>,
}

/// Screens the audience and calls `each` with chunks of recipients in file order, then with the seed addresses that
/// are not in the audience. A seed outside the audience gets a placeholder row: each column
/// shows its own name, `[first_name]`, so nobody else's data reaches the seed.
pub fn walk<E: From<PlanError>>(
    campaign: &Campaign,
    screen: Screen,
    rollout: &Rollout,
    mut each: impl FnMut(Vec<Recipient>) -> Result<(), E>,
) -> Result<Walked, E> {
    let mut screened = std::thread::scope(|scope| {
        let (chunks, received) = sync_channel(2);
        let screener = scope.spawn(move || screen_audience(campaign, screen, &chunks));
        for chunk in received {
            each(chunk)?;
        }
        screener
            .join()
            .expect("the screening thread does not panic")
            .map_err(E::from)
    })?;

    let mut outside: Vec<&str> = rollout
        .seeds()
        .filter(|s| screened.screen.meet(s))
        .collect();
    outside.sort_unstable();
    if !outside.is_empty() {
        let seeds = outside
            .into_iter()
            .map(|seed| Recipient {
                line: 0,
                email: seed.to_owned(),
                record: Record::placeholder(
                    &screened.columns,
                    &[
                        (campaign.audience.email_field.as_str(), seed),
                        (
                            campaign.locales.field.as_str(),
                            campaign.locales.default.as_str(),
                        ),
                    ],
                ),
            })
            .collect();
        each(seeds)?;
    }
    Ok(Walked {
        tally: screened.screen.tally(),
        suppressed_by: screened.screen.suppressed_by(),
        invalid_rows: screened.invalid_rows,
    })
}

/// Names a recipient's row in messages: `audience.csv:12`, or the seed list. Formatted
/// only when a message needs it.
pub fn row_label<'a>(campaign: &'a Campaign, recipient: &'a Recipient) -> RowLabel<'a> {
    RowLabel {
        campaign,
        recipient,
    }
}

pub struct RowLabel<'a> {
    campaign: &'a Campaign,
    recipient: &'a Recipient,
}

impl std::fmt::Display for RowLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.recipient.line == 0 {
            write!(
                f,
                "{}: rollout.seed `{}`",
                self.campaign.location.file.display(),
                self.recipient.email
            )
        } else {
            write!(
                f,
                "{}:{}",
                self.campaign.audience.file.display(),
                self.recipient.line
            )
        }
    }
}

/// The audience has no `column` for `locales.field`; `columns` are its header's (or
/// its first row's fields).
fn locale_field_missing(
    file: &Path,
    column: &str,
    columns: &[String],
    header: bool,
) -> audience::AudienceError {
    audience::AudienceError::LocaleFieldMissing {
        path: file.to_owned(),
        column: column.to_owned(),
        found: instead(column, columns, header),
    }
}

/// What an audience has instead of `column`: "the header has `a` and `b` (did you mean
/// `b`?)".
fn instead(column: &str, columns: &[String], header: bool) -> String {
    let mut found = if header {
        format!("the header has {}", List::and_ticked(columns))
    } else {
        format!("the first row has {}", List::and_ticked(columns))
    };
    if let Some(near) = crate::text::closest(column, columns.iter().map(String::as_str)) {
        let _ = write!(found, " (did you mean `{near}`?)");
    }
    found
}

/// The zone column under a schedule with `timezone_field`: it must be in a CSV header,
/// and a row naming a zone the database does not know is invalid. Each name is looked up
/// once.
struct Zones<'a> {
    field: Option<&'a str>,
    known: HashMap<String, bool>,
}

impl<'a> Zones<'a> {
    fn new(
        field: Option<&'a str>,
        file: &Path,
        headers: Option<&[String]>,
    ) -> Result<Self, PlanError> {
        if let (Some(headers), Some(column)) = (headers, field) {
            if !headers.iter().any(|h| h == column) {
                return Err(audience::AudienceError::ZoneFieldMissing {
                    path: file.to_owned(),
                    column: column.to_owned(),
                    found: instead(column, headers, true),
                }
                .into());
            }
        }
        Ok(Self {
            field,
            known: HashMap::new(),
        })
    }

    /// The value and the problem, when `record` names a zone the database does not know.
    fn unknown(&mut self, record: &Record) -> Option<(String, String)> {
        let field = self.field?;
        let value = record.get(field)?;
        let name = value.trim();
        if name.is_empty() {
            return None;
        }
        let known = if let Some(known) = self.known.get(name) {
            *known
        } else {
            let known = crate::manifest::zone(name).is_some();
            self.known.insert(name.to_owned(), known);
            known
        };
        if known {
            return None;
        }
        let problem = format!(
            "`{}` in `{field}` is not a time zone of the IANA database",
            name.escape_debug()
        );
        Some((value, problem))
    }
}

struct Screened {
    screen: Screen,
    invalid_rows: Vec<InvalidRow>,
    /// The audience's columns, from its first row.
    columns: Vec<String>,
}

/// Reads and screens every row, sending chunks of recipients. Stops early, and quietly,
/// when the receiver is gone because the caller failed.
fn screen_audience(
    campaign: &Campaign,
    mut screen: Screen,
    chunks: &SyncSender<Vec<Recipient>>,
) -> Result<Screened, PlanError> {
    let file = &campaign.audience.file;
    let locale_field = &campaign.locales.field;
    let mut invalid_rows = Vec::new();
    let mut columns = None;
    let mut chunk = Vec::with_capacity(CHUNK);
    let rows = audience::rows(file, &campaign.audience.email_field)?;
    // A column named in the manifest must be there; left at its default, it may be missing.
    let declared = campaign.locales.field_declared;
    if let Some(headers) = rows.headers().filter(|_| declared) {
        if !headers.contains(locale_field) {
            return Err(locale_field_missing(file, locale_field, headers, true).into());
        }
    }
    let zone_field = campaign
        .schedule
        .as_ref()
        .and_then(|s| s.timezone_field.as_deref());
    let mut zones = Zones::new(zone_field, file, rows.headers())?;
    // JSONL rows name their own fields: the column is missing when no row has it.
    let mut locale_seen = rows.headers().is_some() || !declared;
    for row in rows {
        let row = row?;
        if columns.is_none() {
            columns = Some(row.record.columns());
        }
        if !locale_seen && row.record.get(locale_field).is_some() {
            locale_seen = true;
        }
        match screen.screen_with(row, |record| zones.unknown(record)) {
            Verdict::Send(recipient) => {
                chunk.push(recipient);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if chunks.send(full).is_err() {
                        break;
                    }
                }
            }
            Verdict::Invalid {
                line,
                value,
                problem,
            } => {
                if invalid_rows.len() < LISTED_INVALID {
                    invalid_rows.push(InvalidRow {
                        line,
                        value,
                        problem,
                    });
                }
            }
            Verdict::Duplicate | Verdict::Suppressed | Verdict::Elsewhere => {}
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(chunk);
    }
    if !locale_seen && screen.tally().rows > 0 {
        let columns = columns.unwrap_or_default();
        return Err(locale_field_missing(file, locale_field, &columns, false).into());
    }
    Ok(Screened {
        screen,
        invalid_rows,
        columns: columns.unwrap_or_default(),
    })
}

//! How a recipient record is stored: the status byte first (so counting and recovery
//! read one byte), then the rest in a compact binary form. A store writes a million of
//! these in a campaign of a million; sled's cost per write grows with its size.
//!
//! Layout after the status byte: a version byte (`1`), then attempts, revision and the
//! time of the last change as LEB128 varints, then the provider's id and the reason,
//! each a varint length (0 for none, else length + 1) and UTF-8 bytes. Records herald
//! wrote before (status byte, then JSON) are still read.
//!
//! A call's outcomes are one value: a version byte (`1`), the number of entries, then per
//! entry the address (varint length, bytes) and its record (varint length, bytes; a
//! length of 0, written by stores before the journal, removed the recipient's record).
//! A call's intent: a version byte, the revision, when it began, then per recipient the
//! address and the attempt.

use super::record::{Intent, RecipientRecord, Status};

const VERSION: u8 = 1;

pub fn encode(record: &RecipientRecord, out: &mut Vec<u8>) {
    out.push(record.status.code());
    out.push(VERSION);
    varint(u64::from(record.attempts), out);
    varint(u64::from(record.revision), out);
    varint(record.updated, out);
    for text in [&record.provider_id, &record.reason] {
        match text {
            None => varint(0, out),
            Some(text) => {
                varint(text.len() as u64 + 1, out);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

/// The record in `value`, or why it cannot be read.
pub fn decode(value: &[u8]) -> Result<RecipientRecord, String> {
    let (&code, rest) = value.split_first().ok_or("an empty record")?;
    let status = Status::from_code(code).ok_or_else(|| format!("unknown status byte {code}"))?;
    match rest.split_first() {
        Some((b'{', _)) => serde_json::from_slice(rest).map_err(|e| e.to_string()),
        Some((&VERSION, mut rest)) => {
            let mut number = || read(&mut rest).ok_or("a record cut short");
            let attempts = u32::try_from(number()?).map_err(|e| e.to_string())?;
            let revision = u32::try_from(number()?).map_err(|e| e.to_string())?;
            let updated = number()?;
            let mut text = || -> Result<Option<String>, String> {
                let length = read(&mut rest).ok_or("a record cut short")?;
                let Some(length) = length.checked_sub(1) else {
                    return Ok(None);
                };
                let length = usize::try_from(length).map_err(|e| e.to_string())?;
                let bytes = rest.get(..length).ok_or("a record cut short")?;
                rest = &rest[length..];
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| e.to_string())
            };
            let provider_id = text()?;
            let reason = text()?;
            Ok(RecipientRecord {
                status,
                attempts,
                revision,
                provider_id,
                reason,
                updated,
            })
        }
        _ => Err("a record in no format herald knows".to_owned()),
    }
}

/// One call's outcomes as one value.
pub fn encode_outcomes<'a>(
    outcomes: impl ExactSizeIterator<Item = (&'a str, Option<&'a RecipientRecord>)>,
    out: &mut Vec<u8>,
) {
    out.push(VERSION);
    varint(outcomes.len() as u64, out);
    let mut record = Vec::with_capacity(48);
    for (key, outcome) in outcomes {
        varint(key.len() as u64, out);
        out.extend_from_slice(key.as_bytes());
        record.clear();
        if let Some(outcome) = outcome {
            encode(outcome, &mut record);
        }
        varint(record.len() as u64, out);
        out.extend_from_slice(&record);
    }
}

/// The outcomes in `value`, in the order written, or why they cannot be read.
pub fn decode_outcomes(value: &[u8]) -> Result<Vec<(String, Option<RecipientRecord>)>, String> {
    let short = || "outcomes cut short".to_owned();
    let (&version, mut rest) = value.split_first().ok_or_else(short)?;
    if version != VERSION {
        return Err(format!("outcomes in no format herald knows ({version})"));
    }
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, String> {
        let length = usize::try_from(read(rest).ok_or_else(short)?).map_err(|e| e.to_string())?;
        let bytes = rest.get(..length).ok_or_else(short)?.to_vec();
        *rest = &rest[length..];
        Ok(bytes)
    };
    let count = read(&mut rest).ok_or_else(short)?;
    let mut outcomes = Vec::with_capacity(usize::try_from(count.min(10_000)).unwrap_or(0));
    for _ in 0..count {
        let key = String::from_utf8(take(&mut rest)?).map_err(|e| e.to_string())?;
        let record = take(&mut rest)?;
        let record = if record.is_empty() {
            None
        } else {
            Some(decode(&record)?)
        };
        outcomes.push((key, record));
    }
    if !rest.is_empty() {
        return Err("outcomes followed by stray bytes".to_owned());
    }
    Ok(outcomes)
}

/// A call's intent: revision, when it began, then each recipient (address, attempt).
pub fn encode_intent(intent: &Intent, out: &mut Vec<u8>) {
    out.push(VERSION);
    varint(u64::from(intent.revision), out);
    varint(intent.started, out);
    varint(intent.recipients.len() as u64, out);
    for (key, attempt) in &intent.recipients {
        text(key, out);
        varint(u64::from(*attempt), out);
    }
}

/// The intent in `value`, or why it cannot be read.
pub fn decode_intent(value: &[u8]) -> Result<Intent, String> {
    let short = || "an intent cut short".to_owned();
    let (&version, mut rest) = value.split_first().ok_or_else(short)?;
    if version != VERSION {
        return Err(format!("an intent in no format herald knows ({version})"));
    }
    let number = |rest: &mut &[u8]| read(rest).ok_or_else(short);
    let revision = u32::try_from(number(&mut rest)?).map_err(|e| e.to_string())?;
    let started = number(&mut rest)?;
    let count = number(&mut rest)?;
    let mut recipients = Vec::with_capacity(usize::try_from(count.min(10_000)).unwrap_or(0));
    for _ in 0..count {
        let key = read_text(&mut rest).ok_or_else(short)?;
        let attempt = u32::try_from(number(&mut rest)?).map_err(|e| e.to_string())?;
        recipients.push((key, attempt));
    }
    if !rest.is_empty() {
        return Err("an intent followed by stray bytes".to_owned());
    }
    Ok(Intent {
        revision,
        started,
        recipients,
    })
}

/// A text: its length as a varint, then its bytes.
pub fn text(text: &str, out: &mut Vec<u8>) {
    varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// A text written by `text`, from the front of `bytes`.
pub fn read_text(bytes: &mut &[u8]) -> Option<String> {
    let length = usize::try_from(read(bytes)?).ok()?;
    let text = std::str::from_utf8(bytes.get(..length)?).ok()?.to_owned();
    *bytes = &bytes[length..];
    Some(text)
}

/// A varint, from the front of `bytes`.
pub fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    read(bytes)
}

pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_and_old_json_ones_still_read() {
        let records = [
            RecipientRecord {
                status: Status::Sent,
                attempts: 1,
                revision: 3,
                provider_id: Some("14c5d75ce93.dfd.64b469.filter-1".to_owned()),
                reason: None,
                updated: 1_795_600_000,
            },
            RecipientRecord {
                status: Status::Failed,
                attempts: 300,
                revision: u32::MAX,
                provider_id: None,
                reason: Some("SendGrid answered 400: ünïcode ✓".to_owned()),
                updated: u64::MAX,
            },
        ];
        for record in &records {
            let mut value = Vec::new();
            encode(record, &mut value);
            assert_eq!(&decode(&value).unwrap(), record);
            assert!(decode(&value[..value.len() - 1]).is_err(), "cut short");
        }
        let mut old = vec![b's'];
        serde_json::to_writer(&mut old, &records[0]).unwrap();
        assert_eq!(decode(&old).unwrap(), records[0]);
        let mut sent = Vec::new();
        encode(&records[0], &mut sent);
        assert!(sent.len() < 48, "{} bytes", sent.len());

        let outcomes = [
            ("a@example.com", Some(&records[0])),
            ("b@example.com", None),
            ("ü@example.com", Some(&records[1])),
        ];
        let mut value = Vec::new();
        encode_outcomes(outcomes.iter().copied(), &mut value);
        let read = decode_outcomes(&value).unwrap();
        assert_eq!(read.len(), 3);
        for ((key, record), (want_key, want)) in read.iter().zip(outcomes) {
            assert_eq!((key.as_str(), record.as_ref()), (want_key, want));
        }
        for cut in [1, 2, value.len() / 2, value.len() - 1] {
            assert!(decode_outcomes(&value[..cut]).is_err(), "cut at {cut}");
        }
        value.push(0);
        assert!(decode_outcomes(&value).is_err(), "stray bytes");
    }
}

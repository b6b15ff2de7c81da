//! Line numbers as an editor shows them, for CSV records.
//!
//! The csv crate stamps a record with the line its parser had reached when it began
//! looking for it: after a CRLF line end that is the line before (the `\n` is consumed
//! with the next record), and blank lines it skips are not counted in. So the reader
//! that feeds the parser notes where each line that holds anything starts, and a record
//! is given the first such line at or after the byte it was stamped with.
//!
//! # Guarantees
//! - The header is line 1; a record's line is the line its first character is on,
//!   whatever the line ends (LF or CRLF), a byte order mark, blank lines or quoted line
//!   breaks before it.
//! - Only lines read ahead of the parser are kept, so memory stays flat.

use std::collections::VecDeque;

/// Where the lines that hold anything start, for the bytes read so far.
#[derive(Debug)]
pub struct Lines {
    /// The number of the line being read.
    line: u64,
    /// The byte offset it starts at.
    start: u64,
    /// Whether it holds anything besides `\r` yet.
    content: bool,
    /// Lines with content not yet asked for: (byte offset of their start, number).
    ahead: VecDeque<(u64, u64)>,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            line: 1,
            start: 0,
            content: false,
            ahead: VecDeque::new(),
        }
    }
}

impl Lines {
    /// Notes the lines in `bytes`, which start at byte `offset` of the file.
    pub fn scan(&mut self, bytes: &[u8], offset: u64) {
        for (i, &byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' => {
                    self.line += 1;
                    self.start = offset + i as u64 + 1;
                    self.content = false;
                }
                b'\r' => {}
                _ if !self.content => {
                    self.content = true;
                    self.ahead.push_back((self.start, self.line));
                }
                _ => {}
            }
        }
    }

    /// The number of the first line with content that starts at or after byte `offset`.
    /// Offsets must be asked for in increasing order.
    pub fn at(&mut self, offset: u64) -> u64 {
        while self.ahead.front().is_some_and(|&(start, _)| start < offset) {
            self.ahead.pop_front();
        }
        self.ahead.front().map_or(self.line, |&(_, line)| line)
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    /// The line of every record the csv crate reads from `text`, fed in pieces of `piece`
    /// bytes, as `reader::rows` feeds it.
    fn lines(text: &str, piece: usize) -> Vec<u64> {
        let mut tracker = Lines::default();
        for (i, chunk) in text.as_bytes().chunks(piece).enumerate() {
            tracker.scan(chunk, (i * piece) as u64);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut found = Vec::new();
        while reader.read_record(&mut record).unwrap() {
            found.push(tracker.at(record.position().unwrap().byte()));
        }
        found
    }

    #[test]
    fn records_are_on_the_lines_an_editor_shows() {
        for piece in [1, 3, 4096] {
            for (text, expected) in [
                ("h\na\nb\n", vec![1, 2, 3]),
                ("h\r\na\r\nb\r\n", vec![1, 2, 3]),
                ("\u{feff}h\r\na\r\nb", vec![1, 2, 3]),
                ("h\n\na\n\r\n\nb\n", vec![1, 3, 6]),
                ("h\r\n\r\na\r\n\r\nb\r\n", vec![1, 3, 5]),
                ("h\r\n\"a\r\nstill a\"\r\nb\r\n", vec![1, 2, 4]),
                ("h\n\"a\n\nstill a\"\nb\n", vec![1, 2, 5]),
            ] {
                assert_eq!(
                    lines(text, piece),
                    expected,
                    "{text:?} in pieces of {piece}"
                );
            }
        }
    }
}

//! Markdown for a pull request comment: a title, the warnings first, a summary table, and
//! the details folded in `<details>` blocks, all within a size limit (GitHub refuses a
//! comment over 65,536 characters). What does not fit is cut, whole sections first, and a
//! note says what was cut and how to see everything.
//!
//! # Guarantees
//! - The output never exceeds the limit given (in bytes, which are never fewer than
//!   characters), whatever the size of the parts; a limit under `SMALLEST` is raised to it.
//! - It is `CommonMark` with GitHub's tables: every `<details>` opened is closed, every code
//!   fence is longer than any run of backticks inside it, and text from manifests, catalogs
//!   or errors is escaped, so nothing it holds can end a block or start one.

use std::fmt::Write as _;

/// GitHub's limit on an issue or pull request comment, in characters.
pub const GITHUB_LIMIT: usize = 65_536;
/// The smallest limit honoured: a title, a table header and the note fit.
pub const SMALLEST: usize = 2048;
/// Room kept for the note that says what was cut.
const NOTE_ROOM: usize = 600;
/// A section is cut short rather than left out when at least this much room is left.
const PARTIAL_AT_LEAST: usize = 400;

/// A comment: rendered by `render` within a limit.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Markdown, e.g. `### herald diff`.
    pub title: String,
    /// Markdown paragraphs after the title.
    pub intro: Vec<String>,
    /// Markdown inline text, each one bullet.
    pub warnings: Vec<String>,
    pub table: Table,
    pub details: Vec<Details>,
    /// What to run to see everything, as a code span's text: `herald diff OLD NEW`.
    pub everything: String,
}

/// A table of inline Markdown cells (escape them with `cell`).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    /// Columns aligned right (numbers).
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// A folded section: a summary line and what it holds.
#[derive(Debug, Clone)]
pub struct Details {
    /// Plain text: it is escaped as HTML.
    pub summary: String,
    pub blocks: Vec<Block>,
}

/// What a folded section holds.
#[derive(Debug, Clone)]
pub enum Block {
    /// Markdown, whole or not at all.
    Markdown(String),
    /// A fenced code block (`diff`, say), cut by lines when it does not fit.
    Code { info: String, text: String },
}

/// What was left out.
#[derive(Debug, Default)]
struct Cut {
    warnings: usize,
    rows: usize,
    sections: usize,
    shortened: usize,
}

impl Document {
    /// The comment in at most `limit` bytes (at least `SMALLEST`).
    pub fn render(&self, limit: usize) -> String {
        let limit = limit.max(SMALLEST);
        let budget = limit - NOTE_ROOM;
        let mut cut = Cut::default();
        let mut out = String::new();
        push_within(&mut out, &format!("{}\n\n", self.title), budget);
        for paragraph in &self.intro {
            push_within(&mut out, &format!("{paragraph}\n\n"), budget);
        }
        if !self.warnings.is_empty() {
            push_within(&mut out, "**Warnings**\n\n", budget);
            for warning in &self.warnings {
                if !push_within(&mut out, &format!("- ⚠️ {warning}\n"), budget) {
                    cut.warnings += 1;
                }
            }
            out.push('\n');
        }
        self.table(&mut out, budget, &mut cut);
        self.sections(&mut out, budget, &mut cut);
        out.push_str(&self.note(&cut));
        debug_assert!(out.len() <= limit, "{} > {limit}", out.len());
        out
    }

    /// The folded sections: all whole when they fit; else each gets an equal share of the
    /// room (those smaller than it whole, the room they leave shared by the others), cut
    /// by lines to it, so that every section shows its first changes; when even that
    /// leaves too little of each, sections in order while there is room.
    fn sections(&self, out: &mut String, budget: usize, cut: &mut Cut) {
        let whole: Vec<String> = self.details.iter().map(|d| d.render(usize::MAX)).collect();
        let room = budget.saturating_sub(out.len());
        let cap = share(&whole.iter().map(String::len).collect::<Vec<_>>(), room);
        for (details, text) in self.details.iter().zip(&whole) {
            let left = budget.saturating_sub(out.len());
            let cap = cap.max(PARTIAL_AT_LEAST).min(left);
            if text.len() <= cap {
                out.push_str(text);
                continue;
            }
            let short = details.render(cap);
            if cap >= PARTIAL_AT_LEAST && push_within(out, &short, budget) {
                cut.shortened += 1;
            } else {
                cut.sections += 1;
            }
        }
    }

    fn table(&self, out: &mut String, budget: usize, cut: &mut Cut) {
        if self.table.header.is_empty() || self.table.rows.is_empty() {
            return;
        }
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let rule: Vec<String> = (0..self.table.header.len())
            .map(|i| {
                if self.table.right.get(i).copied().unwrap_or(false) {
                    "---:".to_owned()
                } else {
                    "---".to_owned()
                }
            })
            .collect();
        let head = line(&self.table.header) + &line(&rule);
        if !push_within(out, &head, budget) {
            cut.rows = self.table.rows.len();
            return;
        }
        for row in &self.table.rows {
            if cut.rows > 0 || !push_within(out, &line(row), budget) {
                cut.rows += 1;
            }
        }
        out.push('\n');
    }

    fn note(&self, cut: &Cut) -> String {
        let mut parts = Vec::new();
        let mut count = |n: usize, one: &str, many: &str| {
            if n > 0 {
                parts.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        };
        count(cut.sections, "section", "sections");
        count(cut.shortened, "section shortened", "sections shortened");
        count(cut.rows, "table row", "table rows");
        count(cut.warnings, "warning", "warnings");
        if parts.is_empty() {
            return String::new();
        }
        // At most 200 bytes, so that the note fits in the room kept for it.
        let mut everything = String::new();
        for c in self.everything.chars() {
            if everything.len() + c.len_utf8() > 200 {
                break;
            }
            everything.push(c);
        }
        format!(
            "> **Cut to stay under GitHub's {GITHUB_LIMIT}-character comment limit:** {}. Run {} to see everything.\n",
            parts.join(", "),
            code(&everything)
        )
    }
}

impl Details {
    /// The section in at most `room` bytes: blocks whole while they fit, then the first
    /// code block that does not, cut by lines.
    fn render(&self, room: usize) -> String {
        let open = format!("<details><summary>{}</summary>\n\n", html(&self.summary));
        let close = "</details>\n\n";
        let mut out = open;
        let mut shortened = false;
        for block in &self.blocks {
            let text = match block {
                Block::Markdown(text) => format!("{text}\n\n"),
                Block::Code { info, text } => fenced(info, text, usize::MAX),
            };
            if !shortened && out.len() + text.len() + close.len() <= room {
                out.push_str(&text);
                continue;
            }
            if let (false, Block::Code { info, text }) = (shortened, block) {
                let left = room.saturating_sub(out.len() + close.len());
                let short = fenced(info, text, left);
                if !short.is_empty() {
                    out.push_str(&short);
                }
            }
            shortened = true;
        }
        out.push_str(close);
        out
    }
}

/// The most bytes each of sections of `lengths` may take so that together they take at
/// most `room`: those under it whole, the rest cut to it.
fn share(lengths: &[usize], room: usize) -> usize {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mut left = room;
    for (i, length) in sorted.iter().enumerate() {
        let others = sorted.len() - i;
        if length * others > left {
            return left / others;
        }
        left -= length;
    }
    usize::MAX
}

/// Adds `text` to `out` if it stays within `budget`; whether it did.
fn push_within(out: &mut String, text: &str, budget: usize) -> bool {
    if out.len() + text.len() > budget {
        return false;
    }
    out.push_str(text);
    true
}

/// A fenced code block of `text` in at most `room` bytes: whole lines while they fit, then
/// a line saying how many were cut; empty when not even that fits.
fn fenced(info: &str, text: &str, room: usize) -> String {
    let longest = longest_run(text, '`');
    let fence = "`".repeat(longest.max(2) + 1);
    let open = format!("{fence}{info}\n");
    let close = format!("{fence}\n\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = open.clone();
    for (i, line) in lines.iter().enumerate() {
        let rest = lines.len() - i;
        // Room for this line, the note of what is cut after it, and the closing fence.
        let note = format!("... {rest} more lines cut\n");
        if out.len() + line.len() + 1 + note.len() + close.len() > room && rest > 0 {
            if out.len() + note.len() + close.len() > room {
                return String::new();
            }
            out.push_str(&note);
            out.push_str(&close);
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&close);
    out
}

fn longest_run(text: &str, c: char) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        if ch == c {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// `text` as a code span, whatever backticks it holds.
pub fn code(text: &str) -> String {
    let ticks = "`".repeat(longest_run(text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// Plain text for inline Markdown: everything that could mean something escaped, and
/// line breaks made spaces. Spans in backticks (as herald's messages quote values) stay
/// code spans when they are paired.
pub fn inline(text: &str) -> String {
    escaped(text, false)
}

/// Like `inline`, for a table cell: a `|` anywhere, code spans included, is escaped.
pub fn cell(text: &str) -> String {
    escaped(text, true)
}

fn escaped(text: &str, in_table: bool) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let paired = text.matches('`').count() % 2 == 0;
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        if c == '`' && paired {
            in_code = !in_code;
            out.push(c);
            continue;
        }
        if in_code {
            if c == '|' && in_table {
                out.push_str("\\|");
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            // Never at the start of a line here, so `#`, `-`, `+` and `1.` mean nothing.
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text for HTML (a `<summary>`).
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.replace(['\r', '\n'], " ").chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number with thousands separated, as a reviewer reads it: `1,000,000`.
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Markdown list of `items` (inline Markdown each).
pub fn list(items: &[String]) -> String {
    let mut out = String::new();
    for item in items {
        let _ = writeln!(out, "- {item}");
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_open_blocks_or_close_spans() {
        assert_eq!(inline("# <b>x</b> *y*"), "# \\<b\\>x\\</b\\> \\*y\\*");
        assert_eq!(inline("campaign `a|b` at 5|6"), "campaign `a|b` at 5\\|6");
        assert_eq!(cell("`a|b`"), "`a\\|b`");
        assert_eq!(inline("one ` tick"), "one \\` tick");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(html("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
        assert_eq!(number(1_000_000), "1,000,000");
        assert_eq!(number(999), "999");
    }

    #[test]
    fn a_fence_is_longer_than_any_run_of_backticks_inside() {
        let block = fenced("diff", "a\n````\nb", usize::MAX);
        assert!(block.starts_with("`````diff\n"), "{block}");
        assert!(block.ends_with("`````\n\n"), "{block}");
    }

    #[test]
    fn whatever_the_parts_the_limit_holds_and_a_note_says_what_was_cut() {
        let big = "+a line of a diff\n".repeat(2000);
        let document = Document {
            title: "### herald diff".to_owned(),
            intro: vec!["intro".to_owned()],
            warnings: vec!["w".repeat(300); 100],
            table: Table {
                header: vec!["a".to_owned(), "b".to_owned()],
                right: vec![false, true],
                rows: vec![vec!["x".to_owned(), "1".to_owned()]; 500],
            },
            details: (0..40)
                .map(|i| Details {
                    summary: format!("section {i}"),
                    blocks: vec![Block::Code {
                        info: "diff".to_owned(),
                        text: big.clone(),
                    }],
                })
                .collect(),
            everything: "herald diff OLD NEW".to_owned(),
        };
        for limit in [SMALLEST, 10_000, 65_000] {
            let out = document.render(limit);
            assert!(out.len() <= limit, "{} > {limit}", out.len());
            assert!(out.contains("Cut to stay under"), "{out}");
            assert_eq!(
                out.matches("<details>").count(),
                out.matches("</details>").count()
            );
        }
        let small = Document {
            title: "t".to_owned(),
            ..Document::default()
        };
        assert_eq!(small.render(65_000), "t\n\n");
    }

    #[test]
    fn sections_share_the_room_the_small_ones_whole() {
        assert_eq!(share(&[10, 20, 30], 100), usize::MAX);
        assert_eq!(share(&[10, 100, 100], 110), 50);
        assert_eq!(share(&[100, 100, 100], 90), 30);
    }
}

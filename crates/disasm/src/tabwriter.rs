//! The column layout of `go tool objdump`, byte for byte.
//!
//! objdump writes each function through Go's `text/tabwriter` with
//! minwidth 18, tabwidth 8, padding 1, padchar `'\t'`. Each instruction
//! line is four tab-terminated cells (`  file:line`, `0xPC`, hex bytes,
//! instruction) and an empty last cell; a source line (with `-S`) is one
//! escaped cell and ends the column block. Within a block a column's width
//! is `max(18, widest cell + 1)` rounded up to a multiple of 8, and a cell
//! is padded with as many tabs as it takes to reach it; widths count runes.
//!
//! [`Block`] buffers one function's rows and writes them in that layout.
//! The last cell of a row (objdump leaves it empty) carries our trailing
//! comment, so every column before it is exactly objdump's.
//!
//! Speed: a whole binary is a few million rows, so a block keeps no
//! per-cell allocation. All cell text goes into one arena string that the
//! caller writes into directly ([`Block::buf`]); cells and rows are ranges
//! into it, and the laid-out block is built in one reused buffer and
//! written with a single `write_all`. Everything is reused across flushes.

use std::io::{self, Write};
use std::ops::Range;

const MIN_WIDTH: usize = 18;
const TAB_WIDTH: usize = 8;
const PADDING: usize = 1;
const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";

/// Colour for the cells of a row: `(prefix, suffix)` for cell `i`.
pub type Styles = &'static [(&'static str, &'static str)];

struct Cell {
    text: Range<u32>,
    runes: u32,
}

struct RowRec {
    /// Cells `cells[first..first + n]`; `n == 0` with `text` marks a
    /// free-standing text line.
    first: u32,
    n: u32,
    /// The trailing free-form text (comment), or a text line.
    tail: Range<u32>,
    styles: Styles,
    is_text: bool,
}

/// A buffered block of rows, written on [`Block::flush`].
#[derive(Default)]
pub struct Block {
    buf: String,
    cells: Vec<Cell>,
    rows: Vec<RowRec>,
    mark: usize,
    widths: Vec<u32>,
    out: String,
}

fn runes(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

impl Block {
    /// A line written as is; it ends the current column block.
    pub fn text(&mut self, line: &str) {
        let start = self.buf.len() as u32;
        self.buf.push_str(line);
        self.rows.push(RowRec {
            first: self.cells.len() as u32,
            n: 0,
            tail: start..self.buf.len() as u32,
            styles: &[],
            is_text: true,
        });
        self.mark = self.buf.len();
    }

    /// Start a row of cells; write each cell into [`Block::buf`] and end it
    /// with [`Block::end_cell`]. Returns the row's index.
    pub fn start_row(&mut self, styles: Styles) -> usize {
        self.mark = self.buf.len();
        let at = self.buf.len() as u32;
        self.rows.push(RowRec {
            first: self.cells.len() as u32,
            n: 0,
            tail: at..at,
            styles,
            is_text: false,
        });
        self.rows.len() - 1
    }

    /// The arena the current cell is written into.
    pub fn buf(&mut self) -> &mut String {
        &mut self.buf
    }

    /// End the current cell of the last row: it is everything written to
    /// [`Block::buf`] since the previous cell (or the row's start).
    pub fn end_cell(&mut self) {
        let text = &self.buf[self.mark..];
        self.cells.push(Cell {
            runes: runes(text) as u32,
            text: self.mark as u32..self.buf.len() as u32,
        });
        self.mark = self.buf.len();
        if let Some(r) = self.rows.last_mut() {
            r.n += 1;
        }
    }

    /// Set the free-form tail of row `row` (written after its cells).
    pub fn set_tail(&mut self, row: usize, parts: &[&str]) {
        let start = self.buf.len() as u32;
        for p in parts {
            self.buf.push_str(p);
        }
        if let Some(r) = self.rows.get_mut(row) {
            r.tail = start..self.buf.len() as u32;
        }
        self.mark = self.buf.len();
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Write all rows and empty the buffer.
    pub fn flush(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.out.clear();
        let mut i = 0;
        while i < self.rows.len() {
            if self.rows[i].is_text {
                let t = &self.rows[i].tail;
                self.out
                    .push_str(&self.buf[t.start as usize..t.end as usize]);
                self.out.push('\n');
                i += 1;
                continue;
            }
            let j = self.rows[i..]
                .iter()
                .position(|r| r.is_text)
                .map_or(self.rows.len(), |k| i + k);
            self.layout(i, j);
            i = j;
        }
        self.buf.clear();
        self.cells.clear();
        self.rows.clear();
        self.mark = 0;
        out.write_all(self.out.as_bytes())
    }

    /// Lay out rows `lo..hi` (no text lines among them) into `self.out`.
    ///
    /// Column widths per tabwriter: a column block is a run of consecutive
    /// rows that have that column. Our rows in one block all have the same
    /// number of cells except in unusual input, which is handled the same
    /// way (widths are computed over the maximal runs that have the column).
    fn layout(&mut self, lo: usize, hi: usize) {
        let rows = &self.rows[lo..hi];
        let ncols = rows.iter().map(|r| r.n as usize).max().unwrap_or(0);
        // widths[c * len + k]: column c's width for row lo + k.
        let len = rows.len();
        self.widths.clear();
        self.widths.resize(ncols * len, 0);
        for c in 0..ncols {
            let mut start = 0;
            while start < len {
                if rows[start].n as usize <= c {
                    start += 1;
                    continue;
                }
                let mut end = start;
                let mut max = MIN_WIDTH;
                while end < len && rows[end].n as usize > c {
                    let cell = &self.cells[rows[end].first as usize + c];
                    max = max.max(cell.runes as usize + PADDING);
                    end += 1;
                }
                let rounded = (max.div_ceil(TAB_WIDTH) * TAB_WIDTH) as u32;
                self.widths[c * len + start..c * len + end].fill(rounded);
                start = end;
            }
        }
        for (k, r) in rows.iter().enumerate() {
            for c in 0..r.n as usize {
                let cell = &self.cells[r.first as usize + c];
                let text = &self.buf[cell.text.start as usize..cell.text.end as usize];
                match r.styles.get(c) {
                    Some((pre, post)) => {
                        self.out.push_str(pre);
                        self.out.push_str(text);
                        self.out.push_str(post);
                    }
                    None => self.out.push_str(text),
                }
                let pad = (self.widths[c * len + k] - cell.runes) as usize;
                let mut tabs = pad.div_ceil(TAB_WIDTH);
                while tabs > 0 {
                    let t = tabs.min(TABS.len());
                    self.out.push_str(&TABS[..t]);
                    tabs -= t;
                }
            }
            self.out
                .push_str(&self.buf[r.tail.start as usize..r.tail.end as usize]);
            self.out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(b: &mut Block, cells: &[&str]) {
        b.start_row(&[]);
        for c in cells {
            b.buf().push_str(c);
            b.end_cell();
        }
    }

    // Expected bytes are lines of `go tool objdump` output (go1.22.10,
    // internal/abi.Kind.String), where the widest instruction in the
    // function is 37 runes.
    #[test]
    fn matches_objdump_layout() {
        let mut b = Block::default();
        row(&mut b, &["  type.go:132", "0x401000", "55", "PUSHQ BP"]);
        row(
            &mut b,
            &[
                "  type.go:133",
                "0x401008",
                "488b0d295d1300",
                "MOVQ internal/abi.kindNames+8(SB), CX",
            ],
        );
        let mut out = Vec::new();
        b.flush(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  type.go:132\t\t0x401000\t\t55\t\t\tPUSHQ BP\t\t\t\t\n  type.go:133\t\t0x401008\t\t488b0d295d1300\t\tMOVQ internal/abi.kindNames+8(SB), CX\t\n"
        );
    }

    #[test]
    fn text_rows_split_blocks() {
        let mut b = Block::default();
        row(&mut b, &["a", "MOVQ internal/abi.kindNames+8(SB), CX"]);
        b.text("src");
        row(&mut b, &["a", "RET"]);
        let mut out = Vec::new();
        b.flush(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\t\t\tMOVQ internal/abi.kindNames+8(SB), CX\t\nsrc\na\t\t\tRET\t\t\t\n"
        );
    }

    #[test]
    fn tails_styles_and_reuse() {
        let mut b = Block::default();
        b.start_row(&[("<", ">")]);
        b.buf().push('x');
        b.end_cell();
        let r = b.start_row(&[]);
        b.buf().push('é');
        b.end_cell();
        b.set_tail(r, &["// ", "note"]);
        let mut out = Vec::new();
        b.flush(&mut out).unwrap();
        // Styles do not count toward widths; runes, not bytes, do.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<x>\t\t\t\né\t\t\t// note\n"
        );
        assert!(b.is_empty());
        row(&mut b, &["y"]);
        let mut out = Vec::new();
        b.flush(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "y\t\t\t\n");
    }
}

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

use std::io::{self, Write};

const MIN_WIDTH: usize = 18;
const TAB_WIDTH: usize = 8;
const PADDING: usize = 1;

/// One output row.
#[derive(Clone, Debug)]
pub enum Row {
    /// Tab-terminated cells, then a free-form tail (a comment, or empty).
    /// `styles[i]` wraps cell `i` when colour is on: (prefix, suffix).
    Cells {
        cells: Vec<String>,
        tail: String,
        styles: Vec<(&'static str, &'static str)>,
    },
    /// A line written as is; it ends the current column block.
    Text(String),
}

/// A buffered block of rows, written on [`Block::flush`].
#[derive(Default)]
pub struct Block {
    rows: Vec<Row>,
}

fn runes(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

impl Block {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Write all rows and empty the buffer.
    pub fn flush(&mut self, out: &mut impl Write) -> io::Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let mut i = 0;
        while i < rows.len() {
            if let Row::Text(t) = &rows[i] {
                out.write_all(t.as_bytes())?;
                out.write_all(b"\n")?;
                i += 1;
                continue;
            }
            let j = rows[i..]
                .iter()
                .position(|r| matches!(r, Row::Text(_)))
                .map_or(rows.len(), |k| i + k);
            write_block(&rows[i..j], out)?;
            i = j;
        }
        Ok(())
    }
}

/// Column widths per tabwriter: a column block is a run of consecutive
/// rows that have that column; our rows in one block all have the same
/// number of cells except in unusual input, which is handled the same way
/// (widths are computed over the maximal runs that have the column).
fn write_block(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    let ncols = rows
        .iter()
        .map(|r| match r {
            Row::Cells { cells, .. } => cells.len(),
            Row::Text(_) => 0,
        })
        .max()
        .unwrap_or(0);
    // width[c][row] for rows having column c, per run.
    let mut widths: Vec<Vec<usize>> = vec![vec![0; rows.len()]; ncols];
    for (c, w) in widths.iter_mut().enumerate() {
        let mut start = 0;
        while start < rows.len() {
            let has = |r: &Row| matches!(r, Row::Cells { cells, .. } if cells.len() > c);
            if !has(&rows[start]) {
                start += 1;
                continue;
            }
            let mut end = start;
            let mut max = MIN_WIDTH;
            while end < rows.len() && has(&rows[end]) {
                if let Row::Cells { cells, .. } = &rows[end] {
                    max = max.max(runes(&cells[c]) + PADDING);
                }
                end += 1;
            }
            let rounded = max.div_ceil(TAB_WIDTH) * TAB_WIDTH;
            for x in &mut w[start..end] {
                *x = rounded;
            }
            start = end;
        }
    }
    let mut line = String::new();
    for (k, r) in rows.iter().enumerate() {
        let Row::Cells {
            cells,
            tail,
            styles,
        } = r
        else {
            continue;
        };
        line.clear();
        for (c, cell) in cells.iter().enumerate() {
            let (pre, post) = styles.get(c).copied().unwrap_or(("", ""));
            line.push_str(pre);
            line.push_str(cell);
            line.push_str(post);
            let n = widths[c][k] - runes(cell);
            for _ in 0..n.div_ceil(TAB_WIDTH) {
                line.push('\t');
            }
        }
        line.push_str(tail);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        Row::Cells {
            cells: cells.iter().map(|s| s.to_string()).collect(),
            tail: String::new(),
            styles: Vec::new(),
        }
    }

    // Expected bytes are lines of `go tool objdump` output (go1.22.10,
    // internal/abi.Kind.String), where the widest instruction in the
    // function is 37 runes.
    #[test]
    fn matches_objdump_layout() {
        let mut b = Block::default();
        b.push(row(&["  type.go:132", "0x401000", "55", "PUSHQ BP"]));
        b.push(row(&[
            "  type.go:133",
            "0x401008",
            "488b0d295d1300",
            "MOVQ internal/abi.kindNames+8(SB), CX",
        ]));
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
        b.push(row(&["a", "MOVQ internal/abi.kindNames+8(SB), CX"]));
        b.push(Row::Text("src".into()));
        b.push(row(&["a", "RET"]));
        let mut out = Vec::new();
        b.flush(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\t\t\tMOVQ internal/abi.kindNames+8(SB), CX\t\nsrc\na\t\t\tRET\t\t\t\n"
        );
    }
}

//! The `go tool objdump` printer: rows in, objdump's columns out.
//!
//! `deferscope disasm` prints the same columns as `go tool objdump` so that
//! people and scripts can switch between the two: a `TEXT sym(SB) file`
//! header per function, then one line per instruction,
//! `  file.go:LINE\t0xPC\t\tHEXBYTES\t\tINSTRUCTION`, laid out by the same
//! tab rules ([`crate::tabwriter`]). What it adds is a trailing
//! `// comment` on the instructions that implement `defer` (the rows'
//! annotations), and, after the listing, a legend for them.
//!
//! [`TextPrinter`] is a [`RowSink`]: the listing's producer
//! ([`crate::Worker`]) hands it rows, as it hands them to any other
//! printer. Numbers are written by hand into the block's arena (Go's `%d`
//! and `%#x`), not through `format!`: this runs a few million times per
//! binary.

use std::io::{self, Write};

use deferscope_load::Arch;
use deferscope_model::listing::{base, FunctionRows, RowSink};

use crate::tabwriter::{self, Block};
use crate::Options;

/// The legend for the annotations, printed once after the listing.
pub const LEGEND: &str = "\
// deferscope disasm: go tool objdump columns; `// ...` marks defer machinery:
//   deferBits        the byte whose bit i says open-coded defer #i is pending
//   slot #i          the frame slot holding defer #i's closure
//   _defer.fn        the closure field of a stack-allocated _defer record
//   register/run     CALL runtime.deferproc*/deferreturn, or a deferred call at exit
//   closure field/arg  a value the deferred call gets: copied at the defer, or a
//                    variable's address (by reference: it sees later changes)
//   moved to heap    an allocation a defer costs; result ...: a result reloaded
//                    after the deferred calls rewrote it
";

/// ANSI styles per column: file:line, pc, bytes, instruction, comment.
const STYLE_POS: (&str, &str) = ("\x1b[2m", "\x1b[0m");
const STYLE_PC: (&str, &str) = ("\x1b[36m", "\x1b[0m");
const STYLE_HEX: (&str, &str) = ("\x1b[2m", "\x1b[0m");
const STYLE_INS: (&str, &str) = ("", "");
const STYLE_COMMENT: (&str, &str) = ("\x1b[33m", "\x1b[0m");
const STYLE_HEADER: (&str, &str) = ("\x1b[1m", "\x1b[0m");

/// Writes listings in objdump's columns to `out`.
pub struct TextPrinter<W> {
    pub out: W,
    arch: Arch,
    /// Source lines are interleaved (objdump `-S`): the file:line column
    /// is left out, as objdump does.
    source: bool,
    color: bool,
    styles: tabwriter::Styles,
    /// A blank line goes before the next function.
    gap: bool,
    block: Block,
}

impl<W: Write> TextPrinter<W> {
    /// A printer for the listing `opts` asks for. `gap`: whether a
    /// function was listed before the first one this printer writes
    /// (functions are separated by a blank line).
    pub fn new(out: W, arch: Arch, opts: &Options, gap: bool) -> TextPrinter<W> {
        let (source, color) = (opts.source.is_some(), opts.color);
        let styles: tabwriter::Styles = match (color, source) {
            (false, _) => &[],
            (true, false) => &[STYLE_POS, STYLE_PC, STYLE_HEX, STYLE_INS],
            (true, true) => &[STYLE_PC, STYLE_HEX, STYLE_INS],
        };
        TextPrinter {
            out,
            arch,
            source,
            color,
            styles,
            gap,
            block: Block::default(),
        }
    }

    /// Write from now on to `out`, the next function with a blank line
    /// before it when `gap`: a listing thread's next batch.
    pub fn start_batch(&mut self, out: W, gap: bool) {
        self.out = out;
        self.gap = gap;
    }
}

impl<W: Write> RowSink for TextPrinter<W> {
    fn function(&mut self, f: &FunctionRows<'_>) -> io::Result<()> {
        if self.gap {
            self.out.write_all(b"\n")?;
        }
        self.gap = true;
        if self.color {
            writeln!(
                self.out,
                "{}TEXT {}(SB) {}{}",
                STYLE_HEADER.0, f.name, f.file, STYLE_HEADER.1
            )?;
        } else {
            writeln!(self.out, "TEXT {}(SB) {}", f.name, f.file)?;
        }
        let block = &mut self.block;
        // The base name of the last file (the same line-table string runs
        // on from row to row).
        let mut last_base: (&str, &str) = ("", "");
        for r in f.rows {
            if let Some(src) = r.source {
                block.text(src);
            }
            let row = block.start_row(self.styles);
            let b = block.buf();
            b.push_str("  ");
            if !self.source {
                if !std::ptr::eq(r.file, last_base.0) {
                    last_base = (r.file, base(r.file));
                }
                b.push_str(last_base.1);
                b.push(':');
                push_dec(b, r.line);
                block.end_cell();
            }
            push_hex(block.buf(), r.pc);
            block.end_cell();
            hex_cell(self.arch, r.bytes, block.buf());
            block.end_cell();
            block.buf().push_str(r.text);
            block.end_cell();
            if let Some(note) = r.annotation {
                if self.color {
                    block.set_tail(row, &[STYLE_COMMENT.0, "// ", note, STYLE_COMMENT.1]);
                } else {
                    block.set_tail(row, &["// ", note]);
                }
            }
        }
        block.flush(&mut self.out)
    }
}

/// Go's `%d`.
pub(crate) fn push_dec(s: &mut String, v: i64) {
    if (0..10).contains(&v) {
        s.push((b'0' + v as u8) as char);
        return;
    }
    if v < 0 {
        s.push('-');
    }
    let mut u = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(d as char);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Go's `%#x` of an address.
pub(crate) fn push_hex(s: &mut String, v: u64) {
    s.push_str("0x");
    let nibbles = (64 - (v | 1).leading_zeros()).div_ceil(4);
    for i in (0..nibbles).rev() {
        s.push(HEX[(v >> (4 * i) & 15) as usize] as char);
    }
}

fn hex_cell(arch: Arch, bytes: &[u8], s: &mut String) {
    let byte = |s: &mut String, b: u8| {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    };
    if arch == Arch::Arm64 && bytes.len().is_multiple_of(4) {
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            // Words print big-end first.
            for &b in w.iter().rev() {
                byte(s, b);
            }
        }
    } else {
        for &b in bytes {
            byte(s, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_prints_them() {
        // fmt's %d and %#x.
        let mut s = String::new();
        for v in [0i64, 7, -1, 42, 1234567890, i64::MIN] {
            s.clear();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        for v in [0u64, 1, 0xf, 0x10, 0x401000, u64::MAX] {
            s.clear();
            push_hex(&mut s, v);
            assert_eq!(s, format!("{v:#x}"));
        }
        s.clear();
        hex_cell(Arch::Arm64, &[0xff, 0x3f, 0x00, 0x39, 1, 2, 3, 4], &mut s);
        assert_eq!(s, "39003fff 04030201");
        s.clear();
        hex_cell(Arch::Amd64, &[0xc6, 0x44, 0x24, 0x07, 0x00], &mut s);
        assert_eq!(s, "c644240700");
    }
}

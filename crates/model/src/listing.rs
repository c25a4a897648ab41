//! Annotated disassembly as data: the rows `deferscope-disasm` produces
//! and every printer that shows code consumes (the `go tool objdump`
//! columns of `deferscope disasm`, the compact listings of the HTML
//! report). Nothing parses a printed listing back.
//!
//! A producer hands a sink one function at a time, rows borrowed from its
//! own buffers, so a whole binary is never held as rows.

use std::io;

/// One instruction of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    pub pc: u64,
    /// The instruction's bytes.
    pub bytes: &'a [u8],
    /// The source file as the line table spells it (empty when the pc has
    /// none).
    pub file: &'a str,
    /// The source line (0: no function holds the pc; -1: a function does,
    /// but its line table does not cover the pc).
    pub line: i64,
    /// The instruction in the listing's syntax.
    pub text: &'a str,
    /// What the instruction does for the defer machinery, when it does
    /// something (`open-coded defer #0: save closure in slot #0`).
    pub annotation: Option<&'a str>,
    /// With source interleaving: the source text to show before this row,
    /// set on the first row of each run of one file:line.
    pub source: Option<&'a str>,
}

/// One function's listing.
#[derive(Clone, Copy, Debug)]
pub struct FunctionRows<'a> {
    /// The symbol (`main.(*T).Close`).
    pub name: &'a str,
    /// The function's first address (its listing may start later when the
    /// symbol starts before the text).
    pub entry: u64,
    /// The source file of the function's first instruction.
    pub file: &'a str,
    pub rows: &'a [Row<'a>],
}

/// Takes listings one function at a time, in address order.
pub trait RowSink {
    fn function(&mut self, f: &FunctionRows<'_>) -> io::Result<()>;
}

/// The base name of a path, Unix or Windows (objdump's `base`).
pub fn base(path: &str) -> &str {
    let p = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    &p[p.rfind('\\').map_or(0, |i| i + 1)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base("/a/b/c.go"), "c.go");
        assert_eq!(base(r"C:\x\y.go"), "y.go");
        assert_eq!(base(""), "");
    }
}

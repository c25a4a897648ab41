//! The verdict of `deferscope check --verify` (the comparison is
//! `deferscope_analyze::verify`'s): a summary line, then one line per
//! disagreement, each prefixed `verify:` so they stand apart from the
//! report on stdout.

use std::io::{self, Write};

use deferscope_model::verify::Verification;

/// Print the verdict.
pub fn text(v: &Verification, w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "verify: the compiler printed {} defer lines: {} found by deferscope, {} without code in the binary (dead or dropped); {} disagreements",
        v.compiler_lines,
        v.matched,
        v.excused,
        v.disagreements.len()
    )?;
    for d in &v.disagreements {
        writeln!(w, "verify: {d}")?;
    }
    Ok(())
}

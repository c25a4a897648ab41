//! debug/gosym's answers, where they differ from the tables' plain reading.
//!
//! `go tool objdump` prints each instruction's file:line from Go's
//! debug/gosym (`LineTable.PCToLine`), which reads the pclntab a little
//! differently from the runtime ([`crate::LineTable`]) for the pcs the
//! tables do not cover properly. A listing that matches objdump line for
//! line asks these functions for those pcs:
//!
//! - a function without a pc-value table (offset 0) has its table read
//!   at offset 0 of the pc tables anyway (go1.16+ layouts): the host
//!   object code of a race binary lists as `:-5`;
//! - that read does not stop at a run of length 0, as gosym's `pcvalue`
//!   does not;
//! - in go1.18+ tables, a file is looked up at the compilation unit's
//!   offset plus the file number wrapping at 32 bits: a function without
//!   a unit (offset `0xffffffff`, as the race runtime's C code and
//!   go:buildid have) and file number 1 read the first unit's file 0.

use super::{Func, Layout, PcValueIter, Pclntab};
use crate::rd_u32;

impl<'d> Pclntab<'d> {
    /// debug/gosym's file and line for `pc` in `f`, as `go tool objdump`
    /// prints them for a pc whose line table gives no file:line (see the
    /// module doc): the file `""` when its number is not valid, line -1
    /// when no run covers `pc`.
    pub fn gosym_pos(&self, f: &Func, pc: u64) -> (&'d str, i64) {
        let value = |off: u32| -> i32 {
            if off == 0 {
                // The pc tables from their start (none in the go1.2 layout).
                let p = if self.layout == Layout::Go12 {
                    &[]
                } else {
                    self.pctab
                };
                gosym_pcvalue(self.pcvalue_in(p, f.entry), f.entry, pc)
            } else {
                self.pcvalue(off, f.entry)
                    // gosym's rule: the first run ending past pc (a pc
                    // before the entry gets the first value).
                    .find(|r| pc < r.1)
                    .map_or(-1, |r| r.2)
            }
        };
        let fno = value(f.pcfile);
        let file = self
            .file(f, fno)
            .or_else(|| self.gosym_file(f, fno))
            .unwrap_or("");
        (file, i64::from(value(f.pcln)))
    }

    /// gosym's file lookup in go1.18+ tables, where the compilation
    /// unit's offset plus the file number wraps at 32 bits.
    fn gosym_file(&self, f: &Func, fno: i32) -> Option<&'d str> {
        if fno < 0 || !matches!(self.layout, Layout::Go118 | Layout::Go120) {
            return None;
        }
        let at = f.cu_offset.wrapping_add(fno as u32).wrapping_mul(4) as usize;
        let fnoff = rd_u32(self.cutab, at)?;
        if fnoff == u32::MAX {
            return None;
        }
        let rest = self.filetab.get(fnoff as usize..)?;
        let end = memchr::memchr(0, rest)?;
        std::str::from_utf8(&rest[..end]).ok()
    }
}

/// gosym's `pcvalue`: the value at `pc` of the table `it` reads, for a
/// function at `entry`; runs of length 0 are stepped over; -1 when no run
/// covers `pc`.
fn gosym_pcvalue(mut it: PcValueIter<'_>, entry: u64, pc: u64) -> i32 {
    let mut at = entry;
    loop {
        let Some((val, len)) = it.advance() else {
            return -1;
        };
        at = at.wrapping_add(len);
        if pc < at {
            return val;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(p: &[u8], quantum: u64) -> PcValueIter<'_> {
        PcValueIter {
            p,
            pc: 0x1000,
            val: -1,
            first: true,
            quantum,
        }
    }

    /// debug/gosym's `pcvalue` loop (go/src/debug/gosym/pclntab.go): value
    /// deltas are zig-zag varints, pc deltas varints times the quantum; a
    /// zero value delta after the first pair ends the table.
    #[test]
    fn gosym_pcvalue_steps_over_empty_runs() {
        // -1 + 1 = 0 for 2 bytes, then a zero delta: the end.
        let p = [2u8, 2, 0, 3];
        assert_eq!(gosym_pcvalue(table(&p, 1), 0x1000, 0x1001), 0);
        assert_eq!(gosym_pcvalue(table(&p, 1), 0x1000, 0x1002), -1);
        // A pc before the entry gets the first value.
        assert_eq!(gosym_pcvalue(table(&p, 1), 0x1000, 0xfff), 0);
        // 0 for 0 bytes, then 0+4 = 4 for 3*4 bytes: the empty run is
        // stepped over (the runtime's reading stops there).
        let p = [2u8, 0, 8, 3, 0];
        assert_eq!(gosym_pcvalue(table(&p, 4), 0x1000, 0x1004), 4);
        assert_eq!(table(&p, 4).count(), 0);
        // Truncated.
        assert_eq!(gosym_pcvalue(table(&[2, 0x80], 1), 0x1000, 0x1000), -1);
    }
}

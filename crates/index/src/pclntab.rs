//! The Go pclntab: header, function table, `_func` records, names and files.
//!
//! Four layouts exist, told apart by the header magic (docs/design.md §4.5):
//! go1.2 (`0xfffffffb`, Go 1.2–1.15), go1.16 (`0xfffffffa`, 1.16–1.17),
//! go1.18 (`0xfffffff0`, 1.18–1.19) and go1.20 (`0xfffffff1`, 1.20+).
//! Everything is read lazily from the mapped bytes; a [`Func`] is a small
//! copy of the fixed fields of one `_func`, parsed on demand.

use crate::{rd_u32, rd_u64, IndexError};

mod gosym;

/// Which pclntab layout a binary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layout {
    Go12,
    Go116,
    Go118,
    Go120,
}

impl Layout {
    pub fn from_magic(magic: u32) -> Option<Layout> {
        match magic {
            0xffff_fffb => Some(Layout::Go12),
            0xffff_fffa => Some(Layout::Go116),
            0xffff_fff0 => Some(Layout::Go118),
            0xffff_fff1 => Some(Layout::Go120),
            _ => None,
        }
    }

    /// The Go releases that write this layout.
    pub fn releases(self) -> &'static str {
        match self {
            Layout::Go12 => "go1.2-go1.15",
            Layout::Go116 => "go1.16-go1.17",
            Layout::Go118 => "go1.18-go1.19",
            Layout::Go120 => "go1.20+",
        }
    }

    /// The magic bytes, little-endian, as found at the start of the table.
    pub const MAGICS: [[u8; 4]; 4] = [
        [0xfb, 0xff, 0xff, 0xff],
        [0xfa, 0xff, 0xff, 0xff],
        [0xf0, 0xff, 0xff, 0xff],
        [0xf1, 0xff, 0xff, 0xff],
    ];
}

/// A parsed pclntab header with the sub-tables it points to.
#[derive(Clone)]
pub struct Pclntab<'d> {
    pub layout: Layout,
    /// Virtual address of the header.
    pub addr: u64,
    /// PC quantum (1 on amd64, 4 on arm64).
    pub quantum: u8,
    /// Number of functions.
    pub nfunc: usize,
    /// `textStart` from the header (0 in go1.26+, and absent before go1.18).
    pub header_text_start: u64,
    data: &'d [u8],
    funcnametab: &'d [u8],
    cutab: &'d [u8],
    filetab: &'d [u8],
    pctab: &'d [u8],
    /// The function table followed by the `_func` records (`pclntable`).
    pclntable: &'d [u8],
    /// go1.2 only: offset of the file table in `data`.
    go12_filetab: usize,
}

/// The fixed fields of one `_func` record.
#[derive(Clone, Copy, Debug)]
pub struct Func {
    /// Index in the function table.
    pub index: usize,
    pub entry: u64,
    /// First address past the function (the next function's entry).
    pub end: u64,
    name_off: u32,
    /// Offset from entry of the first `CALL runtime.deferreturn`, 0 if none.
    pub deferreturn: u32,
    pub pcsp: u32,
    pub pcfile: u32,
    pub pcln: u32,
    pub npcdata: u32,
    cu_offset: u32,
    /// Line of the `func` keyword (go1.20+).
    pub start_line: Option<i32>,
    pub nfuncdata: u8,
    /// Offset in `pclntable` (or `data` for go1.2) of the funcdata array
    /// start, before alignment.
    funcdata_off: usize,
}

fn cstr(b: &[u8], off: usize) -> Option<&str> {
    let s = b.get(off..)?;
    let end = memchr::memchr(0, s)?;
    std::str::from_utf8(&s[..end]).ok()
}

impl<'d> Pclntab<'d> {
    /// Parse the header at `addr`, whose bytes (to the end of the region
    /// holding it) are `data`. Every sub-table is checked to lie inside
    /// `data`, and the function table to fit, so later reads are cheap.
    pub fn parse(addr: u64, data: &'d [u8]) -> Result<Pclntab<'d>, IndexError> {
        let bad = |why: &str| IndexError::BadPclntab(format!("at {addr:#x}: {why}"));
        let Some(&[m0, m1, m2, m3, pad1, pad2, quantum, ptrsize]) = data.get(..8) else {
            return Err(bad("truncated header"));
        };
        let magic = u32::from_le_bytes([m0, m1, m2, m3]);
        let layout = Layout::from_magic(magic).ok_or_else(|| bad("bad magic"))?;
        if pad1 != 0 || pad2 != 0 {
            return Err(bad("bad header padding"));
        }
        if !matches!(quantum, 1 | 2 | 4) {
            return Err(bad("bad pc quantum"));
        }
        if ptrsize != 8 {
            return Err(bad("not a 64-bit table"));
        }
        let word = |i: usize| rd_u64(data, 8 + 8 * i).ok_or_else(|| bad("truncated header"));
        let nfunc = word(0)?;
        // A function takes at least a functab entry and a _func record of
        // 40 bytes, which bounds nfunc by the table size.
        if nfunc == 0 || nfunc > (data.len() / 40) as u64 {
            return Err(bad("implausible function count"));
        }
        let nfunc = nfunc as usize;
        let sub = |off: u64, what: &str| -> Result<&'d [u8], IndexError> {
            data.get(off as usize..)
                .filter(|_| off > 0 && off < data.len() as u64)
                .ok_or_else(|| bad(&format!("{what} offset out of range")))
        };
        let tab = match layout {
            Layout::Go12 => {
                // functab at 8+ptrsize: [nfunc]{entry, funcoff} then the
                // end PC, then a u32 file table offset.
                let ft = 16usize;
                let ft_end = ft + nfunc * 16 + 8;
                let filetab =
                    rd_u32(data, ft_end).ok_or_else(|| bad("truncated functab"))? as usize;
                if filetab >= data.len() {
                    return Err(bad("file table out of range"));
                }
                Pclntab {
                    layout,
                    addr,
                    quantum,
                    nfunc,
                    header_text_start: 0,
                    data,
                    funcnametab: data,
                    cutab: &[],
                    filetab: data,
                    pctab: data,
                    pclntable: data.get(ft..).ok_or_else(|| bad("truncated functab"))?,
                    go12_filetab: filetab,
                }
            }
            Layout::Go116 | Layout::Go118 | Layout::Go120 => {
                let has_text = layout >= Layout::Go118;
                let base = if has_text { 3 } else { 2 };
                let text_start = if has_text { word(2)? } else { 0 };
                Pclntab {
                    layout,
                    addr,
                    quantum,
                    nfunc,
                    header_text_start: text_start,
                    data,
                    funcnametab: sub(word(base)?, "funcname")?,
                    cutab: sub(word(base + 1)?, "cu")?,
                    filetab: sub(word(base + 2)?, "file")?,
                    pctab: sub(word(base + 3)?, "pc")?,
                    pclntable: sub(word(base + 4)?, "pcln")?,
                    go12_filetab: 0,
                }
            }
        };
        let need = (nfunc + 1) * tab.functab_entry_size();
        if tab.pclntable.len() < need {
            return Err(bad("function table runs past the end"));
        }
        Ok(tab)
    }

    fn functab_entry_size(&self) -> usize {
        match self.layout {
            Layout::Go12 | Layout::Go116 => 16,
            Layout::Go118 | Layout::Go120 => 8,
        }
    }

    /// Size in bytes of the header's region, from the header to the end of
    /// the mapped bytes that hold it.
    pub fn data(&self) -> &'d [u8] {
        self.data
    }

    /// Raw (entry, funcoff) of function table entry `i` (0..=nfunc), with
    /// entry relative to `text_start` for go1.18+.
    fn functab(&self, i: usize) -> Option<(u64, usize)> {
        let t = self.pclntable;
        match self.layout {
            Layout::Go12 | Layout::Go116 => {
                Some((rd_u64(t, 16 * i)?, rd_u64(t, 16 * i + 8)? as usize))
            }
            Layout::Go118 | Layout::Go120 => {
                Some((rd_u32(t, 8 * i)? as u64, rd_u32(t, 8 * i + 4)? as usize))
            }
        }
    }

    /// The `_func` records live in `pclntable` (go1.16+) or in the whole
    /// table (go1.2), at the function table's `funcoff`.
    fn func_base(&self) -> &'d [u8] {
        match self.layout {
            Layout::Go12 => self.data,
            _ => self.pclntable,
        }
    }

    /// The address in function table slot `i` (`0..=nfunc`): function
    /// `i`'s entry, and for `i == nfunc` the end of the last function. The
    /// cheap part of [`Pclntab::func`], for searches by address.
    pub fn entry_at(&self, i: usize, text_start: u64) -> Option<u64> {
        if i > self.nfunc {
            return None;
        }
        let (e, _) = self.functab(i)?;
        match self.layout {
            Layout::Go118 | Layout::Go120 => text_start.checked_add(e),
            Layout::Go12 | Layout::Go116 => Some(e),
        }
    }

    /// Function `i`, `text_start` being the address entry offsets are
    /// relative to (go1.18+; ignored before).
    pub fn func(&self, i: usize, text_start: u64) -> Option<Func> {
        if i >= self.nfunc {
            return None;
        }
        let (e0, funcoff) = self.functab(i)?;
        let (e1, _) = self.functab(i + 1)?;
        let rel = matches!(self.layout, Layout::Go118 | Layout::Go120);
        let (entry, end) = if rel {
            (text_start.checked_add(e0)?, text_start.checked_add(e1)?)
        } else {
            (e0, e1)
        };
        let b = self.func_base();
        let f = b.get(funcoff..)?;
        let u = |o: usize| rd_u32(f, o);
        let (name_off, deferreturn, pcsp, pcfile, pcln, npcdata, cu, start_line, nfd, pcdata) =
            match self.layout {
                Layout::Go12 => (
                    u(8)?,
                    u(16)?,
                    u(20)?,
                    u(24)?,
                    u(28)?,
                    u(32)?,
                    0,
                    None,
                    *f.get(39)?,
                    40,
                ),
                Layout::Go116 => (
                    u(8)?,
                    u(16)?,
                    u(20)?,
                    u(24)?,
                    u(28)?,
                    u(32)?,
                    u(36)?,
                    None,
                    *f.get(43)?,
                    44,
                ),
                Layout::Go118 => (
                    u(4)?,
                    u(12)?,
                    u(16)?,
                    u(20)?,
                    u(24)?,
                    u(28)?,
                    u(32)?,
                    None,
                    *f.get(39)?,
                    40,
                ),
                Layout::Go120 => (
                    u(4)?,
                    u(12)?,
                    u(16)?,
                    u(20)?,
                    u(24)?,
                    u(28)?,
                    u(32)?,
                    Some(u(36)? as i32),
                    *f.get(43)?,
                    44,
                ),
            };
        if npcdata > 1 << 16 {
            return None;
        }
        Some(Func {
            index: i,
            entry,
            end,
            name_off,
            deferreturn,
            pcsp,
            pcfile,
            pcln,
            npcdata,
            cu_offset: cu,
            start_line,
            nfuncdata: nfd,
            funcdata_off: funcoff + pcdata + npcdata as usize * 4,
        })
    }

    /// The function's name, as the linker wrote it.
    pub fn name(&self, f: &Func) -> Option<&'d str> {
        cstr(self.funcnametab, f.name_off as usize)
    }

    /// Raw bytes of the function's name (for fast comparisons).
    pub fn name_bytes(&self, f: &Func) -> Option<&'d [u8]> {
        let s = self.funcnametab.get(f.name_off as usize..)?;
        Some(&s[..memchr::memchr(0, s)?])
    }

    /// Funcdata slot `i`: `Some(Raw::Off(x))` (go1.18+, an offset from
    /// `moduledata.gofunc`), `Some(Raw::Addr(x))` (older, an absolute
    /// address), or `None` when the function has no such funcdata.
    /// `pclntab_addr_of_base` gives the virtual address of the record base
    /// for the go1.16 alignment rule.
    pub fn funcdata(&self, f: &Func, i: u8) -> Option<FuncdataRef> {
        if i >= f.nfuncdata {
            return None;
        }
        let b = self.func_base();
        match self.layout {
            Layout::Go118 | Layout::Go120 => {
                let v = rd_u32(b, f.funcdata_off + 4 * i as usize)?;
                (v != u32::MAX).then_some(FuncdataRef::GoFuncOff(v as u64))
            }
            Layout::Go12 | Layout::Go116 => {
                // Aligned to 8 by absolute address.
                let base_addr = self.addr + (b.as_ptr() as u64 - self.data.as_ptr() as u64);
                let mut off = f.funcdata_off;
                if (base_addr + off as u64) & 4 != 0 {
                    off += 4;
                }
                let v = rd_u64(b, off + 8 * i as usize)?;
                (v != 0).then_some(FuncdataRef::Addr(v))
            }
        }
    }

    /// Offset in the pc tables of the function's pc-value table
    /// `PCDATA_*` number `i` (2 is `PCDATA_InlTreeIndex`), `None` when the
    /// function has none. The offsets follow the fixed `_func` fields.
    pub fn pcdata(&self, f: &Func, i: u32) -> Option<u32> {
        if i >= f.npcdata {
            return None;
        }
        let start = f.funcdata_off.checked_sub(4 * f.npcdata as usize)?;
        let v = rd_u32(self.func_base(), start + 4 * i as usize)?;
        (v != 0).then_some(v)
    }

    /// The function name at offset `off` of the name table (go1.16+), or
    /// of the whole table (go1.2 layout), as inline tree entries give it.
    pub fn name_at(&self, off: u32) -> Option<&'d str> {
        match self.layout {
            Layout::Go12 => cstr(self.data, off as usize),
            _ => cstr(self.funcnametab, off as usize),
        }
    }

    /// The pc-value table at `off` in the pc tables (none at offset 0:
    /// the function has no such table).
    pub fn pcvalue(&self, off: u32, entry: u64) -> PcValueIter<'d> {
        self.pcvalue_in(
            if off == 0 {
                &[]
            } else {
                self.pctab.get(off as usize..).unwrap_or(&[])
            },
            entry,
        )
    }

    /// The pc-value table at the start of `p`, for a function at `entry`.
    fn pcvalue_in(&self, p: &'d [u8], entry: u64) -> PcValueIter<'d> {
        PcValueIter {
            p,
            pc: entry,
            val: -1,
            first: true,
            quantum: self.quantum as u64,
        }
    }

    /// The file name for pcfile value `v` in function `f`.
    pub fn file(&self, f: &Func, v: i32) -> Option<&'d str> {
        if v < 0 {
            return None;
        }
        match self.layout {
            Layout::Go12 => {
                let n = rd_u32(self.data, self.go12_filetab)? as i32;
                if v >= n {
                    return None;
                }
                let off = rd_u32(self.data, self.go12_filetab + 4 * v as usize)?;
                cstr(self.data, off as usize)
            }
            _ => {
                let idx = (f.cu_offset as usize).checked_add(v as usize)?;
                let off = rd_u32(self.cutab, 4 * idx)?;
                if off == u32::MAX {
                    return None;
                }
                cstr(self.filetab, off as usize)
            }
        }
    }

    /// The functab's raw entry for function 0, used to validate a guessed
    /// text start.
    pub fn first_entry_raw(&self) -> Option<u64> {
        self.functab(0).map(|(e, _)| e)
    }

    /// Raw end-of-text offset (last functab entry).
    pub fn end_raw(&self) -> Option<u64> {
        self.functab(self.nfunc).map(|(e, _)| e)
    }
}

/// Where a funcdata item lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncdataRef {
    /// An offset from `moduledata.gofunc` (go1.18+).
    GoFuncOff(u64),
    /// An absolute virtual address (before go1.18).
    Addr(u64),
}

/// Iterator over the runs of a pc-value table: `(start_pc, end_pc, value)`.
pub struct PcValueIter<'d> {
    p: &'d [u8],
    pc: u64,
    val: i32,
    first: bool,
    quantum: u64,
}

fn uvarint(p: &mut &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    let mut shift = 0;
    loop {
        let (&b, rest) = p.split_first()?;
        *p = rest;
        if shift >= 35 {
            return None;
        }
        v |= ((b & 0x7f) as u32).wrapping_shl(shift);
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

impl PcValueIter<'_> {
    /// Decode the next pair of the table: the value it sets and the
    /// length in bytes of its run (0 included). `None` at the end of the
    /// table (a zero value delta after the first pair) or where it is
    /// truncated.
    #[inline]
    fn advance(&mut self) -> Option<(i32, u64)> {
        let uv = uvarint(&mut self.p)?;
        if uv == 0 && !self.first {
            return None;
        }
        self.first = false;
        let delta = if uv & 1 != 0 {
            !((uv >> 1) as i32)
        } else {
            (uv >> 1) as i32
        };
        self.val = self.val.wrapping_add(delta);
        Some((self.val, uvarint(&mut self.p)? as u64 * self.quantum))
    }
}

impl Iterator for PcValueIter<'_> {
    type Item = (u64, u64, i32);

    fn next(&mut self) -> Option<(u64, u64, i32)> {
        let (val, pcd) = self.advance()?;
        if pcd == 0 {
            // A zero-length run can only come from a corrupt table; stop
            // rather than yield an empty range forever.
            return None;
        }
        let start = self.pc;
        self.pc = self.pc.checked_add(pcd)?;
        Some((start, self.pc, val))
    }
}

/// A decoded pc-value table for fast lookups: sorted runs.
#[derive(Clone, Debug, Default)]
pub struct PcTable {
    runs: Vec<(u64, u64, i32)>,
}

impl PcTable {
    /// Decode at most `limit_pc - entry` bytes worth of runs.
    pub fn decode(iter: PcValueIter<'_>, limit_pc: u64) -> PcTable {
        let mut runs = Vec::new();
        for (s, e, v) in iter {
            if s >= limit_pc {
                break;
            }
            runs.push((s, e, v));
        }
        PcTable { runs }
    }

    /// The value at `pc`, if covered.
    pub fn at(&self, pc: u64) -> Option<i32> {
        let i = self.runs.partition_point(|r| r.1 <= pc);
        let r = self.runs.get(i)?;
        (r.0 <= pc).then_some(r.2)
    }

    /// All runs.
    pub fn runs(&self) -> &[(u64, u64, i32)] {
        &self.runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz/pclntab): a valid magic in fewer than 8 bytes
    /// indexed past the end.
    #[test]
    fn short_header_is_an_error() {
        for n in 0..16 {
            let mut d = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8, 1, 0, 0, 0, 0, 0, 0, 0];
            d.truncate(n);
            assert!(Pclntab::parse(0x1000, &d).is_err());
        }
    }

    #[test]
    fn pcvalue_decodes_zigzag_deltas() {
        // value -1 -> +1 = 0 over 2 bytes; +4 (uv=8) over 3*q; end.
        let bytes = [2u8, 2, 8, 3, 0];
        let it = PcValueIter {
            p: &bytes,
            pc: 0x1000,
            val: -1,
            first: true,
            quantum: 1,
        };
        let runs: Vec<_> = it.collect();
        assert_eq!(runs, vec![(0x1000, 0x1002, 0), (0x1002, 0x1005, 4)]);
        // Negative delta: uv=3 -> !(1) = -2.
        let bytes = [0x0a, 1, 3, 1, 0];
        let it = PcValueIter {
            p: &bytes,
            pc: 0,
            val: -1,
            first: true,
            quantum: 4,
        };
        let runs: Vec<_> = it.collect();
        assert_eq!(runs, vec![(0, 4, 4), (4, 8, 2)]);
    }

    #[test]
    fn pcvalue_stops_on_truncation_and_zero_runs() {
        let it = PcValueIter {
            p: &[2, 0, 2, 2],
            pc: 0,
            val: -1,
            first: true,
            quantum: 1,
        };
        assert_eq!(it.count(), 0);
        let it = PcValueIter {
            p: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            pc: 0,
            val: -1,
            first: true,
            quantum: 1,
        };
        assert_eq!(it.count(), 0);
    }
}

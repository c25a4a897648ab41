//! Stage 2 of the deferscope pipeline: **index**.
//!
//! Given an [`Image`] from the load stage, this crate finds the Go runtime's
//! own tables and exposes them lazily:
//!
//! - the **pclntab** (function table, names, files, pc-value tables), found by
//!   section name, then by symbol, then by scanning for its magic and
//!   validating the header ([`find_pclntab`]);
//! - the **moduledata** record that points at it, which gives the text start
//!   (go1.26+ no longer stores it in the header) and `gofunc`, the base of
//!   funcdata offsets (go1.18+);
//! - the **build info** block (Go version, main module, build settings);
//! - the **text bounds** ([`GoIndex::text_range`], [`GoIndex::text_bounds`])
//!   and debug/gosym's reading of the line tables where it differs from
//!   the runtime's ([`Pclntab::gosym_pos`]), which `go tool objdump`
//!   prints.
//!
//! Nothing is decoded up front beyond the headers: a [`Func`] is parsed from
//! its `_func` record when asked for, and line tables are decoded per
//! function. Counts read from the file are checked against the file's size
//! before anything is allocated from them.

pub mod buildinfo;
pub mod deferrec;
pub mod dwarf;
pub mod inline;
pub mod names;
pub mod opendefer;
pub mod pclntab;
pub mod runtime;
pub mod synth;
pub mod version;

use deferscope_load::{Format, Image};

pub use buildinfo::BuildInfo;
pub use dwarf::{Dwarf, DwarfCapture, LocPiece, LocRange, LocatedCapture, VarAt, Wanted};
pub use inline::InlineTree;
pub use opendefer::{OpenDeferFormat, OpenDeferInfo};
pub use pclntab::{Func, FuncdataRef, Layout, PcTable, PcValueIter, Pclntab};
pub use version::VersionSource;

/// Why the Go tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("no Go pclntab found: not a Go binary, or a packed or damaged one")]
    NoPclntab,
    #[error("damaged Go pclntab {0}")]
    BadPclntab(String),
    #[error("Go moduledata not found; cannot locate funcdata (damaged or unusual binary)")]
    NoModuledata,
}

pub(crate) fn rd_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn rd_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A Go release number, `go1.MINOR.PATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    /// Parse `go1.22.10`, `go1.21rc2`, `devel go1.23-abcdef ...`.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let i = s.find("go1.")?;
        let rest = &s[i + 4..];
        let digits = |t: &str| -> (Option<u32>, usize) {
            let n = t.bytes().take_while(u8::is_ascii_digit).count();
            (t[..n].parse().ok(), n)
        };
        let (minor, n) = digits(rest);
        let minor = minor?;
        let patch = rest[n..]
            .strip_prefix('.')
            .and_then(|t| digits(t).0)
            .unwrap_or(0);
        Some(GoVersion { minor, patch })
    }

    pub fn at_least(self, minor: u32) -> bool {
        self.minor >= minor
    }
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "go1.{}.{}", self.minor, self.patch)
    }
}

/// Find the pclntab: by section, by symbol, then by scanning mapped bytes
/// for one of the four magics followed by a header that parses.
pub fn find_pclntab<'d>(img: &Image<'d>) -> Result<Pclntab<'d>, IndexError> {
    let mut first_err = None;
    let mut try_at = |addr: u64| -> Option<Pclntab<'d>> {
        let data = img.read_to_end(addr)?;
        match Pclntab::parse(addr, data) {
            Ok(t) => Some(t),
            Err(e) => {
                first_err.get_or_insert(e);
                None
            }
        }
    };
    for name in [".gopclntab", "__gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(s) = img.section(name) {
            if let Some(t) = try_at(s.addr) {
                return Ok(t);
            }
        }
    }
    for name in ["runtime.pcheader", "runtime.pclntab"] {
        if let Some(a) = img.symbol(name) {
            if let Some(t) = try_at(a) {
                return Ok(t);
            }
        }
    }
    // Scan. The header is pointer-aligned; check the cheap fields before
    // parsing. Prefer a table whose first function name looks like Go.
    for (base, bytes) in img.mapped_chunks() {
        for magic in Layout::MAGICS {
            for off in memchr::memmem::find_iter(bytes, &magic) {
                if off % 8 != 0 {
                    continue;
                }
                let h = &bytes[off..];
                if h.len() < 64 || h[4] != 0 || h[5] != 0 || !matches!(h[6], 1 | 2 | 4) || h[7] != 8
                {
                    continue;
                }
                if let Ok(t) = Pclntab::parse(base + off as u64, h) {
                    if plausible(&t) {
                        return Ok(t);
                    }
                }
            }
        }
    }
    Err(first_err.unwrap_or(IndexError::NoPclntab))
}

/// A scanned header is accepted when its first functions have names made of
/// printable characters.
fn plausible(t: &Pclntab<'_>) -> bool {
    (0..t.nfunc.min(4)).all(|i| {
        t.func(i, 0)
            .and_then(|f| t.name_bytes(&f))
            .is_some_and(|n| {
                !n.is_empty() && n.iter().all(|&b| (0x20..0x7f).contains(&b) || b >= 0x80)
            })
    })
}

/// The parts of `runtime.moduledata` deferscope needs.
#[derive(Clone, Copy, Debug)]
pub struct Moduledata {
    /// Virtual address of the record.
    pub addr: u64,
    /// `text`: the address functab entry offsets are relative to.
    pub text: u64,
    pub etext: u64,
    /// `gofunc`: the base of funcdata offsets (go1.18+).
    pub gofunc: Option<u64>,
}

/// Find the moduledata whose first word points at the pclntab header.
pub fn find_moduledata(
    img: &Image<'_>,
    tab: &Pclntab<'_>,
    version: Option<GoVersion>,
) -> Option<Moduledata> {
    let check = |addr: u64| -> Option<Moduledata> {
        let w = |i: u64| img.read_u64(addr + 8 * i);
        if w(0)? != tab.addr {
            return None;
        }
        // funcnametab: pointer into the table, len == cap.
        let fnt = w(1)?;
        if fnt <= tab.addr || fnt >= tab.addr + tab.data().len() as u64 || w(2)? != w(3)? {
            return None;
        }
        // ftab has nfunc+1 entries.
        let nftab = w(17)?;
        if nftab != tab.nfunc as u64 + 1 && nftab != tab.nfunc as u64 {
            return None;
        }
        let (minpc, maxpc, text, etext) = (w(20)?, w(21)?, w(22)?, w(23)?);
        if !(text <= minpc && minpc < maxpc && maxpc <= etext.max(maxpc)) {
            return None;
        }
        let gofunc_index = match tab.layout {
            Layout::Go12 | Layout::Go116 => None,
            Layout::Go118 => Some(38),
            Layout::Go120 => Some(match version {
                Some(v) if v.at_least(27) => 43,
                Some(_) => 40,
                // go1.27 inserted typedesclen (a length) after types (an
                // address), and itaboffset/itabsize after etypes.
                None => {
                    if w(38)? < w(37)? {
                        43
                    } else {
                        40
                    }
                }
            }),
        };
        let gofunc = gofunc_index.and_then(w).filter(|&g| g != 0);
        Some(Moduledata {
            addr,
            text,
            etext,
            gofunc,
        })
    };
    if let Some(a) = img.symbol("runtime.firstmoduledata") {
        if let Some(m) = check(a) {
            return Some(m);
        }
    }
    let needle = tab.addr.to_le_bytes();
    for (base, bytes) in img.mapped_chunks() {
        for off in memchr::memmem::find_iter(bytes, &needle) {
            if !(base + off as u64).is_multiple_of(8) {
                continue;
            }
            if let Some(m) = check(base + off as u64) {
                return Some(m);
            }
        }
    }
    None
}

/// Everything the later stages need to read a Go binary.
pub struct GoIndex<'d> {
    pub pcln: Pclntab<'d>,
    pub moduledata: Option<Moduledata>,
    /// The address functab entries are relative to (go1.18+).
    pub text_start: u64,
    pub buildinfo: Option<BuildInfo>,
    /// From the build info, else from the runtime's `buildVersion` string.
    pub version: Option<GoVersion>,
    /// The version string as found (`go1.22.10`), and where it came from.
    pub version_string: Option<(String, VersionSource)>,
}

impl<'d> GoIndex<'d> {
    /// Index `img`. Fails only when no usable pclntab exists.
    pub fn new(img: &Image<'d>) -> Result<GoIndex<'d>, IndexError> {
        let pcln = find_pclntab(img)?;
        let buildinfo = buildinfo::find(img);
        let version_string = match &buildinfo {
            Some(b) => Some((b.go_version.clone(), VersionSource::BuildInfo)),
            None => version::runtime_version(img).map(|v| (v, VersionSource::Runtime)),
        };
        let version = version_string
            .as_ref()
            .and_then(|(v, _)| GoVersion::parse(v));
        let moduledata = match pcln.layout {
            Layout::Go12 | Layout::Go116 => None,
            _ => find_moduledata(img, &pcln, version),
        };
        let text_start = match pcln.layout {
            Layout::Go12 | Layout::Go116 => 0,
            _ => {
                if pcln.header_text_start != 0 {
                    pcln.header_text_start
                } else if let Some(m) = moduledata {
                    m.text
                } else {
                    text_section(img)
                        .map(|s| s.0)
                        .ok_or(IndexError::NoModuledata)?
                }
            }
        };
        let idx = GoIndex {
            pcln,
            moduledata,
            text_start,
            buildinfo,
            version,
            version_string,
        };
        // The first function must start in mapped bytes; otherwise the
        // table or the text start is wrong.
        let f0 = idx
            .func(0)
            .ok_or_else(|| IndexError::BadPclntab("first function unreadable".into()))?;
        if img.read(f0.entry, 1).is_none() {
            return Err(IndexError::BadPclntab(format!(
                "first function entry {:#x} is not in the file",
                f0.entry
            )));
        }
        Ok(idx)
    }

    /// Number of functions.
    pub fn nfunc(&self) -> usize {
        self.pcln.nfunc
    }

    /// Function `i`.
    pub fn func(&self, i: usize) -> Option<Func> {
        self.pcln.func(i, self.text_start)
    }

    /// All functions, in address order.
    pub fn funcs(&self) -> impl Iterator<Item = Func> + '_ {
        (0..self.pcln.nfunc).filter_map(|i| self.func(i))
    }

    /// A function's name, or `?` when unreadable.
    pub fn name(&self, f: &Func) -> &'d str {
        self.pcln.name(f).unwrap_or("?")
    }

    /// The function containing `pc`: a binary search over the function
    /// table's entry addresses alone (the table is sorted by entry), then
    /// the one record found. On a damaged, unsorted table the answer is
    /// still a function that contains `pc`, or `None`.
    pub fn func_for_pc(&self, pc: u64) -> Option<Func> {
        let entry = |i| self.pcln.entry_at(i, self.text_start);
        let (mut lo, mut hi) = (0usize, self.pcln.nfunc);
        // The last function whose entry is at or before pc.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if entry(mid)? <= pc {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let f = self.func(lo.checked_sub(1)?)?;
        (f.entry <= pc && pc < f.end).then_some(f)
    }

    /// Entries of the functions named in `names`, in one pass over the table.
    pub fn find_funcs(&self, names: &[&str]) -> Vec<Option<Func>> {
        let mut out = vec![None; names.len()];
        let mut left = names.len();
        for f in self.funcs() {
            if left == 0 {
                break;
            }
            let Some(n) = self.pcln.name_bytes(&f) else {
                continue;
            };
            for (slot, want) in out.iter_mut().zip(names) {
                if slot.is_none() && n == want.as_bytes() {
                    *slot = Some(f);
                    left -= 1;
                }
            }
        }
        out
    }

    /// Resolve a funcdata reference to a virtual address.
    pub fn funcdata_addr(&self, f: &Func, i: u8) -> Option<u64> {
        match self.pcln.funcdata(f, i)? {
            FuncdataRef::Addr(a) => Some(a),
            FuncdataRef::GoFuncOff(o) => self.moduledata?.gofunc?.checked_add(o),
        }
    }

    /// The function's line table: file and line for each pc.
    pub fn lines(&self, f: &Func) -> LineTable<'d> {
        LineTable {
            files: PcTable::decode(self.pcln.pcvalue(f.pcfile, f.entry), f.end),
            lines: PcTable::decode(self.pcln.pcvalue(f.pcln, f.entry), f.end),
            func: *f,
            pcln: self.pcln.clone(),
        }
    }

    /// The text the function table covers: from the first function's
    /// entry to the last one's end.
    pub fn text_range(&self) -> Option<(u64, u64)> {
        let first = self.func(0)?;
        let last = self.func(self.nfunc().checked_sub(1)?)?;
        Some((first.entry, last.end))
    }

    /// Where instructions are: the text section (`.text`, `__text`), else
    /// the text the function table covers ([`GoIndex::text_range`]), else
    /// the first function's entry alone.
    pub fn text_bounds(&self, img: &Image<'_>) -> (u64, u64) {
        if let Some(t) = text_section(img) {
            return t;
        }
        self.text_range().unwrap_or_else(|| {
            let first = self.func(0).map_or(0, |f| f.entry);
            (first, first)
        })
    }

    /// Where this binary keeps `FUNCDATA_OpenCodedDeferInfo` (its funcdata
    /// index) and which encoding it uses (design.md §5.1-5.2): go1.14-1.15
    /// index 5, later 4; format A to go1.17, B to go1.21, C from go1.22
    /// (told apart by `runtime.(*_panic).nextDefer`, new in go1.22, when the
    /// version is unknown).
    pub fn open_defer_layout(&self, rt: &runtime::Runtime) -> (u8, OpenDeferFormat) {
        match self.pcln.layout {
            Layout::Go12 => (5, OpenDeferFormat::A),
            Layout::Go116 => (4, OpenDeferFormat::A),
            Layout::Go118 => (4, OpenDeferFormat::B),
            Layout::Go120 => {
                let c = self
                    .version
                    .map_or(rt.has(runtime::RuntimeFn::NextDefer), |v| v.at_least(22));
                (
                    4,
                    if c {
                        OpenDeferFormat::C
                    } else {
                        OpenDeferFormat::B
                    },
                )
            }
        }
    }

    /// The function's open-coded defer record, decoded; `None` when it has
    /// none (or it is damaged). `layout` is [`GoIndex::open_defer_layout`].
    pub fn open_defer_info(
        &self,
        img: &Image<'d>,
        f: &Func,
        layout: (u8, OpenDeferFormat),
    ) -> Option<OpenDeferInfo> {
        self.funcdata_addr(f, layout.0)
            .and_then(|a| img.read_to_end(a))
            .and_then(|b| OpenDeferInfo::parse(b, layout.1))
    }

    /// The function's stack-pointer delta table.
    pub fn spdelta(&self, f: &Func) -> PcTable {
        PcTable::decode(self.pcln.pcvalue(f.pcsp, f.entry), f.end)
    }
}

/// The text section's bounds, `(start, end)`, by its name in the format.
fn text_section(img: &Image<'_>) -> Option<(u64, u64)> {
    let name = match img.format {
        Format::Elf | Format::Pe => ".text",
        Format::MachO => "__text",
    };
    img.section(name).map(|s| (s.addr, s.addr + s.size))
}

/// A decoded pc→file:line map for one function.
pub struct LineTable<'d> {
    files: PcTable,
    lines: PcTable,
    func: Func,
    pcln: Pclntab<'d>,
}

impl<'d> LineTable<'d> {
    /// File and line of the instruction at `pc`.
    pub fn at(&self, pc: u64) -> Option<(&'d str, u32)> {
        let file = self.pcln.file(&self.func, self.files.at(pc)?)?;
        let line = self.lines.at(pc)?;
        Some((file, u32::try_from(line).ok()?))
    }

    /// The line runs: (start, end, line).
    pub fn line_runs(&self) -> &[(u64, u64, i32)] {
        self.lines.runs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            GoVersion::parse("go1.22.10"),
            Some(GoVersion {
                minor: 22,
                patch: 10
            })
        );
        assert_eq!(
            GoVersion::parse("go1.21rc2"),
            Some(GoVersion {
                minor: 21,
                patch: 0
            })
        );
        assert_eq!(
            GoVersion::parse("devel go1.23-abc Mon"),
            Some(GoVersion {
                minor: 23,
                patch: 0
            })
        );
        assert_eq!(GoVersion::parse("gccgo"), None);
    }
}

//! The DWARF of an unstripped Go binary, read for two questions the Go
//! tables cannot answer: which variables a closure captures (name, by
//! reference or by value, width, offset in the closure struct), and the
//! names of a function's results (design.md §6.4).
//!
//! Lazy and bounded: [`Dwarf::load`] only looks the sections up; the first
//! question decompresses them (zlib: `.zdebug_*` with a `ZLIB` header on
//! PE and Mach-O, `SHF_COMPRESSED` `.debug_*` on ELF) and builds one sorted
//! table from entry address to subprogram DIE; later questions read only
//! that subprogram's unit. Declared decompressed sizes are capped
//! ([`MAX_SECTION`], and at most 1032 times the compressed bytes, zlib's
//! largest ratio). Damaged DWARF gives `None` or fewer answers, never a
//! panic.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};

use deferscope_load::{Format, Image};
use gimli::{
    AttributeValue, DebugInfoOffset, DwAt, DwTag, EndianSlice, LittleEndian, SectionId, Unit,
};

use crate::GoVersion;

mod inflate;
mod units;
pub use units::Wanted;
use units::{entry_die, FuncIndex};
mod locs;
mod skip;
pub use locs::{LocPiece, LocRange, LocatedCapture, VarAt};

type R<'a> = EndianSlice<'a, LittleEndian>;

/// Go's attribute for a captured variable's offset in the closure struct,
/// emitted from go1.23 on (cmd/internal/dwarf `DW_AT_go_closure_offset`).
pub const DW_AT_GO_CLOSURE_OFFSET: DwAt = DwAt(0x2907);

/// The largest decompressed section accepted (1 GiB).
pub const MAX_SECTION: u64 = 1 << 30;

/// Pointer width of the supported targets (amd64, arm64).
const PTR: u64 = 8;

/// One captured variable of a closure, as the closure's DWARF shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DwarfCapture {
    /// The variable's name, without the `&` Go prefixes to a by-reference
    /// capture's DWARF variable.
    pub name: String,
    /// Captured by reference (the closure holds a pointer to it).
    pub by_ref: bool,
    /// False when `by_ref` is a guess: a `&x` whose `x` has a type the
    /// compiler cannot keep in registers and of at most 128 bytes is either
    /// a by-reference capture or a by-value one addressed in place, and no
    /// following field offset tells which (design.md §6.4). Then `by_ref`
    /// is false (by value) and `bytes` the variable's size.
    pub certain: bool,
    /// Bytes the capture occupies in the closure struct: 8 by reference,
    /// the variable's size by value.
    pub bytes: u64,
    /// Offset in the closure struct (the function pointer is at 0), from
    /// `DW_AT_go_closure_offset` (go1.23+); `None` before.
    pub offset: Option<u64>,
    /// For a `&x` variable, the size of `x`: the bytes the capture takes
    /// if it is by value after all (a by-value capture the closure body
    /// addresses in place, as a channel send does).
    pub pointee_bytes: Option<u64>,
}

/// A section as found in the file, before decompression.
#[derive(Clone, Copy)]
struct Raw<'d> {
    data: &'d [u8],
    /// Bytes of the section proper (PE pads the file data).
    size: u64,
}

/// Decompressed sections, the units and the entry-address table.
struct Parsed<'d> {
    sections: gimli::DwarfSections<Cow<'d, [u8]>>,
    /// Offsets of the compilation units, ascending.
    units: Vec<usize>,
    /// Each unit's `DW_AT_name` (Go: its package's path), as `units`.
    names: Vec<Box<str>>,
    /// The top-level subprograms by entry address, of the units indexed
    /// so far ([`units`]).
    index: Mutex<FuncIndex>,
    /// The abbreviation tables parsed, by `.debug_abbrev` offset (Go's
    /// units share one; gimli's cache is per `gimli::Dwarf`, made anew
    /// for each question).
    abbrevs: Mutex<units::Abbrevs>,
    /// The top-level subprograms by name of each unit indexed that was
    /// compiled before go1.23, by unit offset (`units::index_unit`, for
    /// [`units::subprogram_named`]).
    by_name: Mutex<HashMap<usize, HashMap<String, usize>>>,
}

/// The DWARF of one binary. Cheap to create; parsed on first question.
pub struct Dwarf<'d> {
    raw: Vec<(SectionId, Raw<'d>)>,
    elf: bool,
    parsed: OnceLock<Option<Parsed<'d>>>,
    /// `.debug_line`, decompressed only when a closure's subprogram has
    /// no `DW_AT_decl_line` (go1.19): its entry row gives the line.
    line: Option<Raw<'d>>,
    line_data: OnceLock<Option<Cow<'d, [u8]>>>,
    /// Entry lines from the Go line table, by entry ([`Dwarf::want`]):
    /// `.debug_line` is then not needed.
    entry_lines: Mutex<HashMap<u64, u64>>,
    /// `.debug_loc`, decompressed only when a closure before go1.23 is
    /// asked for its variables' locations ([`locs`]).
    loc: Option<Raw<'d>>,
    loc_data: OnceLock<Option<Cow<'d, [u8]>>>,
    /// `.debug_loclists` (DWARF 5, go1.25+), likewise.
    loclists: Option<Raw<'d>>,
    loclists_data: OnceLock<Option<Cow<'d, [u8]>>>,
}

impl std::fmt::Debug for Dwarf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("sections", &self.raw.len())
            .finish()
    }
}

/// What a subprogram's direct child variable or parameter says, with its
/// abstract origin's attributes filled in.
struct Var {
    tag: DwTag,
    name: String,
    line: Option<u64>,
    ty: Option<usize>,
    closure_offset: Option<u64>,
    output: bool,
    /// `DW_AT_location` as a `.debug_loc` offset ([`locs`]).
    loc_list: Option<usize>,
}

impl Default for Var {
    fn default() -> Var {
        Var {
            tag: gimli::DW_TAG_null,
            name: String::new(),
            line: None,
            ty: None,
            closure_offset: None,
            output: false,
            loc_list: None,
        }
    }
}

/// The sections read, by gimli's id: what names, types and entry
/// addresses need. The line program and the range lists are left out
/// (and not decompressed: on cmd/go they are more than half of the
/// compressed DWARF); the units are read with [`Dwarf::unit_of`]'s
/// header-only parse.
const IDS: [SectionId; 6] = [
    SectionId::DebugAbbrev,
    SectionId::DebugAddr,
    SectionId::DebugInfo,
    SectionId::DebugLineStr,
    SectionId::DebugStr,
    SectionId::DebugStrOffsets,
];

impl<'d> Dwarf<'d> {
    /// Find the DWARF sections of `img`; `None` when it has no
    /// `.debug_info` (stripped, `-ldflags=-w`). Nothing is decompressed.
    pub fn load(img: &Image<'d>) -> Option<Dwarf<'d>> {
        let mut raw = Vec::new();
        for id in IDS {
            let rest = id.name().trim_start_matches(".debug_");
            let names = [
                id.name().to_string(),
                format!(".zdebug_{rest}"),
                format!("__debug_{rest}"),
                format!("__zdebug_{rest}"),
            ];
            // Mach-O section names are cut at 16 bytes (`__zdebug_line_st`).
            let found = names.iter().find_map(|n| {
                let s = img.section(n).or_else(|| img.section(n.get(..16)?))?;
                Some(Raw {
                    data: img.section_data(s)?,
                    size: s.size,
                })
            });
            if let Some(r) = found {
                raw.push((id, r));
            }
        }
        if !raw.iter().any(|(id, _)| *id == SectionId::DebugInfo) {
            return None;
        }
        let line = [
            ".debug_line",
            ".zdebug_line",
            "__debug_line",
            "__zdebug_line",
        ]
        .iter()
        .find_map(|n| {
            let s = img.section(n)?;
            Some(Raw {
                data: img.section_data(s)?,
                size: s.size,
            })
        });
        let section = |rest: &str| {
            ["debug", "zdebug", "__debug", "__zdebug"]
                .iter()
                .find_map(|pre| {
                    let n = format!(
                        "{}{pre}_{rest}",
                        if pre.starts_with('_') { "" } else { "." }
                    );
                    let s = img.section(&n).or_else(|| img.section(n.get(..16)?))?;
                    Some(Raw {
                        data: img.section_data(s)?,
                        size: s.size,
                    })
                })
        };
        let loc = section("loc");
        let loclists = section("loclists");
        Some(Dwarf {
            raw,
            elf: img.format == Format::Elf,
            parsed: OnceLock::new(),
            line,
            line_data: OnceLock::new(),
            entry_lines: Mutex::new(HashMap::new()),
            loc,
            loc_data: OnceLock::new(),
            loclists,
            loclists_data: OnceLock::new(),
        })
    }

    fn parsed(&self) -> Option<&Parsed<'d>> {
        self.parsed.get_or_init(|| self.parse()).as_ref()
    }

    fn parse(&self) -> Option<Parsed<'d>> {
        let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'d, [u8]>, ()> {
            Ok(match self.raw.iter().find(|(i, _)| *i == id) {
                Some((_, r)) => decompress(*r, self.elf).unwrap_or(Cow::Borrowed(&[])),
                None => Cow::Borrowed(&[]),
            })
        })
        .ok()?;
        let dwarf = sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let list = units::list(&dwarf);
        let index = Mutex::new(FuncIndex::new(list.offsets.len()));
        Some(Parsed {
            sections,
            units: list.offsets,
            names: list.names,
            index,
            abbrevs: Mutex::new(list.abbrevs),
            by_name: Mutex::new(HashMap::new()),
        })
    }

    /// The line of the row at `entry` in `unit`'s line program, read
    /// from `.debug_line` (decompressed on first use).
    fn line_at(&self, unit: &Unit<R<'_>>, entry: u64) -> Option<u64> {
        let data = self
            .line_data
            .get_or_init(|| self.line.and_then(|r| decompress(r, self.elf)))
            .as_ref()?;
        let mut c = unit.entries();
        let (_, root) = c.next_dfs().ok()??;
        let Some(AttributeValue::DebugLineRef(off)) =
            root.attr_value(gimli::DW_AT_stmt_list).ok()?
        else {
            return None;
        };
        let lp = gimli::DebugLine::new(data, LittleEndian)
            .program(off, unit.header.address_size(), None, None)
            .ok()?;
        let mut rows = lp.rows();
        while let Ok(Some((_, row))) = rows.next_row() {
            if row.address() == entry && !row.end_sequence() {
                return row.line().map(|l| l.get());
            }
        }
        None
    }

    /// Number of subprograms with an entry address (parses and indexes
    /// every unit on first use).
    pub fn functions(&self) -> usize {
        self.parsed().map_or(0, units::index_all)
    }

    /// The captured variables of the closure whose code starts at `entry`,
    /// in closure-field order when go1.23+ gives the offsets (DWARF order
    /// before); `None` when no subprogram starts at `entry` or the DWARF is
    /// unreadable. Captures the optimizer dropped are absent, and before
    /// go1.23 a by-value capture is found only when the enclosing function
    /// has a variable of that name and type (design.md §6.4).
    pub fn closure_captures(&self, entry: u64) -> Option<Vec<DwarfCapture>> {
        let p = self.parsed()?;
        let dwarf = p.sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let (unit, name, vars) = self.children(p, &dwarf, entry)?;
        let minor = producer_minor(&dwarf, &unit);
        let has_offsets = vars.iter().any(|v| v.closure_offset.is_some());
        let mut caps: Vec<(Var, DwarfCapture)> = Vec::new();
        if has_offsets || minor.is_some_and(|m| m >= 23) {
            for v in vars {
                if v.tag == gimli::DW_TAG_variable && v.closure_offset.is_some() {
                    let c = capture(p, &dwarf, &v);
                    caps.push((v, c));
                }
            }
            caps.sort_by_key(|(_, c)| c.offset);
            decide_by_offsets(&mut caps);
        } else {
            let line = entry_line(p, &dwarf, &unit, entry)
                .or_else(|| self.hinted_line(entry))
                .or_else(|| self.line_at(&unit, entry));
            let caps = captures_before_123(p, &dwarf, &unit, line, &name, &vars);
            return Some(caps.into_iter().map(|(_, c)| c).collect());
        }
        Some(caps.into_iter().map(|(_, c)| c).collect())
    }

    /// The names of the results of the function whose code starts at
    /// `entry`, in order: its `DW_TAG_formal_parameter`s with
    /// `DW_AT_variable_parameter` set (Go's outputs; unnamed results are
    /// `~r0`, `~r1`, ...), each once. `None` when no subprogram starts
    /// there.
    pub fn results(&self, entry: u64) -> Option<Vec<String>> {
        Some(
            self.result_sizes(entry)?
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
        )
    }

    /// [`Dwarf::results`] with each result's byte size, when its type
    /// gives one.
    pub fn result_sizes(&self, entry: u64) -> Option<Vec<(String, Option<u64>)>> {
        let p = self.parsed()?;
        let dwarf = p.sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let (_, _, vars) = self.children(p, &dwarf, entry)?;
        let mut out: Vec<(String, Option<u64>)> = Vec::new();
        for v in vars {
            // go1.22 may list a result twice (the register-result entry
            // dwarfgen adds back, Go issue 48573, and its own): result
            // names are distinct, so keep the first.
            if v.tag == gimli::DW_TAG_formal_parameter
                && v.output
                && !out.iter().any(|(n, _)| *n == v.name)
            {
                let size = v.ty.and_then(|t| type_facts(p, &dwarf, t, 0).size);
                out.push((v.name, size));
            }
        }
        Some(out)
    }

    /// The unit of the subprogram at `entry`, its name and its direct
    /// children that are variables or parameters.
    fn children<'a>(
        &self,
        p: &Parsed<'d>,
        dwarf: &gimli::Dwarf<R<'a>>,
        entry: u64,
    ) -> Option<(Unit<R<'a>>, String, Vec<Var>)> {
        let die = DebugInfoOffset(entry_die(p, dwarf, entry)?);
        let unit = unit_of(p, dwarf, die)?;
        let uoff = die.to_unit_offset(&unit.header)?;
        let mut cursor = unit.entries_at_offset(uoff).ok()?;
        let (_, sub) = cursor.next_dfs().ok()??;
        let name = read_var(p, dwarf, &unit, sub).name;
        let mut depth = 0isize;
        let mut vars = Vec::new();
        // Bounded by the unit's size: every step consumes bytes.
        while let Ok(Some((delta, e))) = cursor.next_dfs() {
            depth += delta;
            if depth <= 0 {
                break;
            }
            if depth == 1
                && (e.tag() == gimli::DW_TAG_variable || e.tag() == gimli::DW_TAG_formal_parameter)
            {
                vars.push(read_var(p, dwarf, &unit, e));
            }
        }
        Some((unit, name, vars))
    }
}

/// Decompress a section: `ZLIB` + big-endian size (Go's `.zdebug_*`), or
/// an ELF `Elf64_Chdr` with `ELFCOMPRESS_ZLIB` (`SHF_COMPRESSED`; a plain
/// unit cannot start with length 1 and 4 zero bytes), or the bytes as they
/// are. `None` when the stream is damaged or claims too much.
fn decompress(r: Raw<'_>, elf: bool) -> Option<Cow<'_, [u8]>> {
    let d = r.data;
    let (size, stream) = if d.starts_with(b"ZLIB") && d.len() >= 12 {
        (u64::from_be_bytes(d[4..12].try_into().ok()?), &d[12..])
    } else if elf && d.len() > 24 && d[..8] == [1, 0, 0, 0, 0, 0, 0, 0] && d[24] & 0x0f == 8 {
        (u64::from_le_bytes(d[8..16].try_into().ok()?), &d[24..])
    } else {
        let n = usize::try_from(r.size).unwrap_or(usize::MAX).min(d.len());
        return Some(Cow::Borrowed(&d[..n]));
    };
    if size > MAX_SECTION || size > (stream.len() as u64).saturating_mul(1032) {
        return None;
    }
    if let Some(out) = inflate::exact(stream, usize::try_from(size).ok()?) {
        return Some(Cow::Owned(out));
    }
    let mut out = Vec::with_capacity(usize::try_from(size).ok()?);
    flate2::read::ZlibDecoder::new(stream)
        .take(size)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 == size).then_some(Cow::Owned(out))
}

/// The unit holding the DIE at `off`.
fn unit_of<'a>(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'a>>,
    off: DebugInfoOffset,
) -> Option<Unit<R<'a>>> {
    let i = p.units.partition_point(|&u| u <= off.0).checked_sub(1)?;
    let h = dwarf
        .debug_info
        .header_from_offset(DebugInfoOffset(p.units[i]))
        .ok()?;
    units::light_unit_cached(p, dwarf, h)
}

/// A unit without its line program (gimli's `Dwarf::unit` parses it, and
/// `.debug_line` is not read): the abbreviations and the bases the names
/// and entry addresses need (DWARF 5 `addrx`, `strx`).
/// The abbreviations come parsed ([`units::light_unit_cached`]).
fn light_unit_with<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    header: gimli::UnitHeader<R<'a>>,
    abbreviations: std::sync::Arc<gimli::Abbreviations>,
) -> Option<Unit<R<'a>>> {
    let enc = header.encoding();
    let mut unit = Unit {
        abbreviations,
        name: None,
        comp_dir: None,
        low_pc: 0,
        str_offsets_base: gimli::DebugStrOffsetsBase::default_for_encoding_and_file(
            enc,
            dwarf.file_type,
        ),
        addr_base: gimli::DebugAddrBase(0),
        loclists_base: gimli::DebugLocListsBase::default_for_encoding_and_file(
            enc,
            dwarf.file_type,
        ),
        rnglists_base: gimli::DebugRngListsBase::default_for_encoding_and_file(
            enc,
            dwarf.file_type,
        ),
        line_program: None,
        dwo_id: None,
        header,
    };
    let mut cursor = unit.header.entries(&unit.abbreviations);
    let (_, root) = cursor.next_dfs().ok()??;
    let mut attrs = root.attrs();
    while let Ok(Some(a)) = attrs.next() {
        match a.value() {
            gimli::AttributeValue::DebugStrOffsetsBase(b) => unit.str_offsets_base = b,
            gimli::AttributeValue::DebugAddrBase(b) => unit.addr_base = b,
            _ => {}
        }
    }
    Some(unit)
}

/// A reference attribute as an offset in .debug_info.
fn ref_offset(unit: &Unit<R<'_>>, v: AttributeValue<R<'_>>) -> Option<usize> {
    match v {
        AttributeValue::DebugInfoRef(o) => Some(o.0),
        AttributeValue::UnitRef(o) => o.to_debug_info_offset(&unit.header).map(|o| o.0),
        _ => None,
    }
}

/// Read a child variable or parameter; the attributes it lacks come from
/// its `DW_AT_abstract_origin` (a closure also inlined elsewhere).
fn read_var(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>,
) -> Var {
    let mut v = Var {
        tag: e.tag(),
        ..Var::default()
    };
    fill(dwarf, unit, e, &mut v);
    if !v.name.is_empty() {
        return v;
    }
    let Ok(Some(o)) = e.attr_value(gimli::DW_AT_abstract_origin) else {
        return v;
    };
    let Some(off) = ref_offset(unit, o) else {
        return v;
    };
    // Usually in the same unit: no need to parse another.
    let here = DebugInfoOffset(off)
        .to_unit_offset(&unit.header)
        .and_then(|u| unit.entry(u).ok());
    match here {
        Some(d) => fill(dwarf, unit, &d, &mut v),
        None => {
            let _ = with_die(p, dwarf, off, |u, d| fill(dwarf, u, d, &mut v));
        }
    }
    v
}

/// Fill the fields of `v` still empty from the attributes of `e`.
fn fill(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>,
    v: &mut Var,
) {
    let mut attrs = e.attrs();
    // Bounded by the abbreviation's attribute list.
    while let Ok(Some(a)) = attrs.next() {
        match a.name() {
            gimli::DW_AT_name if v.name.is_empty() => {
                if let Ok(s) = dwarf.attr_string(unit, a.value()) {
                    v.name = String::from_utf8_lossy(s.slice()).into_owned();
                }
            }
            gimli::DW_AT_decl_line if v.line.is_none() => v.line = a.udata_value(),
            gimli::DW_AT_type if v.ty.is_none() => v.ty = ref_offset(unit, a.value()),
            gimli::DW_AT_variable_parameter => {
                v.output |= matches!(a.value(), AttributeValue::Flag(true))
            }
            DW_AT_GO_CLOSURE_OFFSET if v.closure_offset.is_none() => {
                v.closure_offset = a.udata_value()
            }
            gimli::DW_AT_location if v.loc_list.is_none() => {
                if let AttributeValue::LocationListsRef(o) = a.value() {
                    v.loc_list = Some(o.0);
                }
            }
            _ => {}
        }
    }
}

/// Run `f` on the DIE at `.debug_info` offset `off`.
fn with_die<T>(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    off: usize,
    f: impl FnOnce(&Unit<R<'_>>, &gimli::DebuggingInformationEntry<'_, '_, R<'_>>) -> T,
) -> Option<T> {
    let unit = unit_of(p, dwarf, DebugInfoOffset(off))?;
    let uoff = DebugInfoOffset(off).to_unit_offset(&unit.header)?;
    let die = unit.entry(uoff).ok()?;
    Some(f(&unit, &die))
}

/// What the capture analysis needs of a type.
#[derive(Clone, Copy, Default)]
struct TypeFacts {
    size: Option<u64>,
    /// The pointee, for a pointer type.
    elem: Option<usize>,
    /// Whether cmd/compile's `ssa.CanSSA` would hold: at most 4 words, no
    /// array of more than one element, no struct of more than 4 fields.
    ssa_able: bool,
}

/// Facts about the type at `off`, through typedefs. Bounded on any input:
/// at most 5 levels and 5 children a level (a fifth field already makes a
/// struct not SSA-able).
fn type_facts(p: &Parsed<'_>, dwarf: &gimli::Dwarf<R<'_>>, off: usize, depth: u32) -> TypeFacts {
    if depth > 5 {
        return TypeFacts::default();
    }
    let read = |u: &Unit<R<'_>>, d: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>| {
        let size = d
            .attr(gimli::DW_AT_byte_size)
            .ok()
            .flatten()
            .and_then(|a| a.udata_value());
        let ty = d
            .attr_value(gimli::DW_AT_type)
            .ok()
            .flatten()
            .and_then(|v| ref_offset(u, v));
        let mut parts = Vec::new();
        if let Ok(mut c) = u.entries_at_offset(d.offset()) {
            let _ = c.next_dfs();
            let mut depth = 0isize;
            while let Ok(Some((delta, e))) = c.next_dfs() {
                depth += delta;
                if depth <= 0 || parts.len() > 4 {
                    break;
                }
                if depth == 1 {
                    let count = e
                        .attr(gimli::DW_AT_count)
                        .ok()
                        .flatten()
                        .and_then(|a| a.udata_value());
                    let t = e
                        .attr_value(gimli::DW_AT_type)
                        .ok()
                        .flatten()
                        .and_then(|v| ref_offset(u, v));
                    parts.push((e.tag(), count, t));
                }
            }
        }
        (d.tag(), size, ty, parts)
    };
    let Some((tag, size, ty, parts)) = with_die(p, dwarf, off, read) else {
        return TypeFacts::default();
    };
    match tag {
        gimli::DW_TAG_typedef => {
            ty.map_or_else(TypeFacts::default, |t| type_facts(p, dwarf, t, depth + 1))
        }
        gimli::DW_TAG_pointer_type => TypeFacts {
            size: Some(size.unwrap_or(PTR)),
            elem: ty,
            ssa_able: true,
        },
        _ => {
            let small = size.is_some_and(|s| s <= 4 * PTR);
            let ssa_able = small
                && match tag {
                    gimli::DW_TAG_array_type => {
                        parts.iter().all(|&(_, c, _)| c.is_none_or(|c| c <= 1))
                            && ty.is_none_or(|t| type_facts(p, dwarf, t, depth + 1).ssa_able)
                    }
                    gimli::DW_TAG_structure_type => {
                        let fields: Vec<_> = parts
                            .iter()
                            .filter(|&&(t, _, _)| t == gimli::DW_TAG_member)
                            .collect();
                        fields.len() <= 4
                            && fields.iter().all(|&&(_, _, t)| {
                                t.is_none_or(|t| type_facts(p, dwarf, t, depth + 1).ssa_able)
                            })
                    }
                    _ => true,
                };
            TypeFacts {
                size,
                elem: None,
                ssa_able,
            }
        }
    }
}

/// The capture a closure variable stands for. A `&x` of an SSA-able `x`,
/// or of one over 128 bytes, is by reference; of another `x` it may be a
/// by-value capture addressed in place ([`decide_by_offsets`] settles it
/// when it can). A plain `x` is by value.
fn capture(p: &Parsed<'_>, dwarf: &gimli::Dwarf<R<'_>>, v: &Var) -> DwarfCapture {
    let facts = v.ty.map(|t| type_facts(p, dwarf, t, 0)).unwrap_or_default();
    match v.name.strip_prefix('&') {
        Some(x) => {
            let elem = facts
                .elem
                .map(|t| type_facts(p, dwarf, t, 0))
                .unwrap_or_default();
            let big = elem.size.is_some_and(|s| s > 128);
            let certain = elem.ssa_able || big;
            DwarfCapture {
                name: x.to_string(),
                by_ref: certain,
                certain,
                bytes: if certain {
                    PTR
                } else {
                    elem.size.unwrap_or(PTR)
                },
                offset: v.closure_offset,
                pointee_bytes: elem.size,
            }
        }
        None => DwarfCapture {
            name: v.name.clone(),
            by_ref: false,
            certain: true,
            bytes: facts.size.unwrap_or(0),
            offset: v.closure_offset,
            pointee_bytes: None,
        },
    }
}

/// Settle the `&x` captures whose next field's offset is known: a gap of
/// 8 bytes to it holds a pointer (by reference), a wider one the value
/// (alignment never pads past a pointer-aligned 8-byte field). This holds
/// for an SSA-able `x` too: a by-value capture the closure addresses (a
/// channel send of it, cmd/compile's #43701) is kept in place as `&x`.
fn decide_by_offsets(caps: &mut [(Var, DwarfCapture)]) {
    for i in 0..caps.len() {
        let Some(size) = caps[i].1.pointee_bytes.filter(|&s| s > PTR && s <= 128) else {
            continue;
        };
        let (Some(a), Some(b)) = (caps[i].1.offset, caps.get(i + 1).and_then(|c| c.1.offset))
        else {
            continue;
        };
        let c = &mut caps[i].1;
        c.certain = true;
        c.by_ref = b - a <= PTR;
        c.bytes = if c.by_ref { PTR } else { size };
    }
}

/// Captures before go1.23 (design.md §6.4), in DWARF order, without
/// offsets: the `&x` variables declared on the closure's entry line whose
/// `x` is not a parameter, and the plain `x` variables (not parameters, not
/// decomposed pieces like `s.ptr`) that name a variable of the enclosing
/// function of the same type (`x` of type `T`, or `&x` of type `*T`).
/// Each with the index of its variable in `vars`.
fn captures_before_123(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    line: Option<u64>,
    name: &str,
    vars: &[Var],
) -> Vec<(usize, DwarfCapture)> {
    let params: Vec<&str> = vars
        .iter()
        .filter(|v| v.tag == gimli::DW_TAG_formal_parameter)
        .map(|v| v.name.as_str())
        .collect();
    let outer = enclosing(name).map(|o| outer_vars(p, dwarf, unit, o));
    let mut caps = Vec::new();
    for (i, v) in vars.iter().enumerate() {
        if v.tag != gimli::DW_TAG_variable {
            continue;
        }
        let (x, by_ref_name) = match v.name.strip_prefix('&') {
            Some(x) => (x, true),
            None => (v.name.as_str(), false),
        };
        if params.contains(&x) || x.contains('.') || x.is_empty() {
            continue;
        }
        let found = if by_ref_name {
            line.is_some() && v.line == line
        } else {
            outer.as_ref().is_some_and(|o| {
                o.iter().any(|(n, ty)| {
                    let same = |t: usize| Some(t) == v.ty;
                    (n == x && same(*ty))
                        || (n.strip_prefix('&') == Some(x)
                            && type_facts(p, dwarf, *ty, 0).elem.is_some_and(same))
                })
            })
        };
        if found {
            let mut c = capture(p, dwarf, v);
            c.offset = None;
            caps.push((i, c));
        }
    }
    caps
}

/// The function a closure is declared in: `main.f` for `main.f.func1`,
/// `main.f.func1` for `main.f.func1.2`, `main.f` for `main.f.deferwrap1`
/// and `main.f.gowrap1`.
fn enclosing(name: &str) -> Option<&str> {
    let (outer, last) = name.rsplit_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let closure = digits(last)
        || ["func", "deferwrap", "gowrap"]
            .iter()
            .any(|k| last.strip_prefix(k).is_some_and(digits));
    closure.then_some(outer)
}

/// The variables and parameters, at any depth, of the (first) subprogram
/// named `name` in `unit` (a closure and the function it is declared in
/// are in the same package, so the same unit): (name, type offset).
fn outer_vars(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    name: &str,
) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let Some(mut cursor) =
        units::subprogram_named(p, unit, name).and_then(|off| unit.entries_at_offset(off).ok())
    else {
        return out;
    };
    if !matches!(cursor.next_dfs(), Ok(Some(_))) {
        return out;
    }
    let mut depth = 0isize;
    // Bounded by the unit's size: every step consumes bytes.
    while let Ok(Some((delta, e))) = cursor.next_dfs() {
        depth += delta;
        if depth <= 0 {
            break;
        }
        if e.tag() == gimli::DW_TAG_variable || e.tag() == gimli::DW_TAG_formal_parameter {
            let v = read_var(p, dwarf, unit, e);
            if let Some(t) = v.ty {
                out.push((v.name, t));
            }
        }
    }
    out
}

/// The minor Go version in the unit's `DW_AT_producer` ("Go cmd/compile
/// go1.22.10; regabi").
fn producer_minor(dwarf: &gimli::Dwarf<R<'_>>, unit: &Unit<R<'_>>) -> Option<u32> {
    let mut c = unit.entries();
    let (_, root) = c.next_dfs().ok()??;
    let v = root.attr_value(gimli::DW_AT_producer).ok()??;
    let s = dwarf.attr_string(unit, v).ok()?;
    GoVersion::parse(&String::from_utf8_lossy(s.slice())).map(|v| v.minor)
}

/// A closure's `func` keyword line: its subprogram's `DW_AT_decl_line`
/// (the line of its entry instruction; `.debug_line` is not read).
fn entry_line(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    entry: u64,
) -> Option<u64> {
    let uoff = DebugInfoOffset(entry_die(p, dwarf, entry)?).to_unit_offset(&unit.header)?;
    let mut cursor = unit.entries_at_offset(uoff).ok()?;
    let (_, sub) = cursor.next_dfs().ok()??;
    read_var(p, dwarf, unit, sub).line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw(data: &[u8]) -> Raw<'_> {
        Raw {
            data,
            size: data.len() as u64,
        }
    }

    #[test]
    fn zdebug_and_shf_compressed_sections_inflate() {
        let plain = b"hello dwarf hello dwarf hello dwarf".repeat(10);
        let mut z = b"ZLIB".to_vec();
        z.extend_from_slice(&(plain.len() as u64).to_be_bytes());
        z.extend_from_slice(&zlib(&plain));
        assert_eq!(decompress(raw(&z), false).as_deref(), Some(&plain[..]));
        let mut chdr = vec![1, 0, 0, 0, 0, 0, 0, 0];
        chdr.extend_from_slice(&(plain.len() as u64).to_le_bytes());
        chdr.extend_from_slice(&1u64.to_le_bytes());
        chdr.extend_from_slice(&zlib(&plain));
        assert_eq!(decompress(raw(&chdr), true).as_deref(), Some(&plain[..]));
        // Not ELF: the same bytes are taken as they are.
        assert_eq!(decompress(raw(&chdr), false).as_deref(), Some(&chdr[..]));
    }

    #[test]
    fn damaged_or_oversized_streams_are_refused() {
        let plain = vec![7u8; 4096];
        let stream = zlib(&plain);
        let with_size = |n: u64| {
            let mut z = b"ZLIB".to_vec();
            z.extend_from_slice(&n.to_be_bytes());
            z.extend_from_slice(&stream);
            z
        };
        // More than zlib's largest ratio, more than 1 GiB, a wrong size.
        assert!(decompress(raw(&with_size(stream.len() as u64 * 2000)), false).is_none());
        assert!(decompress(raw(&with_size(u64::MAX)), false).is_none());
        assert!(decompress(raw(&with_size(4095)), false).is_some_and(|d| d.len() == 4095));
        assert!(decompress(raw(&with_size(4097)), false).is_none());
        let mut cut = with_size(4096);
        cut.truncate(cut.len() / 2);
        assert!(decompress(raw(&cut), false).is_none());
    }

    #[test]
    fn enclosing_function_of_a_closure() {
        assert_eq!(enclosing("main.f.func1"), Some("main.f"));
        assert_eq!(enclosing("main.f.func1.2"), Some("main.f.func1"));
        assert_eq!(enclosing("main.(*T).M.func3"), Some("main.(*T).M"));
        assert_eq!(enclosing("main.f.deferwrap1"), Some("main.f"));
        assert_eq!(enclosing("main.f.gowrap2"), Some("main.f"));
        assert_eq!(enclosing("main.f"), None);
        assert_eq!(enclosing("main.funcs"), None);
    }
}

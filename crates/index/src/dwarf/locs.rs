//! Where a closure's captured variables live, before go1.23 (design.md
//! §5.6): DWARF gives no closure offsets then, but each captured
//! variable's location list says which register holds it from which pc,
//! and the closure body loads it there from the closure context at the
//! field's offset (deferscope-analyze matches the two).

use gimli::{EndianSlice, LittleEndian, Operation, Unit};

use super::{
    capture, captures_before_123, decompress, entry_line, producer_minor, Dwarf, DwarfCapture, R,
};

/// One piece of a variable's location (`DW_OP_piece`), or the whole
/// variable when its expression has no pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocPiece {
    /// The DWARF register number holding this piece (`DW_OP_regN`,
    /// `DW_OP_regx`); `None` when the piece is in memory or absent.
    pub reg: Option<u16>,
    /// Bytes of the piece; `None` for an expression without pieces (the
    /// register holds the variable, or, for a variable wider than a
    /// register, some word of it: Go emits that for a multiword variable
    /// only one word of which was loaded).
    pub bytes: Option<u64>,
}

/// A location list entry: the variable is where `pieces` say for pcs in
/// `[lo, hi)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocRange {
    pub lo: u64,
    pub hi: u64,
    pub pieces: Vec<LocPiece>,
}

/// A closure capture with its variable's location list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedCapture {
    pub capture: DwarfCapture,
    pub ranges: Vec<LocRange>,
    /// Not among [`Dwarf::closure_captures`]' answer: a plain variable of
    /// the closure, a capture only if the body proves it.
    pub candidate: bool,
}

/// Location list entries read per variable at most (Go emits a few for a
/// closure's captured variable).
const MAX_RANGES: usize = 64;

impl<'d> Dwarf<'d> {
    /// Before go1.23: the captures of the closure at `entry` (as
    /// [`Dwarf::closure_captures`] finds them, and the other plain
    /// variables of its scope 0: a closure's own variables are among
    /// them, so only a field the body proves names one)
    /// with their location lists.
    /// `None` for go1.23+ (closure offsets say it), when no subprogram
    /// starts at `entry`, or without `.debug_loc`.
    pub fn closure_capture_locations(&self, entry: u64) -> Option<Vec<LocatedCapture>> {
        let p = self.parsed()?;
        let dwarf = p.sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let (unit, name, vars) = self.children(p, &dwarf, entry)?;
        if unit.header.version() > 4
            || vars.iter().any(|v| v.closure_offset.is_some())
            || producer_minor(&dwarf, &unit).is_none_or(|m| m >= 23)
        {
            return None;
        }
        let lists = self.loc_lists(4)?;
        let line = entry_line(p, &dwarf, &unit, entry)
            .or_else(|| self.hinted_line(entry))
            .or_else(|| self.line_at(&unit, entry));
        let mut caps = captures_before_123(p, &dwarf, &unit, line, &name, &vars);
        let found = caps.len();
        // A by-value capture of a variable the enclosing function's DWARF
        // lost (a constant, `a, b := 1, 2`) is a plain variable of the
        // closure too (declared at its first use): a candidate, named only
        // if the body proves its field.
        for (i, v) in vars.iter().enumerate() {
            let plain = !v.name.is_empty() && !v.name.contains(['&', '.']);
            if v.tag == gimli::DW_TAG_variable && plain && !caps.iter().any(|(j, _)| *j == i) {
                caps.push((i, capture(p, &dwarf, v)));
            }
        }
        let base = unit_low_pc(&dwarf, &unit).unwrap_or(0);
        Some(
            caps.into_iter()
                .enumerate()
                .map(|(k, (i, capture))| LocatedCapture {
                    capture,
                    candidate: k >= found,
                    ranges: vars[i]
                        .loc_list
                        .map(|o| ranges(&lists, &dwarf, &unit, base, o))
                        .unwrap_or_default(),
                })
                .collect(),
        )
    }
}

impl<'d> Dwarf<'d> {
    /// The location list sections for units of DWARF `version`
    /// (`.debug_loc` up to 4, `.debug_loclists` from 5), decompressed on
    /// first use.
    fn loc_lists(&self, version: u16) -> Option<gimli::LocationLists<R<'_>>> {
        let (raw, cell) = if version <= 4 {
            (self.loc, &self.loc_data)
        } else {
            (self.loclists, &self.loclists_data)
        };
        let data: &[u8] = cell
            .get_or_init(|| raw.and_then(|r| decompress(r, self.elf)))
            .as_ref()?;
        let (loc, lists): (&[u8], &[u8]) = if version <= 4 {
            (data, &[])
        } else {
            (&[], data)
        };
        Some(gimli::LocationLists::new(
            gimli::DebugLoc::new(loc, LittleEndian),
            gimli::DebugLocLists::new(lists, LittleEndian),
        ))
    }

    /// Decompress the location lists now (`.debug_loc` and
    /// `.debug_loclists`, whichever the binary has; on a thread of its own
    /// while the functions are explained).
    pub fn warm_locations(&self) {
        let _ = self.loc_lists(4);
        let _ = self.loc_lists(5);
    }

    /// For each of `pcs`, the variables and parameters (at any depth, not
    /// those of inlined calls) of the function whose code starts at
    /// `entry` that a location list puts in a register there, as
    /// [`VarAt`]s. `None` when no subprogram starts at `entry`.
    pub fn vars_in_registers_at(&self, entry: u64, pcs: &[u64]) -> Option<Vec<Vec<VarAt>>> {
        let p = self.parsed()?;
        let dwarf = p.sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let die = gimli::DebugInfoOffset(super::entry_die(p, &dwarf, entry)?);
        let unit = super::unit_of(p, &dwarf, die)?;
        let lists = self.loc_lists(unit.header.version())?;
        let base = unit_low_pc(&dwarf, &unit).unwrap_or(0);
        let mut cursor = unit
            .entries_at_offset(die.to_unit_offset(&unit.header)?)
            .ok()?;
        cursor.next_dfs().ok()??;
        let mut depth = 0isize;
        // Depth of an inlined call being skipped.
        let mut skip: Option<isize> = None;
        let mut out = vec![Vec::new(); pcs.len()];
        // Bounded by the unit's size: every step consumes bytes.
        while let Ok(Some((delta, e))) = cursor.next_dfs() {
            depth += delta;
            if depth <= 0 {
                break;
            }
            if skip.is_some_and(|d| depth > d) {
                continue;
            }
            skip = None;
            let tag = e.tag();
            if tag == gimli::DW_TAG_inlined_subroutine {
                skip = Some(depth);
                continue;
            }
            if tag != gimli::DW_TAG_variable && tag != gimli::DW_TAG_formal_parameter {
                continue;
            }
            let v = super::read_var(p, &dwarf, &unit, e);
            let Some(off) = v.loc_list else { continue };
            let rs = ranges(&lists, &dwarf, &unit, base, off);
            let mut bytes = None;
            for (k, &pc) in pcs.iter().enumerate() {
                let Some(r) = rs.iter().find(|r| r.lo <= pc && pc < r.hi) else {
                    continue;
                };
                if r.pieces.iter().any(|p| p.reg.is_some()) {
                    let b = *bytes.get_or_insert_with(|| {
                        v.ty.and_then(|t| super::type_facts(p, &dwarf, t, 0).size)
                    });
                    out[k].push(VarAt {
                        name: v.name.clone(),
                        bytes: b,
                        pieces: r.pieces.clone(),
                    });
                }
            }
        }
        Some(out)
    }
}

/// A variable a location list puts (partly) in a register at some pc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarAt {
    /// As DWARF spells it (`&x` for the address of a variable moved to
    /// the heap).
    pub name: String,
    /// Size of the variable's type, when known.
    pub bytes: Option<u64>,
    pub pieces: Vec<LocPiece>,
}

impl<'d> Dwarf<'d> {
    /// From go1.23: the `&x` variables of the closure at `entry` (by
    /// reference, or a by-value capture the body addresses in place) with
    /// their location lists, each as an unsettled capture at its closure
    /// offset (`by_ref` and `certain` false, `bytes` the size of `x`): the
    /// body's loads settle it. `None` before go1.23 or when no subprogram
    /// starts at `entry`.
    pub fn closure_ref_locations(&self, entry: u64) -> Option<Vec<LocatedCapture>> {
        let p = self.parsed()?;
        let dwarf = p.sections.borrow(|s| EndianSlice::new(s, LittleEndian));
        let (unit, _, vars) = self.children(p, &dwarf, entry)?;
        if !vars.iter().any(|v| v.closure_offset.is_some()) {
            return None;
        }
        let lists = self.loc_lists(unit.header.version())?;
        let base = unit_low_pc(&dwarf, &unit).unwrap_or(0);
        let mut out = Vec::new();
        for v in &vars {
            let (Some(x), Some(off), Some(list)) =
                (v.name.strip_prefix('&'), v.closure_offset, v.loc_list)
            else {
                continue;
            };
            let elem =
                v.ty.and_then(|t| super::type_facts(p, &dwarf, t, 0).elem)
                    .and_then(|t| super::type_facts(p, &dwarf, t, 0).size);
            let Some(bytes) = elem else { continue };
            out.push(LocatedCapture {
                capture: DwarfCapture {
                    name: x.to_string(),
                    by_ref: false,
                    certain: false,
                    bytes,
                    offset: Some(off),
                    pointee_bytes: Some(bytes),
                },
                ranges: ranges(&lists, &dwarf, &unit, base, list),
                candidate: false,
            });
        }
        Some(out)
    }
}

/// The compilation unit's `DW_AT_low_pc`: the base of its location lists.
fn unit_low_pc(dwarf: &gimli::Dwarf<R<'_>>, unit: &Unit<R<'_>>) -> Option<u64> {
    let mut c = unit.entries();
    let (_, root) = c.next_dfs().ok()??;
    let v = root.attr_value(gimli::DW_AT_low_pc).ok()??;
    dwarf.attr_address(unit, v).ok()?
}

/// The entries of the location list at `off` in `lists`.
fn ranges(
    lists: &gimli::LocationLists<R<'_>>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    base: u64,
    off: usize,
) -> Vec<LocRange> {
    let enc = unit.encoding();
    let Ok(mut it) = lists.locations(
        gimli::LocationListsOffset(off),
        enc,
        base,
        &dwarf.debug_addr,
        unit.addr_base,
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(e)) = it.next() {
        if out.len() >= MAX_RANGES {
            break;
        }
        if let Some(pieces) = pieces(e.data, enc) {
            out.push(LocRange {
                lo: e.range.begin,
                hi: e.range.end,
                pieces,
            });
        }
    }
    out
}

/// The pieces of a location expression: registers and their sizes.
/// `None` for an expression this reader does not follow.
fn pieces(expr: gimli::Expression<R<'_>>, enc: gimli::Encoding) -> Option<Vec<LocPiece>> {
    let mut out = Vec::new();
    let mut reg: Option<u16> = None;
    let mut ops = expr.operations(enc);
    // Bounded by the expression's bytes: every operation consumes some.
    while let Ok(Some(op)) = ops.next() {
        match op {
            Operation::Register { register } => reg = Some(register.0),
            Operation::Piece {
                size_in_bits,
                bit_offset: None,
            } if size_in_bits % 8 == 0 => out.push(LocPiece {
                reg: reg.take(),
                bytes: Some(size_in_bits / 8),
            }),
            // Memory (a frame slot): no register, and the piece (if any)
            // follows.
            Operation::FrameOffset { .. } | Operation::CallFrameCFA => reg = None,
            Operation::PlusConstant { .. } => {}
            _ => return None,
        }
    }
    if out.is_empty() {
        out.push(LocPiece { reg, bytes: None });
    } else if reg.is_some() {
        return None;
    }
    Some(out)
}

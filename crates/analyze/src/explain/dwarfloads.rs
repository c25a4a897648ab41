//! Closure offsets of DWARF's captured variables before go1.23 (design.md
//! §5.6), proven from the closure's body: it loads each field it uses from
//! the closure context (DX on amd64, R26 on arm64) at the field's offset
//! (`MOVQ 0x10(DX), BX`), and the variable's location list says the
//! variable (`x` by value, `&x` by reference) is in that register from a
//! pc reached straight from the load. A piece of a multiword variable
//! (`DW_OP_piece`) is the word at its offset within the variable; a
//! multiword variable in one register without pieces holds some word of
//! it, which leaves its start among the words that end at or after the
//! loaded one (narrowed by the fields the code found and by the other
//! variables). Whatever stays ambiguous gets no offset.

use std::collections::BTreeSet;

use deferscope_decode::{Event, SP};
use deferscope_index::{DwarfCapture, LocatedCapture};
use deferscope_load::Arch;
use deferscope_model::explain::Capture;

use super::values::event_pc;

/// What the decoder knows a register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    None,
    /// The closure context.
    Ctx,
    /// The word loaded from this offset of the closure.
    Field(u64),
    /// The address of this offset of the closure (`LEAQ 8(DX), AX`).
    FieldAddr(u64),
}

/// The register writes of a closure body, in order, and the pcs where
/// straight-line execution is broken (branches, calls, branch targets).
struct Body {
    sets: Vec<(u64, u8, Tag)>,
    /// Pcs after which a register's earlier value may not reach: jumps,
    /// returns and calls (at their pc), branch targets (at theirs).
    breaks: BTreeSet<u64>,
}

fn decode(arch: Arch, body: &[u8], entry: u64) -> Body {
    let ctx = match arch {
        Arch::Amd64 => 2,
        Arch::Arm64 => 26,
    };
    let mut regs = [Tag::None; 32];
    regs[ctx] = Tag::Ctx;
    let mut sets = Vec::new();
    let mut breaks = BTreeSet::new();
    let tag = |regs: &[Tag; 32], r: u8| regs.get(r as usize).copied().unwrap_or(Tag::None);
    deferscope_decode::scan_flow(arch, body, entry, |e| {
        let pc = event_pc(&e);
        let set = match e {
            Event::Move {
                dst, src, narrow, ..
            } => Some((dst, if narrow { Tag::None } else { tag(&regs, src) })),
            Event::Load {
                dst, base, offset, ..
            } => {
                let t = match (tag(&regs, base), u64::try_from(offset)) {
                    (Tag::Ctx, Ok(o)) if base != SP => Tag::Field(o),
                    _ => Tag::None,
                };
                Some((dst, t))
            }
            Event::RegAddr {
                reg, base, offset, ..
            } => {
                let t = match (tag(&regs, base), u64::try_from(offset)) {
                    (Tag::Ctx, Ok(o)) => Tag::FieldAddr(o),
                    _ => Tag::None,
                };
                Some((reg, t))
            }
            Event::AddrLoad { reg, .. }
            | Event::SpAddr { reg, .. }
            | Event::Clobber { reg, .. }
            | Event::Const { reg, .. } => Some((reg, Tag::None)),
            Event::Jump { target, .. } => {
                breaks.insert(pc);
                if let Some(t) = target {
                    breaks.insert(t);
                }
                None
            }
            Event::Call { .. } | Event::CallIndirect { .. } => {
                breaks.insert(pc);
                regs = [Tag::None; 32];
                None
            }
            Event::Ret { .. } | Event::Halt { .. } => {
                breaks.insert(pc);
                None
            }
            _ => None,
        };
        if let Some((r, t)) = set {
            if let Some(x) = regs.get_mut(r as usize) {
                *x = t;
                sets.push((pc, r, t));
            }
        }
    });
    Body { sets, breaks }
}

impl Body {
    /// What register `r` holds at `pc`, when the instruction that set it
    /// reaches `pc` in straight-line code.
    fn at(&self, pc: u64, r: u8) -> Tag {
        let Some(&(set, _, t)) = self
            .sets
            .iter()
            .rev()
            .find(|&&(at, reg, _)| at < pc && reg == r)
        else {
            return Tag::None;
        };
        // No break strictly between the setting instruction and `pc` (a
        // branch target at `pc` is fine: the variable is in the register
        // on every path, and this one loaded it).
        if self.breaks.range(set + 1..pc).next().is_some() {
            return Tag::None;
        }
        t
    }
}

/// [`reg_of`], for the tests of the store side.
#[cfg(test)]
pub(super) fn tests_reg_of(arch: Arch, r: u16) -> Option<u8> {
    reg_of(arch, r)
}

/// The decoder's number of DWARF register `r`.
fn reg_of(arch: Arch, r: u16) -> Option<u8> {
    match arch {
        // DWARF: RAX, RDX, RCX, RBX, RSI, RDI, RBP, RSP, R8-R15.
        Arch::Amd64 => [0u8, 2, 1, 3, 6, 7, 5, SP]
            .get(r as usize)
            .copied()
            .or_else(|| (8..16).contains(&r).then_some(r as u8)),
        Arch::Arm64 => (r < 31).then_some(r as u8),
    }
}

/// The closure offsets the body of the closure (`body` at `entry`) proves
/// for DWARF's captures `lc`, given the fields the code found (`caps`):
/// the captures placed, each with its offset and its mode settled.
pub(super) fn placed(
    arch: Arch,
    body: &[u8],
    entry: u64,
    caps: &[Capture],
    lc: &[LocatedCapture],
) -> Vec<DwarfCapture> {
    let b = decode(arch, body, entry);
    // Each capture's possible starts, and its settled form.
    let mut cands: Vec<Option<(DwarfCapture, BTreeSet<u64>)>> = lc
        .iter()
        .map(|l| evidence(arch, &b, l).and_then(|(c, s)| fit(caps, c, s)))
        .collect();
    // Settle by elimination: a capture with one start takes its words
    // from the others' candidates.
    loop {
        let fixed: Vec<(usize, u64, u64)> = cands
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let (c, s) = c.as_ref()?;
                let st = *s.first()?;
                (s.len() == 1).then_some((i, st, c.bytes))
            })
            .collect();
        let mut changed = false;
        for (i, c) in cands.iter_mut().enumerate() {
            let Some((dc, s)) = c else { continue };
            let before = s.len();
            s.retain(|&st| {
                fixed
                    .iter()
                    .all(|&(j, fs, fb)| j == i || st + dc.bytes <= fs || fs + fb <= st)
            });
            changed |= s.len() != before;
        }
        if !changed {
            break;
        }
    }
    let mut out: Vec<DwarfCapture> = Vec::new();
    for (mut c, s) in cands.into_iter().flatten() {
        if s.is_empty() {
            // Two captures claim the same words: the evidence is not what
            // this reasoning assumes, so name nothing.
            return Vec::new();
        }
        if s.len() == 1 {
            c.offset = s.first().copied();
            out.push(c);
        }
    }
    out.sort_by_key(|c| c.offset);
    out
}

/// From go1.23: the modes the body proves for the unsettled `&x`
/// captures `lc` (each at its closure offset): (offset, by reference,
/// bytes in the closure). A `&x` the body loads from its field is a
/// pointer (by reference); one it computes as `LEAQ off(DX)` is a value
/// addressed in place, whatever its type suggests.
pub(super) fn modes(
    arch: Arch,
    body: &[u8],
    entry: u64,
    lc: &[LocatedCapture],
) -> Vec<(u64, bool, u64)> {
    let b = decode(arch, body, entry);
    lc.iter()
        .filter_map(|l| {
            let off = l.capture.offset?;
            let (c, s) = evidence(arch, &b, l)?;
            (c.certain && s.len() == 1 && s.first() == Some(&off))
                .then_some((off, c.by_ref, c.bytes))
        })
        .collect()
}

/// The capture `l` with its mode settled by what the body loaded into its
/// registers, and the starts its location list allows; `None` without
/// evidence or with contradicting evidence.
fn evidence(arch: Arch, b: &Body, l: &LocatedCapture) -> Option<(DwarfCapture, BTreeSet<u64>)> {
    let orig = &l.capture;
    // An `&x` variable: by reference, or by value addressed in place.
    let amp = orig.by_ref || !orig.certain;
    // For an `&x`: whether the body showed a pointer (by reference).
    let mut by_ref: Option<bool> = None;
    let mut starts: Option<BTreeSet<u64>> = None;
    for r in &l.ranges {
        let mut at = 0u64;
        for p in &r.pieces {
            let tag = p
                .reg
                .and_then(|x| reg_of(arch, x))
                .map_or(Tag::None, |x| b.at(r.lo, x));
            let (set, mode): (BTreeSet<u64>, Option<bool>) = match tag {
                // `&x` loaded from the closure: the field holds the pointer.
                Tag::Field(o) if amp => (
                    p.bytes.is_none_or(|b| b == 8).then_some([o].into())?,
                    Some(true),
                ),
                Tag::Field(o) => (value_starts(orig.bytes, o, at, p.bytes)?, None),
                // `&x` is the field's own address: captured by value, even
                // when `x`'s type looks SSA-able (a channel send addresses
                // it: design.md §6.4).
                Tag::FieldAddr(o) if amp && p.bytes.is_none() => ([o].into(), Some(false)),
                Tag::FieldAddr(_) => return None,
                _ => {
                    at += p.bytes.unwrap_or(0);
                    continue;
                }
            };
            if mode.is_some() {
                if by_ref.is_some_and(|m| Some(m) != mode) {
                    return None;
                }
                by_ref = mode;
            }
            starts = Some(match starts {
                Some(s) => s.intersection(&set).copied().collect(),
                None => set,
            });
            at += p.bytes.unwrap_or(0);
        }
    }
    let mut c = orig.clone();
    match by_ref {
        Some(true) => {
            c.by_ref = true;
            c.certain = true;
            c.bytes = 8;
            c.pointee_bytes = None;
        }
        Some(false) => {
            c.by_ref = false;
            c.certain = true;
            c.bytes = orig.pointee_bytes.unwrap_or(orig.bytes);
            c.pointee_bytes = None;
        }
        None => {}
    }
    starts.map(|s| (c, s))
}

/// Starts of a by-value capture of `size` bytes allowed by the word loaded
/// from offset `o` being its piece at `at` (of `bytes`; `None`: some word
/// of the variable, or all of it when it is one word).
fn value_starts(size: u64, o: u64, at: u64, bytes: Option<u64>) -> Option<BTreeSet<u64>> {
    match bytes {
        Some(_) => Some([o.checked_sub(at)?].into()),
        None if size <= 8 => Some([o].into()),
        None => Some(
            (0..size.div_ceil(8))
                .filter_map(|j| o.checked_sub(8 * j))
                .collect(),
        ),
    }
}

/// Keep the starts where the code's fields can hold capture `c`: a field
/// starts there, of `c`'s size when the field is exact, else words that
/// add up to it.
fn fit(
    caps: &[Capture],
    c: DwarfCapture,
    s: BTreeSet<u64>,
) -> Option<(DwarfCapture, BTreeSet<u64>)> {
    let want = if c.by_ref { 8 } else { c.bytes };
    let ok = |st: u64| {
        let Some(i) = caps.iter().position(|f| f.offset == st) else {
            return false;
        };
        if caps[i].exact {
            return caps[i].bytes == want;
        }
        let mut sum = 0;
        for f in &caps[i..] {
            if f.exact || f.offset != st + sum {
                break;
            }
            sum += f.bytes;
            if sum >= want {
                break;
            }
        }
        sum == want
    };
    let s: BTreeSet<u64> = s.into_iter().filter(|&st| ok(st)).collect();
    Some((c, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deferscope_index::{LocPiece, LocRange};
    use deferscope_model::explain::CaptureMode;

    fn field(offset: u64, bytes: u64, exact: bool) -> Capture {
        Capture {
            name: None,
            mode: CaptureMode::Value,
            bytes,
            offset,
            moved_to_heap: false,
            exact,
            pc: None,
            points_to: None,
        }
    }

    fn located(name: &str, by_ref: bool, bytes: u64, lo: u64, reg: u16) -> LocatedCapture {
        LocatedCapture {
            capture: DwarfCapture {
                name: name.into(),
                by_ref,
                certain: true,
                bytes,
                offset: None,
                pointee_bytes: None,
            },
            ranges: vec![LocRange {
                lo,
                hi: lo + 8,
                pieces: vec![LocPiece {
                    reg: Some(reg),
                    bytes: None,
                }],
            }],
            candidate: false,
        }
    }

    /// go1.22.10 linux/amd64 `main.closureCap.func1`: `MOVQ 0x10(DX), BX;
    /// MOVQ 0x8(DX), CX; MOVQ 0(CX), AX; RET`, DWARF `&a` in RCX from
    /// after the second load, `b` in RBX from after the first.
    #[test]
    fn loads_place_the_variables() {
        let body = [
            0x48, 0x8b, 0x5a, 0x10, 0x48, 0x8b, 0x4a, 0x08, 0x48, 0x8b, 0x01, 0xc3,
        ];
        let caps = [field(8, 8, false), field(16, 8, false)];
        let lc = [
            located("a", true, 8, 0x1008, 2),
            located("b", false, 8, 0x1004, 3),
        ];
        let p = placed(Arch::Amd64, &body, 0x1000, &caps, &lc);
        let got: Vec<(&str, Option<u64>, bool)> = p
            .iter()
            .map(|c| (c.name.as_str(), c.offset, c.by_ref))
            .collect();
        assert_eq!(got, [("a", Some(8), true), ("b", Some(16), false)]);
        // The same register claimed by two variables: neither is named.
        let lc = [
            located("a", true, 8, 0x1008, 2),
            located("y", true, 8, 0x1008, 2),
        ];
        assert!(placed(Arch::Amd64, &body, 0x1000, &caps, &lc).is_empty());
    }

    /// go1.27.3 cmd/go `(*tracer).Close.func1`: `LEAQ 0x10(DX), BX; MOVQ
    /// 0x8(DX), CX; MOVQ 0(CX), AX; RET`, `&f` (a 32-byte struct at 16) in
    /// RBX: by value, addressed in place; `&t` loaded into RCX would be a
    /// reference.
    #[test]
    fn address_of_a_field_is_by_value() {
        let body = [
            0x48, 0x8d, 0x5a, 0x10, 0x48, 0x8b, 0x4a, 0x08, 0x48, 0x8b, 0x01, 0xc3,
        ];
        let mut f = located("f", false, 32, 0x1004, 3);
        f.capture.certain = false;
        f.capture.offset = Some(16);
        let mut t = located("t", false, 24, 0x1008, 2);
        t.capture.certain = false;
        t.capture.offset = Some(8);
        assert_eq!(
            modes(Arch::Amd64, &body, 0x1000, &[f, t]),
            [(16, false, 32), (8, true, 8)]
        );
    }

    /// A multiword variable in one register without pieces: some word of
    /// it was loaded; its start is where a field of its size begins.
    #[test]
    fn multiword_without_pieces() {
        assert_eq!(
            value_starts(24, 0x18, 0, None),
            Some([0x08, 0x10, 0x18].into())
        );
        assert_eq!(value_starts(16, 0x18, 8, Some(8)), Some([0x10].into()));
        let caps = [field(8, 8, true), field(16, 24, true), field(40, 8, true)];
        let c = DwarfCapture {
            name: "buf".into(),
            by_ref: false,
            certain: true,
            bytes: 24,
            offset: None,
            pointee_bytes: None,
        };
        let (_, s) = fit(&caps, c, [0x08, 0x10, 0x18].into()).unwrap();
        assert_eq!(s, [0x10].into());
    }

    #[test]
    fn dwarf_registers() {
        // DWARF 1 is RDX, the decoder's 2; DWARF 7 is RSP.
        assert_eq!(reg_of(Arch::Amd64, 1), Some(2));
        assert_eq!(reg_of(Arch::Amd64, 7), Some(SP));
        assert_eq!(reg_of(Arch::Amd64, 12), Some(12));
        assert_eq!(reg_of(Arch::Arm64, 26), Some(26));
        assert_eq!(reg_of(Arch::Arm64, 31), None);
    }
}

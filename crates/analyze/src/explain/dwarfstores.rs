//! Names for closure fields the closure's own DWARF does not name, from
//! the function that builds the closure (design.md §5.6): each field is
//! stored from a register (`MOVQ AX, 0x10(SP)`), and that function's
//! location lists say which variable (or which piece of it, `DW_OP_piece`)
//! the register holds at the store. A closure whose body uses a field
//! straight from memory (`ADDQ 0x8(DX), AX`) has no variable for it, at
//! any version. A field is named only when exactly one variable is in its
//! register there, every stored word of the variable agrees, and the
//! fields the code found hold it exactly.

use std::collections::BTreeMap;

use deferscope_decode::{Event, SP};
use deferscope_index::{DwarfCapture, VarAt};
use deferscope_load::Arch;
use deferscope_model::explain::Capture;

/// The DWARF number of the decoder's register `r`.
fn dwarf_reg(arch: Arch, r: u8) -> Option<u16> {
    match arch {
        // Decoder: AX, CX, DX, BX, SP, BP, SI, DI; DWARF: RAX, RDX, RCX,
        // RBX, RSI, RDI, RBP, RSP.
        Arch::Amd64 => [0u16, 2, 1, 3, 7, 6, 4, 5]
            .get(r as usize)
            .copied()
            .or_else(|| (8..16).contains(&r).then_some(r as u16)),
        Arch::Arm64 => (r < 31).then_some(r as u16),
    }
    .filter(|_| r != SP)
}

/// The source registers of the word stores at `pc`, in order (two for an
/// arm64 `STP`).
fn store_sources(arch: Arch, body: &[u8], fentry: u64, pc: u64) -> Vec<Option<u8>> {
    let Some(at) = pc.checked_sub(fentry).and_then(|o| usize::try_from(o).ok()) else {
        return Vec::new();
    };
    let Some(code) = body.get(at..) else {
        return Vec::new();
    };
    // One instruction: amd64 at most 15 bytes, arm64 4.
    let code = &code[..code.len().min(15)];
    let mut out = Vec::new();
    let mut first = None;
    deferscope_decode::scan_flow(arch, code, pc, |e| {
        let epc = super::values::event_pc(&e);
        if *first.get_or_insert(epc) != epc || epc != pc {
            return;
        }
        if let Event::Store { src, .. } = e {
            out.push(src);
        }
    });
    out
}

/// A variable a stored word belongs to: (name without `&`, by reference,
/// start of the variable in the closure, bytes in the closure).
type Claim = (String, bool, u64, u64);

/// What the variables in registers at the store say of field `f` stored
/// from DWARF register `reg`: the one variable it is a word of, if exactly
/// one.
fn claim(f: &Capture, reg: u16, vars: &[VarAt]) -> Option<Claim> {
    let mut found: Option<Claim> = None;
    for v in vars {
        let (name, by_ref) = match v.name.strip_prefix('&') {
            Some(x) => (x, true),
            None => (v.name.as_str(), false),
        };
        if name.is_empty() || name.starts_with(['.', '~', '#']) || name.contains('.') {
            continue;
        }
        let mut at = 0u64;
        for p in &v.pieces {
            if p.reg == Some(reg) {
                let size = if by_ref { Some(8) } else { v.bytes };
                let c = match (p.bytes, size) {
                    (Some(_), Some(s)) if !by_ref => Some((f.offset.checked_sub(at)?, s)),
                    (None, Some(s)) if s <= 8 => Some((f.offset, s)),
                    _ => None,
                };
                let Some((start, bytes)) = c else {
                    // In this register, but which word is unknown.
                    return None;
                };
                let c = (name.to_string(), by_ref, start, bytes);
                if found.as_ref().is_some_and(|x| *x != c) {
                    return None;
                }
                found = Some(c);
            }
            at += p.bytes.unwrap_or(0);
        }
    }
    found
}

/// The captures the stores prove for the unnamed fields of `caps`; the
/// closure is built by the function at `fentry` (its code `body`), and
/// `vars_at(pcs)` gives that function's variables in registers at each
/// of `pcs`.
pub(super) fn stored(
    arch: Arch,
    body: &[u8],
    fentry: u64,
    caps: &[Capture],
    vars_at: impl FnOnce(&[u64]) -> Option<Vec<Vec<VarAt>>>,
) -> Vec<DwarfCapture> {
    let mut pcs: Vec<u64> = caps
        .iter()
        .filter(|f| f.name.is_none())
        .filter_map(|f| f.pc)
        .collect();
    pcs.sort_unstable();
    pcs.dedup();
    let Some(vars) = vars_at(&pcs) else {
        return Vec::new();
    };
    let vars_at = |pc: u64| Some(&vars[pcs.binary_search(&pc).ok()?]);
    // The claim of each unnamed stored field, by offset.
    let mut claims: BTreeMap<u64, Option<Claim>> = BTreeMap::new();
    for (i, f) in caps.iter().enumerate() {
        let Some(pc) = f.pc.filter(|_| f.name.is_none()) else {
            continue;
        };
        let k = caps[..i].iter().filter(|g| g.pc == Some(pc)).count();
        let srcs = store_sources(arch, body, fentry, pc);
        let same = caps.iter().filter(|g| g.pc == Some(pc)).count();
        let c = match srcs.get(k) {
            Some(Some(r)) if srcs.len() == same => dwarf_reg(arch, *r)
                .and_then(|reg| Some((reg, vars_at(pc)?)))
                .and_then(|(reg, vars)| claim(f, reg, vars)),
            _ => None,
        };
        claims.insert(f.offset, c);
    }
    let mut out: Vec<DwarfCapture> = Vec::new();
    for (name, by_ref, start, bytes) in claims.values().flatten() {
        if out.iter().any(|c| c.offset == Some(*start)) {
            continue;
        }
        let end = start + bytes;
        let within = |o: u64| (*start..end).contains(&o);
        // Every field in the variable's words: unnamed, and claimed by it
        // or by nothing; the fields hold it exactly.
        let agree = caps.iter().filter(|f| within(f.offset)).all(|f| {
            f.name.is_none()
                && claims
                    .get(&f.offset)
                    .is_none_or(|c| c.as_ref().is_none_or(|c| c.0 == *name && c.2 == *start))
        });
        let named_elsewhere = caps
            .iter()
            .any(|f| f.name.as_deref() == Some(name.as_str()));
        if agree && !named_elsewhere && fits(caps, *start, *bytes) {
            out.push(DwarfCapture {
                name: name.clone(),
                by_ref: *by_ref,
                certain: true,
                bytes: *bytes,
                offset: Some(*start),
                pointee_bytes: None,
            });
        }
    }
    // The same name twice, or overlapping variables: name none of them.
    let clash = |c: &DwarfCapture| {
        out.iter().any(|d| {
            !std::ptr::eq(c, d)
                && (d.name == c.name || {
                    let (a, b) = (c.offset.unwrap_or(0), d.offset.unwrap_or(0));
                    a < b + d.bytes && b < a + c.bytes
                })
        })
    };
    let keep: Vec<bool> = out.iter().map(|c| !clash(c)).collect();
    out.into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// Whether the code's fields hold `bytes` at `start` exactly: one exact
/// field of that size, or inexact words that add up to it.
fn fits(caps: &[Capture], start: u64, bytes: u64) -> bool {
    let Some(i) = caps.iter().position(|f| f.offset == start) else {
        return false;
    };
    if caps[i].exact {
        return caps[i].bytes == bytes;
    }
    let mut sum = 0;
    for f in &caps[i..] {
        if f.exact || f.offset != start + sum || sum >= bytes {
            break;
        }
        sum += f.bytes;
    }
    sum == bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use deferscope_index::LocPiece;
    use deferscope_model::explain::CaptureMode;

    fn word(offset: u64) -> Capture {
        Capture {
            name: None,
            mode: CaptureMode::Value,
            bytes: 8,
            offset,
            moved_to_heap: false,
            exact: false,
            pc: Some(0x1000 + offset),
            points_to: None,
        }
    }

    fn piece(reg: u16) -> LocPiece {
        LocPiece {
            reg: Some(reg),
            bytes: Some(8),
        }
    }

    /// go1.27.3 linux/amd64 `main.structCap`: `p` is `RAX piece 8, RBX
    /// piece 8, RCX piece 8` at the stores `MOVQ AX, 0x10(SP); MOVQ BX,
    /// 0x18(SP); MOVQ CX, 0x20(SP)` of closure fields 8, 16 and 24.
    #[test]
    fn pieces_give_the_start() {
        let p = VarAt {
            name: "p".into(),
            bytes: Some(24),
            pieces: vec![piece(0), piece(3), piece(2)],
        };
        let want = Some(("p".to_string(), false, 8, 24));
        assert_eq!(claim(&word(16), 3, std::slice::from_ref(&p)), want);
        assert_eq!(claim(&word(24), 2, std::slice::from_ref(&p)), want);
        assert!(fits(&[word(8), word(16), word(24)], 8, 24));
        assert!(!fits(&[word(8), word(16)], 8, 24));
        // Another variable in the same register: no claim.
        let q = VarAt {
            name: "q".into(),
            bytes: Some(8),
            pieces: vec![LocPiece {
                reg: Some(3),
                bytes: None,
            }],
        };
        assert_eq!(claim(&word(16), 3, &[p, q]), None);
    }

    #[test]
    fn register_numbers_invert() {
        for r in 0..16u16 {
            let dec = super::super::dwarfloads::tests_reg_of(Arch::Amd64, r);
            assert_eq!(
                dec.and_then(|d| dwarf_reg(Arch::Amd64, d)),
                dec.filter(|&d| d != SP).map(|_| r)
            );
        }
    }
}

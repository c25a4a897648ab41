//! A wrapper that calls a func value it captured (design.md §2.4): `defer
//! func(x T) {...}(v)` is wrapped as `func() { fn(v) }` around the literal's
//! func value `fn`, and unless the literal is inlined into the wrapper (`-N`
//! builds; a literal too big to inline) the wrapper calls it through the
//! captured pointer: it loads the field `k(DX)` (`k(R26)` on arm64, the
//! closure context of ABIInternal) into the context register and the
//! code word `0(DX)` into another, and calls that register. The call is
//! indirect in the machine code, but the value the defer site stored into
//! the wrapper closure's field `k` is a closure whose code is known (a
//! frame or heap closure, or a static funcval): that is the target.

use std::collections::HashMap;

use deferscope_decode::{Event, SP};
use deferscope_load::Arch;

use super::context::Cx;
use super::values::{Loc, Val, Values};

/// What a register or frame word of the wrapper holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sym {
    Unknown,
    /// The closure context at entry: the wrapper closure.
    Ctx,
    /// The wrapper closure's field at this offset.
    Field(i64),
    /// The first (code) word of that field's func value.
    Code(i64),
}

/// The closure context register: amd64 DX, arm64 R26.
fn ctx_reg(arch: Arch) -> u8 {
    match arch {
        Arch::Amd64 => 2,
        Arch::Arm64 => 26,
    }
}

/// The offset of the captured field through which the wrapper at `entry`
/// (code `body`) makes its one indirect call, when it calls a func value it
/// captured: at the call the context register holds that field and the
/// called register the field's code word.
pub(super) fn called_capture(arch: Arch, body: &[u8], entry: u64) -> Option<i64> {
    let ctx = ctx_reg(arch);
    let mut regs = [Sym::Unknown; 32];
    regs[ctx as usize] = Sym::Ctx;
    let mut slots: HashMap<i64, Sym> = HashMap::new();
    let mut indirect = 0;
    let mut found = None;
    let get = |regs: &[Sym; 32], r: u8| regs.get(r as usize).copied().unwrap_or(Sym::Unknown);
    let set = |regs: &mut [Sym; 32], r: u8, v: Sym| {
        if let Some(x) = regs.get_mut(r as usize) {
            *x = v;
        }
    };
    let load = |from: Sym, offset: i64| match from {
        Sym::Ctx => Sym::Field(offset),
        Sym::Field(k) if offset == 0 => Sym::Code(k),
        _ => Sym::Unknown,
    };
    deferscope_decode::scan_flow(arch, body, entry, |e| match e {
        Event::Move {
            dst, src, narrow, ..
        } => {
            let v = if narrow {
                Sym::Unknown
            } else {
                get(&regs, src)
            };
            set(&mut regs, dst, v);
        }
        Event::Load {
            dst, base, offset, ..
        } => {
            let v = if base == SP {
                slots.get(&offset).copied().unwrap_or(Sym::Unknown)
            } else {
                load(get(&regs, base), offset)
            };
            set(&mut regs, dst, v);
        }
        Event::Store {
            base: SP,
            offset,
            src,
            size,
            ..
        } => {
            let v = match (src, size) {
                (Some(r), 8) => get(&regs, r),
                _ => Sym::Unknown,
            };
            slots.insert(offset, v);
        }
        Event::Clobber { pc, reg } => match ldp(arch, body, entry, pc) {
            // arm64 `LDP off(Rn), (Rt, Rt2)`: two loads.
            Some((rt, rt2, rn, off)) => {
                let base = get(&regs, rn);
                set(&mut regs, rt, load(base, off));
                set(&mut regs, rt2, load(base, off + 8));
            }
            None => set(&mut regs, reg, Sym::Unknown),
        },
        Event::Const { reg, .. }
        | Event::AddrLoad { reg, .. }
        | Event::SpAddr { reg, .. }
        | Event::RegAddr { reg, .. } => set(&mut regs, reg, Sym::Unknown),
        Event::Call { .. } => regs = [Sym::Unknown; 32],
        Event::CallIndirect { pc } => {
            indirect += 1;
            let called = call_reg(arch, body, entry, pc).map(|r| get(&regs, r));
            if let (Some(Sym::Code(k)), Sym::Field(j)) = (called, get(&regs, ctx)) {
                if k == j {
                    found = Some(k);
                }
            }
            regs = [Sym::Unknown; 32];
        }
        _ => {}
    });
    found.filter(|_| indirect == 1)
}

/// The code of the func value the site at `pc` stored into field `k` of
/// the wrapper closure it registers (the last store there before `pc`).
pub(super) fn captured_code(cx: &Cx<'_, '_>, vals: &Values, pc: u64, k: i64) -> Option<u64> {
    let loc = match *vals.closure.get(&pc)? {
        Val::Sp(o) => Loc::Stack(o + k),
        Val::Heap(n) => Loc::Heap(n, k),
        _ => return None,
    };
    let stored = |loc: Loc| {
        vals.stores
            .iter()
            .rev()
            .find(|s| s.pc < pc && s.loc == loc && s.size == 8)
            .map(|s| s.val)
    };
    let word = match stored(loc)? {
        // A static funcval: its first word is the code.
        Val::Addr(a) => return cx.img.read_u64(a).filter(|&c| cx.is_entry(c)),
        Val::Sp(x) => stored(Loc::Stack(x))?,
        Val::Heap(m) => stored(Loc::Heap(m, 0))?,
        _ => return None,
    };
    match word {
        Val::Addr(c) if cx.is_entry(c) => Some(c),
        _ => None,
    }
}

/// The register an indirect call at `pc` calls: amd64 `CALL r` (`FF /2`,
/// register form, REX.B for R8-R15); arm64 `BLR Xn`.
fn call_reg(arch: Arch, body: &[u8], entry: u64, pc: u64) -> Option<u8> {
    let at = usize::try_from(pc.checked_sub(entry)?).ok()?;
    let b = body.get(at..)?;
    match arch {
        Arch::Amd64 => {
            let (rex_b, b) = match b.first()? {
                0x40..=0x4f => (b[0] & 1, &b[1..]),
                _ => (0, b),
            };
            let (&op, &modrm) = (b.first()?, b.get(1)?);
            (op == 0xff && modrm >> 6 == 3 && (modrm >> 3) & 7 == 2)
                .then_some((modrm & 7) | (rex_b << 3))
        }
        Arch::Arm64 => {
            let w = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
            (w & 0xffff_fc1f == 0xd63f_0000).then_some(((w >> 5) & 31) as u8)
        }
    }
}

/// An arm64 `LDP Xt, Xt2, [Xn, #off]` (64-bit, signed offset) at `pc`:
/// (Rt, Rt2, Rn, off).
fn ldp(arch: Arch, body: &[u8], entry: u64, pc: u64) -> Option<(u8, u8, u8, i64)> {
    if arch != Arch::Arm64 {
        return None;
    }
    let at = usize::try_from(pc.checked_sub(entry)?).ok()?;
    let w = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?);
    if w & 0xffc0_0000 != 0xa940_0000 {
        return None;
    }
    // imm7, scaled by 8, sign-extended.
    let imm = (((w >> 15) & 0x7f) as i64) << 57 >> 57;
    let rn = ((w >> 5) & 31) as u8;
    if rn == 31 {
        // SP: a frame reload, not a field.
        return None;
    }
    Some((((w) & 31) as u8, ((w >> 10) & 31) as u8, rn, imm * 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_registers() {
        // go1.26 amd64 `CALL SI` (commentSizeBefore.deferwrap1), `CALL R8`;
        // go1.27 arm64 `CALL (R16)` (BLR X16, go/types funcBody.deferwrap1).
        assert_eq!(call_reg(Arch::Amd64, &[0xff, 0xd6], 0, 0), Some(6));
        assert_eq!(call_reg(Arch::Amd64, &[0x41, 0xff, 0xd0], 0, 0), Some(8));
        assert_eq!(call_reg(Arch::Amd64, &[0xff, 0x12], 0, 0), None);
        let blr = 0xd63f_0200u32.to_le_bytes();
        assert_eq!(call_reg(Arch::Arm64, &blr, 0, 0), Some(16));
    }

    #[test]
    fn ldp_offsets() {
        // `LDP 8(R26), (R15, R0)` = a940834f; `LDP -8(RSP), (R29, R30)`.
        let code = [0x4f, 0x83, 0x40, 0xa9, 0xfd, 0xfb, 0x7f, 0xa9];
        assert_eq!(ldp(Arch::Arm64, &code, 0, 0), Some((15, 0, 26, 8)));
        assert_eq!(ldp(Arch::Arm64, &code, 0, 4), None);
        assert_eq!(ldp(Arch::Amd64, &code, 0, 0), None);
    }
}

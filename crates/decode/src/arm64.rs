//! arm64: direct calls and SP-relative stores, from the instruction words,
//! and the [`facts`] of one instruction decoded by yaxpeax-arm.
//!
//! Encodings (Arm ARM, C6.2): BL `100101 imm26`; STR (imm, unsigned offset)
//! 64-bit `0xF9000000`, 8-bit `0x39000000`; STUR 64-bit `0xF8000000`, 8-bit
//! `0x38000000`; STP 64-bit signed offset `0xA9000000`. Register 31 is SP as
//! a base and XZR as a source.
//!
//! The stores are listed once, as opcodes ([`STORES`]): the facts classify
//! decoded instructions with it, and the events' encodings above are its
//! 64-bit and byte forms with SP as the base, matched on the raw word so
//! that [`scan`] needs no decoder. The test
//! `scan_stores_are_the_facts_stores` checks the two against each other.

use yaxpeax_arm::armv8::a64::{Instruction, Opcode, Operand, SIMDSizeCode, ShiftStyle, SizeCode};

use crate::facts::{Call, Facts, ImmOp, MemOp, SpMem, Value};
use crate::Event;

fn sext(v: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v as i64) << shift) >> shift
}

/// Decode one word at `pc`; report its events.
fn word(w: u32, pc: u64, sink: &mut impl FnMut(Event)) {
    if w >> 26 == 0b100101 {
        let off = sext(w & 0x03ff_ffff, 26) * 4;
        sink(Event::Call {
            pc,
            target: pc.wrapping_add(off as u64),
        });
        return;
    }
    let rt = w & 31;
    let rn = (w >> 5) & 31;
    if rn != 31 {
        return;
    }
    let store = |offset: i64, size: u8, reg: u32| Event::StackStore {
        pc,
        offset,
        size,
        zero: reg == 31,
    };
    match w & 0xffc0_0000 {
        0xf900_0000 => return sink(store((((w >> 10) & 0xfff) * 8) as i64, 8, rt)),
        0x3900_0000 => return sink(store(((w >> 10) & 0xfff) as i64, 1, rt)),
        0xa900_0000 => {
            let off = sext((w >> 15) & 0x7f, 7) * 8;
            sink(store(off, 8, rt));
            sink(store(off + 8, 8, (w >> 10) & 31));
            return;
        }
        _ => {}
    }
    match w & 0xffe0_0c00 {
        0xf800_0000 => sink(store(sext((w >> 12) & 0x1ff, 9), 8, rt)),
        0x3800_0000 => sink(store(sext((w >> 12) & 0x1ff, 9), 1, rt)),
        _ => {}
    }
}

pub fn scan(code: &[u8], entry: u64, mut sink: impl FnMut(Event)) {
    for (i, c) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        word(w, entry + 4 * i as u64, &mut sink);
    }
}

/// [`scan`] plus the flow events (see [`crate::scan_flow`]). `ADRP` pages
/// are remembered per register so that the `ADD` completing the pair gives
/// one [`Event::AddrLoad`].
pub fn scan_flow(code: &[u8], entry: u64, mut sink: impl FnMut(Event)) {
    let mut page: [Option<u64>; 32] = [None; 32];
    for (i, c) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let pc = entry + 4 * i as u64;
        word(w, pc, &mut sink);
        flow_word(w, pc, &mut page, &mut sink);
    }
}

/// Flow facts of one word (Arm ARM C4.1 encoding groups).
fn flow_word(w: u32, pc: u64, page: &mut [Option<u64>; 32], sink: &mut impl FnMut(Event)) {
    let next = pc + 4;
    let rd = (w & 31) as u8;
    let rn = ((w >> 5) & 31) as u8;
    let jump = |target: Option<u64>, cond: bool| Event::Jump {
        pc,
        next,
        target,
        cond,
    };
    // B imm26
    if w >> 26 == 0b000101 {
        let off = sext(w & 0x03ff_ffff, 26) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), false));
    }
    // B.cond, CBZ/CBNZ (imm19), TBZ/TBNZ (imm14)
    if w & 0xff00_0010 == 0x5400_0000 || w & 0x7e00_0000 == 0x3400_0000 {
        let off = sext((w >> 5) & 0x7ffff, 19) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), true));
    }
    if w & 0x7e00_0000 == 0x3600_0000 {
        let off = sext((w >> 5) & 0x3fff, 14) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), true));
    }
    match w & 0xffff_fc1f {
        0xd61f_0000 => return sink(jump(None, false)),
        0xd65f_0000 => return sink(Event::Ret { pc, next }),
        0xd63f_0000 => return sink(Event::CallIndirect { pc }),
        _ => {}
    }
    // BRK, UDF
    if w & 0xffe0_001f == 0xd420_0000 || w >> 16 == 0 {
        return sink(Event::Halt { pc, next });
    }
    // BL: handled by `word`; it clobbers every register (the caller's job).
    if w >> 26 == 0b100101 {
        return;
    }
    // ADRP
    if w & 0x9f00_0000 == 0x9000_0000 {
        let imm = (((w >> 5) & 0x7ffff) << 2) | ((w >> 29) & 3);
        let p = (pc & !0xfff).wrapping_add((sext(imm, 21) << 12) as u64);
        page[rd as usize] = Some(p);
        return sink(Event::Clobber { pc, reg: rd });
    }
    // ADD (immediate), 64-bit, no flags
    if w & 0xff80_0000 == 0x9100_0000 {
        let mut imm = ((w >> 10) & 0xfff) as u64;
        if w & (1 << 22) != 0 {
            imm <<= 12;
        }
        let ev = if rn == 31 {
            Event::SpAddr {
                pc,
                reg: rd,
                offset: imm as i64,
            }
        } else if let Some(p) = page[rn as usize] {
            Event::AddrLoad {
                pc,
                reg: rd,
                addr: p + imm,
            }
        } else {
            Event::RegAddr {
                pc,
                reg: rd,
                base: rn,
                offset: imm as i64,
            }
        };
        if rd != 31 {
            page[rd as usize] = None;
            sink(ev);
        }
        return;
    }
    // MOVZ (32- and 64-bit), and ORR (immediate) from ZR: constants.
    if w & 0x7f80_0000 == 0x5280_0000 && rd != 31 {
        page[rd as usize] = None;
        let value = (((w >> 5) & 0xffff) as u64) << (16 * ((w >> 21) & 3));
        return sink(Event::Const { pc, reg: rd, value });
    }
    if w & 0x7f80_0000 == 0x3200_0000 && rn == 31 && rd != 31 {
        page[rd as usize] = None;
        return sink(match orr_imm(w) {
            Some(value) => Event::Const { pc, reg: rd, value },
            None => Event::Clobber { pc, reg: rd },
        });
    }
    // MOV Xd, Xm (ORR Xd, XZR, Xm)
    if w & 0xffe0_ffe0 == 0xaa00_03e0 {
        let rm = ((w >> 16) & 31) as u8;
        page[rd as usize] = None;
        return sink(if rm == 31 {
            Event::Const {
                pc,
                reg: rd,
                value: 0,
            }
        } else {
            Event::Move {
                pc,
                dst: rd,
                src: rm,
                narrow: false,
            }
        });
    }
    mem_word(w, pc, page, sink);
}

/// Loads and stores of 64-bit registers (any base), and the registers
/// other instructions overwrite: the rest of [`flow_word`].
#[inline(always)]
fn mem_word(w: u32, pc: u64, page: &mut [Option<u64>; 32], sink: &mut impl FnMut(Event)) {
    let rd = (w & 31) as u8;
    let rn = ((w >> 5) & 31) as u8;
    let base = if rn == 31 { crate::SP } else { rn };
    // STR Xt, [Xn, #imm] (unsigned offset) / LDR Xt, [Xn, #imm]
    match w & 0xffc0_0000 {
        0xf900_0000 => {
            return sink(Event::Store {
                pc,
                base,
                offset: (((w >> 10) & 0xfff) * 8) as i64,
                src: (rd != 31).then_some(rd),
                size: 8,
            })
        }
        0xf940_0000 => {
            page[rd as usize] = None;
            return sink(Event::Load {
                pc,
                dst: rd,
                base,
                offset: (((w >> 10) & 0xfff) * 8) as i64,
            });
        }
        0xa900_0000 => {
            let off = sext((w >> 15) & 0x7f, 7) * 8;
            let rt2 = ((w >> 10) & 31) as u8;
            sink(Event::Store {
                pc,
                base,
                offset: off,
                src: (rd != 31).then_some(rd),
                size: 8,
            });
            return sink(Event::Store {
                pc,
                base,
                offset: off + 8,
                src: (rt2 != 31).then_some(rt2),
                size: 8,
            });
        }
        0xa940_0000 => {
            // LDP Xt, Xt2, [Xn, #imm]: both registers from the old base
            // (go1.25+ pairs the loads of a closure's fields).
            let off = sext((w >> 15) & 0x7f, 7) * 8;
            let rt2 = ((w >> 10) & 31) as u8;
            let mut pair = [(rd, off), (rt2, off + 8)];
            if rd == rn {
                pair.swap(0, 1);
            }
            for (dst, offset) in pair {
                if dst != 31 {
                    page[dst as usize] = None;
                    sink(Event::Load {
                        pc,
                        dst,
                        base,
                        offset,
                    });
                }
            }
            return;
        }
        _ => {}
    }
    // STUR / LDUR 64-bit
    match w & 0xffe0_0c00 {
        0xf800_0000 => {
            return sink(Event::Store {
                pc,
                base,
                offset: sext((w >> 12) & 0x1ff, 9),
                src: (rd != 31).then_some(rd),
                size: 8,
            })
        }
        0xf840_0000 => {
            page[rd as usize] = None;
            return sink(Event::Load {
                pc,
                dst: rd,
                base,
                offset: sext((w >> 12) & 0x1ff, 9),
            });
        }
        _ => {}
    }
    // Other data processing (immediate: op0 = 100x; register: x101) and
    // loads (bit 22 set in the load/store group x1x0) write Rd/Rt.
    let op0 = (w >> 25) & 0xf;
    let writes = op0 & 0b1110 == 0b1000
        || op0 & 0b0111 == 0b0101
        || (op0 & 0b0101 == 0b0100 && w & (1 << 22) != 0);
    if writes && rd != 31 {
        page[rd as usize] = None;
        sink(Event::Clobber { pc, reg: rd });
    }
    // A load pair (general registers) writes Rt2 as well.
    let rt2 = ((w >> 10) & 31) as u8;
    if w & 0x3e40_0000 == 0x2840_0000 && rt2 != 31 {
        page[rt2 as usize] = None;
        sink(Event::Clobber { pc, reg: rt2 });
    }
}

/// How a load or store opcode accesses memory: the one list of arm64
/// loads and stores the facts classify by (the events match the 64-bit
/// and byte forms of the stores by encoding, see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// STR, STRB, STRH, STUR, STURB, STURH.
    Store,
    /// STP, counted as one 16-byte store.
    StorePair,
    /// LDR, LDRB, LDRH, LDUR, LDURB, LDURH.
    Load,
}

#[inline]
fn access(op: Opcode) -> Option<Access> {
    match op {
        Opcode::STR
        | Opcode::STRB
        | Opcode::STRH
        | Opcode::STUR
        | Opcode::STURB
        | Opcode::STURH => Some(Access::Store),
        Opcode::STP => Some(Access::StorePair),
        Opcode::LDR
        | Opcode::LDRB
        | Opcode::LDRH
        | Opcode::LDUR
        | Opcode::LDURB
        | Opcode::LDURH => Some(Access::Load),
        _ => None,
    }
}

/// Bytes a single-register load or store moves: by the opcode's byte and
/// halfword forms, else by the register (`W` 4, `Q` 16, else 8).
#[inline]
fn access_size(op: Opcode, reg: &Operand) -> u8 {
    match op {
        Opcode::STRB | Opcode::STURB | Opcode::LDRB | Opcode::LDURB => 1,
        Opcode::STRH | Opcode::STURH | Opcode::LDRH | Opcode::LDURH => 2,
        _ => match *reg {
            Operand::Register(SizeCode::W, _) => 4,
            Operand::SIMDRegister(SIMDSizeCode::Q, _) => 16,
            _ => 8,
        },
    }
}

/// A general register's number.
#[inline]
fn reg_of(o: &Operand) -> Option<u16> {
    match *o {
        Operand::Register(_, n) | Operand::RegisterOrSP(_, n) => Some(n),
        _ => None,
    }
}

/// `ADD $k, RSP, R27`: Go's assembler reaches a frame slot beyond the
/// 12-bit immediate through REGTMP (R27), set and used within one
/// instruction's expansion and never a branch target in between. Returns
/// `(27, k)`, the `base` to pass to [`facts`] for the very next
/// instruction (`MOVB ZR, 63(R27)`), whose slot is then `off(RSP)`.
#[inline]
pub fn regtmp_sp_base(ins: &Instruction) -> Option<(u16, i64)> {
    let (Opcode::ADD, Operand::RegisterOrSP(SizeCode::X, rd), Operand::RegisterOrSP(_, 31)) =
        (ins.opcode, ins.operands[0], ins.operands[1])
    else {
        return None;
    };
    let k = match ins.operands[2] {
        Operand::Immediate(v) => v as i64,
        Operand::ImmShift(v, s) => (v as i64) << s,
        _ => return None,
    };
    (rd == 27).then_some((rd, k))
}

/// The facts of one decoded instruction at `pc` (see [`crate::facts`]).
/// `base`: a register known to hold RSP plus a constant
/// ([`regtmp_sp_base`] of the instruction before); a memory operand based
/// on it is an `off(RSP)` slot.
#[inline]
pub fn facts(ins: &Instruction, pc: u64, base: Option<(u16, i64)>) -> Facts {
    let mut f = Facts::default();
    let ops = &ins.operands;
    match ins.opcode {
        Opcode::BL => {
            if let Operand::PCOffset(off) = ops[0] {
                f.call = Some(Call::Direct((pc as i64).wrapping_add(off) as u64));
            }
        }
        Opcode::BLR => f.call = Some(Call::Indirect),
        Opcode::TBZ | Opcode::TBNZ => {
            if let (Some(r), Operand::Imm16(b)) = (reg_of(&ops[0]), ops[1]) {
                let op = if ins.opcode == Opcode::TBZ {
                    ImmOp::BitZero(b as u8)
                } else {
                    ImmOp::BitNonZero(b as u8)
                };
                f.imm_op = Some((op, r, r));
            }
        }
        Opcode::ADD => {
            let imm = match ops[2] {
                Operand::Immediate(v) => Some(v as i64),
                Operand::ImmShift(v, s) => Some((v as i64) << s),
                _ => None,
            };
            match (reg_of(&ops[0]), ops[1], imm) {
                (Some(d), Operand::RegisterOrSP(_, 31), Some(v)) => f.lea_sp = Some((d, v)),
                (Some(d), Operand::RegisterOrSP(_, n) | Operand::Register(_, n), Some(v)) => {
                    f.add_imm = Some((d, n, v));
                }
                _ => {}
            }
            f.dest = reg_of(&ops[0]);
        }
        Opcode::ORR | Opcode::AND | Opcode::ANDS => return logical_facts(ins),
        op => match access(op) {
            Some(a) => return mem_facts(ins, a, base),
            None => {
                if let Some(d) = reg_of(&ops[0]) {
                    if !matches!(
                        ins.opcode,
                        Opcode::CBZ | Opcode::CBNZ | Opcode::SUBS | Opcode::ADDS
                    ) || !matches!(ops[0], Operand::Register(_, 31))
                    {
                        f.dest = Some(d);
                    }
                }
            }
        },
    }
    f
}

/// A load or store of an `off(SP)` slot (or of `off(base)`, see
/// [`facts`]); nothing for other addresses.
fn mem_facts(ins: &Instruction, a: Access, base: Option<(u16, i64)>) -> Facts {
    let mut f = Facts::default();
    let ops = &ins.operands;
    let sp_mem = |o: &Operand| match *o {
        Operand::RegPreIndex(31, off, false) => Some(off as i64),
        Operand::RegPreIndex(r, off, false) => match base {
            Some((b, k)) if b == r => Some(k + off as i64),
            _ => None,
        },
        _ => None,
    };
    let size = access_size(ins.opcode, &ops[0]);
    match a {
        Access::Store => {
            if let Some(off) = sp_mem(&ops[1]) {
                let v = match ops[0] {
                    Operand::Register(_, 31) => Value::Imm(0),
                    Operand::Register(_, n) => Value::Reg(n),
                    _ => Value::Imm(u64::MAX),
                };
                f.sp = Some(SpMem {
                    off,
                    size,
                    op: MemOp::Store(v),
                });
            }
        }
        Access::StorePair => {
            if let Some(off) = sp_mem(&ops[2]) {
                let v = match (ops[0], ops[1]) {
                    (Operand::Register(_, 31), Operand::Register(_, 31)) => Value::Imm(0),
                    (Operand::Register(_, n), _) => Value::Reg(n),
                    _ => Value::Imm(u64::MAX),
                };
                f.sp = Some(SpMem {
                    off,
                    size: 16,
                    op: MemOp::Store(v),
                });
            }
        }
        Access::Load => {
            if let (Some(d), Some(off)) = (reg_of(&ops[0]), sp_mem(&ops[1])) {
                f.sp = Some(SpMem {
                    off,
                    size,
                    op: MemOp::Load(d),
                });
                f.dest = Some(d);
            }
        }
    }
    f
}

/// ORR/AND/ANDS: with an immediate, the deferBits operations (`ORR $v,
/// ZR, Rd` is a constant load); `ORR Rm, ZR, Rd` is a register copy.
fn logical_facts(ins: &Instruction) -> Facts {
    let mut f = Facts::default();
    let ops = &ins.operands;
    let d = reg_of(&ops[0]);
    if let (Some(d), Some(s)) = (d, reg_of(&ops[1])) {
        let imm = match ops[2] {
            Operand::Imm64(v) => Some(v),
            Operand::Immediate(v) => Some(v as u64),
            _ => None,
        };
        if let Some(v) = imm {
            f.imm_op = Some((
                match ins.opcode {
                    Opcode::ORR => ImmOp::Or(v),
                    Opcode::AND => ImmOp::And(v),
                    _ => ImmOp::Test(v),
                },
                d,
                s,
            ));
        } else if let Operand::RegShift(ShiftStyle::LSL, 0, _, m) = ops[2] {
            if s == 31 && ins.opcode == Opcode::ORR {
                f.copy = Some((d, m));
            }
        }
    }
    if ins.opcode != Opcode::ANDS || !matches!(ops[0], Operand::Register(_, 31)) {
        f.dest = d;
    }
    f
}

pub fn call_candidates(text: &[u8], base: u64, targets: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, c) in text.chunks_exact(4).enumerate() {
        if c[3] >> 2 != 0b100101 {
            continue;
        }
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let pc = base + 4 * i as u64;
        let t = pc.wrapping_add((sext(w & 0x03ff_ffff, 26) * 4) as u64);
        if targets.contains(&t) {
            out.push(pc);
        }
    }
    out
}

/// [`crate::mem_writes`] on arm64: the stores of [`access`] with an
/// immediate offset from a base register (pre-index, post-index or plain).
pub fn mem_writes(code: &[u8], entry: u64, mut sink: impl FnMut(crate::MemWrite)) {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::InstDecoder;
    let dec = InstDecoder::default();
    for (i, c) in code.chunks_exact(4).enumerate() {
        let mut r = U8Reader::new(c);
        let Ok(ins) = dec.decode(&mut r) else {
            continue;
        };
        let (mem, size) = match access(ins.opcode) {
            Some(Access::Store) => (ins.operands[1], access_size(ins.opcode, &ins.operands[0])),
            Some(Access::StorePair) => (ins.operands[2], 16),
            _ => continue,
        };
        let (base, offset) = match mem {
            Operand::RegPreIndex(r, off, _) => (r, off as i64),
            Operand::RegPostIndex(r, _) => (r, 0),
            _ => continue,
        };
        sink(crate::MemWrite {
            pc: entry + 4 * i as u64,
            base: if base == 31 { crate::SP } else { base as u8 },
            offset,
            size,
        });
    }
}

/// The immediate of an `ORR (immediate)` word, as yaxpeax-arm decodes its
/// bitmask.
fn orr_imm(w: u32) -> Option<u64> {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::InstDecoder;
    let ins = InstDecoder::default()
        .decode(&mut U8Reader::new(&w.to_le_bytes()))
        .ok()?;
    match (ins.opcode, ins.operands[2]) {
        (Opcode::ORR, Operand::Imm64(v)) => Some(v),
        (Opcode::ORR, Operand::Immediate(v)) => Some(v as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(w: u32, pc: u64) -> Vec<Event> {
        let mut v = Vec::new();
        word(w, pc, &mut |e| v.push(e));
        v
    }

    // Encodings below are from the Arm ARM's field layouts, checked with
    // `go tool objdump` spellings quoted in the defer spec (§3.1).
    #[test]
    fn decodes_bl() {
        // bl +8
        assert_eq!(
            events(0x9400_0002, 0x1000),
            vec![Event::Call {
                pc: 0x1000,
                target: 0x1008
            }]
        );
        // bl -4
        assert_eq!(
            events(0x97ff_ffff, 0x1000),
            vec![Event::Call {
                pc: 0x1000,
                target: 0xffc
            }]
        );
    }

    fn flow(ws: &[u32], pc: u64) -> Vec<Event> {
        let code: Vec<u8> = ws.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut v = Vec::new();
        scan_flow(&code, pc, |e| v.push(e));
        v
    }

    #[test]
    fn flow_events_arm64() {
        // adrp x1, +1 page ; add x1, x1, #0x10 ; add x0, sp, #40 ; ret
        let v = flow(
            &[0xb000_0001, 0x9100_4021, 0x9100_a3e0, 0xd65f_03c0],
            0x1000,
        );
        assert_eq!(
            v,
            vec![
                Event::Clobber { pc: 0x1000, reg: 1 },
                Event::AddrLoad {
                    pc: 0x1004,
                    reg: 1,
                    addr: 0x2010
                },
                Event::SpAddr {
                    pc: 0x1008,
                    reg: 0,
                    offset: 40
                },
                Event::Ret {
                    pc: 0x100c,
                    next: 0x1010
                },
            ]
        );
        // cbnz x0, -4 ; b +8 ; str x1, [x0]
        let v = flow(&[0xb5ff_ffe0, 0x1400_0002, 0xf900_0001], 0x1000);
        assert_eq!(
            v,
            vec![
                Event::Jump {
                    pc: 0x1000,
                    next: 0x1004,
                    target: Some(0xffc),
                    cond: true
                },
                Event::Jump {
                    pc: 0x1004,
                    next: 0x1008,
                    target: Some(0x100c),
                    cond: false
                },
                Event::Store {
                    pc: 0x1008,
                    base: 0,
                    offset: 0,
                    src: Some(1),
                    size: 8
                },
            ]
        );
    }

    #[test]
    fn load_pairs_write_both_registers() {
        // ldp x0, x1, [x26, #8] (go1.25+ loads two closure fields at once)
        // ; ldp x26, x2, [x26, #16] (the base among the destinations)
        // ; ldp x3, x4, [sp], #16 (post-index: both clobbered)
        let v = flow(&[0xa940_8740, 0xa941_0b5a, 0xa8c1_13e3], 0x1000);
        let load = |pc, dst, base, offset| Event::Load {
            pc,
            dst,
            base,
            offset,
        };
        assert_eq!(
            v,
            vec![
                load(0x1000, 0, 26, 8),
                load(0x1000, 1, 26, 16),
                load(0x1004, 2, 26, 24),
                load(0x1004, 26, 26, 16),
                Event::Clobber { pc: 0x1008, reg: 3 },
                Event::Clobber { pc: 0x1008, reg: 4 },
            ]
        );
    }

    /// The events' store encodings and the facts' list of stores agree:
    /// on every STR/STUR (64-bit), STRB/STURB and STP (64-bit) offset with
    /// SP and other bases, and on pseudo-random words of the load/store
    /// group, `word` reports exactly the StackStores that the facts of the
    /// instruction yaxpeax-arm decodes imply.
    #[test]
    fn scan_stores_are_the_facts_stores() {
        use yaxpeax_arch::{Decoder, U8Reader};
        use yaxpeax_arm::armv8::a64::InstDecoder;
        let dec = InstDecoder::default();
        let expected = |w: u32| -> Vec<Event> {
            let Ok(ins) = dec.decode(&mut U8Reader::new(&w.to_le_bytes())) else {
                return Vec::new();
            };
            let ops = &ins.operands;
            let x0 = matches!(ops[0], Operand::Register(SizeCode::X, _));
            let zr = |o: &Operand| matches!(o, Operand::Register(_, 31));
            let at = |offset: i64, size: u8, zero: bool| Event::StackStore {
                pc: 0x1000,
                offset,
                size,
                zero,
            };
            match (ins.opcode, facts(&ins, 0x1000, None).sp) {
                (
                    Opcode::STR | Opcode::STUR,
                    Some(SpMem {
                        off,
                        size: 8,
                        op: MemOp::Store(v),
                    }),
                ) if x0 => vec![at(off, 8, v == Value::Imm(0))],
                (
                    Opcode::STRB | Opcode::STURB,
                    Some(SpMem {
                        off,
                        size: 1,
                        op: MemOp::Store(v),
                    }),
                ) => vec![at(off, 1, v == Value::Imm(0))],
                (
                    Opcode::STP,
                    Some(SpMem {
                        off,
                        op: MemOp::Store(_),
                        ..
                    }),
                ) if x0 => vec![at(off, 8, zr(&ops[0])), at(off + 8, 8, zr(&ops[1]))],
                _ => Vec::new(),
            }
        };
        let mut checked = 0;
        let mut check = |w: u32| {
            let got: Vec<Event> = events(w, 0x1000)
                .into_iter()
                .filter(|e| matches!(e, Event::StackStore { .. }))
                .collect();
            assert_eq!(got, expected(w), "{w:08x}");
            checked += 1;
        };
        // STR/STRB (unsigned offset, imm12), STUR/STURB (imm9), STP (imm7).
        for (form, imm_bits, imm_shift) in [
            (0xf900_0000u32, 12, 10),
            (0x3900_0000, 12, 10),
            (0xf800_0000, 9, 12),
            (0x3800_0000, 9, 12),
            (0xa900_0000, 7, 15),
        ] {
            for imm in 0..1u32 << imm_bits {
                for rn in [31, 0, 27] {
                    for rt in [0, 1, 30, 31] {
                        let rt2 = if form == 0xa900_0000 { 31 - rt } else { 0 };
                        check(form | imm << imm_shift | rt2 << 10 | rn << 5 | rt);
                    }
                }
            }
        }
        // Other forms of the group (xorshift64, fixed seed), SP as the
        // base for half of them.
        let mut r: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..400_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let mut w = (r as u32 & !0x0a00_0000) | 0x0800_0000;
            if i % 2 == 0 {
                w |= 31 << 5;
            }
            check(w);
        }
        assert!(checked > 500_000);
    }

    #[test]
    fn decodes_stores() {
        // strb wzr, [sp, #15]  (39003fff in the spec)
        assert_eq!(
            events(0x3900_3fff, 0),
            vec![Event::StackStore {
                pc: 0,
                offset: 15,
                size: 1,
                zero: true
            }]
        );
        // str x0, [sp, #16]
        assert_eq!(
            events(0xf900_0be0, 0),
            vec![Event::StackStore {
                pc: 0,
                offset: 16,
                size: 8,
                zero: false
            }]
        );
        // stp xzr, xzr, [sp, #32]
        assert_eq!(
            events(0xa902_7fff, 0),
            vec![
                Event::StackStore {
                    pc: 0,
                    offset: 32,
                    size: 8,
                    zero: true
                },
                Event::StackStore {
                    pc: 0,
                    offset: 40,
                    size: 8,
                    zero: true
                }
            ]
        );
        // str x0, [x1, #16]: not SP-based, no event.
        assert!(events(0xf900_0820, 0).is_empty());
    }
}

//! Instruction facts for the annotator (what an instruction stores, loads,
//! tests or calls).

use yaxpeax_arm::armv8::a64::{Instruction, Opcode, Operand, SIMDSizeCode, ShiftStyle, SizeCode};

use crate::facts::{Call, Facts, ImmOp, MemOp, SpMem, Value};

/// `base`: a register known to hold RSP plus a constant (see
/// `Arm64::sp_base`); a memory operand based on it is an `off(RSP)` slot.
pub(super) fn facts(ins: &Instruction, pc: u64, base: Option<(u16, i64)>) -> Facts {
    let mut f = Facts::default();
    let ops = &ins.operands;
    let reg = |o: &Operand| match *o {
        Operand::Register(_, n) | Operand::RegisterOrSP(_, n) => Some(n),
        _ => None,
    };
    match ins.opcode {
        Opcode::BL => {
            if let Operand::PCOffset(off) = ops[0] {
                f.call = Some(Call::Direct((pc as i64).wrapping_add(off) as u64));
            }
            return f;
        }
        Opcode::BLR => {
            f.call = Some(Call::Indirect);
            return f;
        }
        Opcode::TBZ | Opcode::TBNZ => {
            if let (Some(r), Operand::Imm16(b)) = (reg(&ops[0]), ops[1]) {
                let op = if ins.opcode == Opcode::TBZ {
                    ImmOp::BitZero(b as u8)
                } else {
                    ImmOp::BitNonZero(b as u8)
                };
                f.imm_op = Some((op, r, r));
            }
            return f;
        }
        _ => {}
    }
    let sp_mem = |o: &Operand| match *o {
        Operand::RegPreIndex(31, off, false) => Some(off as i64),
        Operand::RegPreIndex(r, off, false) => match base {
            Some((b, k)) if b == r => Some(k + off as i64),
            _ => None,
        },
        _ => None,
    };
    let size = match ins.opcode {
        Opcode::STRB | Opcode::STURB | Opcode::LDRB | Opcode::LDURB => 1,
        Opcode::STRH | Opcode::STURH | Opcode::LDRH | Opcode::LDURH => 2,
        _ => match ops[0] {
            Operand::Register(SizeCode::W, _) => 4,
            Operand::SIMDRegister(SIMDSizeCode::Q, _) => 16,
            _ => 8,
        },
    };
    match ins.opcode {
        Opcode::STR
        | Opcode::STRB
        | Opcode::STRH
        | Opcode::STUR
        | Opcode::STURB
        | Opcode::STURH => {
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
        Opcode::STP => {
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
        Opcode::LDR
        | Opcode::LDRB
        | Opcode::LDRH
        | Opcode::LDUR
        | Opcode::LDURB
        | Opcode::LDURH => {
            if let (Some(d), Some(off)) = (reg(&ops[0]), sp_mem(&ops[1])) {
                f.sp = Some(SpMem {
                    off,
                    size,
                    op: MemOp::Load(d),
                });
                f.dest = Some(d);
            }
        }
        Opcode::ADD => {
            if let (Some(d), Operand::RegisterOrSP(_, 31), Operand::Immediate(v)) =
                (reg(&ops[0]), ops[1], ops[2])
            {
                f.lea_sp = Some((d, v as i64));
            }
            f.dest = reg(&ops[0]);
        }
        Opcode::ORR | Opcode::AND | Opcode::ANDS => {
            let d = reg(&ops[0]);
            if let (Some(d), Some(s)) = (d, reg(&ops[1])) {
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
        }
        _ => {
            if let Some(d) = reg(&ops[0]) {
                if !matches!(
                    ins.opcode,
                    Opcode::CBZ | Opcode::CBNZ | Opcode::SUBS | Opcode::ADDS
                ) || !matches!(ops[0], Operand::Register(_, 31))
                {
                    f.dest = Some(d);
                }
            }
        }
    }
    f
}

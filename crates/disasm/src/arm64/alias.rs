//! Steps 1 and 2 of the Go syntax ([`super::syntax`]): instructions
//! with one fixed spelling (branches, hints, barriers, system
//! instructions), and the Arm ARM's preferred aliases, which replace the
//! architectural instruction (`MOV`, `CMP`, `TST`, `NEG`, `NGC`, `MVN`,
//! `LSL`/`LSR`/`ASR`, `UBFX`/`SBFIZ`/`BFI`, `SXTW`/`UXTB`, `CSET`/`CINC`,
//! `MUL`/`SMULL`, `ROR`). Both print the whole instruction.

use yaxpeax_arm::armv8::a64::{Opcode, Operand, ShiftStyle};

use super::operands::{cat, cond_arg, push_gpr, sysreg_name, COND_NAMES};
use super::syntax::Line;
use crate::push_dec;

/// HINT #0..#5 by name.
pub const HINT_NAMES: [&str; 6] = ["NOOP", "YIELD", "WFE", "WFI", "SEV", "SEVL"];

#[inline]
fn is_zr(o: &Operand) -> bool {
    matches!(o, Operand::Register(_, 31))
}

/// Step 1: instructions with one fixed spelling, printed whole. False
/// (nothing written) for the others.
#[inline]
pub(super) fn fixed_form(l: &Line, out: &mut String) -> bool {
    let (ins, word) = (l.ins, l.word);
    match ins.opcode {
        Opcode::BL => cat(out, &["CALL ", l.t(0)]),
        Opcode::BLR | Opcode::BR => {
            let r = l.t(0);
            let r = if r == "ZR" { "R31" } else { r };
            let base = if ins.opcode == Opcode::BLR {
                "CALL ("
            } else {
                "JMP ("
            };
            cat(out, &[base, r, ")"]);
        }
        Opcode::RET => {
            if matches!(l.ops.first(), Some(Operand::Register(_, 30)) | None) {
                out.push_str("RET");
            } else {
                cat(out, &["RET ", l.t(0)]);
            }
        }
        Opcode::B => cat(out, &["JMP ", l.t(0)]),
        Opcode::Bcc(c) => cat(out, &["B", COND_NAMES[(c & 15) as usize], " ", l.t(0)]),
        Opcode::HINT if word & 0xffff_f01f == 0xd503_201f && (word >> 5 & 0x7f) < 6 => {
            out.push_str(HINT_NAMES[(word >> 5 & 0x7f) as usize]);
        }
        Opcode::MSR => {
            let Operand::SystemReg(r) = ins.operands[0] else {
                return false;
            };
            // Rt from the word: the decoder's operand for XZR is not a
            // register.
            out.push_str("MSR ");
            push_gpr(out, (word & 31) as u16, false);
            out.push_str(", ");
            out.push_str(&sysreg_name(r));
        }
        Opcode::ORR
            if matches!(
                (ins.operands[0], ins.operands[1], ins.operands[2]),
                (Operand::SIMDRegisterElements(..), a, b) if a == b
            ) =>
        {
            cat(out, &["VMOV ", l.t(1), ", ", l.t(0)]);
        }
        // SYS #3, C7, C4, #1, Xt.
        Opcode::SYS(_) if word & 0xffff_ffe0 == 0xd50b_7420 => {
            out.push_str("DC ZVA, ");
            push_gpr(out, (word & 31) as u16, false);
        }
        Opcode::DMB(v) | Opcode::DSB(v) => {
            let name = if matches!(ins.opcode, Opcode::DMB(_)) {
                "DMB $"
            } else {
                "DSB $"
            };
            out.push_str(name);
            push_dec(out, v as i64);
        }
        Opcode::ISB => out.push_str("ISB $15"),
        _ => return false,
    }
    true
}

/// Step 2: the preferred alias, printed whole. False (nothing written)
/// when the instruction has none.
#[inline]
pub(super) fn preferred_alias(l: &Line, out: &mut String) -> bool {
    let (ops, n, opn, word) = (l.ops, l.n, l.ins.opcode, l.word);
    let (w, mov) = (l.w(), l.mov());
    match opn {
        Opcode::ORR if n == 3 && is_zr(&ops[1]) => {
            let is_mov = match ops[2] {
                Operand::RegShift(ShiftStyle::LSL, 0, _, _) => true,
                Operand::Imm64(_) | Operand::Immediate(_) => !move_wide_preferred(word),
                _ => false,
            };
            if !is_mov {
                return false;
            }
            cat(out, &[mov, " ", l.t(2), ", ", l.t(0)]);
        }
        Opcode::ADD
            if n == 3
                && matches!(ops[2], Operand::Immediate(0))
                && (matches!(ops[0], Operand::RegisterOrSP(_, 31))
                    || matches!(ops[1], Operand::RegisterOrSP(_, 31)))
                && (word >> 22) & 3 == 0 =>
        {
            cat(out, &[mov, " ", l.t(1), ", ", l.t(0)]);
        }
        Opcode::MOVZ | Opcode::MOVN => return move_wide(l, out),
        Opcode::SUBS | Opcode::ADDS | Opcode::ANDS if n == 3 && is_zr(&ops[0]) => {
            let base = match opn {
                Opcode::SUBS => "CMP",
                Opcode::ADDS => "CMN",
                _ => "TST",
            };
            let w1 = if l.args()[1].w { "W" } else { "" };
            cat(out, &[base, w1, " ", l.t(2), ", ", l.t(1)]);
        }
        Opcode::SUB | Opcode::SUBS
            if n == 3
                && matches!(ops[1], Operand::Register(_, 31))
                && matches!(ops[2], Operand::RegShift(..)) =>
        {
            let base = if opn == Opcode::SUB { "NEG" } else { "NEGS" };
            cat(out, &[base, w, " ", l.t(2), ", ", l.t(0)]);
        }
        Opcode::SBC | Opcode::SBCS if n == 3 && is_zr(&ops[1]) => {
            let base = if opn == Opcode::SBC { "NGC" } else { "NGCS" };
            cat(out, &[base, w, " ", l.t(2), ", ", l.t(0)]);
        }
        Opcode::ORN if n == 3 && is_zr(&ops[1]) => {
            cat(out, &["MVN", w, " ", l.t(2), ", ", l.t(0)]);
        }
        Opcode::UBFM | Opcode::SBFM | Opcode::BFM => return bitfield(l, out),
        Opcode::CSINC | Opcode::CSINV | Opcode::CSNEG if n == 4 => return cond_select(l, out),
        Opcode::MADD
        | Opcode::MSUB
        | Opcode::SMADDL
        | Opcode::UMADDL
        | Opcode::SMSUBL
        | Opcode::UMSUBL
            if n == 4 && is_zr(&ops[3]) =>
        {
            let (b, w) = match opn {
                Opcode::MADD => ("MUL", w),
                Opcode::MSUB => ("MNEG", w),
                Opcode::SMADDL => ("SMULL", ""),
                Opcode::UMADDL => ("UMULL", ""),
                Opcode::SMSUBL => ("SMNEGL", ""),
                _ => ("UMNEGL", ""),
            };
            cat(out, &[b, w, " ", l.t(2), ", ", l.t(1), ", ", l.t(0)]);
        }
        Opcode::EXTR if n == 4 && ops[1] == ops[2] => {
            cat(out, &["ROR", w, " ", l.t(3), ", ", l.t(1), ", ", l.t(0)]);
        }
        _ => return false,
    }
    true
}

/// MOVZ/MOVN as `MOVD $value, Rd` unless the value is one a shifted
/// MOVZ/MOVN of zero would give (Arm ARM: the MOV alias conditions).
fn move_wide(l: &Line, out: &mut String) -> bool {
    let Operand::ImmShift(imm, sh) = l.ops[1] else {
        return false;
    };
    let is_movz = l.ins.opcode == Opcode::MOVZ;
    let alias = if is_movz {
        !(imm == 0 && sh != 0)
    } else {
        !(imm == 0 && sh != 0) && (!l.w0 || imm != 0xffff)
    };
    if !alias {
        return false;
    }
    let mut v = (imm as u64) << sh;
    if !is_movz {
        v = !v;
    }
    let v: i64 = if l.w0 { v as u32 as i64 } else { v as i64 };
    cat(out, &[l.mov(), " $"]);
    push_dec(out, v);
    cat(out, &[", ", l.t(0)]);
    true
}

/// UBFM/SBFM/BFM by their aliases: `B $a, s, $b, d` (bitfield insert or
/// extract), `B $a, s, d` (shift) or `B s, d` (extend).
fn bitfield(l: &Line, out: &mut String) -> bool {
    let (Operand::Immediate(immr), Operand::Immediate(imms)) = (l.ops[2], l.ops[3]) else {
        return false;
    };
    let opn = l.ins.opcode;
    let w = l.w();
    let width = if l.w0 { 32 } else { 64 };
    let (d, s) = (l.t(0), l.t(1));
    let signed = opn == Opcode::SBFM;
    let mut field = |b: &str, a: u32, bits: Option<u32>| {
        cat(out, &[b, w, " $"]);
        push_dec(out, a as i64);
        cat(out, &[", ", s, ", "]);
        if let Some(bits) = bits {
            out.push('$');
            push_dec(out, bits as i64);
            out.push_str(", ");
        }
        out.push_str(d);
    };
    if opn == Opcode::BFM {
        if imms < immr {
            field("BFI", (width - immr) % width, Some(imms + 1));
        } else {
            field("BFXIL", immr, Some(imms - immr + 1));
        }
    } else if imms == width - 1 {
        field(if signed { "ASR" } else { "LSR" }, immr, None);
    } else if !signed && imms + 1 == immr {
        field("LSL", width - 1 - imms, None);
    } else if immr == 0
        && if signed {
            matches!(imms, 7 | 15 | 31)
        } else {
            l.w0 && matches!(imms, 7 | 15)
        }
    {
        let b = match (signed, imms) {
            (true, 7) => "SXTB",
            (true, 15) => "SXTH",
            (true, _) => "SXTW",
            (false, 7) => "UXTB",
            _ => "UXTH",
        };
        cat(out, &[b, w, " ", s, ", ", d]);
    } else if imms < immr {
        let b = if signed { "SBFIZ" } else { "UBFIZ" };
        field(b, (width - immr) % width, Some(imms + 1));
    } else {
        let b = if signed { "SBFX" } else { "UBFX" };
        field(b, immr, Some(imms - immr + 1));
    }
    true
}

/// CSINC/CSINV/CSNEG with equal sources as CSET/CSETM (from ZR) or
/// CINC/CINV/CNEG, with the inverted condition.
fn cond_select(l: &Line, out: &mut String) -> bool {
    let (ops, opn, w) = (l.ops, l.ins.opcode, l.w());
    let Operand::ConditionCode(c) = ops[3] else {
        return false;
    };
    let same = ops[1] == ops[2];
    let inv = cond_arg(c ^ 1);
    if c & 14 == 14 || !same {
        return false;
    }
    if is_zr(&ops[1]) && opn != Opcode::CSNEG {
        let b = if opn == Opcode::CSINC {
            "CSET"
        } else {
            "CSETM"
        };
        cat(out, &[b, w, " ", inv, ", ", l.t(0)]);
        return true;
    }
    if !is_zr(&ops[1]) || opn == Opcode::CSNEG {
        let b = match opn {
            Opcode::CSINC => "CINC",
            Opcode::CSINV => "CINV",
            _ => "CNEG",
        };
        cat(out, &[b, w, " ", inv, ", ", l.t(1), ", ", l.t(0)]);
        return true;
    }
    false
}

/// Arm ARM `MoveWidePreferred` for a logical-immediate word: the value is
/// one MOVZ or MOVN, so `ORR #imm, ZR` is not shown as MOV.
fn move_wide_preferred(word: u32) -> bool {
    let sf = word >> 31 & 1;
    let n = word >> 22 & 1;
    let immr = (word >> 16 & 63) as i32;
    let imms = (word >> 10 & 63) as i32;
    let width = if sf == 1 { 64 } else { 32 };
    if sf == 1 && n != 1 {
        return false;
    }
    if sf == 0 && (n != 0 || imms & 0x20 != 0) {
        return false;
    }
    if imms < 16 {
        return (-immr).rem_euclid(16) <= 15 - imms;
    }
    if imms >= width - 15 {
        return immr % 16 <= imms - (width - 15);
    }
    false
}

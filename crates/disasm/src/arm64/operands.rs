//! Operand spelling: registers (`R0..R30`, `ZR`, `RSP`, `F<n>`, `V<n>`
//! with arrangements and lanes), shifts and extensions, immediates,
//! memory operands, conditions, prefetch operations and system registers,
//! as `arm64asm.GoSyntax` writes them.
//!
//! Operands are written one after another into one reused buffer; each
//! [`Arg`] is a range of it, so the Go-syntax printer ([`super::syntax`])
//! can reorder them without allocating.

use yaxpeax_arm::armv8::a64::{Operand, SIMDSizeCode, ShiftStyle, SizeCode};

use crate::push_dec;
use crate::x86::Lookup;

/// Condition names as `B.cond` prints them (Go's `BCS`, `BCC`).
pub const COND_NAMES: [&str; 16] = [
    "EQ", "NE", "CS", "CC", "MI", "PL", "VS", "VC", "HI", "LS", "GE", "LT", "GT", "LE", "AL", "NV",
];

/// Prefetch operations `P<type>L<target><policy>` (x/arch `PrefetchOp`).
const PREFETCH_TYPES: [&str; 3] = ["LD", "LI", "ST"];
const PREFETCH_POLICIES: [&str; 2] = ["KEEP", "STRM"];

/// An operand: its text is `buf[s..e]` of the printer's buffer.
#[derive(Clone, Copy, Default)]
pub(super) struct Arg {
    pub s: usize,
    pub e: usize,
    /// 32-bit general register.
    pub w: bool,
}

/// Replace an operand's text: the new text goes at the end of `buf`.
#[inline]
pub(super) fn set_text(buf: &mut String, a: &mut Arg, text: &str) {
    a.s = buf.len();
    buf.push_str(text);
    a.e = buf.len();
}

/// Append every part to `out`.
#[inline]
pub(super) fn cat(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

/// `PLDL1KEEP` etc. for a prefetch operation, else `$n`.
fn prefetch_name(v: u16) -> String {
    let (t, target, policy) = (v >> 3, (v >> 1) & 3, v & 1);
    if t <= 2 && target <= 2 {
        format!(
            "P{}L{}{}",
            PREFETCH_TYPES[t as usize],
            target + 1,
            PREFETCH_POLICIES[policy as usize]
        )
    } else {
        format!("${v}")
    }
}

/// `S3_3_C4_C2_0` for a system register encoding.
pub(super) fn sysreg_name(r: u16) -> String {
    format!(
        "S{}_{}_C{}_C{}_{}",
        2 + (r >> 14 & 1),
        r >> 11 & 7,
        r >> 7 & 15,
        r >> 3 & 15,
        r & 7
    )
}

/// Go's name for a condition used as an operand (`HS`, `LO`).
#[inline]
pub(super) fn cond_arg(c: u8) -> &'static str {
    match c & 15 {
        2 => "HS",
        3 => "LO",
        n => COND_NAMES[n as usize],
    }
}

/// `R<n>`; register 31 is `RSP` where `sp`, else `ZR`.
#[inline]
pub(super) fn push_gpr(b: &mut String, n: u16, sp: bool) {
    match (n, sp) {
        (31, true) => b.push_str("RSP"),
        (31, false) => b.push_str("ZR"),
        (n, _) => {
            b.push('R');
            push_dec(b, n as i64);
        }
    }
}

fn size_name(e: SIMDSizeCode) -> &'static str {
    match e {
        SIMDSizeCode::B => "B",
        SIMDSizeCode::H => "H",
        SIMDSizeCode::S => "S",
        SIMDSizeCode::D => "D",
        SIMDSizeCode::Q => "Q",
    }
}

/// `B16`, `S4`, `D2`...: element size and lane count.
fn push_arrangement(b: &mut String, v: SIMDSizeCode, e: SIMDSizeCode) {
    let esz = match e {
        SIMDSizeCode::B => 8,
        SIMDSizeCode::H => 16,
        SIMDSizeCode::S => 32,
        SIMDSizeCode::D => 64,
        SIMDSizeCode::Q => 128,
    };
    let total = if v == SIMDSizeCode::Q { 128 } else { 64 };
    b.push_str(size_name(e));
    push_dec(b, total / esz);
}

fn style_name(s: ShiftStyle) -> &'static str {
    match s {
        ShiftStyle::LSL => "LSL",
        ShiftStyle::LSR => "LSR",
        ShiftStyle::ASR => "ASR",
        ShiftStyle::ROR => "ROR",
        ShiftStyle::UXTB => "UXTB",
        ShiftStyle::UXTH => "UXTH",
        ShiftStyle::UXTW => "UXTW",
        ShiftStyle::UXTX => "UXTX",
        ShiftStyle::SXTB => "SXTB",
        ShiftStyle::SXTH => "SXTH",
        ShiftStyle::SXTW => "SXTW",
        ShiftStyle::SXTX => "SXTX",
    }
}

/// `R1<<3`, `R1>>3`, `R1->3`, `R1@>3`, `R1.UXTW<<2`: the shift after a register.
fn push_shift(b: &mut String, style: ShiftStyle, amt: u8) {
    let sep = match style {
        ShiftStyle::LSL if amt == 0 => return,
        ShiftStyle::LSL => "<<",
        ShiftStyle::LSR => ">>",
        ShiftStyle::ASR => "->",
        ShiftStyle::ROR => "@>",
        other => {
            b.push('.');
            b.push_str(style_name(other));
            if amt == 0 {
                return;
            }
            "<<"
        }
    };
    b.push_str(sep);
    push_dec(b, amt as i64);
}

/// Write one operand's text to `b`; true if it is a 32-bit general
/// register. `fp_op`: SIMD registers are scalar FP (`F<n>`).
pub(super) fn write_arg(
    op: &Operand,
    pc: u64,
    syms: &dyn Lookup,
    fp_op: bool,
    b: &mut String,
) -> bool {
    match *op {
        Operand::Register(s, n) => {
            push_gpr(b, n, false);
            return s == SizeCode::W;
        }
        Operand::RegisterOrSP(s, n) => {
            push_gpr(b, n, true);
            return s == SizeCode::W;
        }
        Operand::RegisterPair(_, n) => push_gpr(b, n, false),
        Operand::RegShift(style, amt, s, r) => {
            push_gpr(b, r, false);
            push_shift(b, style, amt);
            return s == SizeCode::W;
        }
        Operand::SIMDRegister(..)
        | Operand::SIMDRegisterElements(..)
        | Operand::SIMDRegisterElementsLane(..)
        | Operand::SIMDRegisterElementsMultipleLane(..)
        | Operand::SIMDRegisterGroup(..)
        | Operand::SIMDRegisterGroupLane(..) => write_simd(op, fp_op, b),
        Operand::ConditionCode(c) => b.push_str(cond_arg(c)),
        Operand::PCOffset(off) => {
            let addr = (pc as i64).wrapping_add(off) as u64;
            match syms.lookup(addr) {
                Some((s, base)) if base == addr => cat(b, &[s, "(SB)"]),
                _ => {
                    push_dec(b, off / 4);
                    b.push_str("(PC)");
                }
            }
        }
        Operand::RegRegOffset(..)
        | Operand::RegPreIndex(..)
        | Operand::RegPostIndex(..)
        | Operand::RegPostIndexReg(..) => write_mem(op, b),
        Operand::PrefetchOp(v) => b.push_str(&prefetch_name(v)),
        _ => write_imm(op, b),
    }
    false
}

/// A SIMD&FP register: `F<n>` (scalar FP), `V<n>`, `V<n>.S4`,
/// `V<n>.S[1]`, `[V<n>.B16, V<n+1>.B16]`.
fn write_simd(op: &Operand, fp_op: bool, b: &mut String) {
    match *op {
        Operand::SIMDRegister(_, n) => {
            b.push(if fp_op { 'F' } else { 'V' });
            push_dec(b, n as i64);
        }
        Operand::SIMDRegisterElements(v, n, e) => {
            b.push('V');
            push_dec(b, n as i64);
            b.push('.');
            push_arrangement(b, v, e);
        }
        Operand::SIMDRegisterElementsLane(_, n, e, lane)
        | Operand::SIMDRegisterElementsMultipleLane(_, n, e, lane, _) => {
            b.push('V');
            push_dec(b, n as i64);
            b.push('.');
            b.push_str(size_name(e));
            b.push('[');
            push_dec(b, lane as i64);
            b.push(']');
        }
        Operand::SIMDRegisterGroup(v, n, e, cnt) => {
            b.push('[');
            for i in 0..cnt as u16 {
                if i > 0 {
                    b.push_str(", ");
                }
                b.push('V');
                push_dec(b, ((n + i) & 31) as i64);
                b.push('.');
                push_arrangement(b, v, e);
            }
            b.push(']');
        }
        Operand::SIMDRegisterGroupLane(n, e, cnt, lane) => {
            if cnt > 1 {
                b.push('[');
            }
            for i in 0..(cnt as u16).max(1) {
                if i > 0 {
                    b.push_str(", ");
                }
                b.push('V');
                push_dec(b, ((n + i) & 31) as i64);
                b.push('.');
                b.push_str(size_name(e));
            }
            if cnt > 1 {
                b.push(']');
            }
            b.push('[');
            push_dec(b, lane as i64);
            b.push(']');
        }
        _ => b.push('?'),
    }
}

/// A memory operand: `(Rn)(Rm.UXTW<<2)`, `off(Rn)`, `(Rn)(Rm)`; the
/// pre/post-index marks (`.W`, `.P`) go on the mnemonic.
fn write_mem(op: &Operand, b: &mut String) {
    match *op {
        Operand::RegRegOffset(base, idx, _, style, amt) => {
            b.push('(');
            push_gpr(b, base, true);
            b.push_str(")(");
            push_gpr(b, idx, false);
            if style != ShiftStyle::LSL {
                b.push('.');
                b.push_str(style_name(style));
            }
            if amt != 0 {
                b.push_str("<<");
                push_dec(b, amt as i64);
            }
            b.push(')');
        }
        Operand::RegPreIndex(base, off, _) | Operand::RegPostIndex(base, off) => {
            if off != 0 {
                push_dec(b, off as i64);
            }
            b.push('(');
            push_gpr(b, base, true);
            b.push(')');
        }
        Operand::RegPostIndexReg(base, r) => {
            b.push('(');
            push_gpr(b, base, true);
            b.push_str(")(R");
            push_dec(b, r as i64);
            b.push(')');
        }
        _ => b.push('?'),
    }
}

/// An immediate: `$n`, `$(n<<s)`, `$1.5`; system and control registers
/// by number (`$n`).
fn write_imm(op: &Operand, b: &mut String) {
    match *op {
        Operand::Immediate(v) => {
            b.push('$');
            push_dec(b, v as i64);
        }
        Operand::Imm64(v) => {
            b.push('$');
            push_dec(b, v as i64);
        }
        Operand::Imm16(v) => {
            b.push('$');
            push_dec(b, v as i64);
        }
        Operand::ImmediateDouble(d) => {
            // Rare (FMOV $imm): the format machinery is fine here.
            let s = format!("{d:.6}");
            b.push('$');
            b.push_str(s.trim_end_matches('0'));
        }
        Operand::ImmShift(v, s) => {
            if s == 0 {
                b.push('$');
                push_dec(b, v as i64);
            } else {
                b.push_str("$(");
                push_dec(b, v as i64);
                b.push_str("<<");
                push_dec(b, s as i64);
                b.push(')');
            }
        }
        Operand::ImmShiftMSL(v, s) => {
            b.push_str("$(");
            push_dec(b, v as i64);
            b.push_str("<<");
            push_dec(b, s as i64);
            b.push(')');
        }
        Operand::SystemReg(v) | Operand::ControlReg(v) => {
            b.push('$');
            push_dec(b, v as i64);
        }
        _ => b.push('?'),
    }
}

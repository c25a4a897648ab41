//! Go syntax: the mnemonic and the operand order, as golang.org/x/arch's
//! `arm64asm.GoSyntax` chooses them, in four steps:
//!
//! 1. branches, hints, barriers and system instructions, which have one
//!    fixed spelling ([`super::alias::fixed_form`]);
//! 2. the Arm ARM's preferred aliases, which replace the architectural
//!    instruction (`MOV`, `CMP`, `TST`, `NEG`, `LSL`, `UBFX`, `CSET`,
//!    `MUL`, ...) ([`super::alias::preferred_alias`]);
//! 3. Go's spelling per instruction class: loads and stores become
//!    `MOVD/MOVW/MOVWU/MOVH/MOVHU/MOVB/MOVBU/FMOV*` ([`load_store`]),
//!    forms printed in an order of their own ([`explicit_order`]),
//!    operand swaps ([`reorder`]), scalar floating point ([`float_op`]),
//!    and the rest with their `V`/`W` marks ([`vector_or_plain`]);
//! 4. operands last-first, a conditional select's condition first
//!    ([`finish`]).
//!
//! Spellings are data where they are a choice of name: [`NO_W_SUFFIX`],
//! [`ALIAS_OP`], [`super::alias::HINT_NAMES`], and the small name tables of each
//! step.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::Discriminant;

use yaxpeax_arm::armv8::a64::{Instruction, Opcode, Operand, SIMDSizeCode, SizeCode};

use super::alias::{fixed_form, preferred_alias};
use super::operands::{cat, push_gpr, set_text, write_arg, Arg};
use super::Arm64;
use crate::x86::Lookup;
use crate::{push_dec, Dialect};

/// Opcodes that never take the `W` suffix (x/arch `noSuffixOpSet`).
pub const NO_W_SUFFIX: &[&str] = &[
    "AESD",
    "AESE",
    "AESIMC",
    "AESMC",
    "CRC32B",
    "CRC32CB",
    "CRC32CH",
    "CRC32CW",
    "CRC32CX",
    "CRC32H",
    "CRC32W",
    "CRC32X",
    "LDARB",
    "LDARH",
    "LDAXRB",
    "LDAXRH",
    "LDTRH",
    "LDXRB",
    "LDXRH",
    "SHA1C",
    "SHA1H",
    "SHA1M",
    "SHA1P",
    "SHA1SU0",
    "SHA1SU1",
    "SHA256H",
    "SHA256H2",
    "SHA256SU0",
    "SHA256SU1",
];

/// Aliases that are a plain rename of the architectural opcode.
pub const ALIAS_OP: &[(&str, &str)] = &[
    ("LSLV", "LSL"),
    ("LSRV", "LSR"),
    ("ASRV", "ASR"),
    ("RORV", "ROR"),
    ("INS", "MOV"),
];

/// What the printer reuses between instructions, so that printing one
/// allocates nothing: the operands' text, written one after another into
/// `args` (each [`Arg`] is a range of it), the mnemonic being built in
/// `op`, and each opcode's name and flags, made once per opcode.
#[derive(Default)]
pub(super) struct Scratch {
    args: String,
    op: String,
    names: HashMap<Discriminant<Opcode>, OpInfo, BuildHasherDefault<DiscHasher>>,
}

/// An opcode's name (the variant's name, as yaxpeax-arm's `Debug` spells
/// it) and what the rules ask of it.
struct OpInfo {
    name: Box<str>,
    /// [`ALIAS_OP`]'s new name for it.
    alias: Option<&'static str>,
    /// The name after [`ALIAS_OP`] is in [`NO_W_SUFFIX`].
    no_w: bool,
    /// Scalar FP by name (`F...`, `...CVTF`): SIMD registers print as `F<n>`.
    fp: bool,
}

impl OpInfo {
    fn new(name: String) -> OpInfo {
        let alias = ALIAS_OP
            .iter()
            .find(|(from, _)| *from == name)
            .map(|&(_, to)| to);
        OpInfo {
            no_w: NO_W_SUFFIX.contains(&alias.unwrap_or(&name)),
            fp: name.starts_with('F') || name.ends_with("CVTF"),
            alias,
            name: name.into(),
        }
    }
}

/// Hasher for an enum discriminant (a small integer): multiply and rotate.
#[derive(Default)]
struct DiscHasher(u64);

impl Hasher for DiscHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// Put the opcode's name in `op`; its flags: ([`ALIAS_OP`] name, no `W`
/// suffix, scalar FP by name).
#[inline]
fn op_name(
    names: &mut HashMap<Discriminant<Opcode>, OpInfo, BuildHasherDefault<DiscHasher>>,
    opcode: &Opcode,
    op: &mut String,
) -> (Option<&'static str>, bool, bool) {
    let key = std::mem::discriminant(opcode);
    match names.get(&key) {
        Some(i) => {
            op.push_str(&i.name);
            (i.alias, i.no_w, i.fp)
        }
        None => {
            let info = OpInfo::new(format!("{opcode:?}"));
            op.push_str(&info.name);
            let flags = (info.alias, info.no_w, info.fp);
            // Variants with data (`SWP(2)`) print it: name those afresh.
            if !info.name.contains('(') {
                names.insert(key, info);
            }
            flags
        }
    }
}

/// The instruction being printed, with its operands' texts.
pub(super) struct Line<'a> {
    pub ins: &'a Instruction,
    /// The operands present (up to the first `Nothing`).
    pub ops: &'a [Operand],
    pub word: u32,
    buf: &'a mut String,
    argv: [Arg; 4],
    /// `ops.len()`: the operands printed.
    pub n: usize,
    /// The first operand is a 32-bit general register.
    pub w0: bool,
}

impl Line<'_> {
    #[inline]
    pub(super) fn args(&self) -> &[Arg] {
        &self.argv[..self.n]
    }

    #[inline]
    fn args_mut(&mut self) -> &mut [Arg] {
        &mut self.argv[..self.n]
    }

    /// Operand `i`'s text.
    #[inline]
    pub(super) fn t(&self, i: usize) -> &str {
        let a = self.args()[i];
        &self.buf[a.s..a.e]
    }

    /// Replace operand `i`'s text.
    #[inline]
    fn set(&mut self, i: usize, text: &str) {
        let n = self.n;
        set_text(self.buf, &mut self.argv[..n][i], text);
    }

    #[inline]
    fn swap(&mut self, i: usize, j: usize) {
        self.args_mut().swap(i, j);
    }

    /// The `W` suffix of a 32-bit form.
    #[inline]
    pub(super) fn w(&self) -> &'static str {
        if self.w0 {
            "W"
        } else {
            ""
        }
    }

    /// Go's register move for the operand size.
    #[inline]
    pub(super) fn mov(&self) -> &'static str {
        if self.w0 {
            "MOVW"
        } else {
            "MOVD"
        }
    }
}

impl Arm64 {
    pub(super) fn go_syntax(
        &self,
        ins: &Instruction,
        word: u32,
        pc: u64,
        syms: &dyn Lookup,
        out: &mut String,
    ) {
        let mut guard = self.scratch.borrow_mut();
        let Scratch {
            args: buf,
            op,
            names,
        } = &mut *guard;
        buf.clear();
        op.clear();
        let n = ins
            .operands
            .iter()
            .position(|o| matches!(o, Operand::Nothing))
            .unwrap_or(ins.operands.len());
        let ops = &ins.operands[..n];
        // B.cond, DMB and DSB always have a fixed form (step 1), which
        // needs no name: their variants carry data, so a name would be
        // made afresh for each one.
        let named = !matches!(ins.opcode, Opcode::Bcc(_) | Opcode::DMB(_) | Opcode::DSB(_));
        let (alias, no_w, fp_name) = if named {
            op_name(names, &ins.opcode, op)
        } else {
            (None, false, false)
        };
        let fp_op = fp_name
            || matches!(
                ins.opcode,
                Opcode::LDP | Opcode::STP | Opcode::LDR | Opcode::STR | Opcode::LDUR | Opcode::STUR
            );
        let mut l = Line {
            ins,
            ops,
            word,
            buf,
            argv: [Arg::default(); 4],
            n,
            w0: false,
        };
        for (a, o) in l.argv.iter_mut().zip(ops) {
            let s = l.buf.len();
            let w = write_arg(o, pc, syms, fp_op, l.buf);
            *a = Arg {
                s,
                e: l.buf.len(),
                w,
            };
        }
        extended_register(&mut l);
        l.w0 = l.args().first().is_some_and(|a| a.w);
        if fixed_form(&l, out) || preferred_alias(&l, out) {
            return;
        }
        if let Some(to) = alias {
            set_op(op, to);
        }
        let suffix = mem_suffix(ins, ops, self.dialect);
        if go_form(&mut l, op, suffix, no_w, out) {
            return;
        }
        finish(&mut l, op, out);
    }
}

/// ADD/SUB (extended register) with UXTX (64-bit) or UXTW (32-bit):
/// x/arch's decoder shows the extension unless Rn, or Rd of a
/// non-flag-setting form, is SP (then it is LSL, omitted when 0);
/// yaxpeax-arm always gives LSL.
#[inline]
fn extended_register(l: &mut Line) {
    let word = l.word;
    if word & 0x1fe0_0000 != 0x0b20_0000 || l.n != 3 {
        return;
    }
    let option = word >> 13 & 7;
    let (sf, s) = (word >> 31 & 1, word >> 29 & 1);
    let (rn, rd) = (word >> 5 & 31, word & 31);
    let ext = match (option, sf) {
        (3, 1) => Some(".UXTX"),
        (2, 0) => Some(".UXTW"),
        _ => None,
    };
    if let Some(ext) = ext.filter(|_| !(rn == 31 || (s == 0 && rd == 31))) {
        let Line { buf, argv, .. } = l;
        argv[2].s = buf.len();
        push_gpr(buf, (word >> 16 & 31) as u16, false);
        buf.push_str(ext);
        let imm3 = word >> 10 & 7;
        if imm3 != 0 {
            buf.push_str("<<");
            push_dec(buf, imm3 as i64);
        }
        argv[2].e = buf.len();
    }
}

/// The addressing-mode suffix of a load or store: `.W` (pre-index) or
/// `.P` (post-index). Before go1.27 only the classic loads and stores
/// show it.
#[inline]
fn mem_suffix(ins: &Instruction, ops: &[Operand], dialect: Dialect) -> &'static str {
    let mem_suffix = ops.iter().find_map(|o| match o {
        Operand::RegPreIndex(_, _, true) => Some(".W"),
        Operand::RegPostIndex(..) | Operand::RegPostIndexReg(..) => Some(".P"),
        _ => None,
    });
    let classic_mem = matches!(
        ins.opcode,
        Opcode::LDR
            | Opcode::LDRB
            | Opcode::LDRH
            | Opcode::LDRSB
            | Opcode::LDRSH
            | Opcode::LDRSW
            | Opcode::STR
            | Opcode::STRB
            | Opcode::STRH
            | Opcode::STUR
            | Opcode::STURB
            | Opcode::STURH
            | Opcode::LD1
            | Opcode::ST1
            | Opcode::LDP
            | Opcode::STP
    );
    if classic_mem || dialect.arm64_wb_all {
        mem_suffix.unwrap_or("")
    } else {
        ""
    }
}

/// A register operand's class: `W`/`X` general, `b h s d q` SIMD&FP
/// scalar, `-` anything else.
#[inline]
fn reg_class(o: &Operand) -> char {
    match o {
        Operand::Register(SizeCode::W, _) | Operand::RegisterOrSP(SizeCode::W, _) => 'W',
        Operand::Register(..) | Operand::RegisterOrSP(..) => 'X',
        Operand::SIMDRegister(SIMDSizeCode::B, _) => 'b',
        Operand::SIMDRegister(SIMDSizeCode::H, _) => 'h',
        Operand::SIMDRegister(SIMDSizeCode::S, _) => 's',
        Operand::SIMDRegister(SIMDSizeCode::D, _) => 'd',
        Operand::SIMDRegister(SIMDSizeCode::Q, _) => 'q',
        _ => '-',
    }
}

/// Go's load/store of a SIMD&FP register, by [`reg_class`].
fn fmov_name(c: char) -> &'static str {
    match c {
        'b' => "FMOVB",
        'h' => "FMOVH",
        's' => "FMOVS",
        'd' => "FMOVD",
        _ => "FMOVQ",
    }
}

fn set_op(op: &mut String, name: &str) {
    op.clear();
    op.push_str(name);
}

fn cat_op(op: &mut String, parts: &[&str]) {
    op.clear();
    cat(op, parts);
}

/// Step 3: Go's spelling of the mnemonic in `op`, and the operand order.
/// True when the instruction was printed whole.
#[inline]
fn go_form(l: &mut Line, op: &mut String, suffix: &str, no_w: bool, out: &mut String) -> bool {
    match l.ins.opcode {
        Opcode::LDR
        | Opcode::LDUR
        | Opcode::STR
        | Opcode::STUR
        | Opcode::LDRB
        | Opcode::LDRH
        | Opcode::LDRSW
        | Opcode::LDRSB
        | Opcode::LDRSH
        | Opcode::STRB
        | Opcode::STURB
        | Opcode::STRH
        | Opcode::STURH => load_store(l, op, suffix),
        Opcode::TBZ
        | Opcode::TBNZ
        | Opcode::CBZ
        | Opcode::CBNZ
        | Opcode::LDAXP
        | Opcode::LDXP
        | Opcode::STP
        | Opcode::LDP
        | Opcode::STXP
        | Opcode::STLXP => {
            explicit_order(l, op, suffix, out);
            return true;
        }
        Opcode::MADD
        | Opcode::MSUB
        | Opcode::SMADDL
        | Opcode::SMSUBL
        | Opcode::UMADDL
        | Opcode::UMSUBL
        | Opcode::STLR
        | Opcode::STLRB
        | Opcode::STLRH
        | Opcode::STLXR
        | Opcode::STXR
        | Opcode::STLXRB
        | Opcode::STLXRH
        | Opcode::STXRB
        | Opcode::STXRH => reorder(l, op),
        Opcode::FCMP
        | Opcode::FCMPE
        | Opcode::FCCMP
        | Opcode::FCCMPE
        | Opcode::FADD
        | Opcode::FSUB
        | Opcode::FMUL
        | Opcode::FNMUL
        | Opcode::FDIV
        | Opcode::FMAX
        | Opcode::FMIN
        | Opcode::FMAXNM
        | Opcode::FMINNM
        | Opcode::FCSEL
        | Opcode::FMADD
        | Opcode::FMSUB
        | Opcode::FNMADD
        | Opcode::FNMSUB
        | Opcode::FCVT
        | Opcode::FABS
        | Opcode::FNEG
        | Opcode::FSQRT
        | Opcode::FRINTN
        | Opcode::FRINTP
        | Opcode::FRINTM
        | Opcode::FRINTZ
        | Opcode::FRINTA
        | Opcode::FRINTX
        | Opcode::FRINTI
        | Opcode::FCVTZS
        | Opcode::FCVTZU
        | Opcode::SCVTF
        | Opcode::UCVTF
        | Opcode::FMOV => float_op(l, op),
        _ => vector_or_plain(l, op, suffix, no_w),
    }
    false
}

/// Plain loads and stores of a byte, halfword or sign-extended word:
/// Go's mnemonic for a 64-bit and a 32-bit destination, and whether the
/// operands swap (a store: value first).
fn narrow_load_store(opn: Opcode) -> Option<(&'static str, &'static str, bool)> {
    Some(match opn {
        Opcode::LDRB => ("MOVBU", "MOVBU", false),
        Opcode::LDRH => ("MOVHU", "MOVHU", false),
        Opcode::LDRSW => ("MOVW", "MOVW", false),
        Opcode::LDRSB => ("MOVB", "MOVBW", false),
        Opcode::LDRSH => ("MOVH", "MOVHW", false),
        Opcode::STRB | Opcode::STURB => ("MOVB", "MOVB", true),
        Opcode::STRH | Opcode::STURH => ("MOVH", "MOVH", true),
        _ => return None,
    })
}

/// Loads and stores: `MOVD/MOVW/MOVWU/FMOV*` by the register, the
/// narrow forms by [`narrow_load_store`]; stores put the value first.
fn load_store(l: &mut Line, op: &mut String, suffix: &str) {
    let opn = l.ins.opcode;
    if let Some((x, w, store)) = narrow_load_store(opn) {
        cat_op(op, &[if l.w0 { w } else { x }, suffix]);
        if store {
            l.swap(0, 1);
        }
        return;
    }
    let c = reg_class(&l.ops[0]);
    let name = match c {
        'W' if matches!(opn, Opcode::LDR | Opcode::LDUR) => "MOVWU",
        'W' => "MOVW",
        'X' | '-' => "MOVD",
        _ => {
            // V<n> as F<n>: the operand again, at the end of buf.
            let Line { buf, argv, .. } = l;
            let a = argv[0];
            argv[0].s = buf.len();
            for i in a.s..a.e {
                let ch = buf.as_bytes()[i] as char;
                buf.push(if ch == 'V' { 'F' } else { ch });
            }
            argv[0].e = buf.len();
            fmov_name(c)
        }
    };
    set_op(op, name);
    op.push_str(suffix);
    if matches!(opn, Opcode::STR | Opcode::STUR) {
        l.swap(0, 1);
    }
}

/// Forms printed in an order of their own: test/compare-and-branch
/// (`TBZ $bit, R, target`), register pairs (`STP (R1, R2), off(RSP)`),
/// exclusive pairs.
fn explicit_order(l: &Line, op: &mut String, suffix: &str, out: &mut String) {
    let w = l.w();
    match l.ins.opcode {
        Opcode::TBZ | Opcode::TBNZ => {
            cat(out, &[op, " ", l.t(1), ", ", l.t(0), ", ", l.t(2)]);
        }
        Opcode::CBZ | Opcode::CBNZ => cat(out, &[op, w, " ", l.t(0), ", ", l.t(1)]),
        Opcode::LDAXP | Opcode::LDXP => {
            cat(out, &[op, w, " ", l.t(2), ", (", l.t(0), ", ", l.t(1), ")"]);
        }
        Opcode::STP | Opcode::LDP => {
            let c = reg_class(&l.ops[0]);
            match c {
                'W' => op.push('W'),
                's' | 'd' | 'q' => {
                    op.insert(0, 'F');
                    op.push(c.to_ascii_uppercase());
                }
                _ => {}
            }
            op.push_str(suffix);
            if l.ins.opcode == Opcode::STP {
                cat(out, &[op, " (", l.t(0), ", ", l.t(1), "), ", l.t(2)]);
            } else {
                cat(out, &[op, " ", l.t(2), ", (", l.t(0), ", ", l.t(1), ")"]);
            }
        }
        // STXP, STLXP: status register last.
        _ => {
            if l.args().get(1).is_some_and(|a| a.w) {
                op.push('W');
            }
            cat(
                out,
                &[op, " (", l.t(1), ", ", l.t(2), "), ", l.t(3), ", ", l.t(0)],
            );
        }
    }
}

/// Multiply-accumulate (accumulator first) and store-release/exclusive
/// forms (value before address, status last): operand swaps and the `W`
/// mark.
fn reorder(l: &mut Line, op: &mut String) {
    let w = l.w();
    match l.ins.opcode {
        Opcode::MADD
        | Opcode::MSUB
        | Opcode::SMADDL
        | Opcode::SMSUBL
        | Opcode::UMADDL
        | Opcode::UMSUBL => {
            op.push_str(w);
            l.swap(2, 3);
        }
        Opcode::STLR => {
            op.push_str(w);
            l.swap(0, 1);
        }
        Opcode::STLRB | Opcode::STLRH => l.swap(0, 1),
        Opcode::STLXR | Opcode::STXR => {
            if l.args().get(1).is_some_and(|a| a.w) {
                op.push('W');
            }
            l.swap(1, 2);
        }
        // STLXRB, STLXRH, STXRB, STXRH.
        _ => l.swap(1, 2),
    }
}

/// Scalar floating point: the precision suffix (`FADDD`, `FCVTSD`,
/// `FCVTZSDW`), compares against `$(0.0)`, accumulator first.
fn float_op(l: &mut Line, op: &mut String) {
    let (ops, opn) = (l.ops, l.ins.opcode);
    match opn {
        Opcode::FCVT => {
            for i in [1, 0] {
                match reg_class(&ops[i]) {
                    'h' => op.push('H'),
                    's' => op.push('S'),
                    'd' => op.push('D'),
                    _ => {}
                }
            }
        }
        Opcode::FABS
        | Opcode::FNEG
        | Opcode::FSQRT
        | Opcode::FRINTN
        | Opcode::FRINTP
        | Opcode::FRINTM
        | Opcode::FRINTZ
        | Opcode::FRINTA
        | Opcode::FRINTX
        | Opcode::FRINTI => match ops.get(1).map(reg_class) {
            Some('s') => op.push('S'),
            Some('d') => op.push('D'),
            _ => {}
        },
        Opcode::FCVTZS | Opcode::FCVTZU | Opcode::SCVTF | Opcode::UCVTF => {
            if !matches!(ops.get(2), Some(Operand::Immediate(_))) {
                for i in [1, 0] {
                    match reg_class(&ops[i]) {
                        's' => op.push('S'),
                        'd' => op.push('D'),
                        'W' => op.push('W'),
                        _ => {}
                    }
                }
            }
        }
        Opcode::FMOV => {
            for o in ops.iter().take(2) {
                match reg_class(o) {
                    's' => {
                        op.push('S');
                        break;
                    }
                    'd' => {
                        op.push('D');
                        break;
                    }
                    _ => {}
                }
            }
        }
        // Two- and three-source arithmetic, compares, FCSEL.
        _ => {
            if matches!(opn, Opcode::FCCMP | Opcode::FCCMPE) {
                l.swap(0, 1);
            }
            if matches!(
                opn,
                Opcode::FCMP | Opcode::FCMPE | Opcode::FCCMP | Opcode::FCCMPE
            ) && matches!(
                ops.get(1),
                Some(Operand::ImmediateDouble(_)) | Some(Operand::Immediate(_))
            ) {
                l.set(1, "$(0.0)");
            }
            if matches!(
                opn,
                Opcode::FMADD | Opcode::FMSUB | Opcode::FNMADD | Opcode::FNMSUB
            ) {
                l.swap(2, 3);
            }
            match reg_class(&ops[0]) {
                's' => op.push('S'),
                'd' => op.push('D'),
                _ => {}
            }
        }
    }
}

/// Everything else: PC-relative addresses as `N(PC)`, vector forms with a
/// `V` prefix, 32-bit forms with a `W` suffix.
fn vector_or_plain(l: &mut Line, op: &mut String, suffix: &str, no_w: bool) {
    match l.ins.opcode {
        Opcode::ADR | Opcode::ADRP => {
            if let Operand::PCOffset(off) = l.ops[1] {
                let n = l.n;
                let Line { buf, argv, .. } = l;
                let a = &mut argv[..n][1];
                a.s = buf.len();
                push_dec(buf, off);
                buf.push_str("(PC)");
                a.e = buf.len();
            }
        }
        Opcode::ST1 => {
            op.insert(0, 'V');
            op.push_str(suffix);
            l.swap(0, 1);
        }
        Opcode::LD1 => {
            op.insert(0, 'V');
            op.push_str(suffix);
        }
        Opcode::UMOV => set_op(op, "VMOV"),
        Opcode::MRS => {}
        _ => {
            if !no_w {
                match l.ops.first() {
                    Some(Operand::SIMDRegisterElements(..))
                    | Some(Operand::SIMDRegisterElementsLane(..))
                    | Some(Operand::SIMDRegisterGroup(..)) => op.insert(0, 'V'),
                    Some(Operand::SIMDRegister(..)) if !op.starts_with('F') => op.insert(0, 'V'),
                    _ => {}
                }
                op.push_str(l.w());
            }
            op.push_str(suffix);
        }
    }
}

/// Step 4: the mnemonic and the operands, last first. Conditional
/// selects put the condition first (`CSEL cond, Rn, Rm, Rd`, `FCSELD
/// cond, Fn, Fm, Fd`, `CCMP cond, Rn, Rm, $nzcv`).
fn finish(l: &mut Line, op: &str, out: &mut String) {
    if l.n == 4 && matches!(l.ops[3], Operand::ConditionCode(_)) {
        if matches!(l.ops[2], Operand::Register(..) | Operand::SIMDRegister(..)) {
            l.swap(1, 2);
        } else {
            l.swap(0, 2);
        }
    }
    out.push_str(op);
    for (i, a) in l.args().iter().rev().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(&l.buf[a.s..a.e]);
    }
}

//! arm64: decode with yaxpeax-arm, print in Go assembler syntax.
//!
//! yaxpeax-arm gives the architectural instruction (ORR, SUBS, UBFM, ...);
//! the printer first picks the preferred alias the way the Arm ARM and
//! golang.org/x/arch's arm64asm do (MOV, CMP, TST, LSL, UBFX, CSET, MUL,
//! ...), then applies `arm64asm.GoSyntax`'s rules:
//!
//! - loads and stores become `MOVD/MOVW/MOVWU/MOVH/MOVHU/MOVB/MOVBU` and
//!   `FMOVS/FMOVD/FMOVQ`, with `.W`/`.P` for pre/post-index;
//! - a `W` suffix for 32-bit forms, `F`/`V` prefixes for scalar FP and
//!   vector forms, operands reversed (destination last);
//! - `R0..R30`, `ZR`, `RSP`; shifts `R1<<3`, `R1>>3`, `R1->3`, `R1@>3`;
//! - branch targets `sym(SB)` when a symbol starts there, else `N(PC)`.
//!
//! One rule is ours, not objdump's: **ADRP pairs name their data.** The
//! linker materialises a data address as `ADRP page, Rn` followed by an
//! instruction that adds the low 12 bits. objdump prints both halves as
//! numbers (`ADRP 1232896(PC), R27` / `MOVD 1592(R27), R1`); we keep the
//! ADRP line as it is and print the completing instruction the way the
//! compiler's `-S` listing writes the pair, with the symbol that covers
//! the address:
//!
//! - a load or store at `lo(Rn)` gets `sym+off(SB)` as its memory operand
//!   (`MOVD runtime.x+8(SB), R1`, `MOVB R2, main.flag(SB)`);
//! - `ADD $lo, Rn, Rd` prints as `MOVD $sym+off(SB), Rd`, the address
//!   itself (Go syntax has no "add a symbol" form).
//!
//! With no symbol covering the address (a stripped binary's data) the
//! instruction prints as objdump prints it.
//!
//! Spellings are data: [`COND_NAMES`], [`NO_W_SUFFIX`], [`ALIAS_OP`].
//!
//! Printing allocates nothing per instruction (most of a whole-binary
//! listing's time is here): operands are written one after another into
//! a reused buffer and then copied into the line in Go's order, opcode
//! names (yaxpeax-arm's variant names) are made once per opcode with their
//! [`ALIAS_OP`]/[`NO_W_SUFFIX`] flags, numbers go through the crate's
//! `push_dec`, and the format machinery is left to rare operands
//! (floating-point immediates, system registers).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::Discriminant;

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{
    InstDecoder, Instruction, Opcode, Operand, SIMDSizeCode, ShiftStyle, SizeCode,
};

use crate::facts::{Call, Facts, ImmOp, MemOp, SpMem, Value};
use crate::x86::Lookup;
use crate::{push_dec, Dialect};

/// Condition names as `B.cond` prints them (Go's `BCS`, `BCC`).
pub const COND_NAMES: [&str; 16] = [
    "EQ", "NE", "CS", "CC", "MI", "PL", "VS", "VC", "HI", "LS", "GE", "LT", "GT", "LE", "AL", "NV",
];

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

/// HINT #0..#5 by name.
pub const HINT_NAMES: [&str; 6] = ["NOOP", "YIELD", "WFE", "WFI", "SEV", "SEVL"];

/// `PLDL1KEEP` etc. for a prefetch operation, else `$n`.
fn prefetch_name(v: u16) -> String {
    let (t, target, policy) = (v >> 3, (v >> 1) & 3, v & 1);
    if t <= 2 && target <= 2 {
        format!(
            "P{}L{}{}",
            ["LD", "LI", "ST"][t as usize],
            target + 1,
            ["KEEP", "STRM"][policy as usize]
        )
    } else {
        format!("${v}")
    }
}

/// `S3_3_C4_C2_0` for a system register encoding.
fn sysreg_name(r: u16) -> String {
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
fn cond_arg(c: u8) -> &'static str {
    match c & 15 {
        2 => "HS",
        3 => "LO",
        n => COND_NAMES[n as usize],
    }
}

pub struct Arm64 {
    dialect: Dialect,
    dec: InstDecoder,
    /// The last instruction decoded, if it was an ADRP: `(pc, register,
    /// page address)`. The instruction right after it that uses the
    /// register completes the address (see the module doc).
    adrp: Cell<Option<(u64, u16, u64)>>,
    /// The last instruction decoded, if it set a register to RSP plus a
    /// constant (`ADD $(1<<12), RSP, R27`): `(pc, register, offset)`. Go's
    /// assembler reaches a frame slot beyond the 12-bit immediate that way,
    /// through REGTMP, and uses it in the very next instruction
    /// (`MOVB ZR, 63(R27)`), whose facts then name the slot `off(RSP)`.
    sp_base: Cell<Option<(u64, u16, i64)>>,
    /// Buffers and names reused from one instruction to the next.
    scratch: RefCell<Scratch>,
    /// An ADRP pair's instruction as printed plainly, and its memory operand.
    pair_scratch: RefCell<(String, String)>,
}

/// What the printer reuses between instructions, so that printing one
/// allocates nothing: the operands' text, written one after another into
/// `args` (each [`Arg`] is a range of it), the mnemonic being built in
/// `op`, and each opcode's name and flags, made once per opcode.
#[derive(Default)]
struct Scratch {
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
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// An operand: its text is `Scratch::args[s..e]`.
#[derive(Clone, Copy, Default)]
struct Arg {
    s: usize,
    e: usize,
    /// 32-bit general register.
    w: bool,
}

fn push_gpr(b: &mut String, n: u16, sp: bool) {
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

fn cat(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

/// Write one operand's text to `b`; true if it is a 32-bit general
/// register. `fp_op`: SIMD registers are scalar FP (`F<n>`).
fn write_arg(op: &Operand, pc: u64, syms: &dyn Lookup, fp_op: bool, b: &mut String) -> bool {
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
        Operand::RegShift(style, amt, s, r) => {
            push_gpr(b, r, false);
            push_shift(b, style, amt);
            return s == SizeCode::W;
        }
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
        Operand::PrefetchOp(v) => b.push_str(&prefetch_name(v)),
        Operand::SystemReg(v) | Operand::ControlReg(v) => {
            b.push('$');
            push_dec(b, v as i64);
        }
        _ => b.push('?'),
    }
    false
}

/// Replace an operand's text: the new text goes at the end of `buf`.
fn set_text(buf: &mut String, a: &mut Arg, text: &str) {
    a.s = buf.len();
    buf.push_str(text);
    a.e = buf.len();
}

impl Arm64 {
    pub fn new(dialect: Dialect) -> Arm64 {
        Arm64 {
            dialect,
            dec: InstDecoder::default(),
            adrp: Cell::new(None),
            sp_base: Cell::new(None),
            scratch: RefCell::new(Scratch::default()),
            pair_scratch: RefCell::new((String::new(), String::new())),
        }
    }

    /// Decode the word at the start of `code` (at `pc`): always 4 bytes.
    pub fn decode(
        &self,
        code: &[u8],
        pc: u64,
        syms: &dyn Lookup,
        go_syntax: bool,
        text: &mut String,
    ) -> (usize, Facts) {
        text.clear();
        let pair = self.adrp.take().filter(|a| a.0.wrapping_add(4) == pc);
        let base = self
            .sp_base
            .take()
            .filter(|b| b.0.wrapping_add(4) == pc)
            .map(|b| (b.1, b.2));
        if code.len() < 4 {
            text.push('?');
            return (code.len().max(1), Facts::default());
        }
        let word = u32::from_le_bytes([code[0], code[1], code[2], code[3]]);
        let mut r = U8Reader::new(&code[..4]);
        let ins = match self.dec.decode(&mut r) {
            Ok(i) if i.opcode != Opcode::UDF && i.opcode != Opcode::Invalid => i,
            _ => {
                text.push('?');
                return (4, Facts::default());
            }
        };
        if let (Opcode::ADRP, Operand::Register(_, rd), Operand::PCOffset(off)) =
            (ins.opcode, ins.operands[0], ins.operands[1])
        {
            let page = (pc & !0xfff).wrapping_add(off as u64);
            self.adrp.set(Some((pc, rd, page)));
        }
        if let (Opcode::ADD, Operand::RegisterOrSP(SizeCode::X, rd), Operand::RegisterOrSP(_, 31)) =
            (ins.opcode, ins.operands[0], ins.operands[1])
        {
            let k = match ins.operands[2] {
                Operand::Immediate(v) => Some(v as i64),
                Operand::ImmShift(v, s) => Some((v as i64) << s),
                _ => None,
            };
            // R27 (REGTMP) only: the assembler's scratch, set and used
            // within one instruction's expansion, never a branch target
            // in between.
            if let Some(k) = k.filter(|_| rd == 27) {
                self.sp_base.set(Some((pc, rd, k)));
            }
        }
        if go_syntax {
            if let Some((_, reg, page)) = pair {
                if self.adrp_pair(&ins, word, pc, (reg, page), syms, text) {
                    return (4, facts(&ins, pc, base));
                }
            }
            self.go_syntax(&ins, word, pc, syms, text);
        } else {
            let _ = write!(text, "{ins}");
        }
        (4, facts(&ins, pc, base))
    }

    /// The instruction after `ADRP reg` that completes a data address:
    /// `ADD $lo, reg, Rd` prints as `MOVD $sym+off(SB), Rd`, a load or
    /// store at `lo(reg)` with `sym+off(SB)` as its memory operand. False
    /// (nothing written) when it is not such an instruction or no symbol
    /// covers the address.
    fn adrp_pair(
        &self,
        ins: &Instruction,
        word: u32,
        pc: u64,
        (reg, page): (u16, u64),
        syms: &dyn Lookup,
        out: &mut String,
    ) -> bool {
        // `sym(SB)` or `sym+off(SB)` for the symbol covering `addr`.
        let name = |out: &mut String, addr: u64, (s, base): (&str, u64)| {
            out.push_str(s);
            if addr != base {
                out.push('+');
                push_dec(out, (addr - base) as i64);
            }
            out.push_str("(SB)");
        };
        let ops = &ins.operands;
        if ins.opcode == Opcode::ADD && word >> 31 == 1 && (word >> 22) & 3 == 0 {
            if let (
                Operand::RegisterOrSP(_, rd),
                Operand::RegisterOrSP(_, rn),
                Operand::Immediate(lo),
            ) = (ops[0], ops[1], ops[2])
            {
                let addr = page.wrapping_add(lo as u64);
                if rn == reg {
                    if let Some(sym) = syms.lookup(addr) {
                        out.push_str("MOVD $");
                        name(out, addr, sym);
                        out.push_str(", ");
                        push_gpr(out, rd, true);
                        return true;
                    }
                }
            }
            return false;
        }
        let Some(i) = ops
            .iter()
            .position(|o| matches!(*o, Operand::RegPreIndex(b, _, false) if b == reg))
        else {
            return false;
        };
        let Operand::RegPreIndex(_, lo, _) = ops[i] else {
            return false;
        };
        let addr = page.wrapping_add(lo as i64 as u64);
        let Some(sym) = syms.lookup(addr) else {
            return false;
        };
        // Print as usual, then put the symbol where `lo(reg)` was.
        let mut guard = self.pair_scratch.borrow_mut();
        let (plain, mem) = &mut *guard;
        plain.clear();
        mem.clear();
        self.go_syntax(ins, word, pc, &NoLookup, plain);
        write_arg(&ops[i], pc, &NoLookup, false, mem);
        match plain.rfind(mem.as_str()) {
            Some(at) => {
                out.push_str(&plain[..at]);
                name(out, addr, sym);
                out.push_str(&plain[at + mem.len()..]);
                true
            }
            None => false,
        }
    }

    fn go_syntax(
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
        let key = std::mem::discriminant(&ins.opcode);
        let (alias, no_w, fp_name) = match names.get(&key) {
            Some(i) => {
                op.push_str(&i.name);
                (i.alias, i.no_w, i.fp)
            }
            None => {
                let info = OpInfo::new(format!("{:?}", ins.opcode));
                op.push_str(&info.name);
                let flags = (info.alias, info.no_w, info.fp);
                // Variants with data (`SWP(2)`) print it: name those afresh.
                if !info.name.contains('(') {
                    names.insert(key, info);
                }
                flags
            }
        };
        let fp_op = fp_name
            || matches!(
                ins.opcode,
                Opcode::LDP | Opcode::STP | Opcode::LDR | Opcode::STR | Opcode::LDUR | Opcode::STUR
            );
        let mut argv = [Arg::default(); 4];
        for (a, o) in argv.iter_mut().zip(ops) {
            let s = buf.len();
            let w = write_arg(o, pc, syms, fp_op, buf);
            *a = Arg { s, e: buf.len(), w };
        }
        let args = &mut argv[..n];
        // ADD/SUB (extended register) with UXTX (64-bit) or UXTW (32-bit):
        // x/arch's decoder shows the extension unless Rn, or Rd of a
        // non-flag-setting form, is SP (then it is LSL, omitted when 0);
        // yaxpeax-arm always gives LSL.
        if word & 0x1fe0_0000 == 0x0b20_0000 && n == 3 {
            let option = word >> 13 & 7;
            let (sf, s) = (word >> 31 & 1, word >> 29 & 1);
            let (rn, rd) = (word >> 5 & 31, word & 31);
            let ext = match (option, sf) {
                (3, 1) => Some(".UXTX"),
                (2, 0) => Some(".UXTW"),
                _ => None,
            };
            if let Some(ext) = ext.filter(|_| !(rn == 31 || (s == 0 && rd == 31))) {
                args[2].s = buf.len();
                push_gpr(buf, (word >> 16 & 31) as u16, false);
                buf.push_str(ext);
                let imm3 = word >> 10 & 7;
                if imm3 != 0 {
                    buf.push_str("<<");
                    push_dec(buf, imm3 as i64);
                }
                args[2].e = buf.len();
            }
        }
        macro_rules! t {
            ($i:expr) => {
                &buf[args[$i].s..args[$i].e]
            };
        }
        let is_zr = |o: &Operand| matches!(o, Operand::Register(_, 31));
        // Addressing-mode suffix for loads and stores.
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
        let suffix = if classic_mem || self.dialect.arm64_wb_all {
            mem_suffix.unwrap_or("")
        } else {
            ""
        };
        let reg_class = |o: &Operand| -> char {
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
        };
        let fmov_name = |c: char| match c {
            'b' => "FMOVB",
            'h' => "FMOVH",
            's' => "FMOVS",
            'd' => "FMOVD",
            _ => "FMOVQ",
        };
        let set_op = |op: &mut String, name: &str| {
            op.clear();
            op.push_str(name);
        };
        let w0 = args.first().is_some_and(|a| a.w);
        let w = if w0 { "W" } else { "" };
        let mov = if w0 { "MOVW" } else { "MOVD" };
        match ins.opcode {
            Opcode::BL => {
                cat(out, &["CALL ", t!(0)]);
                return;
            }
            Opcode::BLR | Opcode::BR => {
                let r = t!(0);
                let r = if r == "ZR" { "R31" } else { r };
                let base = if ins.opcode == Opcode::BLR {
                    "CALL ("
                } else {
                    "JMP ("
                };
                cat(out, &[base, r, ")"]);
                return;
            }
            Opcode::RET => {
                if matches!(ops.first(), Some(Operand::Register(_, 30)) | None) {
                    out.push_str("RET");
                } else {
                    cat(out, &["RET ", t!(0)]);
                }
                return;
            }
            Opcode::B => {
                cat(out, &["JMP ", t!(0)]);
                return;
            }
            Opcode::Bcc(c) => {
                cat(out, &["B", COND_NAMES[(c & 15) as usize], " ", t!(0)]);
                return;
            }
            Opcode::HINT if word & 0xffff_f01f == 0xd503_201f && (word >> 5 & 0x7f) < 6 => {
                out.push_str(HINT_NAMES[(word >> 5 & 0x7f) as usize]);
                return;
            }
            Opcode::MSR => {
                if let Operand::SystemReg(r) = ins.operands[0] {
                    // Rt from the word: the decoder's operand for XZR is
                    // not a register.
                    out.push_str("MSR ");
                    push_gpr(out, (word & 31) as u16, false);
                    out.push_str(", ");
                    out.push_str(&sysreg_name(r));
                    return;
                }
            }
            Opcode::ORR
                if matches!(
                    (ins.operands[0], ins.operands[1], ins.operands[2]),
                    (Operand::SIMDRegisterElements(..), a, b) if a == b
                ) =>
            {
                cat(out, &["VMOV ", t!(1), ", ", t!(0)]);
                return;
            }
            // SYS #3, C7, C4, #1, Xt.
            Opcode::SYS(_) if word & 0xffff_ffe0 == 0xd50b_7420 => {
                out.push_str("DC ZVA, ");
                push_gpr(out, (word & 31) as u16, false);
                return;
            }
            Opcode::DMB(v) | Opcode::DSB(v) => {
                let name = if matches!(ins.opcode, Opcode::DMB(_)) {
                    "DMB $"
                } else {
                    "DSB $"
                };
                out.push_str(name);
                push_dec(out, v as i64);
                return;
            }
            Opcode::ISB => {
                out.push_str("ISB $15");
                return;
            }
            _ => {}
        }
        // Preferred aliases.
        let opn = ins.opcode;
        match opn {
            Opcode::ORR if n == 3 && is_zr(&ops[1]) => {
                let is_mov = match ops[2] {
                    Operand::RegShift(ShiftStyle::LSL, 0, _, _) => true,
                    Operand::Imm64(_) | Operand::Immediate(_) => !move_wide_preferred(word),
                    _ => false,
                };
                if is_mov {
                    cat(out, &[mov, " ", t!(2), ", ", t!(0)]);
                    return;
                }
            }
            Opcode::ADD
                if n == 3
                    && matches!(ops[2], Operand::Immediate(0))
                    && (matches!(ops[0], Operand::RegisterOrSP(_, 31))
                        || matches!(ops[1], Operand::RegisterOrSP(_, 31)))
                    && (word >> 22) & 3 == 0 =>
            {
                cat(out, &[mov, " ", t!(1), ", ", t!(0)]);
                return;
            }
            Opcode::MOVZ | Opcode::MOVN => {
                if let Operand::ImmShift(imm, sh) = ops[1] {
                    let is_movz = opn == Opcode::MOVZ;
                    let alias = if is_movz {
                        !(imm == 0 && sh != 0)
                    } else {
                        !(imm == 0 && sh != 0) && (!w0 || imm != 0xffff)
                    };
                    if alias {
                        let mut v = (imm as u64) << sh;
                        if !is_movz {
                            v = !v;
                        }
                        let v: i64 = if w0 { v as u32 as i64 } else { v as i64 };
                        cat(out, &[mov, " $"]);
                        push_dec(out, v);
                        cat(out, &[", ", t!(0)]);
                        return;
                    }
                }
            }
            Opcode::SUBS | Opcode::ADDS | Opcode::ANDS if n == 3 && is_zr(&ops[0]) => {
                let base = match opn {
                    Opcode::SUBS => "CMP",
                    Opcode::ADDS => "CMN",
                    _ => "TST",
                };
                let w1 = if args[1].w { "W" } else { "" };
                cat(out, &[base, w1, " ", t!(2), ", ", t!(1)]);
                return;
            }
            Opcode::SUB | Opcode::SUBS
                if n == 3
                    && matches!(ops[1], Operand::Register(_, 31))
                    && matches!(ops[2], Operand::RegShift(..)) =>
            {
                let base = if opn == Opcode::SUB { "NEG" } else { "NEGS" };
                cat(out, &[base, w, " ", t!(2), ", ", t!(0)]);
                return;
            }
            Opcode::SBC | Opcode::SBCS if n == 3 && is_zr(&ops[1]) => {
                let base = if opn == Opcode::SBC { "NGC" } else { "NGCS" };
                cat(out, &[base, w, " ", t!(2), ", ", t!(0)]);
                return;
            }
            Opcode::ORN if n == 3 && is_zr(&ops[1]) => {
                cat(out, &["MVN", w, " ", t!(2), ", ", t!(0)]);
                return;
            }
            Opcode::UBFM | Opcode::SBFM | Opcode::BFM => {
                if let (Operand::Immediate(immr), Operand::Immediate(imms)) = (ops[2], ops[3]) {
                    let width = if w0 { 32 } else { 64 };
                    let (d, s) = (t!(0), t!(1));
                    let signed = opn == Opcode::SBFM;
                    // `B $a, s, $b, d` (bitfield insert/extract) or
                    // `B $a, s, d` (shift) or `B s, d` (extend).
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
                            w0 && matches!(imms, 7 | 15)
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
                    return;
                }
            }
            Opcode::CSINC | Opcode::CSINV | Opcode::CSNEG if n == 4 => {
                if let Operand::ConditionCode(c) = ops[3] {
                    let same = ops[1] == ops[2];
                    let inv = cond_arg(c ^ 1);
                    if c & 14 != 14 && same {
                        if is_zr(&ops[1]) && opn != Opcode::CSNEG {
                            let b = if opn == Opcode::CSINC {
                                "CSET"
                            } else {
                                "CSETM"
                            };
                            cat(out, &[b, w, " ", inv, ", ", t!(0)]);
                            return;
                        }
                        if !is_zr(&ops[1]) || opn == Opcode::CSNEG {
                            let b = match opn {
                                Opcode::CSINC => "CINC",
                                Opcode::CSINV => "CINV",
                                _ => "CNEG",
                            };
                            cat(out, &[b, w, " ", inv, ", ", t!(1), ", ", t!(0)]);
                            return;
                        }
                    }
                }
            }
            Opcode::MADD
            | Opcode::MSUB
            | Opcode::SMADDL
            | Opcode::UMADDL
            | Opcode::SMSUBL
            | Opcode::UMSUBL
                if n == 4 && is_zr(&ops[3]) =>
            {
                let b = match opn {
                    Opcode::MADD => "MUL",
                    Opcode::MSUB => "MNEG",
                    Opcode::SMADDL => "SMULL",
                    Opcode::UMADDL => "UMULL",
                    Opcode::SMSUBL => "SMNEGL",
                    _ => "UMNEGL",
                };
                let w = if matches!(opn, Opcode::MADD | Opcode::MSUB) {
                    w
                } else {
                    ""
                };
                cat(out, &[b, w, " ", t!(2), ", ", t!(1), ", ", t!(0)]);
                return;
            }
            Opcode::EXTR if n == 4 && ops[1] == ops[2] => {
                cat(out, &["ROR", w, " ", t!(3), ", ", t!(1), ", ", t!(0)]);
                return;
            }
            _ => {}
        }
        if let Some(to) = alias {
            set_op(op, to);
        }
        // Go syntax per opcode.
        match opn {
            Opcode::LDR | Opcode::LDUR | Opcode::STR | Opcode::STUR => {
                let c = reg_class(&ops[0]);
                let name = match c {
                    'W' if matches!(opn, Opcode::LDR | Opcode::LDUR) => "MOVWU",
                    'W' => "MOVW",
                    'X' | '-' => "MOVD",
                    _ => {
                        // V<n> as F<n>: the operand again, at the end of buf.
                        let a = args[0];
                        args[0].s = buf.len();
                        for i in a.s..a.e {
                            let ch = buf.as_bytes()[i] as char;
                            buf.push(if ch == 'V' { 'F' } else { ch });
                        }
                        args[0].e = buf.len();
                        fmov_name(c)
                    }
                };
                set_op(op, name);
                op.push_str(suffix);
                if matches!(opn, Opcode::STR | Opcode::STUR) {
                    args.swap(0, 1);
                }
            }
            Opcode::LDRB => cat_op(op, &["MOVBU", suffix]),
            Opcode::LDRH => cat_op(op, &["MOVHU", suffix]),
            Opcode::LDRSW => cat_op(op, &["MOVW", suffix]),
            Opcode::LDRSB => cat_op(op, &[if w0 { "MOVBW" } else { "MOVB" }, suffix]),
            Opcode::LDRSH => cat_op(op, &[if w0 { "MOVHW" } else { "MOVH" }, suffix]),
            Opcode::STRB | Opcode::STURB => {
                cat_op(op, &["MOVB", suffix]);
                args.swap(0, 1);
            }
            Opcode::STRH | Opcode::STURH => {
                cat_op(op, &["MOVH", suffix]);
                args.swap(0, 1);
            }
            Opcode::TBZ | Opcode::TBNZ => {
                cat(out, &[op, " ", t!(1), ", ", t!(0), ", ", t!(2)]);
                return;
            }
            Opcode::CBZ | Opcode::CBNZ => {
                cat(out, &[op, w, " ", t!(0), ", ", t!(1)]);
                return;
            }
            Opcode::MADD
            | Opcode::MSUB
            | Opcode::SMADDL
            | Opcode::SMSUBL
            | Opcode::UMADDL
            | Opcode::UMSUBL => {
                op.push_str(w);
                args.swap(2, 3);
            }
            Opcode::STLR => {
                op.push_str(w);
                args.swap(0, 1);
            }
            Opcode::STLRB | Opcode::STLRH => args.swap(0, 1),
            Opcode::STLXR | Opcode::STXR => {
                if args.get(1).is_some_and(|a| a.w) {
                    op.push('W');
                }
                args.swap(1, 2);
            }
            Opcode::STLXRB | Opcode::STLXRH | Opcode::STXRB | Opcode::STXRH => args.swap(1, 2),
            Opcode::LDAXP | Opcode::LDXP => {
                cat(out, &[op, w, " ", t!(2), ", (", t!(0), ", ", t!(1), ")"]);
                return;
            }
            Opcode::STP | Opcode::LDP => {
                let c = reg_class(&ops[0]);
                match c {
                    'W' => op.push('W'),
                    's' | 'd' | 'q' => {
                        op.insert(0, 'F');
                        op.push(c.to_ascii_uppercase());
                    }
                    _ => {}
                }
                op.push_str(suffix);
                if opn == Opcode::STP {
                    cat(out, &[op, " (", t!(0), ", ", t!(1), "), ", t!(2)]);
                } else {
                    cat(out, &[op, " ", t!(2), ", (", t!(0), ", ", t!(1), ")"]);
                }
                return;
            }
            Opcode::STXP | Opcode::STLXP => {
                if args.get(1).is_some_and(|a| a.w) {
                    op.push('W');
                }
                cat(
                    out,
                    &[op, " (", t!(1), ", ", t!(2), "), ", t!(3), ", ", t!(0)],
                );
                return;
            }
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
            | Opcode::FNMSUB => {
                if matches!(opn, Opcode::FCCMP | Opcode::FCCMPE) {
                    args.swap(0, 1);
                }
                if matches!(
                    opn,
                    Opcode::FCMP | Opcode::FCMPE | Opcode::FCCMP | Opcode::FCCMPE
                ) && matches!(
                    ops.get(1),
                    Some(Operand::ImmediateDouble(_)) | Some(Operand::Immediate(_))
                ) {
                    set_text(buf, &mut args[1], "$(0.0)");
                }
                if matches!(
                    opn,
                    Opcode::FMADD | Opcode::FMSUB | Opcode::FNMADD | Opcode::FNMSUB
                ) {
                    args.swap(2, 3);
                }
                match reg_class(&ops[0]) {
                    's' => op.push('S'),
                    'd' => op.push('D'),
                    _ => {}
                }
            }
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
            Opcode::ADR | Opcode::ADRP => {
                if let Operand::PCOffset(off) = ops[1] {
                    args[1].s = buf.len();
                    push_dec(buf, off);
                    buf.push_str("(PC)");
                    args[1].e = buf.len();
                }
            }
            Opcode::ST1 => {
                op.insert(0, 'V');
                op.push_str(suffix);
                args.swap(0, 1);
            }
            Opcode::LD1 => {
                op.insert(0, 'V');
                op.push_str(suffix);
            }
            Opcode::UMOV => set_op(op, "VMOV"),
            Opcode::MRS => {}
            _ => {
                if !no_w {
                    match ops.first() {
                        Some(Operand::SIMDRegisterElements(..))
                        | Some(Operand::SIMDRegisterElementsLane(..))
                        | Some(Operand::SIMDRegisterGroup(..)) => op.insert(0, 'V'),
                        Some(Operand::SIMDRegister(..)) if !op.starts_with('F') => {
                            op.insert(0, 'V')
                        }
                        _ => {}
                    }
                    op.push_str(w);
                }
                op.push_str(suffix);
            }
        }
        // Conditional selects: the condition moves first (`CSEL cond, Rn,
        // Rm, Rd`, `FCSELD cond, Fn, Fm, Fd`, `CCMP cond, Rn, Rm, $nzcv`).
        if n == 4 && matches!(ops[3], Operand::ConditionCode(_)) {
            if matches!(ops[2], Operand::Register(..) | Operand::SIMDRegister(..)) {
                args.swap(1, 2);
            } else {
                args.swap(0, 2);
            }
        }
        out.push_str(op);
        for (i, a) in args.iter().rev().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(&buf[a.s..a.e]);
        }
    }
}

fn cat_op(op: &mut String, parts: &[&str]) {
    op.clear();
    cat(op, parts);
}

/// No symbols: the memory operand of a pair is printed plainly first.
struct NoLookup;

impl Lookup for NoLookup {
    fn lookup(&self, _: u64) -> Option<(&str, u64)> {
        None
    }
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

/// `base`: a register known to hold RSP plus a constant (see
/// `Arm64::sp_base`); a memory operand based on it is an `off(RSP)` slot.
fn facts(ins: &Instruction, pc: u64, base: Option<(u16, i64)>) -> Facts {
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

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSyms;
    impl Lookup for NoSyms {
        fn lookup(&self, _: u64) -> Option<(&str, u64)> {
            None
        }
    }

    fn go(word: u32) -> String {
        let a = Arm64::new(Dialect::for_version(Some(27)));
        let mut s = String::new();
        a.decode(&word.to_le_bytes(), 0x11000, &NoSyms, true, &mut s);
        s
    }

    // Expected strings: `go tool objdump` (go1.27.3, linux/arm64) on the
    // same words.
    #[test]
    fn objdump_spellings() {
        for (w, want) in [
            (0xf9400b90, "MOVD 16(R28), R16"),
            (0xeb3063ff, "CMP R16, RSP"),
            (0x540005c9, "BLS 46(PC)"),
            (0xf81e0ffe, "MOVD.W R30, -32(RSP)"),
            (0xf81f83fd, "MOVD R29, -8(RSP)"),
            (0xd10023fd, "SUB $8, RSP, R29"),
            (0xd29c71e6, "MOVD $58255, R6"),
            (0xf2b1c706, "MOVK $(36408<<16), R6"),
            (0xcb80fcc6, "SUB R0->63, R6, R6"),
            (0x8b060cc7, "ADD R6<<3, R6, R7"),
            (0x9343fcc6, "ASR $3, R6, R6"),
            (0x360000e6, "TBZ $0, R6, 7(PC)"),
            (0x92400d04, "AND $15, R8, R4"),
            (0xf24000ff, "TST $1, R7"),
            (0x9a9f07e1, "CSET NE, R1"),
            (0x14000004, "JMP 4(PC)"),
            (0xaa1f03e1, "MOVD ZR, R1"),
            (0xb5000108, "CBNZ R8, 8(PC)"),
            (0xb24003e0, "ORR $1, ZR, R0"),
            (0xd503201f, "NOOP"),
            (0xd65f03c0, "RET"),
            // go1.26.6, darwin/arm64 runtime.
            (0xd51b42bf, "MSR ZR, S3_3_C4_C2_5"),
            (0x4e081c3e, "VMOV R1, V30.D[0]"),
            (0xd50b7420, "DC ZVA, R0"),
            // go1.24.11-1.27.3, linux/arm64 cmd/go (math/bits, p256).
            (0xda1f03e3, "NGC ZR, R3"),
            (0xfa1903e5, "NGCS R25, R5"),
            // go1.19 / go1.21.13, linux/arm64 runtime (mgcpacer, os_linux):
            // the extension shows unless Rn or Rd is RSP.
            (0x8b3b60fb, "ADD R27.UXTX, R7, R27"),
            (0x8b3b603b, "ADD R27.UXTX, R1, R27"),
            (0x8b3b63ff, "ADD R27, RSP, RSP"),
            // go1.21.13 / go1.27.3, linux/arm64 math.Exp (exp_arm64.s).
            (0x1e63bc83, "FCSELD LT, F4, F3, F3"),
        ] {
            assert_eq!(go(w), want, "{w:08x}");
        }
    }

    struct Data;
    impl Lookup for Data {
        fn lookup(&self, a: u64) -> Option<(&str, u64)> {
            (0x1d5000..0x1d5100)
                .contains(&a)
                .then_some(("main.counter", 0x1d5000))
        }
    }

    /// ADRP pairs (our rule, see the module doc). The words are the
    /// linker's (go1.22.10 linux/arm64 `defers`, where objdump prints
    /// `ADRP 1232896(PC), R27` for the first); the addresses are hand
    /// computed: ADRP at page 0xa8000 + 0x12d000 = 0x1d5000.
    #[test]
    fn adrp_pairs_name_their_data() {
        let a = Arm64::new(Dialect::for_version(Some(22)));
        let mut s = String::new();
        let adrp: u32 = 0xb000097b;
        a.decode(&adrp.to_le_bytes(), 0xa8000, &Data, true, &mut s);
        assert_eq!(s, "ADRP 1232896(PC), R27");
        // f9431f61: LDR X1, [X27, #1592] -> 0x1d5000 + 0x638 is past the
        // symbol's 0x100 bytes: printed as objdump prints it.
        a.decode(&0xf9431f61u32.to_le_bytes(), 0xa8004, &Data, true, &mut s);
        assert_eq!(s, "MOVD 1592(R27), R1");
        // f9401f61: LDR X1, [X27, #56] -> main.counter+56.
        a.decode(&adrp.to_le_bytes(), 0xa8008, &Data, true, &mut s);
        a.decode(&0xf9401f61u32.to_le_bytes(), 0xa800c, &Data, true, &mut s);
        assert_eq!(s, "MOVD main.counter+56(SB), R1");
        // f9001f61: STR X1, [X27, #56].
        a.decode(&adrp.to_le_bytes(), 0xa8010, &Data, true, &mut s);
        a.decode(&0xf9001f61u32.to_le_bytes(), 0xa8014, &Data, true, &mut s);
        assert_eq!(s, "MOVD R1, main.counter+56(SB)");
        // 91000361: ADD X1, X27, #0 -> the address itself.
        a.decode(&adrp.to_le_bytes(), 0xa8018, &Data, true, &mut s);
        a.decode(&0x91000361u32.to_le_bytes(), 0xa801c, &Data, true, &mut s);
        assert_eq!(s, "MOVD $main.counter(SB), R1");
        // Not right after the ADRP: plain.
        a.decode(&adrp.to_le_bytes(), 0xa8020, &Data, true, &mut s);
        a.decode(&0xd503201fu32.to_le_bytes(), 0xa8024, &Data, true, &mut s);
        a.decode(&0xf9401f61u32.to_le_bytes(), 0xa8028, &Data, true, &mut s);
        assert_eq!(s, "MOVD 56(R27), R1");
    }
}

//! amd64: decode with iced-x86, print in Go assembler syntax.
//!
//! The printer reproduces what `go tool objdump` prints (golang.org/x/arch
//! `x86asm.GoSyntax`), rule by rule:
//!
//! - operands in reverse (source first), registers by 64-bit family name
//!   (`AX` for AL/AX/EAX/RAX, `R8` for R8B..R8) from [`REG_NAMES`];
//! - a size suffix (`B W L Q`) on the mnemonics in [`SUFFIXED`], from the
//!   memory operand's size, else the operand-size attribute (32 unless
//!   REX.W or 0x66), else `Q` for a lone 64-bit register (`PUSHQ BP`);
//! - `REP; ` / `REPNE; ` before string instructions, `LOCK ` before locked
//!   ones;
//! - memory as `disp(base)(index*scale)`, with x86asm's rendering of
//!   displacements: an 8-bit one sign-extended (`-0x8(SP)`), a 32-bit one
//!   zero-extended (`0xfffffff8`);
//! - branch targets as `sym(SB)` when they are a symbol's first byte, else
//!   the address; RIP-relative and absolute memory as `sym+off(SB)` when a
//!   symbol covers it, else `disp(IP)`;
//! - immediates as `$0x..`, negative when the value fits in 32 bits signed.
//!
//! The rules that changed between Go releases are in [`Dialect`].

use std::borrow::Cow;
use std::fmt::Write as _;

use iced_x86::{
    Code, Decoder, DecoderOptions, EncodingKind, Formatter, Instruction, IntelFormatter, Mnemonic,
    OpKind, Register,
};

use deferscope_decode::{facts_amd64, Facts};

use crate::{push_dec, push_hex, Dialect};

/// Name lookup: `addr -> (symbol, symbol address)`.
pub trait Lookup {
    fn lookup(&self, addr: u64) -> Option<(&str, u64)>;
}

/// Mnemonics that take a size suffix in Go syntax (x86asm `plan9Suffix`).
const SUFFIXED: &[Mnemonic] = &[
    Mnemonic::Adc,
    Mnemonic::Add,
    Mnemonic::And,
    Mnemonic::Bsf,
    Mnemonic::Bsr,
    Mnemonic::Bt,
    Mnemonic::Btc,
    Mnemonic::Btr,
    Mnemonic::Bts,
    Mnemonic::Cmp,
    Mnemonic::Cmpxchg,
    Mnemonic::Cvtsi2sd,
    Mnemonic::Cvtsi2ss,
    Mnemonic::Cvtsd2si,
    Mnemonic::Cvtss2si,
    Mnemonic::Cvttsd2si,
    Mnemonic::Cvttss2si,
    Mnemonic::Dec,
    Mnemonic::Div,
    Mnemonic::Fldenv,
    Mnemonic::Frstor,
    Mnemonic::Idiv,
    Mnemonic::Imul,
    Mnemonic::In,
    Mnemonic::Inc,
    Mnemonic::Lea,
    Mnemonic::Mov,
    Mnemonic::Movnti,
    Mnemonic::Mul,
    Mnemonic::Neg,
    Mnemonic::Nop,
    Mnemonic::Not,
    Mnemonic::Or,
    Mnemonic::Out,
    Mnemonic::Pop,
    Mnemonic::Popa,
    Mnemonic::Popcnt,
    Mnemonic::Push,
    Mnemonic::Pusha,
    Mnemonic::Rcl,
    Mnemonic::Rcr,
    Mnemonic::Rol,
    Mnemonic::Ror,
    Mnemonic::Sar,
    Mnemonic::Sbb,
    Mnemonic::Shl,
    Mnemonic::Shld,
    Mnemonic::Shr,
    Mnemonic::Shrd,
    Mnemonic::Sub,
    Mnemonic::Test,
    Mnemonic::Xadd,
    Mnemonic::Xchg,
    Mnemonic::Xor,
];

/// VEX instructions the x/arch decoder knew before 0.27 (go1.27).
const OLD_VEX_OPS: &[Mnemonic] = &[
    Mnemonic::Vmovdqa,
    Mnemonic::Vmovdqu,
    Mnemonic::Vmovntdq,
    Mnemonic::Vmovntdqa,
    Mnemonic::Vzeroupper,
];

/// Mnemonic spellings that are not the upper-cased iced name, by
/// instruction code (x86asm tells SSE `MOVSD`/`CMPSD` from the string
/// instructions this way).
const OP_NAME_BY_CODE: &[(Code, &str)] = &[
    (Code::Movsd_xmm_xmmm64, "MOVSD_XMM"),
    (Code::Movsd_xmmm64_xmm, "MOVSD_XMM"),
    (Code::Cmpsd_xmm_xmmm64_imm8, "CMPSD_XMM"),
    (Code::Int3, "INT"),
];

/// Mnemonic spellings that differ from the upper-cased iced name.
const OP_NAME_BY_MNEMONIC: &[(Mnemonic, &str)] = &[
    (Mnemonic::Wait, "FWAIT"),
    (Mnemonic::Iretq, "IRETQ"),
    (Mnemonic::Retf, "LRET"),
];

/// Go register names, by iced register. GPRs of every width map to their
/// family's name; the rest spell their number.
fn reg_name(r: Register) -> Cow<'static, str> {
    if r.is_gpr() {
        let low8 = match r {
            Register::AL => Some("AL"),
            Register::CL => Some("CL"),
            Register::DL => Some("DL"),
            Register::BL => Some("BL"),
            Register::AH => Some("AH"),
            Register::CH => Some("CH"),
            Register::DH => Some("DH"),
            Register::BH => Some("BH"),
            _ => None,
        };
        if let Some(n) = low8 {
            return Cow::Borrowed(n);
        }
        let i = r.full_register() as usize - Register::RAX as usize;
        return Cow::Borrowed(REG_NAMES.get(i).copied().unwrap_or("?"));
    }
    let n = r.number();
    let (table, prefix): (&[&'static str], &str) = if r.is_xmm() {
        (&XMM_NAMES, "X")
    } else if r.is_ymm() {
        (&YMM_NAMES, "Y")
    } else if r.is_zmm() {
        (&ZMM_NAMES, "Z")
    } else if r.is_k() {
        (&K_NAMES, "K")
    } else if r.is_st() {
        (&F_NAMES, "F")
    } else if r.is_mm() {
        (&M_NAMES, "M")
    } else if r.is_cr() {
        (&CR_NAMES, "CR")
    } else if r.is_dr() {
        (&DR_NAMES, "DR")
    } else {
        return Cow::Borrowed(match r {
            Register::ES => "ES",
            Register::CS => "CS",
            Register::SS => "SS",
            Register::DS => "DS",
            Register::FS => "FS",
            Register::GS => "GS",
            Register::RIP | Register::EIP => "IP",
            _ => "?",
        });
    };
    match table.get(n) {
        Some(&name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("{prefix}{n}")),
    }
}

/// Names of the numbered register files, by number: vector (`X`, `Y`,
/// `Z`), opmask, x87, MMX, control and debug registers (x86asm's
/// `regNames`). Printing them allocates nothing.
const XMM_NAMES: [&str; 32] = [
    "X0", "X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8", "X9", "X10", "X11", "X12", "X13", "X14",
    "X15", "X16", "X17", "X18", "X19", "X20", "X21", "X22", "X23", "X24", "X25", "X26", "X27",
    "X28", "X29", "X30", "X31",
];
const YMM_NAMES: [&str; 32] = [
    "Y0", "Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7", "Y8", "Y9", "Y10", "Y11", "Y12", "Y13", "Y14",
    "Y15", "Y16", "Y17", "Y18", "Y19", "Y20", "Y21", "Y22", "Y23", "Y24", "Y25", "Y26", "Y27",
    "Y28", "Y29", "Y30", "Y31",
];
const ZMM_NAMES: [&str; 32] = [
    "Z0", "Z1", "Z2", "Z3", "Z4", "Z5", "Z6", "Z7", "Z8", "Z9", "Z10", "Z11", "Z12", "Z13", "Z14",
    "Z15", "Z16", "Z17", "Z18", "Z19", "Z20", "Z21", "Z22", "Z23", "Z24", "Z25", "Z26", "Z27",
    "Z28", "Z29", "Z30", "Z31",
];
const K_NAMES: [&str; 8] = ["K0", "K1", "K2", "K3", "K4", "K5", "K6", "K7"];
const F_NAMES: [&str; 8] = ["F0", "F1", "F2", "F3", "F4", "F5", "F6", "F7"];
const M_NAMES: [&str; 8] = ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7"];
const CR_NAMES: [&str; 16] = [
    "CR0", "CR1", "CR2", "CR3", "CR4", "CR5", "CR6", "CR7", "CR8", "CR9", "CR10", "CR11", "CR12",
    "CR13", "CR14", "CR15",
];
const DR_NAMES: [&str; 16] = [
    "DR0", "DR1", "DR2", "DR3", "DR4", "DR5", "DR6", "DR7", "DR8", "DR9", "DR10", "DR11", "DR12",
    "DR13", "DR14", "DR15",
];

/// 64-bit GPR family names in iced's RAX..R15 order.
const REG_NAMES: [&str; 16] = [
    "AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14",
    "R15",
];

/// Go's `%#x` for a signed value: `0x10`, `-0x10`.
fn hex_signed(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
        push_hex(out, v.unsigned_abs());
    } else {
        push_hex(out, v as u64);
    }
}

/// Prefix bytes: (operand size 16, REX.W).
fn size_prefixes(bytes: &[u8]) -> (bool, bool) {
    let mut o16 = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x66 => o16 = true,
            0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x67 => {}
            b @ 0x40..=0x4f => return (o16, b & 8 != 0),
            _ => break,
        }
        i += 1;
    }
    (o16, false)
}

/// A decoder for one binary's text.
pub struct X86 {
    dialect: Dialect,
    intel: IntelFormatter,
    /// Upper-cased mnemonic names, by `Mnemonic as usize` (built once:
    /// formatting the Debug name per instruction was a hot spot).
    mnemonics: Vec<String>,
    /// Operand texts of the current instruction, reused.
    args: Vec<String>,
}

impl X86 {
    pub fn new(dialect: Dialect) -> X86 {
        let mut intel = IntelFormatter::new();
        intel.options_mut().set_hex_prefix("0x");
        intel.options_mut().set_hex_suffix("");
        intel.options_mut().set_uppercase_hex(false);
        intel.options_mut().set_branch_leading_zeros(false);
        let mnemonics = Mnemonic::values()
            .map(|m| format!("{m:?}").to_ascii_uppercase())
            .collect();
        X86 {
            dialect,
            intel,
            mnemonics,
            args: Vec::new(),
        }
    }

    /// Decode the instruction at the start of `code` (at `pc`); returns its
    /// length, its text (`?` for undecodable bytes, length 1) and facts.
    pub fn decode(
        &mut self,
        code: &[u8],
        pc: u64,
        syms: &dyn Lookup,
        go_syntax: bool,
        text: &mut String,
    ) -> (usize, Facts) {
        text.clear();
        let mut dec = Decoder::with_ip(64, code, pc, DecoderOptions::NONE);
        let ins = dec.decode();
        if ins.is_invalid() || ins.len() == 0 {
            text.push('?');
            return (1, Facts::default());
        }
        if go_syntax {
            self.go_syntax(&ins, &code[..ins.len()], pc, syms, text);
        } else {
            let mut s = String::new();
            self.intel.format(&ins, &mut s);
            text.push_str(&s);
        }
        (ins.len(), facts_amd64(&ins))
    }

    fn go_syntax(
        &mut self,
        ins: &Instruction,
        bytes: &[u8],
        pc: u64,
        syms: &dyn Lookup,
        out: &mut String,
    ) {
        let m = ins.mnemonic();
        let (o16, rexw) = size_prefixes(bytes);
        let data_size = if rexw {
            64
        } else if o16 {
            16
        } else {
            32
        };
        // Prefixes.
        if ins.has_repne_prefix() && is_string(m) {
            out.push_str("REPNE; ");
        } else if (ins.has_rep_prefix() || ins.has_repe_prefix()) && is_string(m) {
            out.push_str("REP; ");
        }
        if ins.has_lock_prefix() {
            out.push_str("LOCK ");
        }
        // A segment prefix that no memory operand uses stays a prefix
        // (`DS CDQ`); x86asm does not apply one to a NOP's operand either
        // (`CS NOPW 0(AX)(AX*1)`).
        let has_mem = (0..ins.op_count()).any(|i| is_mem(ins.op_kind(i)));
        let nop_seg = ins.segment_prefix() != Register::None && (m == Mnemonic::Nop || !has_mem);
        if nop_seg {
            out.push_str(&reg_name(ins.segment_prefix()));
            out.push(' ');
        }
        // Mnemonic.
        let code = ins.code();
        if let Some(&(_, n)) = OP_NAME_BY_CODE.iter().find(|(c, _)| *c == code) {
            out.push_str(n);
        } else if let Some(&(_, n)) = OP_NAME_BY_MNEMONIC.iter().find(|(x, _)| *x == m) {
            out.push_str(n);
        } else {
            out.push_str(&self.mnemonics[m as usize]);
        }
        if SUFFIXED.contains(&m) {
            let mem = (0..ins.op_count()).any(|i| is_mem(ins.op_kind(i)));
            let mut size = data_size;
            if mem {
                let s = ins.memory_size().size();
                if s != 0 {
                    size = s * 8;
                }
            } else if ins.op_count() == 1 && ins.op_kind(0) == OpKind::Register {
                let r = ins.op_register(0);
                if r.is_gpr64() {
                    size = 64;
                }
            }
            out.push(match size {
                8 => 'B',
                16 => 'W',
                32 => 'L',
                _ => 'Q',
            });
        }
        if ins.is_broadcast() {
            out.push_str(".BCST");
        }
        if ins.zeroing_masking() {
            out.push_str(".Z");
        }
        // Operands, last first.
        let n = ins.op_count();
        let mut args = std::mem::take(&mut self.args);
        let mut na = 0;
        for i in (0..n).rev() {
            if args.len() == na {
                args.push(String::new());
            }
            args[na].clear();
            self.arg(ins, i, pc, syms, data_size, &mut args[na]);
            na += 1;
        }
        if m == Mnemonic::Int3 {
            if args.len() == na {
                args.push(String::new());
            }
            args[na].clear();
            args[na].push_str("$0x3");
            na += 1;
        }
        if self.dialect.x86_cmp_swap && m == Mnemonic::Cmp && na == 2 {
            args.swap(0, 1);
        }
        if nop_seg {
            for a in &mut args[..na] {
                let seg = format!("{}:", reg_name(ins.segment_prefix()));
                if let Some(rest) = a.strip_prefix(seg.as_str()) {
                    *a = rest.to_string();
                }
            }
        }
        // An AVX-512 opmask comes just before the destination:
        // `VPERMB.Z Z4, Z6, K1, Z0`.
        if ins.op_mask() != Register::None && na > 0 {
            let k = format!("K{}", ins.op_mask() as u32 - Register::K0 as u32);
            if args.len() == na {
                args.push(String::new());
            }
            args[na] = k;
            args.swap(na - 1, na);
            na += 1;
        }
        for (j, a) in args[..na].iter().enumerate() {
            out.push_str(if j == 0 { " " } else { ", " });
            out.push_str(a);
        }
        self.args = args;
    }

    fn arg(
        &self,
        ins: &Instruction,
        i: u32,
        pc: u64,
        syms: &dyn Lookup,
        data_size: usize,
        out: &mut String,
    ) {
        let len = ins.len() as u64;
        match ins.op_kind(i) {
            OpKind::Register => {
                let r = ins.op_register(i);
                if r.is_ymm() && !self.dialect.x86_avx && OLD_VEX_OPS.contains(&ins.mnemonic()) {
                    // x/arch before 0.27 decodes these VEX forms but
                    // ignores VEX.L: YMM registers print as X.
                    let _ = write!(out, "X{}", r.number());
                } else {
                    out.push_str(&reg_name(r));
                }
            }
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                let target = ins.near_branch_target();
                match syms.lookup(target) {
                    Some((s, base)) if base == target => {
                        out.push_str(s);
                        out.push_str("(SB)");
                    }
                    _ => {
                        push_hex(out, target);
                    }
                }
            }
            OpKind::FarBranch16 | OpKind::FarBranch32 => out.push('?'),
            OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => {
                let v = imm_value(ins, i);
                let sym_ok = if self.dialect.x86_imm_sym_all {
                    true
                } else {
                    matches!(ins.mnemonic(), Mnemonic::Mov | Mnemonic::Push) && data_size == 32
                };
                if sym_ok {
                    if let Some((s, base)) = syms.lookup(v as u64) {
                        out.push('$');
                        out.push_str(s);
                        if v as u64 != base {
                            out.push('+');
                            push_dec(out, (v as u64).wrapping_sub(base) as i64);
                        }
                        out.push_str("(SB)");
                        return;
                    }
                }
                out.push('$');
                if v == v as i32 as i64 {
                    hex_signed(out, v);
                } else {
                    push_hex(out, v as u64);
                }
            }
            OpKind::Memory => self.mem(ins, pc, len, syms, out),
            OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemorySegDI
            | OpKind::MemorySegEDI
            | OpKind::MemorySegRDI => {
                let _ = write!(out, "{}:0(", reg_name(ins.memory_segment()));
                let base = match ins.op_kind(i) {
                    OpKind::MemorySegDI | OpKind::MemorySegEDI | OpKind::MemorySegRDI => "DI",
                    _ => "SI",
                };
                out.push_str(base);
                out.push(')');
            }
            OpKind::MemoryESDI | OpKind::MemoryESEDI | OpKind::MemoryESRDI => {
                out.push_str("ES:0(DI)");
            }
        }
    }

    fn mem(&self, ins: &Instruction, pc: u64, len: u64, syms: &dyn Lookup, out: &mut String) {
        let base = ins.memory_base();
        let index = ins.memory_index();
        let seg = ins.segment_prefix();
        let dsize = ins.memory_displ_size();
        // x86asm's Disp: disp8 sign-extended, disp32 zero-extended.
        let disp: i64 = if base == Register::RIP || base == Register::EIP {
            let raw = ins.memory_displacement64().wrapping_sub(pc + len) as u32;
            raw as i64
        } else {
            // disp8 sign-extended; disp32 zero-extended (iced reports a
            // disp32 of 64-bit addressing as size 8, like a moffs64).
            let d = ins.memory_displacement64();
            match dsize {
                0 => 0,
                // iced has scaled an EVEX compressed disp8 (disp8*N).
                1 => d as i64,
                2 => d as u16 as i64,
                8 if is_moffs(ins.code()) => d as i64,
                _ => d as u32 as i64,
            }
        };
        if seg == Register::None && disp != 0 && index == Register::None {
            let addr = match base {
                Register::RIP | Register::EIP => {
                    Some((disp as u64).wrapping_add(pc).wrapping_add(len))
                }
                Register::None => Some(disp as u64),
                _ => None,
            };
            if let Some(addr) = addr {
                if let Some((s, b)) = syms.lookup(addr) {
                    out.push_str(s);
                    let off = addr.wrapping_sub(b) as i64;
                    if off != 0 {
                        if off > 0 {
                            out.push('+');
                        }
                        push_dec(out, off);
                    }
                    out.push_str("(SB)");
                    return;
                }
            }
        }
        if seg != Register::None {
            out.push_str(&reg_name(seg));
            out.push(':');
        }
        if disp != 0 {
            hex_signed(out, disp);
        } else {
            out.push('0');
        }
        // x/arch before 0.27 (go1.27) ignores VEX.B on a base register in
        // ModRM (no SIB byte): R8-R15 there print as AX-DI.
        let old_vex =
            !self.dialect.x86_avx && ins.encoding() == EncodingKind::VEX && index == Register::None;
        let name = |r: Register| -> Cow<'static, str> {
            if old_vex && r.is_gpr64() {
                Cow::Borrowed(REG_NAMES[r.number() & 7])
            } else {
                reg_name(r)
            }
        };
        if base != Register::None {
            out.push('(');
            out.push_str(&name(base));
            out.push(')');
        }
        if index != Register::None {
            out.push('(');
            out.push_str(&name(index));
            out.push('*');
            push_dec(out, i64::from(ins.memory_index_scale()));
            out.push(')');
        }
    }
}

/// The `MOV` forms with a full 64-bit absolute address.
fn is_moffs(c: Code) -> bool {
    matches!(
        c,
        Code::Mov_AL_moffs8
            | Code::Mov_AX_moffs16
            | Code::Mov_EAX_moffs32
            | Code::Mov_RAX_moffs64
            | Code::Mov_moffs8_AL
            | Code::Mov_moffs16_AX
            | Code::Mov_moffs32_EAX
            | Code::Mov_moffs64_RAX
    )
}

fn is_mem(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Memory
            | OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemorySegDI
            | OpKind::MemorySegEDI
            | OpKind::MemorySegRDI
            | OpKind::MemoryESDI
            | OpKind::MemoryESEDI
            | OpKind::MemoryESRDI
    )
}

fn is_string(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Insb | Insw
            | Insd
            | Movsb
            | Movsw
            | Movsd
            | Movsq
            | Outsb
            | Outsw
            | Outsd
            | Lodsb
            | Lodsw
            | Lodsd
            | Lodsq
            | Cmpsb
            | Cmpsw
            | Cmpsd
            | Cmpsq
            | Scasb
            | Scasw
            | Scasd
            | Scasq
            | Stosb
            | Stosw
            | Stosd
            | Stosq
    )
}

/// The immediate as x86asm records it: sign-extended from its encoded
/// width.
fn imm_value(ins: &Instruction, i: u32) -> i64 {
    match ins.op_kind(i) {
        // x86asm records byte immediates of byte operations unsigned.
        OpKind::Immediate8 => ins.immediate8() as i64,
        OpKind::Immediate8_2nd => ins.immediate8_2nd() as i8 as i64,
        // RET/LRET imm16 is a byte count: unsigned.
        OpKind::Immediate16 if matches!(ins.mnemonic(), Mnemonic::Ret | Mnemonic::Retf) => {
            ins.immediate16() as i64
        }
        OpKind::Immediate16 => ins.immediate16() as i16 as i64,
        OpKind::Immediate32 => ins.immediate32() as i32 as i64,
        OpKind::Immediate64 => ins.immediate64() as i64,
        OpKind::Immediate8to16 => ins.immediate8to16() as i64,
        OpKind::Immediate8to32 => ins.immediate8to32() as i64,
        OpKind::Immediate8to64 => ins.immediate8to64(),
        OpKind::Immediate32to64 => ins.immediate32to64(),
        _ => 0,
    }
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

    struct OneSym;
    impl Lookup for OneSym {
        fn lookup(&self, a: u64) -> Option<(&str, u64)> {
            (0x536d30..0x536d40)
                .contains(&a)
                .then_some(("internal/abi.kindNames", 0x536d30))
        }
    }

    fn go(bytes: &[u8], pc: u64, syms: &dyn Lookup) -> String {
        let mut x = X86::new(Dialect::for_version(Some(22)));
        let mut s = String::new();
        let (n, _) = x.decode(bytes, pc, syms, true, &mut s);
        assert_eq!(n, bytes.len(), "{s}");
        s
    }

    // Expected strings: `go tool objdump` (go1.22.10) on the same bytes.
    #[test]
    fn objdump_spellings() {
        assert_eq!(go(&[0x55], 0x401000, &NoSyms), "PUSHQ BP");
        assert_eq!(go(&[0x48, 0x89, 0xe5], 0, &NoSyms), "MOVQ SP, BP");
        assert_eq!(go(&[0x48, 0x83, 0xec, 0x10], 0, &NoSyms), "SUBQ $0x10, SP");
        assert_eq!(go(&[0x48, 0x39, 0xc8], 0, &NoSyms), "CMPQ AX, CX");
        assert_eq!(go(&[0x84, 0xc0], 0, &NoSyms), "TESTL AL, AL");
        assert_eq!(go(&[0x90], 0, &NoSyms), "NOPL");
        assert_eq!(go(&[0x66, 0x90], 0, &NoSyms), "NOPW");
        assert_eq!(go(&[0x0f, 0x1f, 0x00], 0, &NoSyms), "NOPL 0(AX)");
        assert_eq!(
            go(&[0x48, 0x8b, 0x0c, 0x02], 0, &NoSyms),
            "MOVQ 0(DX)(AX*1), CX"
        );
        assert_eq!(
            go(
                &[0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff],
                0,
                &NoSyms
            ),
            "MOVQ FS:0xfffffff8, R14"
        );
        assert_eq!(
            go(&[0xf3, 0x48, 0xab], 0, &NoSyms),
            "REP; STOSQ AX, ES:0(DI)"
        );
        assert_eq!(
            go(&[0xf2, 0x0f, 0x10, 0x00], 0, &NoSyms),
            "MOVSD_XMM 0(AX), X0"
        );
        assert_eq!(go(&[0x7d, 0x18], 0x401019, &NoSyms), "JGE 0x401033");
        assert_eq!(
            go(
                &[0x48, 0x8b, 0x0d, 0x29, 0x5d, 0x13, 0x00],
                0x401008,
                &OneSym
            ),
            "MOVQ internal/abi.kindNames+8(SB), CX"
        );
        assert_eq!(
            go(
                &[0x48, 0x8d, 0x0d, 0x9e, 0x1d, 0x0c, 0x00],
                0x40109b,
                &NoSyms
            ),
            "LEAQ 0xc1d9e(IP), CX"
        );
        assert_eq!(
            go(&[0x40, 0x88, 0x74, 0x24, 0x4f], 0, &NoSyms),
            "MOVB SI, 0x4f(SP)"
        );
    }

    fn go_ver(minor: u32, hex: &str) -> String {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut x = X86::new(Dialect::for_version(Some(minor)));
        let mut s = String::new();
        let (n, _) = x.decode(&bytes, 0x401000, &NoSyms, true, &mut s);
        assert_eq!(n, bytes.len(), "{s}");
        s
    }

    // Expected strings: `go tool objdump` of the toolchain named on each
    // line, on these bytes in the matrix binaries.
    #[test]
    fn objdump_prefixes_masks_and_old_vex() {
        for (minor, hex, want) in [
            (19, "ca56a9", "LRET $0xa956"),
            (19, "3e99", "DS CDQ"),
            (19, "c4c17e7f22", "VMOVDQU X4, 0(DX)"),
            (26, "66662e0f1f840000000000", "CS NOPW 0(AX)(AX*1)"),
            (27, "62f26dc975eb", "VPERMI2B.Z Z3, Z2, K1, Z5"),
            (27, "62f2fd498bc9", "VPCOMPRESSQ Z1, K1, Z1"),
            (27, "62f1fe487f5c2402", "VMOVDQU64 Z3, 0x80(SP)"),
        ] {
            assert_eq!(go_ver(minor, hex), want, "go1.{minor} {hex}");
        }
    }
}

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
//! The parts, along the printer's seams:
//!
//! - `operands`: how each operand is spelled (registers, shifts,
//!   arrangements and lanes, immediates, memory operands, conditions);
//! - `syntax`: the mnemonic (Go's names for loads and stores, `W`/`F`/`V`
//!   marks) and the operand order, after `alias`: the fixed forms and
//!   the Arm ARM's preferred aliases;
//!
//! What the instruction does, for the annotator, is deferscope-decode's
//! answer ([`deferscope_decode::facts_arm64`]): the decoder here keeps only
//! the state it needs, the REGTMP base set by the instruction before.
//!
//! Spellings are data: [`COND_NAMES`], [`NO_W_SUFFIX`], [`ALIAS_OP`],
//! [`HINT_NAMES`].
//!
//! Printing allocates nothing per instruction (most of a whole-binary
//! listing's time is here): operands are written one after another into
//! a reused buffer and then copied into the line in Go's order, opcode
//! names (yaxpeax-arm's variant names) are made once per opcode with their
//! [`ALIAS_OP`]/[`NO_W_SUFFIX`] flags, numbers go through the crate's
//! `push_dec`, and the format machinery is left to rare operands
//! (floating-point immediates, system registers).

mod alias;
mod operands;
mod syntax;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;

use deferscope_decode::{facts_arm64, regtmp_sp_base, Facts};
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Instruction, Opcode, Operand};

use crate::x86::Lookup;
use crate::{push_dec, Dialect};
use operands::{push_gpr, write_arg};
use syntax::Scratch;

pub use alias::HINT_NAMES;
pub use operands::COND_NAMES;
pub use syntax::{ALIAS_OP, NO_W_SUFFIX};

pub struct Arm64 {
    dialect: Dialect,
    dec: InstDecoder,
    /// The last instruction decoded, if it was an ADRP: `(pc, register,
    /// page address)`. The instruction right after it that uses the
    /// register completes the address (see the module doc).
    adrp: Cell<Option<(u64, u16, u64)>>,
    /// The last instruction decoded, if it set REGTMP to RSP plus a
    /// constant (`ADD $(1<<12), RSP, R27`, see
    /// [`deferscope_decode::regtmp_sp_base`]): `(pc, register, offset)`.
    /// The very next instruction's facts then name its slot `off(RSP)`.
    sp_base: Cell<Option<(u64, u16, i64)>>,
    /// Buffers and names reused from one instruction to the next.
    scratch: RefCell<Scratch>,
    /// An ADRP pair's instruction as printed plainly, and its memory operand.
    pair_scratch: RefCell<(String, String)>,
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
        if let Some((rd, k)) = regtmp_sp_base(&ins) {
            self.sp_base.set(Some((pc, rd, k)));
        }
        if go_syntax {
            if let Some((_, reg, page)) = pair {
                if self.adrp_pair(&ins, word, pc, (reg, page), syms, text) {
                    return (4, facts_arm64(&ins, pc, base));
                }
            }
            self.go_syntax(&ins, word, pc, syms, text);
        } else {
            let _ = write!(text, "{ins}");
        }
        (4, facts_arm64(&ins, pc, base))
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
}

/// No symbols: the memory operand of a pair is printed plainly first.
struct NoLookup;

impl Lookup for NoLookup {
    fn lookup(&self, _: u64) -> Option<(&str, u64)> {
        None
    }
}

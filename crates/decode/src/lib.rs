//! Stage 3 of the deferscope pipeline: **decode**.
//!
//! The analysis needs few facts from machine code, and needs them fast:
//! which direct calls a function makes, and which stores it makes to fixed
//! stack-pointer offsets (where the open-coded defer machinery keeps its
//! closure slots and its `deferBits` byte). This crate turns a function's
//! bytes into a stream of such [`Event`]s, per architecture:
//!
//! - amd64: decoded with iced-x86, so instruction boundaries are exact;
//! - arm64: fixed-width words, decoded here with a handful of bit masks
//!   (BL, STR/STRB/STUR/STURB/STP with SP as the base).
//!
//! [`scan_flow`] reports the same events plus the facts a control-flow and
//! value analysis needs (branches, returns, address loads, register moves,
//! loads and stores through any base register). It is a separate entry
//! point so that [`scan`] keeps its cost for the classifier.
//!
//! [`call_candidates`] is a cheap pre-filter over a whole text section: it
//! finds the byte patterns of direct calls to a small set of targets without
//! decoding, so callers decode only the functions that may matter.
//!
//! The disassembler, which decodes every instruction anyway, asks for the
//! [`facts`] of one decoded instruction instead ([`facts_amd64`],
//! [`facts_arm64`]): what it stores, loads, tests, calls and writes. Both
//! kinds of answer come from one classification per architecture (one
//! list of store mnemonics on amd64, one list of store opcodes on arm64),
//! so the classifier and the annotated listing agree on what a store is.

pub mod amd64;
pub mod arm64;
pub mod facts;

pub use amd64::facts as facts_amd64;
pub use arm64::{facts as facts_arm64, regtmp_sp_base};
pub use deferscope_load::Arch;
pub use facts::Facts;

/// One fact about one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A direct call (`CALL rel32` / `BL imm26`) to `target`.
    Call { pc: u64, target: u64 },
    /// A store of `size` bytes to `offset(SP)`. `zero` is true when the
    /// stored value is known to be zero (X15 / ZR / `$0` / a register just
    /// cleared), as in a prologue that zeroes slots.
    StackStore {
        pc: u64,
        offset: i64,
        size: u8,
        zero: bool,
    },
    /// A branch ending a basic block ([`scan_flow`] only): `target` is
    /// `None` for an indirect jump (jump table, tail call through a
    /// register); `cond` when execution may also fall through to `next`.
    Jump {
        pc: u64,
        next: u64,
        target: Option<u64>,
        cond: bool,
    },
    /// A return (`RET`) ([`scan_flow`] only).
    Ret { pc: u64, next: u64 },
    /// An instruction that stops execution (`UD2`, `INT3`, `BRK`)
    /// ([`scan_flow`] only).
    Halt { pc: u64, next: u64 },
    /// An indirect call (`CALL reg` / `CALL mem` / `BLR`) ([`scan_flow`] only).
    CallIndirect { pc: u64 },
    /// `reg` := the static address `addr` (`LEAQ sym(SB), reg`; `ADRP` +
    /// `ADD` on arm64) ([`scan_flow`] only).
    AddrLoad { pc: u64, reg: u8, addr: u64 },
    /// `reg` := SP + `offset` (`LEAQ off(SP), reg`; `ADD $off, RSP, reg`)
    /// ([`scan_flow`] only).
    SpAddr { pc: u64, reg: u8, offset: i64 },
    /// `reg` := `base` + `offset` for a general register `base` other
    /// than SP (`LEAQ off(base), reg`; `ADD $off, base, reg`)
    /// ([`scan_flow`] only).
    RegAddr {
        pc: u64,
        reg: u8,
        base: u8,
        offset: i64,
    },
    /// `reg` := the constant `value` (`MOVL $v, reg`, `XORL reg, reg`;
    /// `MOVZ`, `ORR $v, ZR, reg`) ([`scan_flow`] only).
    Const { pc: u64, reg: u8, value: u64 },
    /// `dst` := `src`, a register copy ([`scan_flow`] only); `narrow`:
    /// of the low 32 bits, zero-extended (`MOVL BX, CX`).
    Move {
        pc: u64,
        dst: u8,
        src: u8,
        narrow: bool,
    },
    /// A word store to `offset(base)`; `base` is [`SP`] for the stack
    /// pointer; `src` is `None` when the value is not a plain register
    /// (an immediate, the zero register) ([`scan_flow`] only).
    Store {
        pc: u64,
        base: u8,
        offset: i64,
        src: Option<u8>,
        size: u8,
    },
    /// A word load `dst` := `offset(base)` ([`scan_flow`] only).
    Load {
        pc: u64,
        dst: u8,
        base: u8,
        offset: i64,
    },
    /// `reg` gets a value this decoder does not follow ([`scan_flow`] only).
    Clobber { pc: u64, reg: u8 },
}

/// Register number of the stack pointer in [`Event`]s.
pub const SP: u8 = 255;

/// Register numbers in [`Event`]s: amd64 `AX`=0, `CX`=1, `DX`=2, `BX`=3,
/// `SP`=4 (reported as [`SP`]), `BP`=5, `SI`=6, `DI`=7, `R8`..`R15`=8..15;
/// arm64 `R0`..`R30` = 0..30.
pub mod reg {
    pub const AMD64_AX: u8 = 0;
    pub const AMD64_BX: u8 = 3;
    pub const ARM64_R0: u8 = 0;
}

/// Decode `code`, which starts at virtual address `entry`, and report every
/// [`Event`] to `sink`.
pub fn scan(arch: Arch, code: &[u8], entry: u64, sink: impl FnMut(Event)) {
    match arch {
        Arch::Amd64 => amd64::scan(code, entry, sink),
        Arch::Arm64 => arm64::scan(code, entry, sink),
    }
}

/// Like [`scan`], plus the control-flow and value events ([`Event::Jump`],
/// [`Event::Ret`], [`Event::AddrLoad`], [`Event::Store`], ...).
pub fn scan_flow(arch: Arch, code: &[u8], entry: u64, sink: impl FnMut(Event)) {
    match arch {
        Arch::Amd64 => amd64::scan_flow(code, entry, sink),
        Arch::Arm64 => arm64::scan_flow(code, entry, sink),
    }
}

/// The width in bytes of the first atomic store in `code` (at `entry`):
/// what the compiler emits for its `atomic.Store*` intrinsics (ssagen
/// `addF(".../atomic", "Store", ...)`): `XCHGL`/`XCHGQ` with a memory
/// operand on amd64 (an exchange with memory is locked), `STLRB`/`STLRW`/
/// `STLR` on arm64 (Arm ARM C6.2: `size 001000 100 11111 1 11111 Rn Rt`).
pub fn first_atomic_store(arch: Arch, code: &[u8], entry: u64) -> Option<u8> {
    match arch {
        Arch::Amd64 => amd64::first_atomic_store(code, entry),
        Arch::Arm64 => code.chunks_exact(4).find_map(|w| {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            (w & 0x3fff_fc00 == 0x089f_fc00).then(|| 1u8 << (w >> 30))
        }),
    }
}

/// Addresses in `text` (at virtual address `base`) that hold what looks like
/// a direct call to one of `targets`. Some may not be instruction starts on
/// amd64; decode the containing function to confirm.
pub fn call_candidates(arch: Arch, text: &[u8], base: u64, targets: &[u64]) -> Vec<u64> {
    match arch {
        Arch::Amd64 => amd64::call_candidates(text, base, targets),
        Arch::Arm64 => arm64::call_candidates(text, base, targets),
    }
}

/// A write to memory at `offset(base)` of `size` bytes (registers as in
/// [`Event`]; `base` is [`SP`] for the stack pointer), by any instruction
/// that writes its memory operand: plain stores and read-modify-write
/// arithmetic (`ADDQ $5, 0(AX)`) on amd64; `STR*`, `STUR*`, `STP` on arm64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemWrite {
    pub pc: u64,
    pub base: u8,
    pub offset: i64,
    pub size: u8,
}

/// Every [`MemWrite`] in `code` (at `entry`), in address order: what a
/// deferred closure's body writes through the pointers it captured
/// (deferscope-analyze's `writes_results`).
pub fn mem_writes(arch: Arch, code: &[u8], entry: u64, sink: impl FnMut(MemWrite)) {
    match arch {
        Arch::Amd64 => amd64::mem_writes(code, entry, sink),
        Arch::Arm64 => arm64::mem_writes(code, entry, sink),
    }
}

#[cfg(test)]
mod atomic_store_tests {
    use super::*;

    /// go1.21 `sync.(*Once).doSlow.func2` (`defer atomic.StoreUint32(&o.done,
    /// 1)`), as `go tool objdump` lists it: amd64 `MOVL $0x1, CX; XCHGL CX,
    /// 0(AX)`, arm64 `STLRW R1, (R0)` (0x889ffc01); the 64-bit forms
    /// `XCHGQ` (REX.W) and `STLR` (size 11).
    #[test]
    fn atomic_stores() {
        let amd = [0xb9, 1, 0, 0, 0, 0x87, 0x08, 0xc3];
        assert_eq!(first_atomic_store(Arch::Amd64, &amd, 0x1000), Some(4));
        assert_eq!(
            first_atomic_store(Arch::Amd64, &[0x48, 0x87, 0x08], 0),
            Some(8)
        );
        // XCHGL CX, AX (registers only) is no store.
        assert_eq!(first_atomic_store(Arch::Amd64, &[0x87, 0xc8], 0), None);
        let arm = [0xb24003e1u32, 0x889ffc01, 0xd65f03c0];
        let b: Vec<u8> = arm.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(first_atomic_store(Arch::Arm64, &b, 0), Some(4));
        let b64 = 0xc89ffc01u32.to_le_bytes();
        assert_eq!(first_atomic_store(Arch::Arm64, &b64, 0), Some(8));
        assert_eq!(
            first_atomic_store(Arch::Arm64, &arm[0].to_le_bytes(), 0),
            None
        );
    }
}

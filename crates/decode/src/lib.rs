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
//! [`call_candidates`] is a cheap pre-filter over a whole text section: it
//! finds the byte patterns of direct calls to a small set of targets without
//! decoding, so callers decode only the functions that may matter.

pub mod amd64;
pub mod arm64;

pub use deferscope_load::Arch;

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
}

/// Decode `code`, which starts at virtual address `entry`, and report every
/// [`Event`] to `sink`.
pub fn scan(arch: Arch, code: &[u8], entry: u64, sink: impl FnMut(Event)) {
    match arch {
        Arch::Amd64 => amd64::scan(code, entry, sink),
        Arch::Arm64 => arm64::scan(code, entry, sink),
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

//! Architecture-neutral facts about one instruction: what it stores,
//! loads, tests, calls and writes, for the annotated disassembly's defer
//! labels (deferscope-disasm's `annotate`).
//!
//! The disassembler decodes every instruction once, for its text, and
//! asks this crate for the facts of the decoded instruction
//! ([`crate::facts_amd64`] on an iced-x86 `Instruction`,
//! [`crate::facts_arm64`] on a yaxpeax-arm one). Which instructions count
//! as stores is decided once per architecture, for these facts and for
//! the events of [`crate::scan`] alike.

/// A register, as the decoder numbers its 64-bit family.
pub type RegId = u16;

/// A value an instruction stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A constant (including the zero registers X15 and ZR).
    Imm(u64),
    Reg(RegId),
}

/// What an instruction does with an SP-relative slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemOp {
    Store(Value),
    Load(RegId),
    /// Test the slot against a constant mask.
    Test(u64),
    Other,
}

/// An access to `off(SP)` of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpMem {
    pub off: i64,
    pub size: u8,
    pub op: MemOp,
}

/// A register-with-constant operation of the kind the deferBits code uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImmOp {
    Or(u64),
    And(u64),
    Test(u64),
    /// Branch if bit `n` is zero / non-zero (arm64 TBZ / TBNZ).
    BitZero(u8),
    BitNonZero(u8),
}

/// A call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Direct(u64),
    Indirect,
}

/// Everything `annotate` needs from one instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub call: Option<Call>,
    pub sp: Option<SpMem>,
    /// `(op, register, source register)`; the source is the register the
    /// value came from when it differs from the destination (arm64
    /// three-operand forms), else the destination itself.
    pub imm_op: Option<(ImmOp, RegId, RegId)>,
    /// `reg = SP + off`.
    pub lea_sp: Option<(RegId, i64)>,
    /// `(dest, src, imm)`: `dest = src + imm` (arm64 `ADD $imm, Rn, Rd`,
    /// which completes an address beyond 4 KiB of SP after `ADD
    /// $(1<<12), RSP, Rn`).
    pub add_imm: Option<(RegId, RegId, i64)>,
    /// The register the instruction writes, if any.
    pub dest: Option<RegId>,
    /// A register-to-register copy: `(dest, src)`.
    pub copy: Option<(RegId, RegId)>,
}

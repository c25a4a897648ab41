//! Which instruction the counters mode replaces at each point, and whether
//! it may: the plan-time half of the binary rewriting (no process needed).
//!
//! A point is patched in one of two ways:
//!
//! - **call**: a 5-byte `CALL rel32` (`runtime.deferproc*` of a stack- or
//!   heap-allocated defer, or a call of `runtime.gopanic` /
//!   `runtime.gorecover`) gets a new rel32 that reaches a trampoline; the
//!   trampoline counts and *jumps* to the original callee. The return
//!   address the CPU pushed is the original one, so the callee, the
//!   unwinder and `runtime.Callers` see exactly what they see untraced.
//!   Flags need no care: "the arithmetic status flags are treated like
//!   scratch registers and not preserved across calls"
//!   (cmd/compile/abi-internal.md; assembly ABI0 functions assume nothing
//!   either), and `LOCK INC` leaves DF, the one flag the ABI fixes, alone.
//!   `LOCK` makes every increment atomic, so counts are exact with any
//!   number of threads.
//! - **relocate**: the instruction at the point (an open-coded defer's
//!   closure-slot store, or the first instructions of a runtime function
//!   after its stack check), and as many following instructions as it
//!   takes to free 5 bytes, move to a trampoline that counts before (or
//!   after) them and jumps back; a `JMP rel32` replaces them, padded with
//!   `int3`.
//!
//! Each function is decoded whole (its pclntab range) once, and a point is
//! patched only when all of this holds, else it keeps a breakpoint and the
//! reason is reported ([`Fallback`]):
//!
//! - the point is an instruction boundary of its function;
//! - every relocated instruction can run at another address: it does not
//!   branch, call or return, and its memory operands can only be the stack
//!   (`SP`), `g` (`R14`) or RIP-relative data (re-encoded for the new
//!   address), so it cannot fault inside the trampoline, where the runtime
//!   could not make a Go panic of the fault; no system call, division,
//!   string instruction or segment override;
//! - no branch of the function targets the inside of the replaced bytes
//!   (its direct branches, and the entries of its jump tables: Go's amd64
//!   switch tables are read from rodata through the `LEAQ table(IP), R;
//!   JMP 0(R)(I*8)` pair; a function with an indirect jump whose table
//!   cannot be read gets no multi-instruction patch);
//! - the flags that `lock inc` changes (OF, SF, ZF, AF, PF) are dead where
//!   the increment runs: a walk of every path from there meets an
//!   instruction that writes each of them, a call, a return or a trap
//!   before any instruction that reads one.

use std::collections::HashMap;
use std::rc::Rc;

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register, RflagsBits,
};
use serde::Serialize;

/// The flags a `lock inc` writes.
const INC_FLAGS: u32 =
    RflagsBits::OF | RflagsBits::SF | RflagsBits::ZF | RflagsBits::AF | RflagsBits::PF;

/// Bytes of the `JMP rel32` / `CALL rel32` a patch writes.
pub const PATCH_LEN: usize = 5;

/// Why a point keeps a breakpoint in counters mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// The point is not in any function of the pclntab, or the function
    /// cannot be read or decoded.
    NoFunction,
    /// The point is not an instruction boundary of its function.
    NotInstruction,
    /// A stack- or heap-allocated site whose instruction is not a 5-byte
    /// `CALL rel32`.
    NotDirectCall,
    /// An instruction that would be moved cannot run elsewhere.
    Unrelocatable,
    /// A branch targets the inside of the bytes that would be replaced, or
    /// the function has an indirect jump whose targets are unknown.
    BranchTarget,
    /// Attach mode: the patch would replace more than one instruction in a
    /// function the runtime may preempt asynchronously, and a preempted
    /// goroutine may be parked with its pc between them.
    AttachMultiInstruction,
    /// Attach mode: a thread's pc, or a pc saved in a signal frame on its
    /// stack, is inside the bytes that would be replaced.
    ThreadInside,
    /// The trampoline block could not be mapped within reach of the text,
    /// or a trampoline could not be encoded there.
    NoBlock,
}

impl Fallback {
    pub const ALL: [Fallback; 8] = [
        Fallback::NoFunction,
        Fallback::NotInstruction,
        Fallback::NotDirectCall,
        Fallback::Unrelocatable,
        Fallback::BranchTarget,
        Fallback::AttachMultiInstruction,
        Fallback::ThreadInside,
        Fallback::NoBlock,
    ];

    /// The name used in the JSON report (`flags-live`).
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NoFunction => "no-function",
            Fallback::NotInstruction => "not-instruction",
            Fallback::NotDirectCall => "not-direct-call",
            Fallback::Unrelocatable => "unrelocatable",
            Fallback::BranchTarget => "branch-target",
            Fallback::AttachMultiInstruction => "attach-multi-instruction",
            Fallback::ThreadInside => "thread-inside",
            Fallback::NoBlock => "no-block",
        }
    }
}

/// How a point's bytes are rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// `CALL rel32` to `target` (link-time) becomes a call of the
    /// trampoline, which counts and jumps to `target`.
    Call { target: u64 },
    /// `insns` instructions move to the trampoline, with the increment
    /// where `count` says.
    Relocate { insns: u8, count: Count },
    /// `CALL rel32` of `runtime.deferreturn` (at `target`) becomes a call
    /// of a trampoline that counts the frame's pending `_defer` records
    /// and keeps the largest count seen in the point's slot
    /// ([`crate::tramp`]), then jumps to `target`.
    Pending { target: u64, layout: DeferLayout },
}

/// Where the `_defer` list lives, for the Go versions whose layout is known
/// (docs/design.md §3.4, §3.7): `g._defer` and the record's `sp` and
/// `link`; from go1.22 also `rangefunc` and `head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferLayout {
    /// Offset of `_defer` in `runtime.g`.
    pub g_defer: u8,
    /// Offset of `sp` in `runtime._defer`.
    pub sp: u8,
    /// Offset of `link` in `runtime._defer`.
    pub link: u8,
    /// Offsets of `rangefunc` (a bool) and `head` (an
    /// `*atomic.Pointer[_defer]`) in `runtime._defer` (go1.22+).
    pub rangefunc: Option<(u8, u8)>,
}

impl DeferLayout {
    /// The layout for Go 1.`minor` on amd64 (64-bit), if known: go1.18 to
    /// go1.21 `sp@8 link@40`; go1.22 to go1.27 `sp@8 link@32 rangefunc@1
    /// head@40`; `g._defer` at 40 in all (the DWARF of `runtime.g` and
    /// `runtime._defer` in the binaries of go1.19, go1.21.13 to go1.27.3).
    pub fn for_minor(minor: u32) -> Option<DeferLayout> {
        match minor {
            18..=21 => Some(DeferLayout {
                g_defer: 40,
                sp: 8,
                link: 40,
                rangefunc: None,
            }),
            22..=27 => Some(DeferLayout {
                g_defer: 40,
                sp: 8,
                link: 32,
                rangefunc: Some((1, 40)),
            }),
            _ => None,
        }
    }
}

/// Where a relocating trampoline counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Before the moved instructions (the flags are dead there).
    Before,
    /// After them (the flags are dead only there).
    After,
    /// Before them, inside `PUSHFQ`/`POPFQ` (the flags are live).
    SaveFlags,
}

/// One planned patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Link-time address of the first replaced byte.
    pub pc: u64,
    /// The replaced bytes, from the file (5 for a call, the whole
    /// instructions for a relocation).
    pub orig: Vec<u8>,
    pub rewrite: Rewrite,
    /// The function is one the runtime never preempts asynchronously
    /// (`runtime.*`, `internal/runtime/*`, `runtime/internal/*`,
    /// `reflect.*`; `isAsyncSafePoint` in runtime/preempt.go, go1.19 to
    /// go1.27).
    pub no_async_preempt: bool,
}

impl Patch {
    /// More than one instruction is replaced: a pc between them would
    /// land inside the new `JMP`.
    pub fn multi(&self) -> bool {
        matches!(self.rewrite, Rewrite::Relocate { insns, .. } if insns > 1)
    }

    /// Link-time addresses strictly inside the replaced bytes that are
    /// instruction boundaries of the original code: where a pc saved
    /// before the patch (a signal frame's, a preempted goroutine's) would
    /// resume mid-`JMP`.
    pub fn interior_starts(&self) -> Vec<u64> {
        let Rewrite::Relocate { insns, .. } = self.rewrite else {
            return Vec::new();
        };
        let mut dec = Decoder::with_ip(64, &self.orig, self.pc, DecoderOptions::NONE);
        dec.iter()
            .take(insns as usize)
            .skip(1)
            .map(|i| i.ip())
            .collect()
    }
}

/// What a point wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// A direct call to redirect.
    Call,
    /// An instruction (or a few) to relocate.
    Relocate,
}

/// A function decoded whole.
struct FuncCode {
    insns: Vec<Instruction>,
    /// Sorted branch targets inside the function.
    targets: Vec<u64>,
    /// An indirect jump whose targets are unknown.
    unresolved: bool,
    /// Jump-table targets of the indirect jump at an instruction index.
    tables: HashMap<usize, Vec<u64>>,
    no_async_preempt: bool,
}

impl FuncCode {
    fn index_of(&self, pc: u64) -> Option<usize> {
        self.insns.binary_search_by_key(&pc, |i| i.ip()).ok()
    }

    fn is_target(&self, pc: u64) -> bool {
        self.targets.binary_search(&pc).is_ok()
    }
}

/// Plans patches over one binary, decoding each function at most once.
pub struct Planner<'r, 'd> {
    read: &'r dyn Fn(u64, u64) -> Option<&'d [u8]>,
    /// Every function as (entry, end, name), in address order.
    funcs: &'r [(u64, u64, String)],
    cache: HashMap<u64, Option<Rc<FuncCode>>>,
    /// Bytes decoded so far (a cost measure).
    pub decoded_bytes: u64,
}

impl<'r, 'd> Planner<'r, 'd> {
    /// `read(addr, len)` gives the file's bytes at link-time addresses;
    /// `funcs` is sorted by entry.
    pub fn new(
        read: &'r dyn Fn(u64, u64) -> Option<&'d [u8]>,
        funcs: &'r [(u64, u64, String)],
    ) -> Planner<'r, 'd> {
        Planner {
            read,
            funcs,
            cache: HashMap::new(),
            decoded_bytes: 0,
        }
    }

    /// The patch for the point at `pc`, or why it keeps a breakpoint.
    pub fn plan(&mut self, pc: u64, want: Want) -> Result<Patch, Fallback> {
        let fc = self.func_code(pc).ok_or(Fallback::NoFunction)?;
        let i = fc.index_of(pc).ok_or(Fallback::NotInstruction)?;
        let ins = &fc.insns[i];
        let bytes = |len: usize| -> Result<Vec<u8>, Fallback> {
            (self.read)(pc, len as u64)
                .map(<[u8]>::to_vec)
                .ok_or(Fallback::NoFunction)
        };
        match want {
            Want::Call => {
                if ins.code() != Code::Call_rel32_64 || ins.len() != PATCH_LEN {
                    return Err(Fallback::NotDirectCall);
                }
                Ok(Patch {
                    pc,
                    orig: bytes(PATCH_LEN)?,
                    rewrite: Rewrite::Call {
                        target: ins.near_branch_target(),
                    },
                    no_async_preempt: fc.no_async_preempt,
                })
            }
            Want::Relocate => {
                let (n, len) = relocation(&fc, i)?;
                let count = if flags_dead(&fc, i) {
                    Count::Before
                } else if fc.insns.get(i + n).is_some_and(|_| flags_dead(&fc, i + n)) {
                    Count::After
                } else {
                    Count::SaveFlags
                };
                Ok(Patch {
                    pc,
                    orig: bytes(len)?,
                    rewrite: Rewrite::Relocate {
                        insns: n as u8,
                        count,
                    },
                    no_async_preempt: fc.no_async_preempt,
                })
            }
        }
    }

    /// Whether `pc` is an instruction boundary of its function.
    pub fn is_instruction(&mut self, pc: u64) -> bool {
        self.func_code(pc).is_some_and(|f| f.index_of(pc).is_some())
    }

    fn func_code(&mut self, pc: u64) -> Option<Rc<FuncCode>> {
        let k = self.funcs.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        let (entry, end, ref name) = self.funcs[k];
        if pc >= end {
            return None;
        }
        if let Some(c) = self.cache.get(&entry) {
            return c.clone();
        }
        let fc = self.decode(entry, end, name).map(Rc::new);
        self.cache.insert(entry, fc.clone());
        fc
    }

    fn decode(&mut self, entry: u64, end: u64, name: &str) -> Option<FuncCode> {
        let body = (self.read)(entry, end.checked_sub(entry)?)?;
        self.decoded_bytes += body.len() as u64;
        let mut insns = Vec::with_capacity(body.len() / 4);
        let mut dec = Decoder::with_ip(64, body, entry, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while dec.can_decode() {
            dec.decode_out(&mut ins);
            if ins.is_invalid() {
                return None;
            }
            insns.push(ins);
        }
        let mut targets = Vec::new();
        let mut tables = HashMap::new();
        let mut unresolved = false;
        for (k, ins) in insns.iter().enumerate() {
            match ins.flow_control() {
                FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch
                    if is_near(ins) =>
                {
                    let t = ins.near_branch_target();
                    if (entry..end).contains(&t) {
                        targets.push(t);
                    }
                }
                FlowControl::IndirectBranch => match self.jump_table(&insns, k, entry, end) {
                    Some(t) => {
                        targets.extend_from_slice(&t);
                        tables.insert(k, t);
                    }
                    None => unresolved = true,
                },
                _ => {}
            }
        }
        targets.sort_unstable();
        targets.dedup();
        Some(FuncCode {
            insns,
            targets,
            unresolved,
            tables,
            no_async_preempt: [
                "runtime.",
                "internal/runtime/",
                "runtime/internal/",
                "reflect.",
            ]
            .iter()
            .any(|p| name.starts_with(p)),
        })
    }

    /// The targets of a Go jump table: `JMP 0(R)(I*8)` after
    /// `LEAQ table(IP), R`; the table's entries are absolute addresses,
    /// read while they fall inside the function (a superset of the table
    /// when another of the function's tables follows: conservative).
    fn jump_table(
        &self,
        insns: &[Instruction],
        k: usize,
        entry: u64,
        end: u64,
    ) -> Option<Vec<u64>> {
        let jmp = &insns[k];
        if jmp.op_count() != 1 || jmp.op0_kind() != OpKind::Memory {
            return None;
        }
        let base = jmp.memory_base();
        if base == Register::None
            || jmp.memory_index_scale() != 8
            || jmp.memory_displacement64() != 0
        {
            return None;
        }
        let lea = insns[k.saturating_sub(8)..k].iter().rev().find(|i| {
            i.op_count() == 2 && i.op0_kind() == OpKind::Register && i.op0_register() == base
        })?;
        if lea.mnemonic() != Mnemonic::Lea || !lea.is_ip_rel_memory_operand() {
            return None;
        }
        let table = lea.ip_rel_memory_address();
        let mut out = Vec::new();
        for n in 0..4096u64 {
            let Some(w) = (self.read)(table + 8 * n, 8) else {
                break;
            };
            let t = u64::from_le_bytes(w.try_into().ok()?);
            if !(entry..end).contains(&t) {
                break;
            }
            out.push(t);
        }
        (!out.is_empty()).then_some(out)
    }
}

fn is_near(ins: &Instruction) -> bool {
    matches!(
        ins.op0_kind(),
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    )
}

/// The instructions to move from index `i` on: as many as free 5 bytes.
fn relocation(fc: &FuncCode, i: usize) -> Result<(usize, usize), Fallback> {
    let (mut n, mut len) = (0, 0);
    while len < PATCH_LEN {
        let ins = fc.insns.get(i + n).ok_or(Fallback::Unrelocatable)?;
        if n > 0 && fc.is_target(ins.ip()) {
            return Err(Fallback::BranchTarget);
        }
        if !relocatable(ins) {
            return Err(Fallback::Unrelocatable);
        }
        len += ins.len();
        n += 1;
    }
    if n > 1 && fc.unresolved {
        return Err(Fallback::BranchTarget);
    }
    Ok((n, len))
}

/// Whether `ins` does the same at another address and cannot fault there.
pub fn relocatable(ins: &Instruction) -> bool {
    if ins.flow_control() != FlowControl::Next || ins.is_invalid() {
        return false;
    }
    if matches!(
        ins.mnemonic(),
        Mnemonic::Syscall
            | Mnemonic::Sysenter
            | Mnemonic::Div
            | Mnemonic::Idiv
            | Mnemonic::Cpuid
            | Mnemonic::Hlt
            | Mnemonic::Xabort
            | Mnemonic::Xend
            | Mnemonic::Xbegin
    ) {
        return false;
    }
    if ins.segment_prefix() != Register::None {
        return false;
    }
    for k in 0..ins.op_count() {
        match ins.op_kind(k) {
            OpKind::Memory => {
                let ok = match ins.memory_base() {
                    Register::RIP => ins.memory_index() == Register::None,
                    Register::RSP | Register::R14 => true,
                    _ => false,
                };
                if !ok {
                    return false;
                }
            }
            OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemorySegDI
            | OpKind::MemorySegEDI
            | OpKind::MemorySegRDI
            | OpKind::MemoryESDI
            | OpKind::MemoryESEDI
            | OpKind::MemoryESRDI => return false,
            _ => {}
        }
    }
    true
}

/// Whether the flags a `lock inc` writes are dead before instruction `i`:
/// on every path from it, each is written (or a call, return or trap is
/// met) before it is read. Unknown control flow counts as a read.
fn flags_dead(fc: &FuncCode, start: usize) -> bool {
    let mut work = vec![(start, INC_FLAGS)];
    // Flags already followed from each instruction: the walk for one flag
    // does not depend on the others, so a union is enough.
    let mut seen: HashMap<usize, u32> = HashMap::new();
    let mut steps = 0u32;
    while let Some((mut i, mut pending)) = work.pop() {
        loop {
            steps += 1;
            if steps > 20_000 {
                return false;
            }
            let s = seen.entry(i).or_insert(0);
            pending &= !*s;
            if pending == 0 {
                break;
            }
            *s |= pending;
            let Some(ins) = fc.insns.get(i) else {
                return false;
            };
            if ins.rflags_read() & pending != 0 {
                return false;
            }
            pending &= !ins.rflags_modified();
            if pending == 0 {
                break;
            }
            match ins.flow_control() {
                FlowControl::Next => i += 1,
                FlowControl::UnconditionalBranch if is_near(ins) => {
                    match fc.index_of(ins.near_branch_target()) {
                        Some(j) => i = j,
                        // A tail call: nothing is live at another
                        // function's entry.
                        None => break,
                    }
                }
                FlowControl::ConditionalBranch if is_near(ins) => {
                    match fc.index_of(ins.near_branch_target()) {
                        Some(j) => work.push((j, pending)),
                        None => return false,
                    }
                    i += 1;
                }
                FlowControl::IndirectBranch => match fc.tables.get(&i) {
                    Some(ts) => {
                        for &t in ts {
                            match fc.index_of(t) {
                                Some(j) => work.push((j, pending)),
                                None => return false,
                            }
                        }
                        break;
                    }
                    None => return false,
                },
                // No flag is live across a call or at a return in Go's
                // ABIs; a trap (INT3, UD2 after a call that does not
                // return) ends the path.
                FlowControl::Call
                | FlowControl::IndirectCall
                | FlowControl::Return
                | FlowControl::Interrupt
                | FlowControl::Exception => break,
                _ => return false,
            }
        }
    }
    true
}

/// Link-time addresses of `CALL rel32` instructions in `text` (starting at
/// `start`) whose target is one of `targets`: candidates only, to be
/// confirmed as instruction boundaries by decoding their function.
pub fn find_calls(text: &[u8], start: u64, targets: &[u64]) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for off in memchr::memchr_iter(0xe8, text) {
        let Some(rel) = text.get(off + 1..off + 5) else {
            break;
        };
        let rel = i32::from_le_bytes(rel.try_into().unwrap()) as i64;
        let pc = start + off as u64;
        let to = (pc as i64 + 5 + rel) as u64;
        if let Some(k) = targets.iter().position(|&t| t == to) {
            out.push((pc, k));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plan against one function made of `code` at 0x1000.
    fn plan_in(code: &[u8], pc: u64, want: Want) -> Result<Patch, Fallback> {
        let end = 0x1000 + code.len() as u64;
        let read = |a: u64, n: u64| -> Option<&[u8]> {
            let off = a.checked_sub(0x1000)? as usize;
            code.get(off..off + n as usize)
        };
        let funcs = vec![(0x1000, end, "main.f".to_string())];
        let mut p = Planner::new(&read, &funcs);
        p.plan(pc, want)
    }

    // MOVQ AX, 0x48(SP); MOVB $1, 6(SP); CMPQ AX, CX; JAE +0; RET
    const STORE_THEN_CMP: [u8; 17] = [
        0x48, 0x89, 0x44, 0x24, 0x48, 0xc6, 0x44, 0x24, 0x06, 0x01, 0x48, 0x39, 0xc8, 0x73, 0x00,
        0xc3, 0xcc,
    ];

    #[test]
    fn a_closure_store_is_relocated_alone() {
        let p = plan_in(&STORE_THEN_CMP, 0x1000, Want::Relocate).unwrap();
        assert_eq!(p.orig, STORE_THEN_CMP[..5]);
        assert_eq!(
            p.rewrite,
            Rewrite::Relocate {
                insns: 1,
                count: Count::Before
            }
        );
        assert!(!p.multi() && p.interior_starts().is_empty());
        // Not an instruction boundary.
        assert_eq!(
            plan_in(&STORE_THEN_CMP, 0x1001, Want::Relocate),
            Err(Fallback::NotInstruction)
        );
        // Not a call.
        assert_eq!(
            plan_in(&STORE_THEN_CMP, 0x1000, Want::Call),
            Err(Fallback::NotDirectCall)
        );
    }

    fn count_of(code: &[u8], pc: u64) -> Count {
        match plan_in(code, pc, Want::Relocate).unwrap().rewrite {
            Rewrite::Relocate { count, .. } => count,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn the_increment_goes_where_the_flags_are_dead() {
        // CMPQ AX, CX; MOVQ AX, 0x48(SP); JAE +0; RET: JAE reads only CF,
        // which inc keeps.
        let code = [
            0x48, 0x39, 0xc8, 0x48, 0x89, 0x44, 0x24, 0x48, 0x73, 0x00, 0xc3,
        ];
        assert_eq!(count_of(&code, 0x1003), Count::Before);
        // JE reads ZF, which inc writes: live before and after the store.
        let code = [
            0x48, 0x39, 0xc8, 0x48, 0x89, 0x44, 0x24, 0x48, 0x74, 0x00, 0xc3,
        ];
        assert_eq!(count_of(&code, 0x1003), Count::SaveFlags);
        // The store is followed by SETNE (reads ZF) on one path only, and
        // a CMPQ kills the flags on the other: still live.
        // MOVQ AX, 0x48(SP); JMP +3; CMPQ AX, CX; SETNE R8; RET
        let code = [
            0x48, 0x89, 0x44, 0x24, 0x48, 0xeb, 0x03, 0x48, 0x39, 0xc8, 0x41, 0x0f, 0x95, 0xc0,
            0xc3,
        ];
        assert_eq!(count_of(&code, 0x1000), Count::SaveFlags);
        // A moved instruction that reads the flags (SETNE into a stack
        // slot), then they die: count after it.
        // SETNE 8(SP); CMPQ AX, CX; RET
        let code = [0x0f, 0x95, 0x44, 0x24, 0x08, 0x48, 0x39, 0xc8, 0xc3];
        assert_eq!(count_of(&code, 0x1000), Count::After);
    }

    #[test]
    fn short_instructions_take_their_neighbours() {
        // PUSHQ BP; MOVQ SP, BP; SUBQ $0x58, SP; RET
        let code = [0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x58, 0xc3];
        let p = plan_in(&code, 0x1000, Want::Relocate).unwrap();
        assert_eq!(p.orig.len(), 8);
        assert!(p.multi());
        assert_eq!(p.interior_starts(), vec![0x1001, 0x1004]);
        // A branch to the MOVQ: its inside is a target.
        let code = [
            0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x58, 0xeb, 0xf7, 0xc3,
        ];
        assert_eq!(
            plan_in(&code, 0x1000, Want::Relocate),
            Err(Fallback::BranchTarget)
        );
    }

    #[test]
    fn faulting_or_moving_instructions_stay() {
        // MOVQ AX, 0(BX): may fault (nil pointer).
        let code = [0x48, 0x89, 0x03, 0x48, 0x89, 0x44, 0x24, 0x08, 0xc3];
        assert_eq!(
            plan_in(&code, 0x1000, Want::Relocate),
            Err(Fallback::Unrelocatable)
        );
        // CALL rel32 is a call, not something to relocate.
        let code = [0xe8, 0, 0, 0, 0, 0xc3];
        assert_eq!(
            plan_in(&code, 0x1000, Want::Relocate),
            Err(Fallback::Unrelocatable)
        );
        let p = plan_in(&code, 0x1000, Want::Call).unwrap();
        assert_eq!(p.rewrite, Rewrite::Call { target: 0x1005 });
    }

    #[test]
    fn calls_are_found_by_target() {
        // CALL 0x2000 at 0x1000, a byte 0xe8 inside an immediate, CALL
        // elsewhere.
        let mut t = vec![0xe8];
        t.extend_from_slice(&(0x2000i32 - 0x1005).to_le_bytes());
        t.extend_from_slice(&[0xb8, 0xe8, 0, 0, 0]);
        t.extend_from_slice(&[0xe8, 0, 0, 0, 0]);
        let found = find_calls(&t, 0x1000, &[0x3000, 0x2000]);
        assert_eq!(found, vec![(0x1000, 1)]);
    }
}

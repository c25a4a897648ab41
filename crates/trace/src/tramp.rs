//! The trampoline block: counters and code for a given address, and the
//! bytes each patched point gets. Pure (no process): the engine maps the
//! block, writes what this module encodes, and patches the text.
//!
//! Layout: counter `i` at `counters + 64 * i` (one cache line each, so
//! that threads counting different sites never share a line), then the
//! trampolines, each 16-byte aligned:
//!
//! ```text
//! call:      LOCK INCQ counter(IP); JMP callee           (13 bytes)
//! relocate:  [PUSHFQ] LOCK INCQ counter(IP) [POPFQ]      (count before)
//!            moved instructions (RIP-relative operands re-encoded)
//!            [LOCK INCQ counter(IP)]                     (count after)
//!            JMP back to the first byte after the replaced ones
//! ```
//!
//! A trampoline never calls: no return address inside the block ever
//! reaches a goroutine stack, where the runtime's unwinder would find a pc
//! outside Go code and throw ("unexpected return pc").

use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, Decoder, DecoderOptions, Instruction,
    InstructionBlock, MemoryOperand, Register,
};

use crate::rewrite::{Count, DeferLayout, Fallback, Patch, Rewrite, PATCH_LEN};

/// Bytes between counters.
pub const COUNTER_STRIDE: u64 = 64;
const PAGE: u64 = 4096;
const ALIGN: usize = 16;

/// Where the block's parts are, at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the block (page-aligned): counter 0.
    pub base: u64,
    pub counters: usize,
    /// Bytes reserved for code (page-aligned).
    pub code_len: u64,
}

impl Layout {
    /// The layout of a block at `base` for `counters` counters and
    /// `patches`.
    pub fn new<'a>(base: u64, counters: usize, patches: impl Iterator<Item = &'a Patch>) -> Layout {
        let code: u64 = patches.map(|p| max_len(p) as u64).sum();
        Layout {
            base,
            counters,
            code_len: round_up(code.max(1), PAGE),
        }
    }

    pub fn counters_len(&self) -> u64 {
        round_up((self.counters as u64 * COUNTER_STRIDE).max(1), PAGE)
    }

    pub fn counter(&self, i: usize) -> u64 {
        self.base + i as u64 * COUNTER_STRIDE
    }

    pub fn code(&self) -> u64 {
        self.base + self.counters_len()
    }

    pub fn len(&self) -> u64 {
        self.counters_len() + self.code_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same layout at another address.
    pub fn at(&self, base: u64) -> Layout {
        Layout { base, ..*self }
    }
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// An upper bound of a patch's trampoline, alignment included.
fn max_len(p: &Patch) -> usize {
    let body = match p.rewrite {
        Rewrite::Call { .. } => 8 + 5,
        // The walk of the `_defer` list and the maximum (`pending_tramp`):
        // 27 instructions of at most 10 bytes (9 of them rel32 branches of
        // 5 or 6, the longest a 9-byte LOCK CMPXCHG).
        Rewrite::Pending { .. } => 27 * 10,
        // PUSHFQ, LOCK INCQ, POPFQ, the instructions (re-encoding never
        // grows one by more than a few bytes; 8 is generous), JMP.
        Rewrite::Relocate { insns, .. } => 1 + 8 + 1 + p.orig.len() + 8 * insns as usize + 5,
    };
    body.next_multiple_of(ALIGN)
}

/// One point's patch, placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Index into the patches given to [`encode`].
    pub index: usize,
    /// Run-time address of the first replaced byte.
    pub addr: u64,
    /// The bytes there now (from the file).
    pub orig: Vec<u8>,
    /// What replaces them.
    pub new: Vec<u8>,
    /// The trampoline's run-time range.
    pub tramp: (u64, u64),
}

/// The block's code and every patch.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Bytes to write at [`Layout::code`].
    pub code: Vec<u8>,
    pub placed: Vec<Placed>,
    /// Patches that could not be encoded (a target out of rel32 reach):
    /// (index, reason).
    pub failed: Vec<(usize, Fallback)>,
}

/// Encode the trampoline of each `(counter, patch)` for a block laid out
/// as `layout`, with the program loaded at `bias` (run-time minus
/// link-time address).
pub fn encode(layout: &Layout, bias: u64, patches: &[(usize, &Patch)]) -> Encoded {
    let mut out = Encoded::default();
    let code_at = layout.code();
    for (index, &(counter, p)) in patches.iter().enumerate() {
        let at = code_at + out.code.len() as u64;
        let addr = p.pc.wrapping_add(bias);
        let ctr = layout.counter(counter);
        let tramp = match p.rewrite {
            Rewrite::Call { target } => call_tramp(at, ctr, target.wrapping_add(bias)),
            Rewrite::Relocate { insns, count } => relocate_tramp(at, ctr, addr, p, insns, count),
            Rewrite::Pending { target, layout } => {
                pending_tramp(at, ctr, target.wrapping_add(bias), layout)
            }
        };
        let Some(tramp) = tramp.filter(|t| t.len() <= max_len(p)) else {
            out.failed.push((index, Fallback::NoBlock));
            continue;
        };
        let Some(rel) = rel32(addr + PATCH_LEN as u64, at) else {
            out.failed.push((index, Fallback::NoBlock));
            continue;
        };
        let mut new = Vec::with_capacity(p.orig.len());
        new.push(match p.rewrite {
            Rewrite::Call { .. } | Rewrite::Pending { .. } => 0xe8,
            Rewrite::Relocate { .. } => 0xe9,
        });
        new.extend_from_slice(&rel.to_le_bytes());
        new.resize(p.orig.len(), 0xcc);
        let end = at + tramp.len() as u64;
        out.code.extend_from_slice(&tramp);
        out.code
            .resize(out.code.len().next_multiple_of(ALIGN), 0xcc);
        out.placed.push(Placed {
            index,
            addr,
            orig: p.orig.clone(),
            new,
            tramp: (at, end),
        });
    }
    out
}

/// `to - from` as a rel32, if it fits.
fn rel32(from: u64, to: u64) -> Option<i32> {
    i32::try_from(to.wrapping_sub(from) as i64).ok()
}

/// `LOCK INCQ ctr(IP); JMP target`, hand-encoded.
fn call_tramp(at: u64, ctr: u64, target: u64) -> Option<Vec<u8>> {
    let disp = rel32(at + 8, ctr)?;
    let rel = rel32(at + 13, target)?;
    let mut b = vec![0xf0, 0x48, 0xff, 0x05];
    b.extend_from_slice(&disp.to_le_bytes());
    b.push(0xe9);
    b.extend_from_slice(&rel.to_le_bytes());
    Some(b)
}

/// The trampoline of a `CALL runtime.deferreturn` (docs/design.md §3.7):
/// count the calling frame's pending `_defer` records and raise the slot
/// at `slot` to that count if it is larger, then `JMP deferreturn`.
///
/// At a call, every general register but SP, BP, R14 (g) and R15 is dead
/// in Go's ABIInternal (deferreturn takes no arguments), so AX, CX, DX
/// and SI are free, and so are the flags. The frame's records are the
/// list's first ones whose `sp` is the caller's SP (`RSP + 8` here: the
/// CALL pushed the return address; `deferproc*` recorded
/// `getcallersp()`, and a Go frame's SP does not move). A go1.22+ record
/// with `rangefunc` set stands for the records on its `head` list
/// (`deferconvert` splices them in at `deferreturn`), which are counted
/// instead; a head below 4096 (nil, or `badDefer()` = 1 once converted)
/// ends that walk.
///
/// ```text
///         MOVQ  g_defer(R14), AX
///         LEAQ  8(SP), DX
///         XORL  CX, CX
/// loop:   TESTQ AX, AX;  JEQ done
///         CMPQ  sp(AX), DX;  JNE done
///        [CMPB  rangefunc(AX), $0;  JNE rf]
///         INCQ  CX
/// next:   MOVQ  link(AX), AX;  JMP loop
/// rf:     MOVQ  head(AX), SI;  CMPQ SI, $4096;  JCS next
///         MOVQ  (SI), SI
/// rloop:  CMPQ  SI, $4096;  JCS next
///         INCQ  CX;  MOVQ link(SI), SI;  JMP rloop
/// done:   MOVQ  slot(IP), AX
/// raise:  CMPQ  CX, AX;  JLS out
///         LOCK CMPXCHGQ CX, slot(IP);  JNE raise
/// out:    JMP   deferreturn
/// ```
fn pending_tramp(at: u64, slot: u64, target: u64, l: DeferLayout) -> Option<Vec<u8>> {
    use iced_x86::Code as C;
    use iced_x86::Register::{R14, RAX, RCX, RDX, RSI, RSP};
    // Labels are fake instruction addresses (the block encoder resolves
    // branches to any instruction of the block by its `ip`).
    const LOOP: u64 = 1;
    const NEXT: u64 = 2;
    const RF: u64 = 3;
    const RLOOP: u64 = 4;
    const DONE: u64 = 5;
    const RAISE: u64 = 6;
    const OUT: u64 = 7;
    let m = |base: Register, d: u8| MemoryOperand::with_base_displ(base, i64::from(d));
    let rip = MemoryOperand::with_base_displ(Register::RIP, slot as i64);
    let br = |code: C, to: u64| Instruction::with_branch(code, to).ok();
    let mut v: Vec<(u64, Instruction)> = vec![
        (
            0,
            Instruction::with2(C::Mov_r64_rm64, RAX, m(R14, l.g_defer)).ok()?,
        ),
        (0, Instruction::with2(C::Lea_r64_m, RDX, m(RSP, 8)).ok()?),
        (
            0,
            Instruction::with2(C::Xor_r32_rm32, Register::ECX, Register::ECX).ok()?,
        ),
        (LOOP, Instruction::with2(C::Test_rm64_r64, RAX, RAX).ok()?),
        (0, br(C::Je_rel32_64, DONE)?),
        (
            0,
            Instruction::with2(C::Cmp_rm64_r64, m(RAX, l.sp), RDX).ok()?,
        ),
        (0, br(C::Jne_rel32_64, DONE)?),
    ];
    if let Some((rangefunc, _)) = l.rangefunc {
        v.push((
            0,
            Instruction::with2(C::Cmp_rm8_imm8, m(RAX, rangefunc), 0).ok()?,
        ));
        v.push((0, br(C::Jne_rel32_64, RF)?));
    }
    v.push((0, Instruction::with1(C::Inc_rm64, RCX).ok()?));
    v.push((
        NEXT,
        Instruction::with2(C::Mov_r64_rm64, RAX, m(RAX, l.link)).ok()?,
    ));
    v.push((0, br(C::Jmp_rel32_64, LOOP)?));
    if let Some((_, head)) = l.rangefunc {
        v.extend([
            (
                RF,
                Instruction::with2(C::Mov_r64_rm64, RSI, m(RAX, head)).ok()?,
            ),
            (0, Instruction::with2(C::Cmp_rm64_imm32, RSI, 4096).ok()?),
            (0, br(C::Jb_rel32_64, NEXT)?),
            (0, Instruction::with2(C::Mov_r64_rm64, RSI, m(RSI, 0)).ok()?),
            (
                RLOOP,
                Instruction::with2(C::Cmp_rm64_imm32, RSI, 4096).ok()?,
            ),
            (0, br(C::Jb_rel32_64, NEXT)?),
            (0, Instruction::with1(C::Inc_rm64, RCX).ok()?),
            (
                0,
                Instruction::with2(C::Mov_r64_rm64, RSI, m(RSI, l.link)).ok()?,
            ),
            (0, br(C::Jmp_rel32_64, RLOOP)?),
        ]);
    }
    let mut cmpxchg = Instruction::with2(C::Cmpxchg_rm64_r64, rip, RCX).ok()?;
    cmpxchg.set_has_lock_prefix(true);
    v.extend([
        (DONE, Instruction::with2(C::Mov_r64_rm64, RAX, rip).ok()?),
        (RAISE, Instruction::with2(C::Cmp_rm64_r64, RCX, RAX).ok()?),
        (0, br(C::Jbe_rel32_64, OUT)?),
        (0, cmpxchg),
        (0, br(C::Jne_rel32_64, RAISE)?),
        (OUT, br(C::Jmp_rel32_64, target)?),
    ]);
    // Instructions without a label get fake addresses past the labels'.
    let block: Vec<Instruction> = v
        .into_iter()
        .enumerate()
        .map(|(k, (label, mut ins))| {
            ins.set_ip(if label != 0 { label } else { 0x100 + k as u64 });
            ins
        })
        .collect();
    let r = BlockEncoder::encode(
        64,
        InstructionBlock::new(&block, at),
        BlockEncoderOptions::DONT_FIX_BRANCHES,
    )
    .ok()?;
    Some(r.code_buffer)
}

/// `LOCK INCQ ctr(IP)`.
fn lock_inc(ctr: u64) -> Option<Instruction> {
    let mut i = Instruction::with1(
        Code::Inc_rm64,
        MemoryOperand::with_base_displ(Register::RIP, ctr as i64),
    )
    .ok()?;
    i.set_has_lock_prefix(true);
    Some(i)
}

fn relocate_tramp(
    at: u64,
    ctr: u64,
    addr: u64,
    p: &Patch,
    insns: u8,
    count: Count,
) -> Option<Vec<u8>> {
    let mut dec = Decoder::with_ip(64, &p.orig, addr, DecoderOptions::NONE);
    let moved: Vec<Instruction> = dec.iter().take(insns as usize).collect();
    let moved_len: usize = moved.iter().map(Instruction::len).sum();
    if moved.len() != insns as usize || moved_len != p.orig.len() {
        return None;
    }
    if moved.iter().any(Instruction::is_ip_rel_memory_operand) {
        return relocate_tramp_encoded(at, ctr, addr, p, moved, count);
    }
    // Nothing refers to its own address: the bytes move as they are.
    let mut b = Vec::with_capacity(1 + 8 + 1 + p.orig.len() + 5);
    let inc = |b: &mut Vec<u8>| -> Option<()> {
        let disp = rel32(at + b.len() as u64 + 8, ctr)?;
        b.extend_from_slice(&[0xf0, 0x48, 0xff, 0x05]);
        b.extend_from_slice(&disp.to_le_bytes());
        Some(())
    };
    match count {
        Count::Before => inc(&mut b)?,
        Count::SaveFlags => {
            b.push(0x9c); // PUSHFQ
            inc(&mut b)?;
            b.push(0x9d); // POPFQ
        }
        Count::After => {}
    }
    b.extend_from_slice(&p.orig);
    if count == Count::After {
        inc(&mut b)?;
    }
    let back = rel32(at + b.len() as u64 + 5, addr + p.orig.len() as u64)?;
    b.push(0xe9);
    b.extend_from_slice(&back.to_le_bytes());
    Some(b)
}

/// [`relocate_tramp`] for instructions with a RIP-relative operand:
/// iced's block encoder re-encodes them for the new address.
fn relocate_tramp_encoded(
    at: u64,
    ctr: u64,
    addr: u64,
    p: &Patch,
    moved: Vec<Instruction>,
    count: Count,
) -> Option<Vec<u8>> {
    let mut block = Vec::with_capacity(moved.len() + 5);
    if count == Count::SaveFlags {
        block.push(Instruction::with(Code::Pushfq));
    }
    if count != Count::After {
        block.push(lock_inc(ctr)?);
    }
    if count == Count::SaveFlags {
        block.push(Instruction::with(Code::Popfq));
    }
    block.extend(moved);
    if count == Count::After {
        block.push(lock_inc(ctr)?);
    }
    block.push(Instruction::with_branch(Code::Jmp_rel32_64, addr + p.orig.len() as u64).ok()?);
    let r = BlockEncoder::encode(
        64,
        InstructionBlock::new(&block, at),
        BlockEncoderOptions::DONT_FIX_BRANCHES,
    )
    .ok()?;
    Some(r.code_buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Formatter, IntelFormatter};

    fn text(code: &[u8], ip: u64) -> Vec<String> {
        let mut f = IntelFormatter::new();
        let mut out = Vec::new();
        for i in Decoder::with_ip(64, code, ip, DecoderOptions::NONE).iter() {
            let mut s = String::new();
            f.format(&i, &mut s);
            out.push(s);
        }
        out
    }

    fn patch(pc: u64, orig: &[u8], rewrite: Rewrite) -> Patch {
        Patch {
            pc,
            orig: orig.to_vec(),
            rewrite,
            no_async_preempt: false,
        }
    }

    #[test]
    fn a_call_goes_through_its_trampoline_to_the_callee() {
        // CALL runtime.deferprocStack at 0x401000 (callee 0x402000), PIE
        // bias 0x1000_0000.
        let bias = 0x1000_0000;
        let p = patch(
            0x401000,
            &[0xe8, 0xfb, 0x0f, 0, 0],
            Rewrite::Call { target: 0x402000 },
        );
        let layout = Layout::new(0x1100_0000, 3, [&p].into_iter());
        let e = encode(&layout, bias, &[(2, &p)]);
        assert!(e.failed.is_empty());
        let pl = &e.placed[0];
        assert_eq!(pl.addr, 0x1040_1000);
        assert_eq!(pl.tramp.0, layout.code());
        // The site calls the trampoline; the trampoline counts and jumps.
        assert_eq!(
            text(&pl.new, pl.addr),
            [format!("call {:016X}h", layout.code())]
        );
        assert_eq!(
            text(&e.code[..13], layout.code()),
            [
                format!("lock inc qword ptr [{:X}h]", layout.counter(2)),
                "jmp 0000000010402000h".to_string()
            ]
        );
    }

    #[test]
    fn relocated_instructions_keep_their_meaning() {
        // LEAQ 0x100(IP), CX (RIP-relative: 0x401107); MOVQ CX, 0x30(SP).
        let orig = [
            0x48, 0x8d, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x48, 0x89, 0x4c, 0x24, 0x30,
        ];
        for count in [Count::Before, Count::After, Count::SaveFlags] {
            let p = patch(0x401000, &orig, Rewrite::Relocate { insns: 2, count });
            let layout = Layout::new(0x500000, 1, [&p].into_iter());
            let e = encode(&layout, 0, &[(0, &p)]);
            let pl = &e.placed[0];
            // JMP to the trampoline, padded with INT3.
            assert_eq!(pl.new.len(), 12);
            assert_eq!(pl.new[0], 0xe9);
            assert!(pl.new[5..].iter().all(|&b| b == 0xcc));
            let got = text(&e.code[..(pl.tramp.1 - pl.tramp.0) as usize], pl.tramp.0);
            let inc = "lock inc qword ptr [500000h]".to_string();
            let moved = [
                "lea rcx,[401107h]".to_string(),
                "mov [rsp+30h],rcx".to_string(),
            ];
            let mut want = Vec::new();
            match count {
                Count::Before => want.push(inc.clone()),
                Count::SaveFlags => {
                    want.extend(["pushfq".to_string(), inc.clone(), "popfq".to_string()])
                }
                Count::After => {}
            }
            want.extend(moved.iter().cloned());
            if count == Count::After {
                want.push(inc);
            }
            want.push("jmp 000000000040100Ch".to_string());
            assert_eq!(got, want, "{count:?}");
        }
    }

    #[test]
    fn a_stack_store_moves_as_it_is() {
        // MOVQ AX, 0x48(SP), flags live: PUSHFQ; LOCK INCQ; POPFQ; the
        // store; JMP back.
        let orig = [0x48, 0x89, 0x44, 0x24, 0x48];
        let p = patch(
            0x401000,
            &orig,
            Rewrite::Relocate {
                insns: 1,
                count: Count::SaveFlags,
            },
        );
        let layout = Layout::new(0x500000, 1, [&p].into_iter());
        let e = encode(&layout, 0, &[(0, &p)]);
        let pl = &e.placed[0];
        let got = text(&e.code[..(pl.tramp.1 - pl.tramp.0) as usize], pl.tramp.0);
        assert_eq!(
            got,
            [
                "pushfq",
                "lock inc qword ptr [500000h]",
                "popfq",
                "mov [rsp+48h],rax",
                "jmp 0000000000401005h"
            ]
        );
        let mut jmp = vec![0xe9];
        jmp.extend_from_slice(&((layout.code() as i64 - 0x401005) as i32).to_le_bytes());
        assert_eq!(pl.new, jmp);
    }

    #[test]
    fn a_deferreturn_call_walks_the_frame_s_records() {
        // go1.22+ layout: g._defer@40, sp@8, link@32, rangefunc@1, head@40.
        let layout = crate::rewrite::DeferLayout::for_minor(23).unwrap();
        let p = patch(
            0x401000,
            &[0xe8, 0xfb, 0x0f, 0, 0],
            Rewrite::Pending {
                target: 0x402000,
                layout,
            },
        );
        let l = Layout::new(0x500000, 1, [&p].into_iter());
        let e = encode(&l, 0, &[(0, &p)]);
        assert!(e.failed.is_empty());
        let pl = &e.placed[0];
        assert_eq!(pl.new[0], 0xe8);
        let got = text(&e.code[..(pl.tramp.1 - pl.tramp.0) as usize], pl.tramp.0);
        let want = [
            "mov rax,[r14+28h]",
            "lea rdx,[rsp+8]",
            "xor ecx,ecx",
            "test rax,rax",
            "je",
            "cmp [rax+8],rdx",
            "jne",
            "cmp byte ptr [rax+1],0",
            "jne",
            "inc rcx",
            "mov rax,[rax+20h]",
            "jmp",
            "mov rsi,[rax+28h]",
            "cmp rsi,1000h",
            "jb",
            "mov rsi,[rsi]",
            "cmp rsi,1000h",
            "jb",
            "inc rcx",
            "mov rsi,[rsi+20h]",
            "jmp",
            "mov rax,[500000h]",
            "cmp rcx,rax",
            "jbe",
            "lock cmpxchg [500000h],rcx",
            "jne",
            "jmp 0000000000402000h",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g} is not {w}: {got:#?}");
        }
        assert!(got.len() * 10 <= max_len(&p));
        // go1.18-1.21: no range-over-func records, link@40.
        let old = Rewrite::Pending {
            target: 0x402000,
            layout: crate::rewrite::DeferLayout::for_minor(21).unwrap(),
        };
        let p = Patch { rewrite: old, ..p };
        let e = encode(&l, 0, &[(0, &p)]);
        let pl = &e.placed[0];
        let got = text(&e.code[..(pl.tramp.1 - pl.tramp.0) as usize], pl.tramp.0);
        assert!(got.contains(&"mov rax,[rax+28h]".to_string()), "{got:#?}");
        assert!(!got.iter().any(|g| g.contains("rsi")), "{got:#?}");
    }

    #[test]
    fn out_of_reach_fails_alone() {
        let near = patch(
            0x401000,
            &[0xe8, 0, 0, 0, 0],
            Rewrite::Call { target: 0x401005 },
        );
        let layout = Layout::new(0x4000_0000_0000, 2, [&near].into_iter());
        let e = encode(&layout, 0, &[(0, &near)]);
        assert_eq!(e.failed, vec![(0, Fallback::NoBlock)]);
        assert!(e.placed.is_empty());
        assert_eq!(layout.counters_len(), 4096);
        assert_eq!(layout.len(), 8192);
    }
}

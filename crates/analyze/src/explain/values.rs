//! The value pass: which static address (`LEAQ sym(SB)`, `ADRP`+`ADD`),
//! stack address (`LEAQ off(SP)`) or heap object (the result of
//! `runtime.newobject` / go1.27's `runtime.mallocgc*SC<n>`) each register
//! and stack word holds, followed through one function's events in address
//! order. From it:
//!
//! - the closure each defer registers ([`Values::fn_code`]): at a `CALL
//!   runtime.deferprocStack` the `_defer` record is the stack address in
//!   AX/R0 and its `fn` is the word at +24 (design.md §3.4); at
//!   `runtime.deferproc`/`deferprocat` the closure is in AX/R0 (BX on
//!   go1.17 amd64; on the stack after `siz` with ABI0); for an open-coded
//!   site it is the value stored into the closure slot. A closure's first
//!   word is its code pointer; a static funcval (`F.deferwrap1·f`) is read
//!   from the file.
//! - a heap closure's allocator and size ([`Values::heap_closure`]): the
//!   type descriptor's size word for `newobject`, the size class in a
//!   go1.27 allocator's name.
//! - the facts the `result-escapes` and `too-many-returns` rules need: a
//!   load after `runtime.deferreturn` through a pointer an allocator
//!   returned before the first defer, and whether any exit reloads a
//!   register after it.
//!
//! At each block start the registers keep what every already-seen
//! predecessor agrees on (nothing when a predecessor comes later, a back
//! edge); they are forgotten after every call but the write barrier's.
//! Stack words are kept. A predecessor no branch reaches and that holds
//! nothing the decoder reports is the assembler's NOP padding after an
//! unconditional jump (amd64 `padJump`, design.md §5.4): it is not a path,
//! so it takes no part in the meet.

use std::collections::HashMap;

use deferscope_decode::{reg, Event, SP};
use deferscope_index::runtime::RuntimeFn;
use deferscope_load::Arch;

use super::context::Cx;
use crate::cfg::Cfg;

/// Stack words and block states kept allocated between functions.
const SCRATCH_KEPT: usize = 1 << 12;

/// Go's malloc size classes (runtime/sizeclasses.go), class -> bytes.
const SIZE_CLASSES: [u64; 32] = [
    0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896,
];

/// A value the value pass follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Val {
    Unknown,
    /// A static address.
    Addr(u64),
    /// SP + offset.
    Sp(i64),
    /// A pointer to heap object `n` of this function.
    Heap(usize),
    /// A pointer into heap object `n` at a non-zero offset (go1.27
    /// allocates several moved-to-heap variables in one object).
    HeapAt(usize, i64),
    /// A constant.
    Const(u64),
}

type Regs = [Val; 32];

const NOTHING: Regs = [Val::Unknown; 32];

/// An allocation the function makes.
pub(super) struct HeapObj {
    pub pc: u64,
    pub allocator: String,
    /// Bytes asked for: the type's size (newobject) or the size class.
    pub size: Option<u64>,
    /// The type descriptor passed to the allocator, when static.
    pub typ: Option<u64>,
    /// The object holds no pointers (the tiny allocator takes such an
    /// object under 16 bytes), when known.
    pub noscan: Option<bool>,
    first_word: Val,
}

/// Where a store went: a frame word (SP + offset) or a field of a heap
/// object of this function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    Stack(i64),
    Heap(usize, i64),
}

/// One store the function makes, in address order: for the captures of
/// the closures it builds (`captures`).
#[derive(Clone, Copy, Debug)]
pub(super) struct StoreRec {
    pub pc: u64,
    pub loc: Loc,
    pub size: u8,
    /// The stored word, when the source is a register the pass follows.
    pub val: Val,
    /// The stored value is known to be zero (a closure's zeroing).
    pub zero: bool,
}

/// A direct call, with the role of the runtime function it reaches
/// ([`Cx::call_role`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Call {
    pub pc: u64,
    pub target: u64,
    pub role: Option<RuntimeFn>,
}

/// What the value pass found.
#[derive(Default)]
pub(super) struct Values {
    /// pc of a defer registration -> the deferred closure's code address.
    pub fn_code: HashMap<u64, u64>,
    /// pc of a heap defer registration -> its heap closure's allocator and
    /// size.
    pub heap_closure: HashMap<u64, (String, Option<u64>)>,
    /// Calls in decoding (address) order.
    pub calls: Vec<Call>,
    /// A load through a pre-defer heap pointer after deferreturn.
    pub result_escapes: bool,
    /// Some exit writes a register other than the frame's between its
    /// `CALL runtime.deferreturn` and its `RET`: it reloads the results.
    pub results_reloaded: bool,
    /// pc of a defer registration -> the closure it registers, when it is
    /// built in the frame (`Val::Sp`) or on the heap (`Val::Heap`).
    pub closure: HashMap<u64, Val>,
    /// Every store into the frame or into a heap object, in address order.
    pub stores: Vec<StoreRec>,
    /// The function's allocations (`Val::Heap(n)` is `heap[n]`).
    pub heap: Vec<HeapObj>,
    /// The result words each exit loads after `runtime.deferreturn`: the
    /// register loaded and where from (`Val::Sp` frame word or
    /// `Val::Heap` object), in the order of the first exit.
    pub result_loads: Vec<(u8, Val)>,
    /// Every such load: (pc, where from).
    pub result_load_pcs: Vec<(u64, Val)>,
}

/// The pass's buffers, kept (emptied) from one function to the next.
#[derive(Default)]
pub(super) struct Scratch {
    stack_words: HashMap<i64, Val>,
    block_ends: Vec<Option<Regs>>,
    padding: Vec<bool>,
}

/// Follow the values through one function: `code` at `entry`, decoded
/// into `events`, with blocks `cfg`; `open_site_pcs` are its open-coded
/// sites (stores into closure slots) and `first_site` the first site's pc.
pub(super) fn value_pass(
    cx: &mut Cx<'_, '_>,
    code: &[u8],
    entry: u64,
    events: &[Event],
    cfg: &Cfg,
    open_site_pcs: &[u64],
    first_site: u64,
) -> Values {
    let Scratch {
        mut stack_words,
        mut block_ends,
        mut padding,
    } = std::mem::take(&mut cx.scratch);
    stack_words.clear();
    block_ends.clear();
    block_ends.resize(cfg.blocks.len(), None);
    padding.clear();
    padding.resize(cfg.blocks.len(), false);
    let arch = cx.img.arch;
    let mut p = Pass {
        cx,
        code,
        entry,
        cfg,
        open_site_pcs,
        first_site,
        arch,
        arg0: match arch {
            Arch::Amd64 => reg::AMD64_AX,
            Arch::Arm64 => reg::ARM64_R0,
        },
        regs: NOTHING,
        stack: stack_words,
        heap: Vec::new(),
        after_deferreturn: false,
        next_block: 1,
        ends: block_ends,
        padding,
        unknown_jumps: cfg.has_unknown_jumps(),
        block_events: false,
        out: Values::default(),
    };
    for e in events {
        p.event(e);
    }
    let Pass {
        stack,
        ends,
        padding,
        mut out,
        heap,
        ..
    } = p;
    out.heap = heap;
    if stack.capacity() <= SCRATCH_KEPT {
        cx.scratch.stack_words = stack;
    }
    if ends.capacity() <= SCRATCH_KEPT {
        cx.scratch.block_ends = ends;
    }
    if padding.capacity() <= SCRATCH_KEPT {
        cx.scratch.padding = padding;
    }
    out
}

/// The value pass over one function.
struct Pass<'p, 'a, 'd> {
    cx: &'p Cx<'a, 'd>,
    code: &'p [u8],
    entry: u64,
    cfg: &'p Cfg,
    open_site_pcs: &'p [u64],
    first_site: u64,
    arch: Arch,
    /// The first argument's and result's register (AX / R0).
    arg0: u8,
    regs: Regs,
    stack: HashMap<i64, Val>,
    heap: Vec<HeapObj>,
    /// Between a `CALL runtime.deferreturn` and the block's end or `RET`.
    after_deferreturn: bool,
    /// The next block whose start has not been reached.
    next_block: usize,
    /// Register states at the end of each block passed.
    ends: Vec<Option<Regs>>,
    /// Blocks passed that are padding: no predecessor and no event.
    padding: Vec<bool>,
    /// Some indirect jump's targets are not known: no block is taken for
    /// padding (an unknown jump might reach it).
    unknown_jumps: bool,
    /// The current block has had an event.
    block_events: bool,
    out: Values,
}

impl Pass<'_, '_, '_> {
    fn event(&mut self, e: &Event) {
        let pc = event_pc(e);
        self.enter_blocks(pc);
        self.block_events = true;
        match *e {
            Event::AddrLoad { reg, addr, .. } => set(&mut self.regs, reg, Val::Addr(addr)),
            Event::SpAddr { reg, offset, .. } => set(&mut self.regs, reg, Val::Sp(offset)),
            Event::Move {
                dst, src, narrow, ..
            } => {
                let v = match (self.get(src), narrow) {
                    (v, false) => v,
                    (Val::Const(c), true) => Val::Const(c & 0xffff_ffff),
                    (_, true) => Val::Unknown,
                };
                set(&mut self.regs, dst, v)
            }
            Event::Clobber { reg, .. } => self.clobber(pc, reg),
            Event::Const { reg, value, .. } => {
                self.clobber(pc, reg);
                set(&mut self.regs, reg, Val::Const(value))
            }
            Event::RegAddr {
                reg, base, offset, ..
            } => {
                let v = match self.get(base) {
                    Val::Sp(o) => Val::Sp(o + offset),
                    Val::Heap(n) if offset == 0 => Val::Heap(n),
                    Val::Heap(n) => Val::HeapAt(n, offset),
                    _ => Val::Unknown,
                };
                self.clobber(pc, reg);
                set(&mut self.regs, reg, v)
            }
            Event::StackStore {
                offset, size, zero, ..
            } => self.note_store(pc, Loc::Stack(offset), size, None, zero),
            Event::Load {
                dst, base, offset, ..
            } => self.load(pc, dst, base, offset),
            Event::Store {
                base,
                offset,
                src,
                size,
                ..
            } => self.store(pc, base, offset, src, size),
            Event::Call { target, .. } => self.call(pc, target),
            Event::CallIndirect { .. } => self.regs = NOTHING,
            Event::Ret { .. } => self.after_deferreturn = false,
            _ => {}
        }
    }

    /// At each block start up to `pc`, keep what all already-seen
    /// predecessors agree on; forget everything if a predecessor comes
    /// later (a back edge) or was not seen.
    fn enter_blocks(&mut self, pc: u64) {
        let blocks = &self.cfg.blocks;
        while self.next_block < blocks.len() && blocks[self.next_block].start <= pc {
            let b = self.next_block;
            self.ends[b - 1] = Some(self.regs);
            self.padding[b - 1] = b > 1
                && blocks[b - 1].preds.is_empty()
                && !self.block_events
                && !self.unknown_jumps;
            self.block_events = false;
            // Entered only by falling through: the registers stay as they
            // are (the meet of the one state just stored).
            if self.cfg.blocks[b].preds != [b - 1] && !self.meet(b) {
                self.regs = NOTHING;
            }
            self.after_deferreturn = false;
            self.next_block += 1;
        }
    }

    /// Set the registers to those all predecessors of block `b` agree on,
    /// if all were seen (padding left out); false otherwise (the registers
    /// then undefined). In place: a state is hundreds of bytes.
    fn meet(&mut self, b: usize) -> bool {
        let cfg = self.cfg;
        let mut first = true;
        for &p in &cfg.blocks[b].preds {
            if p < b && self.padding[p] {
                continue;
            }
            // A later block (a back edge) is not seen yet.
            let Some(st) = self.ends.get(p).filter(|_| p < b).and_then(Option::as_ref) else {
                return false;
            };
            if first {
                self.regs = *st;
                first = false;
            } else {
                for (a, b) in self.regs.iter_mut().zip(st.iter()) {
                    if a != b {
                        *a = Val::Unknown;
                    }
                }
            }
        }
        !first
    }

    fn get(&self, r: u8) -> Val {
        if r == SP {
            Val::Sp(0)
        } else {
            self.regs.get(r as usize).copied().unwrap_or(Val::Unknown)
        }
    }

    fn stack_word(&self, at: i64) -> Val {
        self.stack.get(&at).copied().unwrap_or(Val::Unknown)
    }

    /// A heap object allocated before the first defer: a result's heap
    /// copy when loaded through after deferreturn.
    fn is_pre_defer_heap(&self, v: Val) -> bool {
        matches!(v, Val::Heap(n) if self.heap[n].pc < self.first_site)
    }

    fn clobber(&mut self, pc: u64, reg: u8) {
        if self.after_deferreturn && !self.cx.is_frame_reg(reg) {
            self.out.results_reloaded = true;
            // arm64 reloads a two-word result (an interface, a string)
            // with `LDP (Rn), (Rt, Rt2)`, which the decoder reports as a
            // clobber.
            if let Some(base) = ldp_base(self.arch, self.code, self.entry, pc) {
                if self.is_pre_defer_heap(self.get(base)) {
                    self.out.result_escapes = true;
                }
            }
        }
        set(&mut self.regs, reg, Val::Unknown)
    }

    fn load(&mut self, pc: u64, dst: u8, base: u8, offset: i64) {
        let b = self.get(base);
        if self.after_deferreturn && !self.cx.is_frame_reg(dst) {
            self.out.results_reloaded = true;
            let from = match b {
                Val::Sp(o) => Val::Sp(o + offset),
                Val::Heap(n) if offset == 0 => Val::Heap(n),
                _ => Val::Unknown,
            };
            if from != Val::Unknown {
                self.out.result_load_pcs.push((pc, from));
                if !self.out.result_loads.iter().any(|&(_, v)| v == from) {
                    self.out.result_loads.push((dst, from));
                }
            }
        }
        // The result's heap copy: allocated before the first defer
        // (runtime.newobject, or a go1.27 size-specialized mallocgc*).
        if self.after_deferreturn && offset == 0 && self.is_pre_defer_heap(b) {
            self.out.result_escapes = true;
        }
        let v = match b {
            Val::Sp(o) => self.stack_word(o + offset),
            _ => Val::Unknown,
        };
        set(&mut self.regs, dst, v);
    }

    fn store(&mut self, pc: u64, base: u8, offset: i64, src: Option<u8>, size: u8) {
        let v = match (src, size) {
            (Some(r), 8) => self.get(r),
            _ => Val::Unknown,
        };
        if self.open_site_pcs.contains(&pc) {
            if let Some(c) = self.code_of(v) {
                self.out.fn_code.insert(pc, c);
                self.note_closure(pc, v);
            }
        }
        let b = self.get(base);
        let loc = match b {
            Val::Sp(o) => Some(Loc::Stack(o + offset)),
            Val::Heap(n) => Some(Loc::Heap(n, offset)),
            _ => None,
        };
        if let Some(loc) = loc {
            self.note_store(pc, loc, size, Some(v), false);
        }
        match b {
            Val::Sp(o) => {
                let at = o + offset;
                self.stack.insert(at, v);
                let mut k = 8;
                while k < size as i64 {
                    self.stack.insert(at + k, Val::Unknown);
                    k += 8;
                }
            }
            Val::Heap(n) if offset == 0 => self.heap[n].first_word = v,
            _ => {}
        }
    }

    fn call(&mut self, pc: u64, target: u64) {
        let role = self.cx.call_role(target);
        self.out.calls.push(Call { pc, target, role });
        let mut result = Val::Unknown;
        match role {
            Some(
                RuntimeFn::Newobject
                | RuntimeFn::MallocgcSized
                | RuntimeFn::Mallocgc
                | RuntimeFn::Makeslice,
            ) => result = self.alloc(pc, target, role),
            Some(RuntimeFn::Deferproc | RuntimeFn::Deferprocat) => self.heap_defer(pc),
            Some(RuntimeFn::DeferprocStack) => self.stack_defer(pc),
            // Kept until the return.
            Some(RuntimeFn::Deferreturn) => self.after_deferreturn = true,
            _ => {}
        }
        // The write barrier helpers keep the general registers (all but
        // the buffer pointer they return).
        if role != Some(RuntimeFn::GcWriteBarrier) {
            self.regs = NOTHING;
            set(&mut self.regs, self.arg0, result);
        }
    }

    /// A call of an allocator: a new heap object.
    fn alloc(&mut self, pc: u64, target: u64, role: Option<RuntimeFn>) -> Val {
        let name = self.cx.name(target);
        // The first three integer arguments.
        let [a0, a1, a2] = match self.arch {
            Arch::Amd64 => [0, 3, 1].map(|r| self.regs[r]),
            Arch::Arm64 => [0, 1, 2].map(|r| self.regs[r]),
        };
        let img = self.cx.img;
        let ptrdata = |t: u64| img.read_u64(t + 8);
        let (size, typ, noscan) = match role {
            // newobject(typ)
            Some(RuntimeFn::Newobject) => {
                let t = match a0 {
                    Val::Addr(t) => Some(t),
                    _ => None,
                };
                let size = self.alloc_size(role, &name, a0);
                (size, t, t.and_then(ptrdata).map(|p| p == 0))
            }
            // mallocgc(size, typ, needzero): a nil type is pointer-free.
            Some(RuntimeFn::Mallocgc) => match (a0, a1) {
                (Val::Const(n), Val::Const(0)) => (Some(n), None, Some(true)),
                (Val::Const(n), Val::Addr(t)) => (Some(n), Some(t), ptrdata(t).map(|p| p == 0)),
                _ => (None, None, None),
            },
            // go1.27's mallocgc*SC<n>(size, typ, needzero).
            Some(RuntimeFn::MallocgcSized) => (
                self.alloc_size(role, &name, a0),
                match a1 {
                    Val::Addr(t) => Some(t),
                    _ => None,
                },
                Some(name.contains("NoScan") || name.contains("Tiny")),
            ),
            // makeslice(elem, len, cap)
            Some(RuntimeFn::Makeslice) => match (a0, a2) {
                (Val::Addr(et), Val::Const(cap)) => (
                    img.read_u64(et).and_then(|s| s.checked_mul(cap)),
                    None,
                    ptrdata(et).map(|p| p == 0),
                ),
                _ => (None, None, None),
            },
            _ => (None, None, None),
        };
        self.heap.push(HeapObj {
            pc,
            allocator: name,
            size,
            typ,
            noscan,
            first_word: Val::Unknown,
        });
        Val::Heap(self.heap.len() - 1)
    }

    /// `runtime.deferproc`/`deferprocat`: the closure is the argument
    /// (BX first on go1.17 amd64; ABI0, go1.16- and go1.17 arm64: the word
    /// after `siz` on the stack).
    fn heap_defer(&mut self, pc: u64) {
        let bx = self
            .cx
            .go117_amd64
            .then(|| self.regs[reg::AMD64_BX as usize]);
        let cands = bx.into_iter().chain([
            self.regs[self.arg0 as usize],
            self.stack_word(8),
            self.stack_word(16),
        ]);
        for v in cands {
            if let Some(c) = self.code_of(v) {
                self.out.fn_code.insert(pc, c);
                self.note_closure(pc, v);
                if let Val::Heap(n) = v {
                    let h = &self.heap[n];
                    self.out
                        .heap_closure
                        .insert(pc, (h.allocator.clone(), h.size));
                }
                break;
            }
        }
    }

    /// `runtime.deferprocStack`: the argument is the `_defer` record in
    /// the frame, and its `fn` the word at +24.
    fn stack_defer(&mut self, pc: u64) {
        let cands = [
            self.regs[self.arg0 as usize],
            self.stack_word(0),
            self.stack_word(8),
        ];
        for d in cands {
            if let Val::Sp(o) = d {
                let f = self.stack_word(o + 24);
                if let Some(c) = self.code_of(f) {
                    self.out.fn_code.insert(pc, c);
                    self.note_closure(pc, f);
                    break;
                }
            }
        }
    }

    /// Record the closure registered at `pc` when it is built here.
    fn note_closure(&mut self, pc: u64, v: Val) {
        if matches!(v, Val::Sp(_) | Val::Heap(_)) {
            self.out.closure.insert(pc, v);
        }
    }

    /// Record a store. amd64 reports a frame store twice (as a
    /// `StackStore`, with its size and whether it stores zero, and as a
    /// `Store`, with its source register), arm64 in the other order: the
    /// two make one record.
    fn note_store(&mut self, pc: u64, loc: Loc, size: u8, val: Option<Val>, zero: bool) {
        if let Some(last) = self.out.stores.last_mut() {
            if last.pc == pc && last.loc == loc {
                if let Some(v) = val {
                    last.val = v;
                }
                last.zero |= zero;
                last.size = last.size.max(size);
                return;
            }
        }
        self.out.stores.push(StoreRec {
            pc,
            loc,
            size,
            val: val.unwrap_or(Val::Unknown),
            zero,
        });
    }

    /// The code address a closure value leads to.
    fn code_of(&self, v: Val) -> Option<u64> {
        let cx = self.cx;
        let word = match v {
            Val::Addr(a) => {
                if cx.is_entry(a) {
                    return Some(a);
                }
                // A static funcval: its first word is the code pointer.
                return cx.img.read_u64(a).filter(|&c| cx.is_entry(c));
            }
            Val::Sp(o) => self.stack.get(&o).copied()?,
            Val::Heap(n) => self.heap.get(n)?.first_word,
            Val::Unknown | Val::HeapAt(..) | Val::Const(_) => return None,
        };
        match word {
            Val::Addr(a) if cx.is_entry(a) => Some(a),
            _ => None,
        }
    }

    /// Size of an allocation: the type descriptor's size word for
    /// newobject, the size class (or tiny size) in a go1.27 allocator name.
    fn alloc_size(&self, role: Option<RuntimeFn>, allocator: &str, arg: Val) -> Option<u64> {
        if role == Some(RuntimeFn::Newobject) {
            if let Val::Addr(t) = arg {
                return self.cx.img.read_u64(t).filter(|&s| s > 0 && s < 1 << 32);
            }
            return None;
        }
        alloc_name_size(allocator)
    }
}

/// The size a go1.27 allocator's name gives: the size class of
/// `mallocgcSmall*SC<n>`, the byte count of `mallocgcTiny<n>`.
fn alloc_name_size(allocator: &str) -> Option<u64> {
    let digits = allocator.len()
        - allocator
            .bytes()
            .rev()
            .take_while(u8::is_ascii_digit)
            .count();
    let n: usize = allocator[digits..].parse().ok()?;
    if allocator.contains("SC") {
        SIZE_CLASSES.get(n).copied().filter(|&s| s > 0)
    } else if allocator.contains("Tiny") {
        Some(n as u64)
    } else {
        None
    }
}

pub(super) fn event_pc(e: &Event) -> u64 {
    match *e {
        Event::Call { pc, .. }
        | Event::StackStore { pc, .. }
        | Event::Jump { pc, .. }
        | Event::Ret { pc, .. }
        | Event::Halt { pc, .. }
        | Event::CallIndirect { pc }
        | Event::AddrLoad { pc, .. }
        | Event::SpAddr { pc, .. }
        | Event::Move { pc, .. }
        | Event::Store { pc, .. }
        | Event::Load { pc, .. }
        | Event::Clobber { pc, .. }
        | Event::RegAddr { pc, .. }
        | Event::Const { pc, .. } => pc,
    }
}

/// The base register of an arm64 `LDP Xt, Xt2, [Xn]` (64-bit, signed
/// offset 0) at `pc`.
fn ldp_base(arch: Arch, code: &[u8], entry: u64, pc: u64) -> Option<u8> {
    if arch != Arch::Arm64 {
        return None;
    }
    let at = usize::try_from(pc.checked_sub(entry)?).ok()?;
    let w = u32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?);
    // LDP (signed offset, 64-bit): 1010 1001 01 imm7 Rt2 Rn Rt.
    (w & 0xffc0_0000 == 0xa940_0000 && (w >> 15) & 0x7f == 0).then_some(((w >> 5) & 31) as u8)
}

fn set(regs: &mut Regs, r: u8, v: Val) {
    if let Some(x) = regs.get_mut(r as usize) {
        *x = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldp_bases() {
        // go1.27 arm64 cmd/go doc.do: `LDP (R0), (R0, R1)` reloads the
        // heap-allocated `err`; `LDP -8(RSP), (R29, R30)` is the epilogue.
        let code = [0x00, 0x04, 0x40, 0xa9, 0xfd, 0xfb, 0x7f, 0xa9];
        assert_eq!(ldp_base(Arch::Arm64, &code, 0x1000, 0x1000), Some(0));
        assert_eq!(ldp_base(Arch::Arm64, &code, 0x1000, 0x1004), None);
        assert_eq!(ldp_base(Arch::Amd64, &code, 0x1000, 0x1000), None);
        assert_eq!(ldp_base(Arch::Arm64, &code, 0x1000, 0x1008), None);
    }

    #[test]
    fn allocator_name_sizes() {
        // go1.27 runtime/malloc_generated.go names; sizes from
        // internal/runtime/gc/sizeclasses.go's SizeClassToSize.
        assert_eq!(
            alloc_name_size("runtime.mallocgcSmallScanNoHeaderSC5"),
            Some(48)
        );
        assert_eq!(alloc_name_size("runtime.mallocgcSmallNoScanSC7"), Some(80));
        assert_eq!(alloc_name_size("runtime.mallocgcTinySC2"), Some(16));
        assert_eq!(alloc_name_size("runtime.mallocgcSmallScanNoHeader"), None);
        assert_eq!(alloc_name_size("runtime.mallocgcLarge"), None);
    }
}

//! What each deferred call receives, which results it rewrites and what
//! memory one execution of the defer statement costs (design.md §5.6).
//!
//! From the value pass ([`Values`]): the closure a site registers (in the
//! frame or on the heap), every store into the frame and into the
//! function's heap objects, the allocations and the result words the exits
//! load after `runtime.deferreturn`.
//!
//! - **Fields.** A heap closure's fields come from its type descriptor (the
//!   allocator's argument: a struct `{F uintptr; X0 T0; X1 *T1; ...}`,
//!   exact). A closure in the frame has none: its extent is the run of
//!   zero stores the compiler makes before it fills the closure in, and its
//!   fields are the stores after that, one per stored word (`exact:
//!   false`).
//! - **Mode.** A field holding the address of a frame word outside the
//!   closure, or of an object this function allocated, is a reference
//!   (for a typed field, only a pointer-typed one); any other field is a
//!   value. A compiler wrapper (`defer f(x)`) only ever captures values.
//! - **Results rewritten.** A reference to a result word (a word an exit
//!   loads into a result register after `deferreturn`) that the closure's
//!   body writes through (a store or read-modify-write at the captured
//!   address, found by following the closure context register).
//! - **Memory.** The heap closure, and each captured variable the function
//!   allocates: per execution when the allocation is in the innermost loop
//!   holding the defer (or neither is in a loop), else once per call.
//!   Bytes as the runtime counts them: the size class, or for a tiny
//!   pointer-free object (< 16 bytes) its size rounded to its alignment
//!   (the tiny allocator packs them into 16-byte blocks). The heap `_defer`
//!   record comes from a per-P pool and costs no allocation once warm.

use std::collections::BTreeMap;

use deferscope_decode::{Event, MemWrite, SP};
use deferscope_load::Arch;
use deferscope_model::explain::{AllocPer, Allocation, Capture, CaptureMode};

use super::context::Cx;
use super::values::{event_pc, Loc, StoreRec, Val, Values};
use crate::cfg::{Cfg, Loop};

/// Go's small size classes (runtime/sizeclasses.go, 1.14-1.27), bytes.
const CLASSES: [u64; 67] = [
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

/// Go's type kinds (internal/abi/type.go; reflect.Kind).
const KIND_PTR: u8 = 22;
const KIND_STRUCT: u8 = 25;

/// What one site's closure holds.
#[derive(Default)]
pub(super) struct SiteSemantics {
    pub captures: Option<Vec<Capture>>,
    pub writes_results: Vec<String>,
    pub allocs_per_exec: Option<u32>,
    pub bytes_per_exec: Option<u64>,
    pub allocations: Vec<Allocation>,
    pub result_reloads: Vec<u64>,
}

/// A field of a closure: offset, bytes, whether a pointer type (typed
/// fields only), and whether the boundaries are known.
struct Field {
    offset: i64,
    bytes: u64,
    ptr: Option<bool>,
    exact: bool,
}

impl Field {
    fn new(offset: i64, bytes: u64, ptr: Option<bool>, exact: bool) -> Field {
        Field {
            offset,
            bytes,
            ptr,
            exact,
        }
    }
}

/// The store that last wrote the closure word at `offset` before `pc`.
fn store_at(vals: &Values, base: Loc, offset: i64, pc: u64) -> Option<&StoreRec> {
    let at = match base {
        Loc::Stack(c) => Loc::Stack(c + offset),
        Loc::Heap(n, _) => Loc::Heap(n, offset),
    };
    vals.stores.iter().rev().find(|s| s.pc < pc && s.loc == at)
}

/// The semantics of the site registered at `pc` whose closure's code is
/// `code` (`None`: not found); `wrapper` when that code is a compiler
/// wrapper. `result_names` from DWARF when the binary has it.
pub(super) fn site_semantics(
    cx: &mut Cx<'_, '_>,
    vals: &Values,
    cfg: &Cfg,
    loops: &mut Option<Vec<Loop>>,
    pc: u64,
    code: Option<u64>,
    wrapper: bool,
) -> SiteSemantics {
    let mut out = SiteSemantics::default();
    let Some(code) = code else {
        return out;
    };
    let closure = vals.closure.get(&pc).copied();
    let fields = match closure {
        // A static funcval (or the function itself): nothing captured.
        None => {
            out.captures = Some(Vec::new());
            out.allocs_per_exec = Some(0);
            out.bytes_per_exec = Some(0);
            return out;
        }
        Some(Val::Heap(n)) => heap_fields(cx, vals, n, pc),
        Some(Val::Sp(c)) => frame_fields(vals, c, pc),
        Some(_) => return out,
    };
    let (base, holder) = match closure {
        Some(Val::Heap(n)) => (Loc::Heap(n, 0), Some(n)),
        Some(Val::Sp(c)) => (Loc::Stack(c), None),
        _ => return out,
    };
    let mut caps = Vec::with_capacity(fields.len());
    let mut refs: Vec<(usize, Val)> = Vec::new();
    let mut kept: Vec<Val> = Vec::new();
    for f in &fields {
        let st = store_at(vals, base, f.offset, pc);
        let v = st.map_or(Val::Unknown, |s| s.val);
        let is_addr = match v {
            Val::Sp(x) => match closure {
                Some(Val::Sp(c)) => x < c || x >= c + fields_end(&fields),
                _ => true,
            },
            Val::Heap(k) | Val::HeapAt(k, _) => Some(k) != holder,
            _ => false,
        };
        let by_ref = !wrapper && f.bytes == 8 && is_addr && f.ptr != Some(false);
        if by_ref {
            refs.push((caps.len(), v));
        } else if is_addr && matches!(v, Val::Heap(_) | Val::HeapAt(..)) {
            // A value that points at an object allocated here (a slice's
            // backing array): the closure keeps it alive.
            kept.push(v);
        }
        caps.push(Capture {
            name: None,
            mode: if by_ref {
                CaptureMode::Ref
            } else {
                CaptureMode::Value
            },
            bytes: f.bytes,
            offset: f.offset as u64,
            moved_to_heap: by_ref && matches!(v, Val::Heap(_) | Val::HeapAt(..)),
            exact: f.exact,
            pc: st.filter(|s| !s.zero).map(|s| s.pc),
            points_to: match v {
                Val::Heap(k) | Val::HeapAt(k, _) => vals.heap.get(k).map(|h| h.pc),
                _ => None,
            },
        });
    }
    let (written, reloads) = rewritten_results(cx, vals, code, &caps, &refs);
    out.writes_results = written;
    out.result_reloads = reloads;
    memory(vals, cfg, loops, pc, holder, (&refs, &kept), &mut out);
    out.captures = Some(caps);
    out
}

/// The end of the last field (from the closure's start).
fn fields_end(fields: &[Field]) -> i64 {
    fields
        .iter()
        .map(|f| f.offset + f.bytes as i64)
        .max()
        .unwrap_or(8)
}

/// A heap closure's fields: from its type descriptor when the allocator
/// was given one, else from the stores into it.
fn heap_fields(cx: &Cx<'_, '_>, vals: &Values, n: usize, pc: u64) -> Vec<Field> {
    if let Some(t) = vals.heap.get(n).and_then(|h| h.typ) {
        if let Some(f) = struct_fields(cx, t) {
            return f;
        }
    }
    let mut by_off: BTreeMap<i64, &StoreRec> = BTreeMap::new();
    for s in vals.stores.iter().filter(|s| s.pc < pc) {
        if let Loc::Heap(k, off) = s.loc {
            if k == n && off >= 8 {
                by_off.insert(off, s);
            }
        }
    }
    store_fields(by_off.into_values().copied())
}

/// The largest distance in bytes between two adjacent zeroing
/// instructions (`MOVUPS X15, off32(SP)` is 9 bytes; arm64's `STP` 4).
const ZERO_GAP: u64 = 16;

/// The fields of a closure at `SP + c` built before `pc`: after the zero
/// stores that clear it (whose run gives its extent), the stores into it.
fn frame_fields(vals: &Values, c: i64, pc: u64) -> Vec<Field> {
    let before: Vec<&StoreRec> = vals.stores.iter().filter(|s| s.pc < pc).collect();
    // The code pointer's store, the last one at `c`.
    let Some(fi) = before
        .iter()
        .rposition(|s| s.loc == Loc::Stack(c) && !s.zero)
    else {
        return Vec::new();
    };
    // The zeroing: the run of zero stores at or above `c` just before
    // (other stores may come between it and the code pointer's), and
    // the extent they cover contiguously from `c`.
    // The run's stores are adjacent instructions (the lowered zeroing):
    // a zeroing further back (say, a channel receive's buffer just above
    // the closure, with a call between) is not part of it.
    let mut zeros: Vec<(i64, i64)> = Vec::new();
    let mut first = fi;
    let mut i = fi;
    while i > 0 && fi - i < 32 {
        i -= 1;
        let s = before[i];
        let adjacent = zeros.is_empty() || s.pc + ZERO_GAP >= before[first].pc;
        match s.loc {
            Loc::Stack(o) if s.zero && o >= c && adjacent => {
                zeros.push((o, o + s.size as i64));
                first = i;
            }
            _ if zeros.is_empty() => {}
            _ => break,
        }
    }
    zeros.sort_unstable();
    let mut end = c;
    for (lo, hi) in zeros {
        if lo <= end {
            end = end.max(hi);
        }
    }
    if end <= c + 8 {
        // No zeroing seen: the stores right after the code pointer's that
        // continue from it.
        // (The slot's store of the closure's own address ends it.)
        end = c + 8;
        let mut after: Vec<&StoreRec> = before[fi + 1..]
            .iter()
            .copied()
            .filter(|s| matches!(s.loc, Loc::Stack(o) if o > c) && s.val != Val::Sp(c))
            .collect();
        after.sort_by_key(|s| match s.loc {
            Loc::Stack(o) | Loc::Heap(_, o) => o,
        });
        for s in after {
            if let Loc::Stack(o) = s.loc {
                if o == end {
                    end = o + s.size as i64;
                }
            }
        }
    }
    let mut by_off: BTreeMap<i64, &StoreRec> = BTreeMap::new();
    for s in &before[first..] {
        if let Loc::Stack(o) = s.loc {
            if o >= c + 8 && o < end && (!s.zero || s.pc > before[fi].pc) {
                by_off.insert(o - c, s);
            }
        }
    }
    let mut fields = store_fields(by_off.into_values().map(|s| {
        // Offsets relative to the closure.
        StoreRec {
            loc: match s.loc {
                Loc::Stack(o) => Loc::Stack(o - c),
                l => l,
            },
            ..*s
        }
    }));
    // Words never stored after the zeroing hold a zero value.
    let mut at = 8;
    let mut gaps = Vec::new();
    for f in &fields {
        if f.offset > at {
            gaps.push((at, f.offset));
        }
        at = at.max(f.offset + f.bytes as i64);
    }
    if end - c > at {
        gaps.push((at, end - c));
    }
    // (Shorter gaps, or ones not on a word boundary, are padding.)
    for (mut lo, hi) in gaps {
        lo = (lo + 7) & !7;
        while lo + 8 <= hi {
            fields.push(Field::new(lo, 8, None, false));
            lo += 8;
        }
    }
    fields.sort_by_key(|f| f.offset);
    fields
}

/// One field per store, by offset; a 16-byte pair store that the decoder
/// also reports as two words counts as the two words.
fn store_fields(stores: impl Iterator<Item = StoreRec>) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for s in stores {
        let off = match s.loc {
            Loc::Stack(o) | Loc::Heap(_, o) => o,
        };
        if let Some(last) = out.last_mut() {
            if off < last.offset + last.bytes as i64 {
                last.bytes = (off - last.offset) as u64;
            }
        }
        out.push(Field::new(off, s.size as u64, None, false));
    }
    out.retain(|f| f.bytes > 0);
    out
}

/// The fields after `F` of the struct type at `t`, from its descriptor
/// (internal/abi/type.go: `Type` is 48 bytes on 64-bit targets, kind at
/// 23; `StructType` adds `PkgPath` at 48 and `Fields` at 56; a
/// `StructField` is name, type, offset, 24 bytes; before go1.19 the
/// offset word holds `offset << 1 | embedded`).
fn struct_fields(cx: &Cx<'_, '_>, t: u64) -> Option<Vec<Field>> {
    let img = cx.img;
    let kind = *img.read(t + 23, 1)?.first()? & 0x1f;
    if kind != KIND_STRUCT {
        return None;
    }
    let fields = img.read_u64(t + 56)?;
    let n = img.read_u64(t + 64)?;
    if n == 0 || n > 256 {
        return None;
    }
    let shifted = !cx.ix.version.is_some_and(|v| v.at_least(19));
    let mut out = Vec::with_capacity(n as usize);
    for i in 1..n {
        let f = fields + 24 * i;
        let ft = img.read_u64(f + 8)?;
        let mut off = img.read_u64(f + 16)?;
        if shifted {
            off >>= 1;
        }
        let size = img.read_u64(ft)?;
        let fk = *img.read(ft + 23, 1)?.first()? & 0x1f;
        out.push(Field::new(off as i64, size, Some(fk == KIND_PTR), true));
    }
    Some(out)
}

/// The results the closure at `code` writes through its references
/// `refs` (capture index, address).
fn rewritten_results(
    cx: &mut Cx<'_, '_>,
    vals: &Values,
    code: u64,
    caps: &[Capture],
    refs: &[(usize, Val)],
) -> (Vec<String>, Vec<u64>) {
    let mut out = Vec::new();
    let mut reloads = Vec::new();
    let order = result_order(cx.img.arch);
    let mut loads: Vec<(usize, Val)> = vals
        .result_loads
        .iter()
        .map(|&(r, v)| (order.iter().position(|&o| o == r).unwrap_or(usize::MAX), v))
        .collect();
    loads.sort_by_key(|&(i, _)| i);
    let hits: Vec<(usize, usize)> = refs
        .iter()
        .filter_map(|&(ci, v)| loads.iter().position(|&(_, l)| l == v).map(|ri| (ci, ri)))
        .collect();
    if hits.is_empty() {
        return (out, reloads);
    }
    let written = closure_writes(cx, code);
    for (ci, ri) in hits {
        if written.contains(&(caps[ci].offset as i64)) {
            out.push(format!("{}{}", super::dwarfnames::WORD, ri + 1));
            let from = loads[ri].1;
            reloads.extend(
                vals.result_load_pcs
                    .iter()
                    .filter(|&&(_, v)| v == from)
                    .map(|&(pc, _)| pc),
            );
        }
    }
    (out, reloads)
}

/// The integer result registers in order (the register ABI: amd64 AX, BX,
/// CX, DI, SI, R8-R11; arm64 R0-R15).
fn result_order(arch: Arch) -> &'static [u8] {
    match arch {
        Arch::Amd64 => &[0, 3, 1, 7, 6, 8, 9, 10, 11],
        Arch::Arm64 => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    }
}

/// What a register or frame word of the closure's body holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    None,
    /// The closure context (DX on amd64, R26 on arm64, at entry).
    Ctx,
    /// The word at this offset of the closure: a captured address.
    Field(i64),
}

/// Offsets of the closure fields whose address the body of the closure
/// at `code` writes through.
fn closure_writes(cx: &mut Cx<'_, '_>, code: u64) -> Vec<i64> {
    let Some(f) = cx.ix.func_for_pc(code) else {
        return Vec::new();
    };
    let Some(body) = cx.img.read(f.entry, f.end - f.entry) else {
        return Vec::new();
    };
    let arch = cx.img.arch;
    let mut writes: Vec<MemWrite> = Vec::new();
    deferscope_decode::mem_writes(arch, body, f.entry, |w| writes.push(w));
    let mut regs = [Tag::None; 32];
    regs[match arch {
        Arch::Amd64 => 2,
        Arch::Arm64 => 26,
    }] = Tag::Ctx;
    let mut frame: BTreeMap<i64, Tag> = BTreeMap::new();
    let mut out = Vec::new();
    let mut wi = 0;
    let tag = |regs: &[Tag; 32], r: u8| regs.get(r as usize).copied().unwrap_or(Tag::None);
    deferscope_decode::scan_flow(arch, body, f.entry, |e| {
        let pc = event_pc(&e);
        while wi < writes.len() && writes[wi].pc <= pc {
            let w = writes[wi];
            if let Tag::Field(off) = tag(&regs, w.base) {
                if w.base != SP && !out.contains(&off) {
                    out.push(off);
                }
            }
            wi += 1;
        }
        let set = |regs: &mut [Tag; 32], r: u8, t: Tag| {
            if let Some(x) = regs.get_mut(r as usize) {
                *x = t;
            }
        };
        match e {
            Event::Move {
                dst, src, narrow, ..
            } => {
                let t = if narrow { Tag::None } else { tag(&regs, src) };
                set(&mut regs, dst, t)
            }
            Event::Load {
                dst, base, offset, ..
            } => {
                let t = if base == SP {
                    frame.get(&offset).copied().unwrap_or(Tag::None)
                } else if tag(&regs, base) == Tag::Ctx {
                    Tag::Field(offset)
                } else {
                    Tag::None
                };
                set(&mut regs, dst, t)
            }
            Event::Store {
                base: SP,
                offset,
                src,
                ..
            } => {
                let t = src.map(|r| tag(&regs, r)).unwrap_or(Tag::None);
                frame.insert(offset, t);
            }
            Event::AddrLoad { reg, .. }
            | Event::SpAddr { reg, .. }
            | Event::Clobber { reg, .. }
            | Event::RegAddr { reg, .. }
            | Event::Const { reg, .. } => set(&mut regs, reg, Tag::None),
            Event::Call { .. } | Event::CallIndirect { .. } => regs = [Tag::None; 32],
            _ => {}
        }
    });
    out
}

/// The allocations of the site at `pc`: its heap closure `holder` and the
/// heap variables among `refs`.
fn memory(
    vals: &Values,
    cfg: &Cfg,
    loops: &mut Option<Vec<Loop>>,
    pc: u64,
    holder: Option<usize>,
    (refs, kept): (&[(usize, Val)], &[Val]),
    out: &mut SiteSemantics,
) {
    let mut objs: Vec<(usize, String)> = Vec::new();
    if let Some(n) = holder {
        objs.push((n, "closure".to_string()));
    }
    let heap_vars = refs
        .iter()
        .map(|&(_, v)| (v, "variable"))
        .chain(kept.iter().map(|&v| (v, "object")));
    for (v, what) in heap_vars {
        if let Val::Heap(k) | Val::HeapAt(k, _) = v {
            if !objs.iter().any(|&(o, _)| o == k) {
                objs.push((k, what.to_string()));
            }
        }
    }
    let mut known = true;
    let mut allocs = 0u32;
    let mut bytes = 0u64;
    for (k, what) in objs {
        let h = &vals.heap[k];
        let per = if same_loop(cfg, loops, pc, h.pc) {
            AllocPer::Exec
        } else {
            AllocPer::Call
        };
        let b = malloc_bytes(h.size, h.noscan);
        if per == AllocPer::Exec {
            allocs += 1;
            match b {
                Some(b) => bytes += b,
                None => known = false,
            }
        }
        out.allocations.push(Allocation {
            what,
            bytes: b.unwrap_or(0),
            allocator: h.allocator.clone(),
            pc: h.pc,
            per,
        });
    }
    out.allocs_per_exec = Some(allocs);
    out.bytes_per_exec = known.then_some(bytes);
}

/// Whether the allocation at `alloc` runs as often as the defer at `pc`:
/// it is in every loop that holds the defer, and the defer is in every
/// loop that holds it.
fn same_loop(cfg: &Cfg, loops: &mut Option<Vec<Loop>>, pc: u64, alloc: u64) -> bool {
    let (Some(a), Some(b)) = (cfg.block_of(pc), cfg.block_of(alloc)) else {
        return false;
    };
    let loops = loops.get_or_insert_with(|| cfg.loops());
    loops.iter().all(|l| {
        let ha = l.blocks.binary_search(&a).is_ok();
        let hb = l.blocks.binary_search(&b).is_ok();
        ha == hb
    })
}

/// Bytes the runtime counts for an object of `size` bytes: a pointer-free
/// object under 16 bytes goes to the tiny allocator, which packs it at its
/// alignment into 16-byte blocks; any other takes its size class.
fn malloc_bytes(size: Option<u64>, noscan: Option<bool>) -> Option<u64> {
    let size = size?;
    if size < 16 && size > 0 && noscan? {
        let align = if size % 8 == 0 {
            8
        } else if size % 4 == 0 {
            4
        } else if size % 2 == 0 {
            2
        } else {
            1
        };
        return Some(size.div_ceil(align) * align);
    }
    Some(
        CLASSES
            .iter()
            .copied()
            .find(|&c| c >= size)
            .unwrap_or_else(|| size.div_ceil(8192) * 8192),
    )
}

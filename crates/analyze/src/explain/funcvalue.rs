//! Func values: a defer whose closure the function did not build (design.md
//! §2.4). When the value pass finds no code address for a site's closure,
//! the register or stack slot the registration reads is followed backwards
//! to where it was set, along every path of the control-flow graph (a
//! block's events in reverse, then each predecessor's):
//!
//! - loaded through a pointer other than SP (a struct field, a global func
//!   variable, a variable the function's own closure captured), a result
//!   register of a call that is not an allocator or of an indirect call
//!   (`ctx, cancel := context.WithCancel(ctx)`, `connectCtx, cancel :=
//!   testHookProxyConnectTimeout(ctx, time.Minute)`), or an argument
//!   register never set before the site (a func-typed parameter): a func
//!   value, known only at run time, so the deferred call is indirect;
//! - a static address, a stack address, an allocator's result, a clobber,
//!   or anything else: not claimed (the target stays unresolved).
//!
//! The site's closure is a func value only when every path ends in a
//! func-value origin; a path back into a block already followed for the
//! same register or slot (a loop) adds nothing. A predecessor block no
//! branch reaches and without events is the assembler's padding (as in the
//! value pass) and is not a path; any other block without predecessors but
//! the entry claims nothing. The walk gives up (claims nothing) after
//! [`MAX_EVENTS`] events in all or [`MAX_HOPS`] copies along one path.

use std::collections::HashSet;

use deferscope_decode::{reg, Event, SP};
use deferscope_index::runtime::{self, RuntimeFn};
use deferscope_load::Arch;
use deferscope_model::{Kind, Site};

use super::context::Cx;
use super::values::event_pc;
use crate::cfg::Cfg;

/// Events looked at backwards from a site, over all paths.
const MAX_EVENTS: usize = 2048;
/// Register copies and stack spills followed along one path.
const MAX_HOPS: usize = 8;

/// What is followed backwards.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Want {
    Reg(u8),
    Slot(i64),
}

/// Where one path's walk through a block ends.
enum Step {
    /// A func-value origin.
    Dynamic,
    /// Anything else: the site is not claimed.
    Other,
    /// The block's start, still looking for this (after these hops).
    Start(Want, usize),
}

/// Whether the closure `site` registers is a func value (see the module
/// docs). `events` are the function's, in address order; `cfg` its blocks.
pub(super) fn is_func_value(cx: &Cx<'_, '_>, events: &[Event], cfg: &Cfg, site: &Site) -> bool {
    // The site's store into the closure slot (open-coded), else its call.
    let Some(at) = events.iter().position(|e| match *e {
        Event::Store { pc, .. } => pc == site.pc && site.kind == Kind::OpenCoded,
        Event::Call { pc, .. } => pc == site.pc && site.kind != Kind::OpenCoded,
        _ => false,
    }) else {
        return false;
    };
    let arg0 = arg0(cx.img.arch);
    let start = match site.kind {
        Kind::OpenCoded => match events[at] {
            Event::Store { src: Some(r), .. } => Some(Want::Reg(r)),
            _ => None,
        },
        Kind::HeapAllocated if !cx.go117_amd64 => Some(Want::Reg(arg0)),
        Kind::HeapAllocated => None,
        // The `_defer` record is at SP+o in AX/R0; its fn at +24.
        Kind::StackAllocated => events[..at].iter().rev().find_map(|e| match *e {
            Event::SpAddr { reg, offset, .. } if reg == arg0 => Some(Want::Slot(offset + 24)),
            _ => None,
        }),
    };
    let (Some(want), Some(block)) = (start, cfg.block_of(site.pc)) else {
        return false;
    };
    origin_is_dynamic(cx, events, cfg, (block, at), want)
}

/// Follow `want` backwards from event `at` (exclusive) of block `block`
/// along every path: whether all end in a func-value origin.
fn origin_is_dynamic(
    cx: &Cx<'_, '_>,
    events: &[Event],
    cfg: &Cfg,
    (block, at): (usize, usize),
    want: Want,
) -> bool {
    let first_event = |b: usize| events.partition_point(|e| event_pc(e) < cfg.blocks[b].start);
    let end_event = |b: usize| events.partition_point(|e| event_pc(e) < cfg.blocks[b].end);
    let unknown_jumps = cfg.has_unknown_jumps();
    let mut work = vec![(block, at, want, 0usize)];
    let mut seen: HashSet<(usize, Want)> = HashSet::new();
    let mut budget = MAX_EVENTS;
    while let Some((b, end, want, hops)) = work.pop() {
        let from = first_event(b);
        let n = end.saturating_sub(from);
        if n > budget {
            return false;
        }
        budget -= n;
        let (want, hops) = match walk_block(cx, &events[from..end], want, hops) {
            Step::Dynamic => continue,
            Step::Other => return false,
            Step::Start(w, h) => (w, h),
        };
        let preds = &cfg.blocks[b].preds;
        if b == 0 {
            // The function's entry: an argument register it never set is a
            // parameter (the stack-growth path back to the entry, which
            // spills and reloads it, is followed too).
            if !matches!(want, Want::Reg(r) if is_int_reg(cx.img.arch, r)) {
                return false;
            }
        } else if preds.is_empty() {
            return false;
        }
        for &p in preds {
            let p_end = end_event(p);
            let padding = p != 0 && cfg.blocks[p].preds.is_empty() && p_end == first_event(p);
            if padding && !unknown_jumps {
                continue;
            }
            if seen.insert((p, want)) {
                work.push((p, p_end, want, hops));
            }
        }
    }
    true
}

/// Follow `want` backwards through one block's `events` (those before the
/// use), `hops` copies already followed.
fn walk_block(cx: &Cx<'_, '_>, events: &[Event], mut want: Want, mut hops: usize) -> Step {
    let arch = cx.img.arch;
    for e in events.iter().rev() {
        match (want, *e) {
            (
                Want::Reg(r),
                Event::Move {
                    dst,
                    src,
                    narrow: false,
                    ..
                },
            ) if dst == r => {
                hops += 1;
                want = Want::Reg(src);
            }
            (
                Want::Reg(r),
                Event::Load {
                    dst, base, offset, ..
                },
            ) if dst == r => {
                if base != SP {
                    return Step::Dynamic;
                }
                hops += 1;
                want = Want::Slot(offset);
            }
            (Want::Reg(r), Event::AddrLoad { reg, .. } | Event::SpAddr { reg, .. })
            | (
                Want::Reg(r),
                Event::Clobber { reg, .. } | Event::Const { reg, .. } | Event::RegAddr { reg, .. },
            ) if reg == r => {
                return Step::Other;
            }
            // The write barrier keeps the general registers.
            (Want::Reg(_), Event::Call { target, .. })
                if cx.call_role(target) == Some(RuntimeFn::GcWriteBarrier) => {}
            // A result of a call (not of the runtime: its allocators build
            // closures here).
            (Want::Reg(r), Event::Call { target, .. }) => {
                let runtime = cx.entry_name(target).is_none_or(runtime::is_helper);
                return dynamic_if(!runtime && is_int_reg(arch, r));
            }
            // A result of a call through a func value or an interface.
            (Want::Reg(r), Event::CallIndirect { .. }) => return dynamic_if(is_int_reg(arch, r)),
            (
                Want::Slot(o),
                Event::Store {
                    base,
                    offset,
                    src,
                    size,
                    ..
                },
            ) if base == SP && offset == o && size == 8 => {
                let Some(r) = src else {
                    return Step::Other;
                };
                hops += 1;
                want = Want::Reg(r);
            }
            _ => {}
        }
        if hops > MAX_HOPS {
            return Step::Other;
        }
    }
    Step::Start(want, hops)
}

fn dynamic_if(b: bool) -> Step {
    if b {
        Step::Dynamic
    } else {
        Step::Other
    }
}

/// AX / R0.
fn arg0(arch: Arch) -> u8 {
    match arch {
        Arch::Amd64 => reg::AMD64_AX,
        Arch::Arm64 => reg::ARM64_R0,
    }
}

/// An integer argument and result register of Go's ABIInternal
/// (abi-internal.md): amd64 AX, BX, CX, DI, SI, R8-R11; arm64 R0-R15.
fn is_int_reg(arch: Arch, r: u8) -> bool {
    match arch {
        Arch::Amd64 => matches!(r, 0 | 1 | 3 | 6 | 7 | 8..=11),
        Arch::Arm64 => r <= 15,
    }
}

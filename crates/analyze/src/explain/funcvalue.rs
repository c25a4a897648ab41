//! Func values: a defer whose closure the function did not build (design.md
//! §2.4). When the value pass finds no code address for a site's closure,
//! the register or stack slot the registration reads is followed backwards,
//! in address order, to where it was set:
//!
//! - loaded through a pointer other than SP (a struct field, a global func
//!   variable, a variable the function's own closure captured), a result
//!   register of a call that is not an allocator (`ctx, cancel :=
//!   context.WithCancel(ctx)`), or an argument register never set before
//!   the site (a func-typed parameter): a func value, known only at run
//!   time, so the deferred call is indirect;
//! - a static address, a stack address, an allocator's result, a clobber,
//!   or anything else: not claimed (the target stays unresolved).
//!
//! The walk is linear (it does not choose among a block's predecessors):
//! it stops at the first definition it meets, and gives up after
//! [`MAX_EVENTS`] events or [`MAX_HOPS`] copies.

use deferscope_decode::{reg, Event, SP};
use deferscope_index::runtime::{self, RuntimeFn};
use deferscope_load::Arch;
use deferscope_model::{Kind, Site};

use super::context::Cx;

/// Events looked at backwards from a site.
const MAX_EVENTS: usize = 512;
/// Register copies and stack spills followed.
const MAX_HOPS: usize = 8;

/// What is followed backwards.
#[derive(Clone, Copy)]
enum Want {
    Reg(u8),
    Slot(i64),
}

/// Whether the closure `site` registers is a func value (see the module
/// docs). `events` are the function's, in address order.
pub(super) fn is_func_value(cx: &Cx<'_, '_>, events: &[Event], site: &Site) -> bool {
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
            Event::Store { src: Some(r), .. } => Some((Want::Reg(r), at)),
            _ => None,
        },
        Kind::HeapAllocated if !cx.go117_amd64 => Some((Want::Reg(arg0), at)),
        Kind::HeapAllocated => None,
        // The `_defer` record is at SP+o in AX/R0; its fn at +24.
        Kind::StackAllocated => events[..at].iter().rev().find_map(|e| match *e {
            Event::SpAddr { reg, offset, .. } if reg == arg0 => Some((Want::Slot(offset + 24), at)),
            _ => None,
        }),
    };
    let Some((want, from)) = start else {
        return false;
    };
    origin_is_dynamic(cx, &events[..from], want)
}

/// Follow `want` backwards through `events` (those before the use).
fn origin_is_dynamic(cx: &Cx<'_, '_>, events: &[Event], mut want: Want) -> bool {
    let arch = cx.img.arch;
    let mut hops = 0;
    for e in events.iter().rev().take(MAX_EVENTS) {
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
                    return true;
                }
                hops += 1;
                want = Want::Slot(offset);
            }
            (Want::Reg(r), Event::AddrLoad { reg, .. } | Event::SpAddr { reg, .. })
            | (
                Want::Reg(r),
                Event::Clobber { reg, .. } | Event::Const { reg, .. } | Event::RegAddr { reg, .. },
            ) if reg == r => {
                return false;
            }
            // The write barrier keeps the general registers.
            (Want::Reg(_), Event::Call { target, .. })
                if cx.call_role(target) == Some(RuntimeFn::GcWriteBarrier) => {}
            // A result of a call (not of the runtime: its allocators build
            // closures here).
            (Want::Reg(r), Event::Call { target, .. }) => {
                let runtime = cx.entry_name(target).is_none_or(runtime::is_helper);
                return !runtime && is_int_reg(arch, r);
            }
            (Want::Reg(_), Event::CallIndirect { .. }) => return false,
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
                let Some(r) = src else { return false };
                hops += 1;
                want = Want::Reg(r);
            }
            _ => {}
        }
        if hops > MAX_HOPS {
            return false;
        }
    }
    // The function's entry: an argument register it never set is a
    // parameter (the window may also have run out: then nothing is claimed).
    events.len() <= MAX_EVENTS && matches!(want, Want::Reg(r) if is_int_reg(arch, r))
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

//! Deferred-target resolution: from the closure a defer registers (found
//! by the value pass) to the function the defer finally calls, and
//! whether that function calls `recover`.
//!
//! Wrapper closures (`F.deferwrapN` from go1.22, `F.dwrap.N` on go1.17
//! amd64, and on go1.18+ anything with `FUNCDATA_WrapInfo`, or, before
//! go1.22, the assembler's wrapper prologue) are followed to their first
//! direct call that is not a runtime helper. When the callee was inlined
//! into the wrapper, the wrapper's inline tree
//! ([`deferscope_index::InlineTree`]) names the outermost inlined function
//! at that call (or, without a call, at its first inlined instruction):
//! `sync.(*Mutex).Unlock`, not the `unlockSlow` it calls. A wrapper around
//! a builtin (`defer close(ch)`) names the builtin.
//!
//! `recover` is looked for in the closure's own function (decoded once,
//! with the wrapper walk when it is one) and, after every function is done,
//! in the final callee ([`final_callees_recover`]: a wrapped recovering
//! function), found by name in one pass over the function table.

use std::collections::HashMap;

use deferscope_decode::{Event, SP};
use deferscope_index::runtime::{self, RuntimeFn};
use deferscope_index::{Func, InlineTree, Layout};
use deferscope_load::Arch;
use deferscope_model::explain::SiteExplain;

use super::context::Cx;

/// Where a deferred closure leads.
pub(super) struct Deferred {
    /// The function finally called; `None` when unresolved.
    pub target: Option<String>,
    /// The wrapper closure the runtime calls, if any.
    pub via: Option<String>,
    /// The wrapper ends in an indirect call (`target` is then `None`).
    pub indirect: bool,
    /// `target` was inlined into the wrapper (its inline tree names it).
    pub inlined: bool,
    /// The wrapper makes no call and writes no memory: the deferred call
    /// was inlined into it and compiled to nothing (`target` is `None`).
    pub elided: bool,
    /// `target` is a compiler intrinsic the wrapper's code holds in place
    /// of any call (`runtime/internal/atomic.Store`).
    pub intrinsic: bool,
    /// The closure's own function calls `recover`.
    pub calls_recover: bool,
    /// The wrapper's indirect call goes through the func value it
    /// captured at this offset ([`super::wrapcall`]).
    pub called_field: Option<i64>,
}

/// Resolve the closure whose code is at `code`.
pub(super) fn resolve(cx: &mut Cx<'_, '_>, code: u64) -> Deferred {
    let mut recovers = None;
    let u = unwrap(cx, code, &mut recovers);
    Deferred {
        target: u.target,
        via: u.via,
        indirect: u.indirect,
        inlined: u.inlined,
        elided: u.elided,
        intrinsic: u.intrinsic,
        calls_recover: match recovers {
            Some(r) => r,
            None => calls_recover(cx, code),
        },
        called_field: u.called_field,
    }
}

/// Where [`unwrap`] ends.
struct Unwrapped {
    target: Option<String>,
    via: Option<String>,
    indirect: bool,
    inlined: bool,
    intrinsic: bool,
    elided: bool,
    called_field: Option<i64>,
}

/// What one wrapper leads to.
enum Step {
    /// A named function: inlined into the wrapper (true), or a builtin.
    Named(String, bool),
    /// The wrapper's direct call to this address.
    Call(u64),
    /// No call: a compiler intrinsic, named.
    Intrinsic(String),
    /// No call, no intrinsic and nothing inlined left: the deferred call
    /// was inlined into the wrapper and compiled to nothing (if the wrapper
    /// writes no memory either).
    Elided,
    /// Nothing named or called directly.
    Unresolved,
}

/// Follow wrapper closures from `code` to the real callee. Sets `recovers` when it decoded the function holding `code`
/// (whether that calls `recover`; [`calls_recover`] answers the same from
/// the same calls).
fn unwrap(cx: &mut Cx<'_, '_>, code: u64, recovers: &mut Option<bool>) -> Unwrapped {
    let mut cur = code;
    let mut via = None;
    let done = |target, via, indirect, inlined, intrinsic| Unwrapped {
        target,
        via,
        indirect,
        inlined,
        intrinsic,
        elided: false,
        called_field: None,
    };
    for _ in 0..3 {
        // The function holding `cur` (looked up once: it names `cur` when
        // it starts there).
        let holder = cx.ix.func_for_pc(cur);
        let name = cx.name_in(holder, cur);
        if !is_wrapper(cx, holder, &name) {
            return done(Some(name), via, false, false, false);
        }
        via = Some(name);
        let Some(f) = holder else {
            break;
        };
        let Some(body) = cx.img.read(f.entry, f.end - f.entry) else {
            break;
        };
        let mut indirect = false;
        let mut calls = Vec::new();
        // Memory the wrapper writes, but for its frame and the assembler's
        // panic-argp fix-up (a store through the register loaded from
        // g._panic, offset 32 of the g: see `is_wrapper`).
        let g = match cx.img.arch {
            Arch::Amd64 => 14,
            Arch::Arm64 => 28,
        };
        let mut panic_reg = None;
        let mut writes = false;
        deferscope_decode::scan_flow(cx.img.arch, body, f.entry, |e| match e {
            Event::Call { pc, target } => calls.push((pc, target)),
            Event::CallIndirect { .. } => indirect = true,
            Event::Load {
                dst, base, offset, ..
            } if base == g && offset == 32 => panic_reg = Some(dst),
            Event::Store { base, .. } if base != SP && Some(base) != panic_reg => writes = true,
            _ => {}
        });
        if cur == code {
            let rec = cx.runtime.entry(RuntimeFn::Gorecover);
            *recovers = Some(calls.iter().any(|&(_, t)| Some(t) == rec));
        }
        match wrapped(cx, &f, body, &calls) {
            Step::Named(n, inl) => return done(Some(n), via, false, inl, false),
            Step::Elided if !indirect && !writes => {
                return Unwrapped {
                    elided: true,
                    ..done(None, via, false, false, false)
                }
            }
            Step::Intrinsic(n) if !indirect => return done(Some(n), via, false, false, true),
            Step::Call(t) => cur = t,
            Step::Unresolved | Step::Intrinsic(_) | Step::Elided => {
                // The site's own wrapper calling a func value it captured.
                let called_field = (indirect && cur == code)
                    .then(|| super::wrapcall::called_capture(cx.img.arch, body, f.entry))
                    .flatten();
                return Unwrapped {
                    called_field,
                    ..done(None, via, indirect, false, false)
                };
            }
        }
    }
    done(Some(cx.name(cur)), via, false, false, false)
}

/// What the wrapper `f` (code `body`), making direct `calls`, wraps.
fn wrapped(cx: &mut Cx<'_, '_>, f: &Func, body: &[u8], calls: &[(u64, u64)]) -> Step {
    let mut next = None;
    let mut builtin = None;
    for &(pc, t) in calls {
        // (A hex name is neither a helper nor a builtin.)
        let n = cx.callee_name(t).unwrap_or("");
        if !runtime::is_helper(n) {
            next = Some((pc, t));
            break;
        }
        builtin = match (builtin, runtime::builtin_of(n)) {
            // The first builtin's runtime function names it, but for the
            // newline that makes a print a println.
            (None, Some(b)) | (Some((_, "print/println")), Some(b @ "println")) => Some((pc, b)),
            (kept, _) => kept,
        };
    }
    // The callee may be inlined into the wrapper: then the call found (if
    // any) is one the inlined body makes, and the inline tree names the
    // function the wrapper's own code called there.
    let tree = InlineTree::new(cx.ix, cx.img, f);
    let inlined = tree.as_ref().and_then(|t| match next {
        Some((pc, _)) => t.outermost(pc),
        None => t
            .inlined_runs()
            .find_map(|(start, _, _)| t.outermost(start)),
    });
    if let Some(name) = inlined {
        return Step::Named(name.to_owned(), true);
    }
    if let Some((_, t)) = next {
        return Step::Call(t);
    }
    // A deferred builtin (`defer close(ch)`): the wrapper's own code
    // calls the runtime function that implements it.
    let own = |pc: u64| tree.as_ref().is_none_or(|t| t.index_at(pc).is_none());
    if let Some((_, b)) = builtin.filter(|&(pc, _)| own(pc)) {
        return Step::Named(b.to_owned(), false);
    }
    // A deferred runtime function (`defer unwindm(&restore)` in
    // runtime.cgocallbackg1, `defer p.Unpin()` of a runtime.Pinner): the
    // wrapper's first call that is not prologue, race or write-barrier
    // machinery.
    let machinery = |n: &str| {
        n.strip_prefix("runtime.").is_some_and(|r| {
            [
                "morestack",
                "race",
                "gcWriteBarrier",
                "wbBuf",
                "panic",
                "goPanic",
                "msan",
                "asan",
            ]
            .iter()
            .any(|p| r.starts_with(p))
        })
    };
    let mut any_call = false;
    for &(_, t) in calls {
        let n = cx.callee_name(t).unwrap_or("");
        if !machinery(n) && !n.is_empty() {
            return Step::Call(t);
        }
        any_call |= !machinery(n);
    }
    // No call left: the deferred call was an intrinsic the compiler
    // expanded in place (design.md §2.4): `defer atomic.StoreUint32(&x, 1)`
    // leaves a locked exchange (amd64) or a store-release (arm64).
    if !any_call {
        if let Some(w) = deferscope_decode::first_atomic_store(cx.img.arch, body, f.entry) {
            return Step::Intrinsic(atomic_store_name(cx, w));
        }
        if calls.is_empty() {
            return Step::Elided;
        }
    }
    Step::Unresolved
}

/// The compiler's name for the atomic store intrinsic of `width` bytes:
/// `sync/atomic.StoreUint32`/`StoreInt32` are aliases of
/// `runtime/internal/atomic.Store`, the 64-bit ones of `Store64`, the byte
/// one is `Store8` (ssagen/ssa.go `alias("sync/atomic", "StoreUint32",
/// "runtime/internal/atomic", "Store", ...)`); the package is
/// `internal/runtime/atomic` from go1.23.
fn atomic_store_name(cx: &Cx<'_, '_>, width: u8) -> String {
    let pkg = if cx.ix.version.is_some_and(|v| v.at_least(23)) {
        "internal/runtime/atomic"
    } else {
        "runtime/internal/atomic"
    };
    let f = match width {
        1 => "Store8",
        8 => "Store64",
        _ => "Store",
    };
    format!("{pkg}.{f}")
}

/// Whether the function named `name` and held by `holder` (the function
/// containing its address) is a compiler-generated wrapper.
fn is_wrapper(cx: &mut Cx<'_, '_>, holder: Option<Func>, name: &str) -> bool {
    if is_wrapper_name(name) {
        return true;
    }
    // go1.18+: FUNCDATA_WrapInfo (7) marks compiler-generated wrappers
    // (go1.18-1.21 name defer wrappers like ordinary closures).
    if !matches!(cx.ix.pcln.layout, Layout::Go118 | Layout::Go120) {
        return false;
    }
    let Some(f) = holder else {
        return false;
    };
    if cx.ix.funcdata_addr(&f, 7).is_some() {
        return true;
    }
    // A wrapper around a builtin has no wrapped function, so no WrapInfo;
    // but before go1.22 every function marked WRAPPER starts with the
    // assembler's panic-argp fix-up, which loads g._panic (offset 32 of
    // the g, in R14 on amd64 and R28 on arm64; obj6.go / obj7.go
    // `Wrapper()`), before any call.
    if cx.ix.version.is_some_and(|v| v.at_least(22)) {
        return false;
    }
    if let Some(w) = cx.wrapper_at.get(f.entry) {
        return w;
    }
    let g = match cx.img.arch {
        Arch::Amd64 => 14,
        Arch::Arm64 => 28,
    };
    let Some(body) = cx.img.read(f.entry, f.end - f.entry) else {
        return false;
    };
    let mut found = false;
    let mut called = false;
    deferscope_decode::scan_flow(cx.img.arch, body, f.entry, |e| match e {
        Event::Load { base, offset, .. } if !called && base == g && offset == 32 => found = true,
        Event::Call { .. } => called = true,
        _ => {}
    });
    cx.wrapper_at.insert(f.entry, found);
    found
}

/// Whether the function containing `entry` calls `runtime.gorecover`.
fn calls_recover(cx: &mut Cx<'_, '_>, entry: u64) -> bool {
    let Some(rec) = cx.runtime.entry(RuntimeFn::Gorecover) else {
        return false;
    };
    if let Some(r) = cx.recovers_at.get(entry) {
        return r;
    }
    let Some(f) = cx.ix.func_for_pc(entry) else {
        return false;
    };
    let Some(body) = cx.img.read(f.entry, f.end - f.entry) else {
        return false;
    };
    let mut found = false;
    deferscope_decode::scan(cx.img.arch, body, f.entry, |e| {
        if let Event::Call { target, .. } = e {
            found |= target == rec;
        }
    });
    cx.recovers_at.insert(entry, found);
    found
}

/// The final callee can recover too (a wrapped recovering function): for
/// each site that does not call `recover` itself, the first function of its
/// `deferred_target`'s name. The names are looked up together, in one pass
/// over the function table.
pub(super) fn final_callees_recover(cx: &mut Cx<'_, '_>, sites: &mut [SiteExplain]) {
    let mut wanted: HashMap<&[u8], Option<u64>> = HashMap::new();
    for sx in sites.iter().filter(|sx| !sx.calls_recover) {
        if let Some(t) = &sx.deferred_target {
            wanted.insert(t.as_bytes(), None);
        }
    }
    if wanted.is_empty() {
        return;
    }
    let mut left = wanted.len();
    for f in cx.ix.funcs() {
        if left == 0 {
            break;
        }
        let Some(n) = cx.ix.pcln.name_bytes(&f) else {
            continue;
        };
        if let Some(slot @ None) = wanted.get_mut(n) {
            *slot = Some(f.entry);
            left -= 1;
        }
    }
    let entries: Vec<(usize, u64)> = sites
        .iter()
        .enumerate()
        .filter(|(_, sx)| !sx.calls_recover)
        .filter_map(|(i, sx)| {
            let t = sx.deferred_target.as_ref()?;
            Some((i, wanted.get(t.as_bytes()).copied().flatten()?))
        })
        .collect();
    drop(wanted);
    for (i, entry) in entries {
        sites[i].calls_recover = calls_recover(cx, entry);
    }
}

/// `F.deferwrapN` (go1.22+), `F.dwrap.N` / `F·dwrap·N` (go1.17 amd64),
/// and a method value's wrapper `T.M-fm` (every version: walk/closure.go
/// `methodValueWrapper`, noder/reader.go `wrapMethodValue`; from go1.22 it
/// has no `FUNCDATA_WrapInfo`).
pub(super) fn is_wrapper_name(name: &str) -> bool {
    if name.ends_with("-fm") {
        return true;
    }
    let tail_digits = |s: &str, pre: &str| {
        s.rfind(pre).is_some_and(|i| {
            let d = &s[i + pre.len()..];
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        })
    };
    tail_digits(name, ".deferwrap") || tail_digits(name, ".dwrap.") || tail_digits(name, "·dwrap·")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_names() {
        // design.md §2.4.
        assert!(is_wrapper_name("main.inLoop.deferwrap2"));
        assert!(is_wrapper_name("main.f.dwrap.7"));
        assert!(is_wrapper_name("main.f·dwrap·1"));
        assert!(!is_wrapper_name("main.f.func1"));
        assert!(!is_wrapper_name("main.deferwrapper"));
        assert!(!is_wrapper_name("main.f.deferwrap"));
        assert!(is_wrapper_name("main.T.ValM-fm"));
    }
}

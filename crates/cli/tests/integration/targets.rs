//! Deferred targets (issue 14 item 6): every defer of a fixture program's
//! or cmd/go's binary, in every variant, names its callee, says it is a
//! func value, or says the wrapper holds no code, and a named callee is
//! what the source defers ([`crate::targets_source`]); and selected sites
//! name what the source defers.
//!
//! Expected values come from the sources: `fixtures/go/defers` (the line of
//! `defer m.Unlock()` in `mutexUnlock`, of `defer f()` in `deferParam`,
//! whose `f` is a parameter, of `defer f(2)` in `methodValue`, whose `f`
//! is the method value `t.ValM`), and the toolchain's own `sync/once.go` and
//! `cmd/compile/internal/ssagen/ssa.go` for the intrinsic: before go1.22
//! `(*Once).doSlow` has `defer atomic.StoreUint32(&o.done, 1)`, which the
//! compiler expands as the intrinsic it aliases (`alias("sync/atomic",
//! "StoreUint32", "runtime/internal/atomic", "Store", ...)`).

use libtest_mimic::{Failed, Trial};

use crate::explain::explain_entry;
use crate::fixtures::{committed_root, entries, repo_root, Entry};
use crate::targets_source;

/// The 1-based line of the first line equal to `stmt` (trimmed) after the
/// line starting with `func_decl`, in `file` of fixtures/go/defers.
fn source_line(file: &str, func_decl: &str, stmt: &str) -> Result<u32, String> {
    let p = repo_root().join("fixtures/go/defers").join(file);
    let src = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let lines: Vec<&str> = src.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(func_decl))
        .ok_or_else(|| format!("{file}: no `{func_decl}`"))?;
    lines[start..]
        .iter()
        .position(|l| l.trim() == stmt)
        .map(|i| (start + i + 1) as u32)
        .ok_or_else(|| format!("{file}: no `{stmt}` in {func_decl}"))
}

/// Named sites name the source's callee.
fn check_callees(e: &Entry) -> Result<(), String> {
    let unlock = source_line("closures.go", "func mutexUnlock(", "defer m.Unlock()")?;
    let param = source_line("misc.go", "func deferParam(f func()) {", "defer f()")?;
    // `f := t.ValM; defer f(2)`: the method value's method, T.ValM.
    let mvalue = source_line("closures.go", "func methodValue(", "defer f(2)")?;
    source_line("closures.go", "func methodValue(", "f := t.ValM")?;
    let (r, x) = explain_entry(e)?;
    let mut errs = Vec::new();
    let mut seen = (0, 0, 0);
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        if s.function == "main.mutexUnlock" && s.line == unlock {
            seen.0 += 1;
            if sx.deferred_target.as_deref() != Some("sync.(*Mutex).Unlock") {
                errs.push(format!("mutexUnlock:{unlock} -> {:?}", sx.deferred_target));
            }
        }
        if s.function == "main.methodValue" && s.line == mvalue {
            seen.2 += 1;
            if sx.deferred_target.as_deref() != Some("main.T.ValM") || sx.deferred_indirect {
                errs.push(format!(
                    "methodValue:{mvalue}: indirect {}, target {:?}",
                    sx.deferred_indirect, sx.deferred_target
                ));
            }
        }
        if s.function == "main.deferParam" && s.line == param {
            seen.1 += 1;
            if !sx.deferred_indirect || sx.deferred_target.is_some() {
                errs.push(format!(
                    "deferParam:{param}: indirect {}, target {:?}",
                    sx.deferred_indirect, sx.deferred_target
                ));
            }
        }
    }
    if seen != (1, 1, 1) {
        errs.push(format!(
            "sites found (mutexUnlock, deferParam, methodValue): {seen:?}"
        ));
    }
    check_intrinsic(e, &r, &x, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

/// `defer atomic.StoreUint32(&o.done, 1)` in the toolchain's sync/once.go
/// (before go1.22), when its ssa.go aliases StoreUint32 to
/// runtime/internal/atomic.Store (but for -race builds).
fn check_intrinsic(
    e: &Entry,
    r: &deferscope_analyze::Scan,
    x: &deferscope_analyze::explain::Explain,
    errs: &mut Vec<String>,
) {
    let src = e.meta.goroot.join("src");
    let once = std::fs::read_to_string(src.join("sync/once.go")).unwrap_or_default();
    let ssa =
        std::fs::read_to_string(src.join("cmd/compile/internal/ssagen/ssa.go")).unwrap_or_default();
    let stmt = "defer atomic.StoreUint32(&o.done, 1)";
    let Some(line) = once.lines().position(|l| l.trim() == stmt) else {
        return;
    };
    let alias = "alias(\"sync/atomic\", \"StoreUint32\", \"runtime/internal/atomic\", \"Store\"";
    if !ssa.contains(alias) {
        return;
    }
    let line = line as u32 + 1;
    let got: Vec<(Option<&str>, bool)> = r
        .sites
        .iter()
        .zip(&x.sites)
        .filter(|(s, _)| s.function == "sync.(*Once).doSlow" && s.line == line)
        .map(|(_, sx)| (sx.deferred_target.as_deref(), sx.deferred_intrinsic))
        .collect();
    // -race keeps the call: `if base.Flag.Race && pkg == "sync/atomic"`
    // "the race detector needs to be able to intercept these calls".
    let want = if e.meta.variant == "race" {
        (Some("sync/atomic.StoreUint32"), false)
    } else {
        (Some("runtime/internal/atomic.Store"), true)
    };
    if got != [want] {
        errs.push(format!("doSlow once.go:{line} ({stmt}): {got:?}"));
    }
}

/// The programs whose every site is checked.
const PROGRAMS: [&str; 6] = [
    "defers",
    "rangefunc",
    "explain",
    "semantics",
    "cgo",
    "cmdgo",
];

pub fn trials() -> Vec<Trial> {
    let mut roots = vec![committed_root()];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push(m.into());
        }
    }
    let mut out = vec![Trial::test("targets::source_parsing", || {
        targets_source::self_test().map_err(Failed::from)
    })];
    for root in roots {
        for e in entries(&root) {
            if !PROGRAMS.contains(&e.meta.program.as_str()) {
                continue;
            }
            let name = e.name();
            let e2 = e.clone();
            out.push(Trial::test(
                format!("targets::resolved::{name}"),
                move || {
                    let (r, x) = explain_entry(&e2)?;
                    targets_source::check_all(&e2, &r, &x).map_err(Failed::from)
                },
            ));
            if e.meta.program == "defers" {
                out.push(Trial::test(format!("targets::callee::{name}"), move || {
                    check_callees(&e).map_err(Failed::from)
                }));
            }
        }
    }
    out
}

//! The rules of design.md §1.3 that keep a function's defers from being
//! open-coded, one function per [`Reason`], each returning its
//! [`ReasonDetail`] (words and a fix) when it applies, read from what the
//! binary shows ([`FuncFacts`]):
//!
//! - [`in_loop`]: a heap-allocated defer inside a natural loop; it also
//!   claims its sites and their loop's lines.
//! - [`too_many_defers`]: more than 8 sites.
//! - [`too_many_returns`]: return statements × defers > 15, with the
//!   return statements estimated by [`estimate_returns`].
//! - [`build_flags`]: `-N` / `-d=noopendefer` for the function's package,
//!   or the function's own race hooks.
//! - [`range_func`]: `deferprocat` sites, or a `deferrangefunc` call.
//! - [`result_escapes`]: a heap-allocated result copied back after
//!   `runtime.deferreturn`.
//! - [`unknown`] when none applies. It is a real outcome: a return
//!   statement the optimizer deleted as dead code still counts for the
//!   compiler but leaves no exit in the binary.
//!
//! The rules are function-wide; [`site_reasons`] says which apply to each
//! site.

use std::collections::BTreeSet;

use deferscope_index::runtime::RuntimeFn;
use deferscope_index::{Func, InlineTree, LineTable};
use deferscope_model::explain::{LoopLines, Reason, ReasonDetail};
use deferscope_model::{package_of, FuncInfo, Kind, Site};

use super::context::Cx;
use super::values::{Call, Values};
use crate::cfg::{Cfg, Loop, Term};

/// Open-coding limits (design.md §1.3: maxOpenDefers, rule #8).
const MAX_OPEN_DEFERS: usize = 8;
const MAX_RETURNS_X_DEFERS: usize = 15;

/// One function that is not open-coded, as the rules see it.
pub(super) struct FuncFacts<'f> {
    pub fi: &'f FuncInfo,
    pub f: &'f Func,
    /// Its sites: indices into the scan's sites, and the sites.
    pub idx: &'f [usize],
    pub sites: &'f [&'f Site],
    pub cfg: &'f Cfg,
    /// `cfg`'s immediate dominators.
    pub idoms: &'f [Option<usize>],
    pub vals: &'f Values,
    /// `vals.calls` are in strictly increasing address order, as the
    /// decoder gives them (then calls are found by binary search).
    calls_sorted: bool,
}

impl<'f> FuncFacts<'f> {
    pub fn new(
        fi: &'f FuncInfo,
        f: &'f Func,
        idx: &'f [usize],
        sites: &'f [&'f Site],
        cfg: &'f Cfg,
        idoms: &'f [Option<usize>],
        vals: &'f Values,
    ) -> Self {
        let calls_sorted = vals.calls.windows(2).all(|w| w[0].pc < w[1].pc);
        FuncFacts {
            fi,
            f,
            idx,
            sites,
            cfg,
            idoms,
            vals,
            calls_sorted,
        }
    }

    /// The target of the (first) call at `pc`.
    fn call_target(&self, pc: u64) -> Option<u64> {
        let calls = &self.vals.calls;
        let c = if self.calls_sorted {
            calls.get(calls.partition_point(|c| c.pc < pc))
        } else {
            calls.iter().find(|c| c.pc == pc)
        };
        c.filter(|c| c.pc == pc).map(|c| c.target)
    }

    /// The last call (in `calls` order) inside [start, end).
    fn last_call_in(&self, start: u64, end: u64) -> Option<&Call> {
        let calls = &self.vals.calls;
        if self.calls_sorted {
            let k = calls.partition_point(|c| c.pc < end);
            k.checked_sub(1)
                .map(|k| &calls[k])
                .filter(|c| c.pc >= start)
        } else {
            calls.iter().rfind(|c| c.pc >= start && c.pc < end)
        }
    }

    /// The function's sites with their indices.
    fn indexed_sites(&self) -> impl Iterator<Item = (usize, &'f Site)> + '_ {
        self.idx.iter().copied().zip(self.sites.iter().copied())
    }
}

/// An in-loop claim: the site, its loop's lines (when the loop is seen in
/// the machine code), and the reason.
pub(super) struct InLoop {
    pub site: usize,
    pub lines: Option<LoopLines>,
    pub detail: ReasonDetail,
}

/// `in-loop`: each heap-allocated (`runtime.deferproc`) site inside a
/// natural loop ([`crate::cfg`]): every iteration pushes a record that
/// waits for the function's return. From go1.17 a `deferproc` site is in a
/// loop for the compiler even when no loop is left around it in the machine
/// code (design.md §1.2: escape analysis marks a defer outside loops
/// `EscNever`, and only those get a stack record): a loop whose body
/// returns after the defer has no way back to it.
pub(super) fn in_loop(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>) -> Vec<InLoop> {
    let heap = heap_sites(cx, ff);
    if heap.is_empty() {
        return Vec::new();
    }
    // The loops, line table and inline tree serve only these sites.
    let loops = ff.cfg.loops_with(ff.idoms);
    let lines = cx.ix.lines(ff.f);
    let inl = InlineTree::new(cx.ix, cx.img, ff.f);
    let function = short_name(&ff.fi.name);
    heap.into_iter()
        .filter_map(|(i, s)| match loop_of(ff, &loops, &lines, s) {
            Some((l, inside)) if inside || cx.heap_means_loop => {
                let ll = loop_lines(ff, l, &lines, inl.as_ref(), s);
                Some(InLoop {
                    site: i,
                    detail: in_loop_detail(s, &ll, function, inside),
                    lines: Some(ll),
                })
            }
            _ if cx.heap_means_loop => Some(InLoop {
                site: i,
                detail: in_unseen_loop_detail(s, function),
                lines: None,
            }),
            _ => None,
        })
        .collect()
}

/// The function's heap-allocated sites that are not range-over-func
/// bodies' (`runtime.deferproc`, not `deferprocat`).
fn heap_sites<'f>(cx: &Cx<'_, '_>, ff: &FuncFacts<'f>) -> Vec<(usize, &'f Site)> {
    let deferprocat = cx.runtime.entry(RuntimeFn::Deferprocat);
    ff.indexed_sites()
        .filter(|(_, s)| s.kind == Kind::HeapAllocated && ff.call_target(s.pc) != deferprocat)
        .collect()
}

/// The innermost loop holding the site (`true`); else a loop the site is
/// reached from through an exit edge out of the body (`false`: a defer
/// followed by a return inside the loop, `for { ...; defer f(); return }`),
/// whose target has that one predecessor and whose exiting branch is not at
/// the loop's own first line (the condition's normal exit). The second is
/// a guess at which loop it is: only the compiler's rule (go1.17+) says
/// there is one.
fn loop_of<'l>(
    ff: &FuncFacts<'_>,
    loops: &'l [Loop],
    lines: &LineTable<'_>,
    s: &Site,
) -> Option<(&'l Loop, bool)> {
    let cfg = ff.cfg;
    let b = cfg.block_of(s.pc)?;
    let holding = loops
        .iter()
        .filter(|l| l.blocks.binary_search(&b).is_ok())
        .min_by_key(|l| l.blocks.len());
    if let Some(l) = holding {
        return Some((l, true));
    }
    let dom = |h: usize, mut u: usize| loop {
        if u == h {
            break true;
        }
        match ff.idoms[u] {
            Some(d) if d != u => u = d,
            _ => break false,
        }
    };
    let first_line = |l: &Loop| {
        l.blocks
            .iter()
            .filter_map(|&bi| {
                lines
                    .at(cfg.blocks[bi].start)
                    .filter(|(fl, _)| *fl == s.file)
            })
            .map(|(_, ln)| ln)
            .min()
    };
    loops
        .iter()
        .filter(|l| {
            let fl = first_line(l);
            l.blocks.iter().any(|&u| {
                let bu = &cfg.blocks[u];
                bu.succs.iter().any(|&v| {
                    l.blocks.binary_search(&v).is_err()
                        && cfg.blocks[v].preds.len() == 1
                        && dom(v, b)
                        && lines
                            .at(bu.end.saturating_sub(1).max(bu.start))
                            .map(|(_, ln)| Some(ln) != fl)
                            .unwrap_or(false)
                })
            })
        })
        .min_by_key(|l| l.blocks.len())
        .map(|l| (l, false))
}

/// The source lines of loop `l` holding site `s`: the lines of the
/// function's own code in the loop's blocks (and the site's).
fn loop_lines(
    ff: &FuncFacts<'_>,
    l: &Loop,
    lines: &LineTable<'_>,
    inl: Option<&InlineTree<'_, '_>>,
    s: &Site,
) -> LoopLines {
    let fi = ff.fi;
    let mut lo = u32::MAX;
    let mut hi = 0;
    for &bi in &l.blocks {
        let blk = &ff.cfg.blocks[bi];
        for &(start, end, line) in lines.line_runs() {
            if end <= blk.start || start >= blk.end || line <= 0 {
                continue;
            }
            // The function's own code only: code inlined from the same
            // file has that file's lines too. Nor the `func` line, which
            // the compiler gives to moves of the parameters wherever they
            // land (go1.19-1.21 amd64 put one inside unlockInLoop's loop).
            let at = start.max(blk.start);
            if lines.at(at).is_some_and(|(file, _)| file == s.file)
                && inl.is_none_or(|t| t.index_at(at).is_none())
                && (line as u32 != fi.line || fi.line == s.line)
            {
                lo = lo.min(line as u32);
                hi = hi.max(line as u32);
            }
        }
    }
    if lo > hi {
        lo = s.line;
        hi = s.line;
    }
    LoopLines {
        file: s.file.clone(),
        first_line: lo.min(s.line),
        last_line: hi.max(s.line),
    }
}

/// In-loop with the loop seen: `inside` it (each iteration passes the
/// defer), or on a way out of it.
fn in_loop_detail(s: &Site, ll: &LoopLines, function: &str, inside: bool) -> ReasonDetail {
    let at = format!(
        "the defer at {}:{} is {} the loop at {}:{}-{}",
        base_name(&s.file),
        s.line,
        if inside { "inside" } else { "in" },
        base_name(&ll.file),
        ll.first_line,
        ll.last_line,
    );
    let detail = if inside {
        format!(
            "{at}: each iteration pushes a heap-allocated _defer record (runtime.deferproc) \
             that waits until {function} returns"
        )
    } else {
        format!(
            "{at}, on a way out of it (the machine code leaves the loop to reach it): it is \
             heap-allocated (runtime.deferproc), which from go1.17 the compiler does only for \
             a defer it finds in a loop, and its record waits until {function} returns"
        )
    };
    ReasonDetail {
        code: Reason::InLoop,
        detail,
        fix: IN_LOOP_FIX.into(),
    }
}

/// In-loop by the compiler's rule alone (go1.17+), with no loop around the
/// site in the machine code.
fn in_unseen_loop_detail(s: &Site, function: &str) -> ReasonDetail {
    ReasonDetail {
        code: Reason::InLoop,
        detail: format!(
            "the defer at {}:{} is heap-allocated (runtime.deferproc), which from go1.17 the \
             compiler does only for a defer it finds in a loop: a for or range body, or code \
             after a label that a later goto jumps back to; each pass through it pushes a \
             _defer record that waits until {function} returns. No loop around it is left in \
             the machine code (a loop whose body returns after the defer has no way back to \
             it), so the loop's lines are not shown",
            base_name(&s.file),
            s.line,
        ),
        fix: IN_LOOP_FIX.into(),
    }
}

const IN_LOOP_FIX: &str = "move the loop body into its own function so each iteration's defer \
                           runs at its end, or make the call explicitly at the end of the \
                           iteration";

/// `too-many-defers`: more sites than one deferBits byte can track.
pub(super) fn too_many_defers(ndefers: usize) -> Option<ReasonDetail> {
    (ndefers > MAX_OPEN_DEFERS).then(|| ReasonDetail {
        code: Reason::TooManyDefers,
        detail: format!(
            "{ndefers} defers in one function; open-coding allows at most {MAX_OPEN_DEFERS} \
             (one deferBits byte)"
        ),
        fix: "split the function, or merge cleanups into one deferred closure".into(),
    })
}

/// The return statements, as far as the binary shows them.
pub(super) struct Returns {
    /// `CALL runtime.deferreturn` exits that are neither unreachable nor a
    /// recovery exit.
    exits: usize,
    /// One exit taken off for falling off the end of a function without
    /// results.
    fall_off: bool,
    /// The estimate: `exits`, less the fall-off-the-end one.
    pub statements: usize,
}

/// Estimate the function's return statements. The compiler counts
/// `return` statements (walk's `NumReturns`); the binary shows the `CALL
/// runtime.deferreturn` exits that are neither unreachable (go1.25+'s
/// recovery exit) nor the target of the branch right after a `deferproc*`
/// call (≤ go1.24's recovery exits). A function without results that can
/// run off its end has one exit more than return statements: with
/// register results (go1.17+), an exit that reloads no register after
/// deferreturn belongs to a function without results, so one exit is
/// taken off for it. (That is an estimate: the end may be unreachable, and
/// a function returning only floats looks the same.)
pub(super) fn estimate_returns(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>) -> Returns {
    let cfg = ff.cfg;
    let mut exits = 0;
    for c in &ff.vals.calls {
        if c.role != Some(RuntimeFn::Deferreturn) {
            continue;
        }
        let Some(b) = cfg.block_of(c.pc) else {
            continue;
        };
        if ff.idoms[b].is_none() {
            continue;
        }
        let recovery = !cx.go125
            && cfg.blocks[b].preds.iter().any(|&p| {
                let pb = &cfg.blocks[p];
                pb.term == Term::Cond
                    && p + 1 != b
                    // The TESTL/JNE (CMP/BNE) right after the call
                    // (perhaps after alignment NOPs): the block's last
                    // call is a deferproc*.
                    && ff.last_call_in(pb.start, pb.end).is_some_and(|c| {
                        c.role.is_some_and(|r| RuntimeFn::REGISTER.contains(&r))
                    })
            });
        if !recovery {
            exits += 1;
        }
    }
    let fall_off = cx.regabi && !ff.vals.results_reloaded && exits > 0;
    Returns {
        exits,
        fall_off,
        statements: exits - usize::from(fall_off),
    }
}

/// `too-many-returns`: open-coding copies the deferred calls to every
/// return, so the compiler gives up when return statements × defers
/// exceeds 15.
pub(super) fn too_many_returns(r: &Returns, ndefers: usize) -> Option<ReasonDetail> {
    let returns = r.statements;
    (returns * ndefers > MAX_RETURNS_X_DEFERS).then(|| ReasonDetail {
        code: Reason::TooManyReturns,
        detail: format!(
            "an estimated {returns} return statements ({} exits{}) x {ndefers} {} = {} > \
             {MAX_RETURNS_X_DEFERS}: open-coding would copy the defer calls to every return",
            r.exits,
            if r.fall_off {
                ", less the fall-off-the-end one"
            } else {
                ""
            },
            if ndefers == 1 { "defer" } else { "defers" },
            returns * ndefers
        ),
        fix: "return from fewer places (set a result and break or goto one exit), or move the \
              deferring part into a smaller function"
            .into(),
    })
}

/// `build-flags`: calls to `runtime.racefuncenter`/`racefuncexit` (the
/// function's own race hooks), then `-N` or `-d=noopendefer` in the
/// `-gcflags` build setting for the function's package.
///
/// Only the function's own race hooks count: a -race build leaves some
/// functions without them (the runtime's packages; //go:norace; from
/// go1.26 also sync, sync/atomic, internal/sync and
/// internal/runtime/atomic, whose functions may then be open-coded:
/// ssagen buildssa sets instrumentEnterExit only for packages without
/// objabi's NoRaceFunc).
pub(super) fn build_flags(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>) -> Vec<ReasonDetail> {
    let mut out = Vec::new();
    let race = ff.vals.calls.iter().any(|c| {
        matches!(
            c.role,
            Some(RuntimeFn::RaceFuncEnter | RuntimeFn::RaceFuncExit)
        )
    });
    if race {
        out.push(ReasonDetail {
            code: Reason::BuildFlags,
            detail: format!(
                "built with -race{}: the race detector's function exit hook disables open-coding",
                if cx.race_setting {
                    ""
                } else {
                    " (race instrumentation calls found)"
                }
            ),
            fix: "build without -race to measure".into(),
        });
    }
    if let Some(g) = &cx.gcflags {
        if (g.n || g.noopendefer) && g.applies(&ff.fi.package, ff.fi.origin) {
            let flag = if g.n { "-N" } else { "-d=noopendefer" };
            out.push(ReasonDetail {
                code: Reason::BuildFlags,
                detail: format!(
                    "built with -gcflags={}: {flag} disables open-coded defers",
                    g.raw
                ),
                fix: format!("build without {flag} to measure"),
            });
        }
    }
    out
}

/// `range-func`: a defer in a range-over-func loop body
/// (`runtime.deferprocat`) belongs to the enclosing function's frame; the
/// enclosing function (it calls `runtime.deferrangefunc`) cannot open-code
/// any defer.
pub(super) fn range_func(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>) -> Option<ReasonDetail> {
    let deferprocat = cx.runtime.entry(RuntimeFn::Deferprocat);
    let body =
        deferprocat.is_some() && ff.sites.iter().any(|s| ff.call_target(s.pc) == deferprocat);
    if body {
        Some(ReasonDetail {
            code: Reason::RangeFunc,
            detail: "a defer in a range-over-func loop body belongs to the enclosing function's \
                     frame: it is always a heap-allocated record (runtime.deferprocat)"
                .into(),
            fix: "call the cleanup explicitly in the loop body, or collect the work and defer one \
                  cleanup in the enclosing function"
                .into(),
        })
    } else if ff.fi.calls_deferrangefunc {
        Some(ReasonDetail {
            code: Reason::RangeFunc,
            detail: "a range-over-func loop in this function has a defer in its body \
                     (runtime.deferrangefunc), which rules out open-coding for the whole function"
                .into(),
            fix: "move the defer out of the range-over-func loop body, or the loop into its own \
                  function"
                .into(),
        })
    } else {
        None
    }
}

/// `result-escapes`: after a `CALL runtime.deferreturn`, a load through a
/// pointer that an allocator (`runtime.newobject`, go1.27's `mallocgc*`)
/// returned before the first defer: the copy of a heap-allocated result
/// into its result register ([`Values::result_escapes`]).
pub(super) fn result_escapes(vals: &Values) -> Option<ReasonDetail> {
    vals.result_escapes.then(|| ReasonDetail {
        code: Reason::ResultEscapes,
        detail: "a result parameter lives on the heap (its address escapes): it is copied back \
                 after the deferred calls run, which open-coding does not support"
            .into(),
        fix: "do not take the address of the named result; use a local and assign it at the end"
            .into(),
    })
}

/// `unknown`: no rule found in the binary applies. Each clause says what
/// the binary shows, or that it could not tell (issue 15 item 2: "no
/// defer in a loop" was said of a defer in a `for { select { ... return } }`).
pub(super) fn unknown(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>, r: &Returns) -> ReasonDetail {
    let ndefers = ff.sites.len();
    let defers = |n: usize| if n == 1 { "defer" } else { "defers" };
    let mut clauses = Vec::new();
    // Loops: a stack record is only ever given to a defer outside loops
    // (design.md §1.2: EscNever at loop depth 1, in every version); a heap
    // one means a loop from go1.17 only, and then in_loop claimed it.
    let heap = heap_sites(cx, ff);
    let stack = ff
        .sites
        .iter()
        .filter(|s| s.kind == Kind::StackAllocated)
        .count();
    if stack > 0 {
        let which = match (stack, ndefers) {
            (1, 1) => "its one defer site is".to_owned(),
            (k, n) if k == n => format!("all {n} of its defer sites are"),
            (1, n) => format!("1 of its {n} defer sites is"),
            (k, n) => format!("{k} of its {n} defer sites are"),
        };
        clauses.push(format!(
            "{which} stack-allocated (runtime.deferprocStack), which the compiler does only for \
             a defer outside any loop"
        ));
    }
    for (_, s) in &heap {
        clauses.push(format!(
            "could not tell whether the heap-allocated defer at {}:{} is in a loop: no loop \
             around it in the machine code, and before go1.17 a deferred builtin without \
             operands (such as recover()) is heap-allocated too",
            base_name(&s.file),
            s.line
        ));
    }
    clauses.push(format!(
        "{ndefers} {} in the binary (at most {MAX_OPEN_DEFERS} allowed)",
        defers(ndefers)
    ));
    clauses.push(format!(
        "{} {} through runtime.deferreturn{}: an estimated {} return statements x {ndefers} = \
         {} (at most {MAX_RETURNS_X_DEFERS} allowed)",
        r.exits,
        if r.exits == 1 { "exit" } else { "exits" },
        if r.fall_off {
            ", less the fall-off-the-end one"
        } else {
            ""
        },
        r.statements,
        r.statements * ndefers
    ));
    clauses.push(build_flags_clause(cx, ff));
    clauses.push(
        "no copy of a result from a heap object after runtime.deferreturn, the sign of a \
         heap-allocated result, was found"
            .into(),
    );
    clauses.push(
        "no range-over-func defer (no runtime.deferprocat site, no runtime.deferrangefunc call)"
            .into(),
    );
    ReasonDetail {
        code: Reason::Unknown,
        detail: format!(
            "no rule of the compiler found in the binary explains it: {}. The binary cannot \
             show defer or return statements the optimizer deleted as dead code, which the \
             compiler counts before deleting them: a deleted defer in a loop, or deleted \
             returns, would explain it",
            clauses.join("; ")
        ),
        fix: "rebuild with -gcflags=-d=defer to see the compiler's decision".into(),
    }
}

/// What the binary says of the flags that disable open-coding: its own
/// race hooks (none, or `build_flags` would have applied) and the recorded
/// `-gcflags`.
fn build_flags_clause(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>) -> String {
    let flags = match &cx.gcflags {
        Some(g) => format!(
            "the recorded -gcflags={} give its package no -N or -d=noopendefer",
            g.raw
        ),
        None if cx.settings_recorded => "the build settings record no -gcflags".to_owned(),
        None => "could not tell whether it was built with -N or -d=noopendefer: the binary \
                 records no build settings"
            .to_owned(),
    };
    debug_assert!(build_flags(cx, ff).is_empty());
    format!("no race-detector hooks in the function; {flags}")
}

/// The reasons of one site, sorted: the function's `codes` are
/// function-wide and every non-open-coded site shares them, except that
/// in-loop belongs to the sites `in_loop` claimed. When only in-loop
/// explains the function, the other sites lost open-coding because of the
/// loop's and get it too.
pub(super) fn site_reasons(codes: &BTreeSet<Reason>, in_loop: bool) -> Vec<Reason> {
    let mut r: Vec<Reason> = codes
        .iter()
        .copied()
        .filter(|&c| c != Reason::InLoop)
        .collect();
    if in_loop || r.is_empty() {
        r.push(Reason::InLoop);
    }
    r.sort();
    r
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `pkg/path.F` -> `path.F`: the name from its package's last path
/// element on (type arguments may hold paths of their own).
fn short_name(name: &str) -> &str {
    let package = package_of(name);
    &name[package.rfind('/').map_or(0, |i| i + 1)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name("net/http.(*conn).serve"), "http.(*conn).serve");
        assert_eq!(short_name("main.f"), "main.f");
        // The type arguments' paths are not the function's.
        assert_eq!(short_name("a/b.G[go.shape.*c/d.T]"), "b.G[go.shape.*c/d.T]");
    }

    #[test]
    fn reasons_per_site() {
        let codes: BTreeSet<Reason> = [Reason::InLoop, Reason::BuildFlags].into();
        assert_eq!(site_reasons(&codes, false), vec![Reason::BuildFlags]);
        assert_eq!(
            site_reasons(&codes, true),
            vec![Reason::InLoop, Reason::BuildFlags]
        );
        let only_loop: BTreeSet<Reason> = [Reason::InLoop].into();
        assert_eq!(site_reasons(&only_loop, false), vec![Reason::InLoop]);
    }

    #[test]
    fn open_coding_limits() {
        // cmd/compile/internal/ssagen: maxOpenDefers = 8; walk: returns
        // x defers > 15 disables open-coding.
        assert!(too_many_defers(8).is_none());
        assert!(too_many_defers(9).is_some());
        let r = |n| Returns {
            exits: n,
            fall_off: false,
            statements: n,
        };
        assert!(too_many_returns(&r(5), 3).is_none());
        assert!(too_many_returns(&r(4), 4).is_some());
    }
}

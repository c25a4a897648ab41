//! `explain`: why each function's defers are not open-coded, what each
//! defer allocates, what it finally calls and what it costs.
//!
//! A separate pass (docs/design.md §5.4) over a [`Scan`] that
//! [`crate::scan`] made (so `scan` keeps its speed). For every function in
//! the report, `explain_func`
//! decodes the function once with [`deferscope_decode::scan_flow`] and
//! runs, in order:
//!
//! 1. the **control-flow pass** ([`crate::cfg`]): basic blocks, with jump
//!    tables read from the binary and calls to the runtime's
//!    never-returning functions ending their blocks
//!    ([`deferscope_index::runtime::is_noreturn`]); dominators and natural
//!    loops where a rule needs them.
//! 2. the **value pass** (`values`): which address, closure or heap object
//!    each register and stack word holds, hence the closure each defer
//!    registers and the heap objects a result is copied from.
//! 3. the **deferred target** of each site (`target`): wrapper closures
//!    followed to the function the defer finally calls, and whether it
//!    calls `recover`.
//! 4. **sizes and costs** (`sizes`): `_defer` record, closure slot and
//!    exit code bytes, and each site's estimated time.
//! 5. for a function that is not open-coded, the **rules** of design.md
//!    §1.3 (`reasons`), one function per [`Reason`], and which apply to
//!    each site.
//!
//! `context` holds what the passes share (the binary, the runtime's
//! functions by role, the Go release's facts, the build settings, names by
//! address). After the last function: whether each final callee calls
//! `recover` (one pass over the function table), and the inlining
//! candidates (one byte scan of the text).

mod captures;
mod context;
mod dwarfloads;
mod dwarfnames;
mod dwarfstores;
mod funcvalue;
mod notes;
mod reasons;
mod sizes;
mod target;
mod values;
mod wrapcall;

use std::collections::{BTreeSet, HashMap};

use deferscope_decode::Event;
use deferscope_index::deferrec::DeferLayout;
use deferscope_index::runtime::Runtime;
use deferscope_index::{Func, GoIndex};
use deferscope_load::{Arch, Image};
use deferscope_model::cost::CostTable;
use deferscope_model::explain::AllocPer;
pub use deferscope_model::explain::{
    Explain, FuncExplain, InlineCandidate, LoopLines, Reason, ReasonDetail, SiteExplain,
};
use deferscope_model::{FuncInfo, Kind, Scan, Site};

use crate::cfg::{Cfg, NoReturn};
use context::Cx;
pub use notes::listing_notes;
use reasons::FuncFacts;
use values::Values;

/// Decoded events kept allocated between functions.
const EVENTS_KEPT: usize = 1 << 16;

/// Explain every function and site of `report` (already filtered as the
/// caller wants). `cost` gives `est_ns`.
pub fn explain(img: &Image<'_>, ix: &GoIndex<'_>, report: &Scan, cost: &CostTable) -> Explain {
    explain_with(img, ix, &Runtime::find(ix), report, cost)
}

/// [`explain`], with the runtime's functions already found.
pub fn explain_with(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    runtime: &Runtime,
    report: &Scan,
    cost: &CostTable,
) -> Explain {
    let mut cx = Cx::new(img, ix, runtime, &report.binary.build_settings);
    let layout = DeferLayout::of_binary(ix, runtime);
    let mut sites: Vec<SiteExplain> = report
        .sites
        .iter()
        .map(|s| SiteExplain {
            reasons: Vec::new(),
            loop_lines: None,
            deferred_target: None,
            deferred_via: None,
            deferred_indirect: false,
            deferred_inlined: false,
            deferred_elided: false,
            deferred_intrinsic: false,
            calls_recover: false,
            heap_closure_bytes: None,
            heap_closure_allocator: None,
            est_ns: cost.ns(s.kind, false),
            captures: None,
            writes_results: Vec::new(),
            allocs_per_exec: None,
            bytes_per_exec: None,
            allocations: Vec::new(),
            result_reloads: Vec::new(),
            record_bytes: (s.kind == Kind::StackAllocated && !layout.args_follow)
                .then_some(layout.header_bytes),
            crosses_cgo: false,
            c_function: None,
        })
        .collect();
    let by_func = sites_by_function(report);
    let mut functions = Vec::with_capacity(report.functions.len());
    let mut unnamed = Vec::new();
    // An unstripped binary's DWARF is decompressed and its units listed
    // on another thread while the functions are explained, and the units
    // of the closures to name indexed as they come; the names are applied
    // at the end (design.md §5.6, §6.4 "Loading"). The functions are
    // explained in contiguous parts, one thread each (§5.6 "Threads").
    let dwarf = deferscope_index::Dwarf::load(img);
    let parts = parts(
        &report.functions,
        workers(report.functions.len(), dwarf.is_some()),
    );
    let done: Vec<Part> = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<deferscope_index::Wanted<'_>>>();
        if let Some(d) = &dwarf {
            // The names need the location lists too (§5.6).
            s.spawn(move || {
                d.prepare();
                d.warm_locations();
                while let Ok(mut batch) = rx.recv() {
                    while let Ok(more) = rx.try_recv() {
                        batch.extend(more);
                    }
                    d.want(&batch);
                }
            });
        }
        let job = Job {
            img,
            ix,
            runtime,
            report,
            by_func: &by_func,
            sites: &sites,
            cost,
            dwarf: dwarf.is_some(),
        };
        let tx = &tx;
        if parts.len() == 1 {
            vec![job.run(&report.functions, tx.clone())]
        } else {
            let handles: Vec<_> = parts
                .iter()
                .map(|fs| {
                    let tx = tx.clone();
                    s.spawn(move || job.run(fs, tx))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        }
    });
    for part in done {
        functions.extend(part.functions);
        for (i, sx) in part.sites {
            sites[i] = sx;
        }
        unnamed.extend(part.unnamed);
    }
    if let Some(d) = &dwarf {
        dwarfnames::apply(d, img, ix, &mut sites, &unnamed);
    }
    drop(by_func);
    target::final_callees_recover(&mut cx, &mut sites);
    let inline_candidates = sizes::inline_candidates(img, ix, report, &mut functions);
    Explain {
        sites,
        functions,
        inline_candidates,
        cost_table: cost.clone(),
    }
}

/// What every part of the explain pass shares.
#[derive(Clone, Copy)]
struct Job<'j, 'a, 'd> {
    img: &'a Image<'d>,
    ix: &'a GoIndex<'d>,
    runtime: &'a Runtime,
    report: &'j Scan,
    by_func: &'j [(u64, usize)],
    /// The sites as they are before any function is explained.
    sites: &'j [SiteExplain],
    cost: &'j CostTable,
    /// Send the DWARF thread the functions to index.
    dwarf: bool,
}

/// One part's results: its functions' facts in order, its sites' facts
/// (by index) and the sites DWARF may name.
struct Part {
    functions: Vec<FuncExplain>,
    sites: Vec<(usize, SiteExplain)>,
    unnamed: Vec<dwarfnames::Unnamed>,
}

impl<'d> Job<'_, '_, 'd> {
    /// Explain the functions `fs` with a context of their own.
    fn run(
        self,
        fs: &[FuncInfo],
        tx: std::sync::mpsc::Sender<Vec<deferscope_index::Wanted<'d>>>,
    ) -> Part {
        let mut cx = Cx::new(
            self.img,
            self.ix,
            self.runtime,
            &self.report.binary.build_settings,
        );
        let mut sites = self.sites.to_vec();
        let mut out = Part {
            functions: Vec::with_capacity(fs.len()),
            sites: Vec::new(),
            unnamed: Vec::new(),
        };
        // One event buffer for all functions (kept at most EVENTS_KEPT
        // long between them).
        let mut events = Vec::new();
        let mut idx = Vec::new();
        for fi in fs {
            let by_func = self.by_func;
            let lo = by_func.partition_point(|&(e, _)| e < fi.entry);
            let hi = lo + by_func[lo..].partition_point(|&(e, _)| e == fi.entry);
            idx.clear();
            idx.extend(by_func[lo..hi].iter().map(|&(_, i)| i));
            let named = cx.unnamed.len();
            out.functions.push(explain_func(
                &mut cx,
                self.report,
                fi,
                &idx,
                &mut sites,
                self.cost,
                &mut events,
            ));
            if self.dwarf && cx.unnamed.len() > named {
                let _ = tx.send(dwarf_wanted(&cx, &cx.unnamed[named..]));
            }
            if events.capacity() > EVENTS_KEPT {
                events = Vec::new();
            }
            for &i in &idx {
                out.sites.push((i, sites[i].clone()));
            }
        }
        out.unnamed = std::mem::take(&mut cx.unnamed);
        out
    }
}

/// Threads for the explain pass: the machine's cores but the one the
/// DWARF thread takes when there is DWARF, at most 4; one for few
/// functions. (On 2 cores with DWARF, a second worker only competes with
/// the DWARF thread: cmd/go go1.27.3 66 -> 73 ms; without DWARF it pays:
/// 60 -> 48 ms.)
fn workers(functions: usize, dwarf: bool) -> usize {
    if functions < 64 {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(usize::from(dwarf)).clamp(1, 4)
}

/// `fs` cut into `n` contiguous parts of about equal code size.
fn parts(fs: &[FuncInfo], n: usize) -> Vec<&[FuncInfo]> {
    let total: u64 = fs.iter().map(|f| f.size).sum();
    let mut out = Vec::with_capacity(n);
    let (mut start, mut acc) = (0, 0u64);
    for (i, f) in fs.iter().enumerate() {
        acc += f.size;
        if out.len() + 1 < n && acc * n as u64 >= total * (out.len() as u64 + 1) {
            out.push(&fs[start..=i]);
            start = i + 1;
        }
    }
    out.push(&fs[start..]);
    out
}

/// The functions whose DWARF [`dwarfnames::apply`] reads for sites
/// `unnamed`: each one's closure (with its entry line) and enclosing
/// function.
fn dwarf_wanted<'d>(
    cx: &Cx<'_, 'd>,
    unnamed: &[dwarfnames::Unnamed],
) -> Vec<deferscope_index::Wanted<'d>> {
    let mut out = Vec::with_capacity(2 * unnamed.len());
    for u in unnamed {
        if let Some(f) = cx.ix.func_for_pc(u.code).filter(|f| f.entry == u.code) {
            out.push(deferscope_index::Wanted {
                entry: f.entry,
                name: cx.ix.name(&f),
                line: cx.ix.lines(&f).at(f.entry).map(|(_, l)| u64::from(l)),
            });
        }
        if let Some(f) = cx.ix.func_for_pc(u.entry).filter(|f| f.entry == u.entry) {
            out.push(deferscope_index::Wanted {
                entry: f.entry,
                name: cx.ix.name(&f),
                line: None,
            });
        }
    }
    out
}

/// The sites of each function, as (entry, site index) pairs sorted by
/// entry, sites in order: a site belongs to the first function of its
/// name whose range holds it (functions looked up by name, so no scan per
/// site).
fn sites_by_function(report: &Scan) -> Vec<(u64, usize)> {
    let mut funcs_named: HashMap<&str, Vec<&FuncInfo>> = HashMap::new();
    for f in &report.functions {
        funcs_named.entry(f.name.as_str()).or_default().push(f);
    }
    let mut by_func: Vec<(u64, usize)> = Vec::with_capacity(report.sites.len());
    for (i, s) in report.sites.iter().enumerate() {
        if let Some(fi) = funcs_named.get(s.function.as_str()).and_then(|c| {
            c.iter()
                .find(|f| s.pc >= f.entry && s.pc < f.entry + f.size)
        }) {
            by_func.push((fi.entry, i));
        }
    }
    by_func.sort_by_key(|&(e, _)| e);
    by_func
}

/// Explain function `fi`, whose sites are `idx` (into `report.sites` and
/// `sites`): fill in its sites' facts and return the function's.
fn explain_func(
    cx: &mut Cx<'_, '_>,
    report: &Scan,
    fi: &FuncInfo,
    idx: &[usize],
    sites: &mut [SiteExplain],
    cost: &CostTable,
    events: &mut Vec<Event>,
) -> FuncExplain {
    let mut fx = FuncExplain {
        reasons: Vec::new(),
        reason_details: Vec::new(),
        est_returns: None,
        defer_record_bytes: 0,
        open_slot_bytes: None,
        exit_code_bytes: None,
        direct_callers: None,
    };
    let Some(f) = cx.ix.func_for_pc(fi.entry) else {
        return fx;
    };
    let Some(code) = cx.img.read(f.entry, f.end - f.entry) else {
        return fx;
    };
    events.clear();
    deferscope_decode::scan_flow(cx.img.arch, code, f.entry, |e| events.push(e));
    let events = &events[..];
    let cfg = control_flow(cx, &f, events);
    let fsites: Vec<&Site> = idx.iter().map(|&i| &report.sites[i]).collect();
    let open_pcs: Vec<u64> = fsites
        .iter()
        .filter(|s| s.kind == Kind::OpenCoded)
        .map(|s| s.pc)
        .collect();
    let first_site = fsites.iter().map(|s| s.pc).min().unwrap_or(f.end);
    let vals = values::value_pass(cx, code, f.entry, events, &cfg, &open_pcs, first_site);
    site_facts(cx, (f.entry, idx), &fsites, &vals, &cfg, sites, cost);
    for (&i, s) in idx.iter().zip(&fsites) {
        if !vals.fn_code.contains_key(&s.pc) && funcvalue::is_func_value(cx, events, &cfg, s) {
            sites[i].deferred_indirect = true;
        }
    }

    fx.defer_record_bytes = sizes::defer_record_bytes(cx.go122, &fsites);
    if let Some(n) = fi.open_coded_defers {
        fx.open_slot_bytes = Some(sizes::open_slot_bytes(n));
        fx.exit_code_bytes = Some(sizes::exit_code_bytes(cx, &f, code, events, &fsites));
        return fx;
    }
    if fsites.is_empty() && !fi.calls_deferrangefunc {
        return fx;
    }
    let idoms = cfg.idoms();
    let ff = FuncFacts::new(fi, &f, idx, &fsites, &cfg, &idoms, &vals);
    apply_reasons(cx, &ff, sites, &mut fx);
    fx
}

/// The function's control-flow graph. Jump tables: an indirect jump
/// within 32 bytes after a static address load reads its targets from that
/// table (8-byte code addresses inside the function).
fn control_flow(cx: &Cx<'_, '_>, f: &Func, events: &[Event]) -> Cfg {
    let mut tables: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut last_addr: Option<(u64, u64)> = None;
    for e in events {
        match *e {
            Event::AddrLoad { pc, addr, .. } => last_addr = Some((pc, addr)),
            Event::Jump {
                pc, target: None, ..
            } => {
                if let Some((_, addr)) = last_addr.filter(|&(apc, _)| pc - apc <= 32) {
                    let mut t = Vec::new();
                    while let Some(w) = cx.img.read_u64(addr + 8 * t.len() as u64) {
                        if w < f.entry || w >= f.end || t.len() >= 4096 {
                            break;
                        }
                        t.push(w);
                    }
                    if !t.is_empty() {
                        tables.insert(pc, t);
                    }
                }
            }
            _ => {}
        }
    }
    Cfg::build_with_tables(
        f.entry,
        f.end,
        events,
        &tables,
        NoReturn {
            targets: cx.runtime.noreturn(),
            call_len: match cx.img.arch {
                Arch::Amd64 => 5,
                Arch::Arm64 => 4,
            },
        },
    )
}

/// Per-site facts: the function each defer finally calls, and a heap
/// closure's allocator, size and price.
fn site_facts(
    cx: &mut Cx<'_, '_>,
    (entry, idx): (u64, &[usize]),
    fsites: &[&Site],
    vals: &Values,
    cfg: &Cfg,
    sites: &mut [SiteExplain],
    cost: &CostTable,
) {
    let mut loops = None;
    for (&i, s) in idx.iter().zip(fsites) {
        let sx = &mut sites[i];
        let code = vals.fn_code.get(&s.pc).copied();
        if let Some(c) = code {
            let mut d = target::resolve(cx, c);
            // The wrapper calls the func value it captured: its target.
            if let Some(t) = d
                .called_field
                .and_then(|k| wrapcall::captured_code(cx, vals, s.pc, k))
            {
                let t = target::resolve(cx, t);
                if t.target.is_some() {
                    d.target = t.target;
                    d.indirect = t.indirect;
                    d.inlined = t.inlined;
                    d.intrinsic = t.intrinsic;
                }
            }
            sx.deferred_target = d.target;
            sx.deferred_via = d.via;
            sx.deferred_indirect = d.indirect;
            sx.deferred_inlined = d.inlined;
            sx.deferred_elided = d.elided;
            sx.deferred_intrinsic = d.intrinsic;
            sx.calls_recover = d.calls_recover;
        }
        let sem = captures::site_semantics(
            cx,
            vals,
            cfg,
            &mut loops,
            s.pc,
            code,
            sx.deferred_via.is_some(),
        );
        if let (Some(code), None) = (code, &sx.deferred_via) {
            if sem.captures.as_ref().is_some_and(|c| !c.is_empty())
                || !sem.writes_results.is_empty()
            {
                cx.unnamed.push(dwarfnames::Unnamed {
                    site: i,
                    code,
                    entry,
                });
            }
        }
        sx.captures = sem.captures;
        sx.writes_results = sem.writes_results;
        sx.allocs_per_exec = sem.allocs_per_exec;
        sx.bytes_per_exec = sem.bytes_per_exec;
        sx.allocations = sem.allocations;
        sx.result_reloads = sem.result_reloads;
        if let Some((alloc, size)) = vals.heap_closure.get(&s.pc) {
            sx.heap_closure_allocator = Some(alloc.clone());
            sx.heap_closure_bytes = *size;
            // Records pending are not known from the binary (trace
            // measures them): the one-record price, plus each variable
            // moved to the heap as often as the defer runs (design.md
            // §5.6, §7.5).
            let facts = crate::cost::SiteCostFacts {
                heap_closure: true,
                heap_moved: sx
                    .allocations
                    .iter()
                    .filter(|a| a.what == "variable" && a.per == AllocPer::Exec)
                    .count(),
                ..Default::default()
            };
            sx.est_ns = cost.site_ns(s.kind, facts);
        }
        if let Some(t) = sx.deferred_target.as_deref() {
            sx.c_function = c_function(t);
            sx.crosses_cgo = sx.c_function.is_some() || t == "runtime.cgocall";
            if sx.crosses_cgo {
                sx.est_ns += cost.cgo_call_ns.unwrap_or(0.0);
            }
        }
    }
}

/// The C function a cgo wrapper calls (`main._Cfunc_add` -> `C.add`;
/// design.md §7.4).
fn c_function(target: &str) -> Option<String> {
    let (_, last) = target.rsplit_once('.')?;
    last.strip_prefix("_Cfunc_").map(|c| format!("C.{c}"))
}

/// Run the rules, in the order their details are shown, and give each of
/// the function's sites its reasons.
fn apply_reasons(
    cx: &Cx<'_, '_>,
    ff: &FuncFacts<'_>,
    sites: &mut [SiteExplain],
    fx: &mut FuncExplain,
) {
    let ndefers = ff.sites.len();
    let mut details: Vec<ReasonDetail> = Vec::new();
    let mut looped = Vec::new();
    for c in reasons::in_loop(cx, ff) {
        details.push(c.detail);
        sites[c.site].loop_lines = c.lines;
        looped.push(c.site);
    }
    details.extend(reasons::too_many_defers(ndefers));
    let returns = reasons::estimate_returns(cx, ff);
    if ndefers > 0 {
        fx.est_returns = Some(returns.statements);
        details.extend(reasons::too_many_returns(&returns, ndefers));
    }
    details.extend(reasons::build_flags(cx, ff));
    details.extend(reasons::range_func(cx, ff));
    details.extend(reasons::result_escapes(ff.vals));
    if details.is_empty() {
        details.push(reasons::unknown(cx, ff, &returns));
    }
    let codes: BTreeSet<Reason> = details.iter().map(|d| d.code).collect();
    for &i in ff.idx {
        sites[i].reasons = reasons::site_reasons(&codes, looped.contains(&i));
    }
    fx.reasons = codes.into_iter().collect();
    details.shrink_to_fit();
    fx.reason_details = details;
}

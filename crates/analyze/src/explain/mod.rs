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
use deferscope_index::{Dwarf, Func, GoIndex};
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
    let dwarf = Dwarf::load(img);
    std::thread::scope(|s| {
        warm_dwarf(s, dwarf.as_ref());
        explain_using(img, ix, runtime, report, cost, dwarf.as_ref())
    })
}

/// Start decompressing the sections of `dwarf` (an unstripped binary's)
/// on threads of `s`: `.debug_info` (then its units listed) and the
/// location lists, on two threads unless the machine has one core. The
/// front end calls it before the scan, whose time this hides (design.md
/// §6.4 "Loading"). (On 2 cores, two threads rather than one after the
/// other: cmd/go go1.24.11 linux/arm64 44.2 -> 41.4 ms, go1.22.10 the
/// same.)
pub fn warm_dwarf<'s>(s: &'s std::thread::Scope<'s, '_>, dwarf: Option<&'s Dwarf<'_>>) {
    let Some(d) = dwarf else {
        return;
    };
    if cores() >= 2 {
        s.spawn(move || d.warm_locations());
        s.spawn(move || d.prepare());
    } else {
        s.spawn(move || {
            d.prepare();
            d.warm_locations();
        });
    }
}

/// [`explain_with`], given the binary's DWARF ([`Dwarf::load`]), which
/// [`warm_dwarf`] has started to decompress.
pub fn explain_using(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    runtime: &Runtime,
    report: &Scan,
    cost: &CostTable,
    dwarf: Option<&Dwarf<'_>>,
) -> Explain {
    let mut cx = Cx::new(img, ix, runtime, &report.binary.build_settings);
    let layout = DeferLayout::of_binary(ix, runtime);
    // The sites as they are before any function is explained.
    let base: Vec<SiteExplain> = report
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
    // An unstripped binary's DWARF is decompressed and its units listed
    // on other threads ([`warm_dwarf`]) while the functions are
    // explained, and the units of the closures to name indexed as they
    // come; the names are applied at the end (design.md §5.6, §6.4
    // "Loading"). The functions are explained in contiguous chunks, which
    // the workers take as they go (§5.6 "Threads").
    let workers = workers(report.functions.len());
    let chunks = chunks(
        &report.functions,
        if workers == 1 { 1 } else { 8 * workers },
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (sites, functions, unnamed, inline_candidates) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<deferscope_index::Wanted<'_>>>();
        if let Some(d) = dwarf {
            s.spawn(move || {
                // Waits for the sections ([`warm_dwarf`]).
                d.prepare();
                while let Ok(mut batch) = rx.recv() {
                    while let Ok(more) = rx.try_recv() {
                        batch.extend(more);
                    }
                    d.want(&batch);
                }
            });
        }
        let counting = s.spawn(|| sizes::call_counts(img, ix, report));
        let job = Job {
            img,
            ix,
            runtime,
            report,
            by_func: &by_func,
            sites: &base,
            cost,
            dwarf: dwarf.is_some(),
        };
        // Workers take the next chunk as they finish one (the DWARF
        // threads share the cores at first); the main thread is one.
        let next = &next;
        let chunks = &chunks;
        let helpers: Vec<_> = (1..workers)
            .map(|_| {
                let tx = tx.clone();
                s.spawn(move || job.work(chunks, next, &tx))
            })
            .collect();
        let mut done = job.work(chunks, next, &tx);
        drop(tx);
        for h in helpers {
            done.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        done.sort_unstable_by_key(|&(k, _)| k);
        let done = done.into_iter().map(|(_, part)| part);
        // What needs no names is done while the DWARF thread finishes.
        let mut sites = base.clone();
        let mut functions = Vec::with_capacity(report.functions.len());
        let mut unnamed = Vec::new();
        for part in done {
            functions.extend(part.functions);
            for (i, sx) in part.sites {
                sites[i] = sx;
            }
            unnamed.extend(part.unnamed);
        }
        target::final_callees_recover(&mut cx, &mut sites);
        let counts = counting
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let inline_candidates = sizes::inline_candidates(report, &counts, &mut functions);
        (sites, functions, unnamed, inline_candidates)
    });
    let mut sites = sites;
    if let Some(d) = dwarf {
        dwarfnames::apply(d, img, ix, &mut sites, &unnamed);
    }
    Explain {
        sites,
        functions,
        inline_candidates,
        cost_table: cost.clone(),
    }
}

/// What every worker of the explain pass shares.
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

/// The sites of a chunk's functions, copied (with those of other chunks'
/// between them: the sites are in address order, so a chunk's are usually
/// exactly the range), indexed as `report.sites`.
struct Window {
    lo: usize,
    sites: Vec<SiteExplain>,
    /// Which of `sites` are the chunk's (explained by it).
    mine: Vec<bool>,
}

impl Window {
    /// The range of `all` that holds the sites of functions `fs`.
    fn of(all: &[SiteExplain], by_func: &[(u64, usize)], fs: &[FuncInfo]) -> Window {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for fi in fs {
            let a = by_func.partition_point(|&(e, _)| e < fi.entry);
            for &(_, i) in by_func[a..].iter().take_while(|&&(e, _)| e == fi.entry) {
                lo = lo.min(i);
                hi = hi.max(i + 1);
            }
        }
        let lo = lo.min(hi);
        Window {
            lo,
            sites: all[lo..hi].to_vec(),
            mine: vec![false; hi - lo],
        }
    }

    /// The chunk's sites, by index into `report.sites`.
    fn into_mine(self) -> Vec<(usize, SiteExplain)> {
        let lo = self.lo;
        self.sites
            .into_iter()
            .zip(self.mine)
            .enumerate()
            .filter_map(|(k, (sx, mine))| mine.then_some((lo + k, sx)))
            .collect()
    }
}

impl std::ops::Index<usize> for Window {
    type Output = SiteExplain;
    fn index(&self, i: usize) -> &SiteExplain {
        &self.sites[i - self.lo]
    }
}

impl std::ops::IndexMut<usize> for Window {
    fn index_mut(&mut self, i: usize) -> &mut SiteExplain {
        &mut self.sites[i - self.lo]
    }
}

/// One chunk's results: its functions' facts in order, its sites' facts
/// (by index) and the sites DWARF may name.
struct Part {
    functions: Vec<FuncExplain>,
    sites: Vec<(usize, SiteExplain)>,
    unnamed: Vec<dwarfnames::Unnamed>,
}

impl<'d> Job<'_, '_, 'd> {
    /// Explain chunks of functions, taking the next one from `next` until
    /// none is left, with a context of its own: each chunk's results with
    /// its number.
    fn work(
        self,
        chunks: &[&[FuncInfo]],
        next: &std::sync::atomic::AtomicUsize,
        tx: &std::sync::mpsc::Sender<Vec<deferscope_index::Wanted<'d>>>,
    ) -> Vec<(usize, Part)> {
        let mut cx = Cx::new(
            self.img,
            self.ix,
            self.runtime,
            &self.report.binary.build_settings,
        );
        // One event buffer for all functions (kept at most EVENTS_KEPT
        // long between them).
        let mut events = Vec::new();
        let mut out = Vec::new();
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(fs) = chunks.get(k) else {
                return out;
            };
            out.push((k, self.run(&mut cx, fs, tx, &mut events)));
        }
    }

    /// Explain the functions `fs`.
    fn run(
        self,
        cx: &mut Cx<'_, 'd>,
        fs: &[FuncInfo],
        tx: &std::sync::mpsc::Sender<Vec<deferscope_index::Wanted<'d>>>,
        events: &mut Vec<Event>,
    ) -> Part {
        let mut sites = Window::of(self.sites, self.by_func, fs);
        let mut out = Part {
            functions: Vec::with_capacity(fs.len()),
            sites: Vec::new(),
            unnamed: Vec::new(),
        };
        let mut idx = Vec::new();
        for fi in fs {
            let by_func = self.by_func;
            let lo = by_func.partition_point(|&(e, _)| e < fi.entry);
            let hi = lo + by_func[lo..].partition_point(|&(e, _)| e == fi.entry);
            idx.clear();
            idx.extend(by_func[lo..hi].iter().map(|&(_, i)| i));
            let named = cx.unnamed.len();
            out.functions.push(explain_func(
                cx,
                self.report,
                fi,
                &idx,
                &mut sites,
                self.cost,
                events,
            ));
            if self.dwarf && cx.unnamed.len() > named {
                let _ = tx.send(dwarf_wanted(cx, &cx.unnamed[named..]));
            }
            if events.capacity() > EVENTS_KEPT {
                *events = Vec::new();
            }
            for &i in &idx {
                sites.mine[i - sites.lo] = true;
            }
        }
        out.sites = sites.into_mine();
        out.unnamed = std::mem::take(&mut cx.unnamed);
        out
    }
}

/// Threads for the explain pass: the machine's cores, at most 4; one for
/// few functions. The DWARF threads take a core for a while; workers that
/// take chunks as they go share the rest (cmd/go linux/arm64 on 2 cores,
/// one worker -> two: go1.22.10 42.7 -> 39.4 ms, go1.27.3 66.9 -> 58.7).
fn workers(functions: usize) -> usize {
    if functions < 64 {
        return 1;
    }
    cores().clamp(1, 4)
}

/// The machine's cores (1 when unknown), asked once: the standard
/// library reads the cgroup's quota each time.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `fs` cut into `n` contiguous chunks of about equal code size.
fn chunks(fs: &[FuncInfo], n: usize) -> Vec<&[FuncInfo]> {
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
    let ix = cx.ix;
    let name = |pc: Option<u64>| Some(ix.name(&ix.func_for_pc(pc?)?));
    let mut out = Vec::with_capacity(2 * unnamed.len());
    for (code, closure) in unnamed
        .iter()
        .flat_map(|u| [(u.code, true), (u.entry, false)])
    {
        if let Some(f) = ix.func_for_pc(code).filter(|f| f.entry == code) {
            out.push(deferscope_index::Wanted {
                entry: f.entry,
                name: ix.name(&f),
                line: closure
                    .then(|| ix.lines(&f).at(f.entry).map(|(_, l)| u64::from(l)))
                    .flatten(),
                near: [name(f.entry.checked_sub(1)), name(Some(f.end))],
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
    sites: &mut Window,
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
    sites: &mut Window,
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
fn apply_reasons(cx: &Cx<'_, '_>, ff: &FuncFacts<'_>, sites: &mut Window, fx: &mut FuncExplain) {
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

//! `explain`: why each function's defers are not open-coded, what each
//! defer allocates, what it finally calls and what it costs.
//!
//! A separate pass over a [`Scan`] that [`crate::scan`] made (so `scan`
//! keeps its speed). For every function in the report it decodes the
//! function once with [`deferscope_decode::scan_flow`] and runs:
//!
//! - a **value pass** in address order: which static address
//!   (`LEAQ sym(SB)`, `ADRP`+`ADD`), stack address (`LEAQ off(SP)`) or heap
//!   object (the result of `runtime.newobject` / go1.27's
//!   `runtime.mallocgc*SC<n>`) each register and stack word holds. At a
//!   `CALL runtime.deferprocStack` the `_defer` record is the stack address
//!   in AX/R0 and its `fn` is the word at +24 (spec §3.4); at
//!   `runtime.deferproc`/`deferprocat` the closure is in AX/R0 (BX on
//!   go1.17 amd64); for an open-coded site it is the value stored into the
//!   closure slot. A closure's first word is its code pointer; a static
//!   funcval (`F.deferwrap1·f`) is read from the file. Wrapper closures
//!   (`F.deferwrapN`, `F.dwrap.N`, and on go1.18+ anything with
//!   `FUNCDATA_WrapInfo`) are followed to their first direct call that is
//!   not a runtime helper; when the callee was inlined into the wrapper,
//!   the wrapper's inline tree ([`deferscope_index::InlineTree`]) names the
//!   outermost inlined function at that call (or, without a call, at its
//!   first inlined instruction): `sync.(*Mutex).Unlock`, not the
//!   `unlockSlow` it calls. Register values are forgotten at every block
//!   start and after every call; stack words are kept.
//! - a **control-flow pass** ([`crate::cfg`]): basic blocks (calls to the
//!   runtime's never-returning functions end theirs, see [`is_noreturn`]),
//!   dominators and natural loops, to find heap-allocated defer calls
//!   inside a loop and the loop's source lines.
//! - the **rules** of spec §1.3, as [`Reason`]s, each with words and a fix:
//!   `in-loop`, `too-many-defers` (> 8 sites), `too-many-returns` (return
//!   statements × defers > 15; the compiler counts `return` statements
//!   (walk's `NumReturns`), estimated here from the `CALL
//!   runtime.deferreturn` exits that are neither unreachable (go1.25+'s
//!   recovery exit) nor the target of the branch right after a `deferproc*`
//!   call (≤ go1.24's recovery exits), less the fall-off-the-end exit of a
//!   function without results (with register results, go1.17+: no exit
//!   reloads a register after deferreturn)), `build-flags` (`-N` /
//!   `-d=noopendefer` in the `-gcflags` build setting for the function's
//!   package, or calls to `runtime.racefuncenter`/`racefuncexit`: the
//!   function's own race hooks, which a `-race` build leaves out of the
//!   runtime's packages and, from go1.26, of sync, sync/atomic,
//!   internal/sync and internal/runtime/atomic), `range-func`
//!   (`deferprocat` sites, or a `deferrangefunc` call), `result-escapes`
//!   (after a `CALL runtime.deferreturn`, a load through a pointer that an
//!   allocator (`runtime.newobject`, go1.27's `mallocgc*`) returned before
//!   the first defer: the copy of a heap-allocated result into its result
//!   register), and `unknown` when none applies. `unknown` is a real
//!   outcome: a return statement the optimizer deleted as dead code still
//!   counts for the compiler but leaves no exit in the binary.
//!
//! Sizes: `_defer` records are 48 bytes from go1.22 and 72 before (spec
//! §3.4); an open-coded function spends 8 bytes per closure slot plus the
//! deferBits byte; the code of its exit sequences is estimated as the bytes
//! at the defer statements' lines outside their recording instructions.

use std::collections::{BTreeSet, HashMap, HashSet};

use deferscope_decode::{reg, Event, SP};
use deferscope_index::runtime::{self, Runtime, RuntimeFn};
use deferscope_index::{Func, GoIndex, Layout};
use deferscope_load::{Arch, Image};
use deferscope_model::cost::CostTable;
pub use deferscope_model::explain::{
    Explain, FuncExplain, InlineCandidate, LoopLines, Reason, ReasonDetail, SiteExplain,
};
use deferscope_model::{FuncInfo, Kind, Origin, Scan, Site};

use crate::cfg::{Cfg, NoReturn};

/// Decoded events kept allocated between functions.
const EVENTS_KEPT: usize = 1 << 16;
/// Stack words and block states kept allocated between functions.
const SCRATCH_KEPT: usize = 1 << 12;

/// Most answers a memo of [`Cx`] holds: it is emptied when full, so its
/// memory stays bounded whatever the binary (the answers asked again and
/// again come back after it is emptied).
const MEMO_MAX: usize = 1 << 14;

fn memo(m: &mut HashMap<u64, bool>, k: u64, v: bool) {
    if m.len() >= MEMO_MAX {
        m.clear();
    }
    m.insert(k, v);
}

/// Functions smaller than this many bytes are inlining candidates.
pub const INLINE_MAX_BYTES: u64 = 200;

/// Open-coding limits (spec §1.3: maxOpenDefers, rule #8).
const MAX_OPEN_DEFERS: usize = 8;
const MAX_RETURNS_X_DEFERS: usize = 15;

/// Runtime functions the passes look for.
struct Rt {
    deferproc: Option<u64>,
    deferproc_stack: Option<u64>,
    deferprocat: Option<u64>,
    deferreturn: Option<u64>,
    gorecover: Option<u64>,
}

struct Cx<'a, 'd> {
    img: &'a Image<'d>,
    ix: &'a GoIndex<'d>,
    rt: Rt,
    /// go1.22+ (48-byte `_defer`, deferwrap names).
    go122: bool,
    /// go1.25+: no branch to a recovery exit after deferproc (spec §3.5).
    go125: bool,
    /// go1.17 amd64 passes the closure to deferproc in BX.
    go117_amd64: bool,
    gcflags: Option<GcFlags>,
    race_setting: bool,
    /// Names of call targets (`None`: not a function's entry), by address:
    /// the same few runtime and library functions are called from every
    /// function. Closures are looked up without it ([`Cx::name`]): each
    /// site has its own, so caching them would only hold memory.
    callee_names: HashMap<u64, Option<&'d str>>,
    /// [`Cx::is_wrapper`]'s and [`Cx::calls_recover`]'s answers where they
    /// decoded the function, by address (many sites defer the same
    /// function); at most [`MEMO_MAX`] each.
    wrapper_at: HashMap<u64, bool>,
    recovers_at: HashMap<u64, bool>,
    /// The runtime's functions, by role.
    runtime: &'a Runtime,
    /// [`Cx::value_pass`]'s stack words and block-end register states,
    /// kept (empty) between functions.
    stack_words: HashMap<i64, Val>,
    block_ends: Vec<Option<[Val; 32]>>,
    /// Function results come back in registers (go1.17+ amd64, go1.18+
    /// arm64): they are reloaded after `runtime.deferreturn`.
    regabi: bool,
}

/// The `-gcflags` build setting, as far as defers care.
struct GcflagsScope(String);

struct GcFlags {
    scope: Option<GcflagsScope>,
    n: bool,
    noopendefer: bool,
    raw: String,
}

impl GcFlags {
    fn parse(v: &str) -> GcFlags {
        let (scope, flags) = match v.split_once('=') {
            Some((p, rest)) if !p.starts_with('-') => (Some(GcflagsScope(p.to_owned())), rest),
            _ => (None, v),
        };
        let mut n = false;
        let mut noopendefer = false;
        for t in flags.split_whitespace() {
            if t == "-N" {
                n = true;
            }
            if let Some(d) = t.strip_prefix("-d=") {
                noopendefer |= d.split(',').any(|k| k == "noopendefer");
            }
        }
        GcFlags {
            scope,
            n,
            noopendefer,
            raw: v.to_owned(),
        }
    }

    /// Whether the flags reach `package` (`go help packages` patterns; no
    /// pattern means the packages named on the command line: main's).
    fn applies(&self, package: &str, origin: Origin) -> bool {
        match &self.scope {
            None => origin == Origin::Main,
            Some(GcflagsScope(p)) => match p.as_str() {
                "all" => true,
                "std" => origin == Origin::Std,
                p => match p.strip_suffix("/...") {
                    Some(pre) => package == pre || package.starts_with(&format!("{pre}/")),
                    None => package == p,
                },
            },
        }
    }
}

/// A value the value pass follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Unknown,
    /// A static address.
    Addr(u64),
    /// SP + offset.
    Sp(i64),
    /// A pointer to heap object `n` of this function.
    Heap(usize),
}

struct HeapObj {
    pc: u64,
    allocator: String,
    size: Option<u64>,
    first_word: Val,
}

/// What the value pass found.
#[derive(Default)]
struct Values {
    /// pc of a defer registration -> the deferred closure's code address.
    fn_code: HashMap<u64, u64>,
    /// pc of a heap defer registration -> its heap closure.
    heap_closure: HashMap<u64, (String, Option<u64>)>,
    /// Calls in address order: (pc, target).
    calls: Vec<(u64, u64)>,
    /// A load through a pre-defer heap pointer after deferreturn.
    result_escapes: bool,
    /// Some exit writes a register other than the frame's between its
    /// `CALL runtime.deferreturn` and its `RET`: it reloads the results.
    results_reloaded: bool,
}

impl<'a, 'd> Cx<'a, 'd> {
    /// The name of the function that starts at `entry`, if one does.
    fn entry_name(&self, entry: u64) -> Option<&'d str> {
        self.ix
            .func_for_pc(entry)
            .filter(|f| f.entry == entry)
            .map(|f| self.ix.name(&f))
    }

    /// [`Cx::entry_name`] of a call target, cached.
    fn callee_name(&mut self, entry: u64) -> Option<&'d str> {
        if let Some(&n) = self.callee_names.get(&entry) {
            return n;
        }
        let n = self.entry_name(entry);
        self.callee_names.insert(entry, n);
        n
    }

    /// The name of the function at `entry`, else the address in hex.
    fn name(&self, entry: u64) -> String {
        self.entry_name(entry)
            .map_or_else(|| format!("{entry:#x}"), str::to_owned)
    }

    fn is_entry(&self, a: u64) -> bool {
        self.ix.func_for_pc(a).is_some_and(|f| f.entry == a)
    }

    /// The code address a closure value leads to.
    fn code_of(&self, v: Val, stack: &HashMap<i64, Val>, heap: &[HeapObj]) -> Option<u64> {
        let word = match v {
            Val::Addr(a) => {
                if self.is_entry(a) {
                    return Some(a);
                }
                // A static funcval: its first word is the code pointer.
                return self.img.read_u64(a).filter(|&c| self.is_entry(c));
            }
            Val::Sp(o) => stack.get(&o).copied()?,
            Val::Heap(n) => heap.get(n)?.first_word,
            Val::Unknown => return None,
        };
        match word {
            Val::Addr(a) if self.is_entry(a) => Some(a),
            _ => None,
        }
    }

    /// Size of an allocation: the type descriptor's size word for
    /// newobject, the size class (or tiny size) in a go1.27 allocator name.
    fn alloc_size(&self, role: Option<RuntimeFn>, allocator: &str, arg: Val) -> Option<u64> {
        if role == Some(RuntimeFn::Newobject) {
            if let Val::Addr(t) = arg {
                return self.img.read_u64(t).filter(|&s| s > 0 && s < 1 << 32);
            }
            return None;
        }
        let digits: String = allocator
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let n: usize = digits.parse().ok()?;
        if allocator.contains("SC") {
            SIZE_CLASSES.get(n).copied().filter(|&s| s > 0)
        } else if allocator.contains("Tiny") {
            Some(n as u64)
        } else {
            None
        }
    }

    fn value_pass(
        &mut self,
        code: &[u8],
        entry: u64,
        events: &[Event],
        cfg: &Cfg,
        open_site_pcs: &[u64],
        first_site: u64,
    ) -> Values {
        let arch = self.img.arch;
        let arg0 = match arch {
            Arch::Amd64 => reg::AMD64_AX,
            Arch::Arm64 => reg::ARM64_R0,
        };
        let mut out = Values::default();
        let mut regs = [Val::Unknown; 32];
        // The stack words and block-end states: maps and buffers kept from
        // one function to the next (emptied first).
        let mut stack = std::mem::take(&mut self.stack_words);
        stack.clear();
        let mut heap: Vec<HeapObj> = Vec::new();
        let mut after_deferreturn = false;
        let leaders: Vec<u64> = cfg.blocks.iter().map(|b| b.start).collect();
        let mut next_leader = 1usize;
        let mut ends = std::mem::take(&mut self.block_ends);
        ends.clear();
        ends.resize(leaders.len(), None);
        let get = |regs: &[Val; 32], r: u8| -> Val {
            if r == SP {
                Val::Sp(0)
            } else {
                regs.get(r as usize).copied().unwrap_or(Val::Unknown)
            }
        };
        for e in events {
            let pc = match *e {
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
                | Event::Clobber { pc, .. } => pc,
            };
            // At each block start, keep what all already-seen predecessors
            // agree on; forget everything if a predecessor comes later (a
            // back edge) or was not seen.
            while next_leader < leaders.len() && leaders[next_leader] <= pc {
                ends[next_leader - 1] = Some(regs);
                let preds = &cfg.blocks[next_leader].preds;
                let mut meet: Option<[Val; 32]> = None;
                let mut ok = !preds.is_empty();
                for &p in preds {
                    match (p < next_leader).then(|| ends[p]).flatten() {
                        Some(st) => {
                            meet = Some(match meet {
                                None => st,
                                Some(mut m) => {
                                    for (a, b) in m.iter_mut().zip(st.iter()) {
                                        if a != b {
                                            *a = Val::Unknown;
                                        }
                                    }
                                    m
                                }
                            })
                        }
                        None => ok = false,
                    }
                }
                regs = if ok {
                    meet.unwrap_or([Val::Unknown; 32])
                } else {
                    [Val::Unknown; 32]
                };
                after_deferreturn = false;
                next_leader += 1;
            }
            match *e {
                Event::AddrLoad { reg, addr, .. } => set(&mut regs, reg, Val::Addr(addr)),
                Event::SpAddr { reg, offset, .. } => set(&mut regs, reg, Val::Sp(offset)),
                Event::Move { dst, src, .. } => {
                    let v = get(&regs, src);
                    set(&mut regs, dst, v)
                }
                Event::Clobber { reg, .. } => {
                    if after_deferreturn && !self.is_frame_reg(reg) {
                        out.results_reloaded = true;
                        // arm64 reloads a two-word result (an interface,
                        // a string) with `LDP (Rn), (Rt, Rt2)`, which the
                        // decoder reports as a clobber.
                        if let Some(base) = ldp_base(arch, code, entry, pc) {
                            if let Val::Heap(n) = get(&regs, base) {
                                if heap[n].pc < first_site {
                                    out.result_escapes = true;
                                }
                            }
                        }
                    }
                    set(&mut regs, reg, Val::Unknown)
                }
                Event::Load {
                    dst, base, offset, ..
                } => {
                    if after_deferreturn && !self.is_frame_reg(dst) {
                        out.results_reloaded = true;
                    }
                    let b = get(&regs, base);
                    if after_deferreturn && offset == 0 {
                        if let Val::Heap(n) = b {
                            // The result's heap copy: allocated before
                            // the first defer (runtime.newobject, or a
                            // go1.27 size-specialized mallocgc*).
                            if heap[n].pc < first_site {
                                out.result_escapes = true;
                            }
                        }
                    }
                    let v = match b {
                        Val::Sp(o) => stack.get(&(o + offset)).copied().unwrap_or(Val::Unknown),
                        _ => Val::Unknown,
                    };
                    set(&mut regs, dst, v);
                }
                Event::Store {
                    base,
                    offset,
                    src,
                    size,
                    ..
                } => {
                    let v = match (src, size) {
                        (Some(r), 8) => get(&regs, r),
                        _ => Val::Unknown,
                    };
                    if open_site_pcs.contains(&pc) {
                        if let Some(c) = self.code_of(v, &stack, &heap) {
                            out.fn_code.insert(pc, c);
                        }
                    }
                    match get(&regs, base) {
                        Val::Sp(o) => {
                            let at = o + offset;
                            stack.insert(at, v);
                            let mut k = 8;
                            while k < size as i64 {
                                stack.insert(at + k, Val::Unknown);
                                k += 8;
                            }
                        }
                        Val::Heap(n) if offset == 0 => heap[n].first_word = v,
                        _ => {}
                    }
                }
                Event::Call { target, .. } => {
                    out.calls.push((pc, target));
                    let role = self.runtime.role_at(target);
                    let is_alloc =
                        matches!(role, Some(RuntimeFn::Newobject | RuntimeFn::MallocgcSized));
                    let is_heap_defer =
                        Some(target) == self.rt.deferproc || Some(target) == self.rt.deferprocat;
                    let mut result = Val::Unknown;
                    if is_alloc {
                        let name = self.name(target);
                        let size = self.alloc_size(role, &name, regs[arg0 as usize]);
                        heap.push(HeapObj {
                            pc,
                            allocator: name,
                            size,
                            first_word: Val::Unknown,
                        });
                        result = Val::Heap(heap.len() - 1);
                    } else if is_heap_defer {
                        let mut cands = vec![regs[arg0 as usize]];
                        if self.go117_amd64 {
                            cands.insert(0, regs[reg::AMD64_BX as usize]);
                        }
                        // ABI0 (go1.16-, go1.17 arm64): fn follows siz on the stack.
                        for o in [8i64, 16] {
                            cands.push(stack.get(&o).copied().unwrap_or(Val::Unknown));
                        }
                        for v in cands {
                            if let Some(c) = self.code_of(v, &stack, &heap) {
                                out.fn_code.insert(pc, c);
                                if let Val::Heap(n) = v {
                                    out.heap_closure
                                        .insert(pc, (heap[n].allocator.clone(), heap[n].size));
                                }
                                break;
                            }
                        }
                    } else if Some(target) == self.rt.deferproc_stack {
                        let mut cands = vec![regs[arg0 as usize]];
                        for o in [0i64, 8] {
                            cands.push(stack.get(&o).copied().unwrap_or(Val::Unknown));
                        }
                        for d in cands {
                            if let Val::Sp(o) = d {
                                let f = stack.get(&(o + 24)).copied().unwrap_or(Val::Unknown);
                                if let Some(c) = self.code_of(f, &stack, &heap) {
                                    out.fn_code.insert(pc, c);
                                    break;
                                }
                            }
                        }
                    } else if Some(target) == self.rt.deferreturn {
                        after_deferreturn = true;
                    }
                    // The write barrier helpers keep the general registers
                    // (all but the buffer pointer they return).
                    if role != Some(RuntimeFn::GcWriteBarrier) {
                        regs = [Val::Unknown; 32];
                        set(&mut regs, arg0, result);
                    }
                    if Some(target) == self.rt.deferreturn {
                        // Keep the flag until the return (set above).
                        after_deferreturn = true;
                    }
                }
                Event::CallIndirect { .. } => regs = [Val::Unknown; 32],
                Event::Ret { .. } => after_deferreturn = false,
                _ => {}
            }
        }
        if stack.capacity() <= SCRATCH_KEPT {
            self.stack_words = stack;
        }
        if ends.capacity() <= SCRATCH_KEPT {
            self.block_ends = ends;
        }
        out
    }

    /// Registers an epilogue writes: SP and BP on amd64; SP, the frame
    /// pointer R29, the link register R30 and the assembler's temporary
    /// R27 on arm64.
    fn is_frame_reg(&self, r: u8) -> bool {
        match self.img.arch {
            Arch::Amd64 => r == SP || r == 4 || r == 5,
            Arch::Arm64 => r == SP || r == 31 || (27..=30).contains(&r),
        }
    }

    /// Follow wrapper closures to the real callee. Returns (target, via,
    /// indirect), and whether the function holding `code` calls `recover`
    /// when that came out of decoding it here (else `None`; see
    /// [`Cx::calls_recover`], which answers the same from the same calls).
    #[allow(clippy::type_complexity)]
    fn unwrap(&mut self, code: u64) -> ((Option<String>, Option<String>, bool), Option<bool>) {
        let mut recovers = None;
        let r = self.unwrap_inner(code, &mut recovers);
        (r, recovers)
    }

    fn unwrap_inner(
        &mut self,
        code: u64,
        recovers: &mut Option<bool>,
    ) -> (Option<String>, Option<String>, bool) {
        let mut cur = code;
        let mut via = None;
        for _ in 0..3 {
            // The function holding `cur` (looked up once: it names `cur`
            // when it starts there).
            let holder = self.ix.func_for_pc(cur);
            let name = holder
                .filter(|f| f.entry == cur)
                .map_or_else(|| format!("{cur:#x}"), |f| self.ix.name(&f).to_owned());
            if !self.is_wrapper(holder, &name) {
                return (Some(name), via, false);
            }
            via = Some(name);
            let Some(f) = holder else {
                break;
            };
            let Some(body) = self.img.read(f.entry, f.end - f.entry) else {
                break;
            };
            let mut next = None;
            let mut indirect = false;
            let mut calls = Vec::new();
            deferscope_decode::scan_flow(self.img.arch, body, f.entry, |e| match e {
                Event::Call { pc, target } => calls.push((pc, target)),
                Event::CallIndirect { .. } => indirect = true,
                _ => {}
            });
            if cur == code {
                let rec = self.rt.gorecover;
                *recovers = Some(calls.iter().any(|&(_, t)| Some(t) == rec));
            }
            let mut builtin = None;
            for (pc, t) in calls {
                // (A hex name is neither a helper nor a builtin.)
                let n = self.callee_name(t).unwrap_or("");
                if !runtime::is_helper(n) {
                    next = Some((pc, t));
                    break;
                }
                builtin = builtin.or_else(|| runtime::builtin_of(n).map(|b| (pc, b)));
            }
            // The callee may be inlined into the wrapper: then the call
            // found (if any) is one the inlined body makes, and the inline
            // tree names the function the wrapper's own code called there.
            let tree = deferscope_index::InlineTree::new(self.ix, self.img, &f);
            let inlined = tree.as_ref().and_then(|t| match next {
                Some((pc, _)) => t.outermost(pc),
                None => t
                    .inlined_runs()
                    .find_map(|(start, _, _)| t.outermost(start)),
            });
            if let Some(name) = inlined {
                return (Some(name.to_owned()), via, false);
            }
            // A deferred builtin (`defer close(ch)`): the wrapper's own
            // code calls the runtime function that implements it.
            if next.is_none() {
                if let Some((_, b)) = builtin
                    .filter(|&(pc, _)| tree.as_ref().is_none_or(|t| t.index_at(pc).is_none()))
                {
                    return (Some(b.to_owned()), via, false);
                }
            }
            match next {
                Some((_, t)) => cur = t,
                None => return (None, via, indirect),
            }
        }
        (Some(self.name(cur)), via, false)
    }

    /// Whether the function named `name` and held by `holder` (the function
    /// containing its address) is a compiler-generated wrapper.
    fn is_wrapper(&mut self, holder: Option<Func>, name: &str) -> bool {
        if is_wrapper_name(name) {
            return true;
        }
        // go1.18+: FUNCDATA_WrapInfo (7) marks compiler-generated wrappers
        // (go1.18-1.21 name defer wrappers like ordinary closures).
        if !matches!(self.ix.pcln.layout, Layout::Go118 | Layout::Go120) {
            return false;
        }
        let Some(f) = holder else {
            return false;
        };
        if self.ix.funcdata_addr(&f, 7).is_some() {
            return true;
        }
        // A wrapper around a builtin has no wrapped function, so no
        // WrapInfo; but before go1.22 every function marked WRAPPER starts
        // with the assembler's panic-argp fix-up, which loads g._panic
        // (offset 32 of the g, in R14 on amd64 and R28 on arm64; obj6.go /
        // obj7.go `Wrapper()`), before any call.
        if self.ix.version.is_some_and(|v| v.at_least(22)) {
            return false;
        }
        if let Some(&w) = self.wrapper_at.get(&f.entry) {
            return w;
        }
        let g = match self.img.arch {
            Arch::Amd64 => 14,
            Arch::Arm64 => 28,
        };
        let Some(body) = self.img.read(f.entry, f.end - f.entry) else {
            return false;
        };
        let mut found = false;
        let mut called = false;
        deferscope_decode::scan_flow(self.img.arch, body, f.entry, |e| match e {
            Event::Load { base, offset, .. } if !called && base == g && offset == 32 => {
                found = true
            }
            Event::Call { .. } => called = true,
            _ => {}
        });
        memo(&mut self.wrapper_at, f.entry, found);
        found
    }

    /// Whether the function containing `entry` calls `runtime.gorecover`.
    fn calls_recover(&mut self, entry: u64) -> bool {
        let Some(rec) = self.rt.gorecover else {
            return false;
        };
        if let Some(&r) = self.recovers_at.get(&entry) {
            return r;
        }
        let Some(f) = self.ix.func_for_pc(entry) else {
            return false;
        };
        let Some(body) = self.img.read(f.entry, f.end - f.entry) else {
            return false;
        };
        let mut found = false;
        deferscope_decode::scan(self.img.arch, body, f.entry, |e| {
            if let Event::Call { target, .. } = e {
                found |= target == rec;
            }
        });
        memo(&mut self.recovers_at, entry, found);
        found
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

fn set(regs: &mut [Val; 32], r: u8, v: Val) {
    if let Some(x) = regs.get_mut(r as usize) {
        *x = v;
    }
}

/// `F.deferwrapN` (go1.22+), `F.dwrap.N` / `F·dwrap·N` (go1.17 amd64).
pub fn is_wrapper_name(name: &str) -> bool {
    let tail_digits = |s: &str, pre: &str| {
        s.rfind(pre).is_some_and(|i| {
            let d = &s[i + pre.len()..];
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        })
    };
    tail_digits(name, ".deferwrap") || tail_digits(name, ".dwrap.") || tail_digits(name, "·dwrap·")
}

/// Go's malloc size classes (runtime/sizeclasses.go), class -> bytes.
const SIZE_CLASSES: [u64; 32] = [
    0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896,
];

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
    let rt = Rt {
        deferproc: runtime.entry(RuntimeFn::Deferproc),
        deferproc_stack: runtime.entry(RuntimeFn::DeferprocStack),
        deferprocat: runtime.entry(RuntimeFn::Deferprocat),
        deferreturn: runtime.entry(RuntimeFn::Deferreturn),
        gorecover: runtime.entry(RuntimeFn::Gorecover),
    };
    let go122 = ix
        .version
        .map_or(runtime.has(RuntimeFn::NextDefer), |v| v.at_least(22));
    let go117_amd64 = img.arch == Arch::Amd64 && ix.version.is_some_and(|v| v.minor == 17);
    let settings = &report.binary.build_settings;
    let mut cx = Cx {
        img,
        ix,
        rt,
        go122,
        go125: ix.version.is_some_and(|v| v.at_least(25)),
        go117_amd64,
        gcflags: settings.get("-gcflags").map(|v| GcFlags::parse(v)),
        race_setting: settings.get("-race").is_some_and(|v| v == "true"),
        callee_names: HashMap::new(),
        wrapper_at: HashMap::new(),
        recovers_at: HashMap::new(),
        runtime,
        stack_words: HashMap::new(),
        block_ends: Vec::new(),
        regabi: ix.version.is_some_and(|v| match img.arch {
            Arch::Amd64 => v.at_least(17),
            Arch::Arm64 => v.at_least(18),
        }),
    };

    let mut sites: Vec<SiteExplain> = report
        .sites
        .iter()
        .map(|s| SiteExplain {
            reasons: Vec::new(),
            loop_lines: None,
            deferred_target: None,
            deferred_via: None,
            deferred_indirect: false,
            calls_recover: false,
            heap_closure_bytes: None,
            heap_closure_allocator: None,
            est_ns: cost.ns(s.kind, false),
        })
        .collect();
    // Sites per function, by entry: the first function of the site's name
    // whose range holds it (functions by name, so no scan per site), as
    // (entry, site) pairs sorted by entry, sites in order.
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
    drop(funcs_named);
    by_func.sort_by_key(|&(e, _)| e);
    let mut functions = Vec::with_capacity(report.functions.len());
    let mut idx = Vec::new();
    // One event buffer for all functions (kept at most EVENTS_KEPT long
    // between them).
    let mut events = Vec::new();
    for fi in &report.functions {
        let lo = by_func.partition_point(|&(e, _)| e < fi.entry);
        let hi = lo + by_func[lo..].partition_point(|&(e, _)| e == fi.entry);
        idx.clear();
        idx.extend(by_func[lo..hi].iter().map(|&(_, i)| i));
        functions.push(explain_func(
            &mut cx,
            report,
            fi,
            &idx,
            &mut sites,
            cost,
            &mut events,
        ));
        if events.capacity() > EVENTS_KEPT {
            events = Vec::new();
        }
    }
    drop(by_func);
    final_callees_recover(&mut cx, &mut sites);

    // Inlining candidates: small functions with defers, by direct callers.
    let small: Vec<(u64, usize)> = report
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.size < INLINE_MAX_BYTES && f.sites > 0)
        .map(|(i, f)| (f.entry, i))
        .collect();
    let counts = direct_call_counts(img, ix, small.iter().map(|&(e, _)| e).collect());
    let mut inline_candidates = Vec::new();
    for &(entry, i) in &small {
        let n = counts.get(&entry).copied().unwrap_or(0);
        functions[i].direct_callers = Some(n);
        if n > 0 {
            inline_candidates.push(InlineCandidate {
                function: report.functions[i].name.clone(),
                size: report.functions[i].size,
                direct_callers: n,
            });
        }
    }
    inline_candidates.sort_by(|a, b| {
        b.direct_callers
            .cmp(&a.direct_callers)
            .then(a.function.cmp(&b.function))
    });
    Explain {
        sites,
        functions,
        inline_candidates,
        cost_table: cost.clone(),
    }
}

/// The final callee can recover too (a wrapped recovering function): for
/// each site that does not call `recover` itself, the first function of its
/// `deferred_target`'s name. The names are looked up together, in one pass
/// over the function table.
fn final_callees_recover(cx: &mut Cx<'_, '_>, sites: &mut [SiteExplain]) {
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
    let recover: Vec<(usize, bool)> = sites
        .iter()
        .enumerate()
        .filter(|(_, sx)| !sx.calls_recover)
        .filter_map(|(i, sx)| {
            let t = sx.deferred_target.as_ref()?;
            let entry = wanted.get(t.as_bytes()).copied().flatten()?;
            Some((i, entry))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(i, entry)| (i, cx.calls_recover(entry)))
        .collect();
    drop(wanted);
    for (i, r) in recover {
        sites[i].calls_recover = r;
    }
}

/// Direct calls (`CALL rel32` / `BL`) to each of `targets` in the text, by
/// a byte scan (as [`deferscope_decode::call_candidates`] does).
fn direct_call_counts(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    mut targets: Vec<u64>,
) -> HashMap<u64, usize> {
    let mut out = HashMap::new();
    targets.sort_unstable();
    if targets.is_empty() || ix.nfunc() == 0 {
        return out;
    }
    let (Some(first), Some(last)) = (ix.func(0), ix.func(ix.nfunc() - 1)) else {
        return out;
    };
    let Some(text) = img.read(first.entry, last.end.saturating_sub(first.entry)) else {
        return out;
    };
    let base = first.entry;
    let mut hit = |t: u64| {
        if targets.binary_search(&t).is_ok() {
            *out.entry(t).or_insert(0) += 1;
        }
    };
    match img.arch {
        Arch::Amd64 => {
            for i in (0..text.len()).filter(|&i| text[i] == 0xe8) {
                let Some(r) = text.get(i + 1..i + 5) else {
                    break;
                };
                let rel = i32::from_le_bytes([r[0], r[1], r[2], r[3]]) as i64;
                hit(((base + i as u64) as i64).wrapping_add(5).wrapping_add(rel) as u64);
            }
        }
        Arch::Arm64 => {
            for (i, c) in text.chunks_exact(4).enumerate() {
                if c[3] >> 2 != 0b100101 {
                    continue;
                }
                let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let off = (((w & 0x03ff_ffff) as i64) << 38 >> 38) * 4;
                hit((base + 4 * i as u64).wrapping_add(off as u64));
            }
        }
    }
    out
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

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
    let img = cx.img;
    let ix = cx.ix;
    let Some(f) = cx.ix.func_for_pc(fi.entry) else {
        return fx;
    };
    let Some(code) = img.read(f.entry, f.end - f.entry) else {
        return fx;
    };
    events.clear();
    deferscope_decode::scan_flow(img.arch, code, f.entry, |e| events.push(e));
    let events = &events[..];
    // Jump tables: an indirect jump after a static address load reads its
    // targets from that table (8-byte code addresses inside the function).
    let mut tables: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut last_addr: Option<(u64, u64)> = None;
    for e in events {
        match *e {
            Event::AddrLoad { pc, addr, .. } => last_addr = Some((pc, addr)),
            Event::Jump {
                pc, target: None, ..
            } => {
                if let Some((apc, addr)) = last_addr.filter(|&(apc, _)| pc - apc <= 32) {
                    let _ = apc;
                    let mut t = Vec::new();
                    while let Some(w) = img.read_u64(addr + 8 * t.len() as u64) {
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
    let cfg = Cfg::build_with_tables(
        f.entry,
        f.end,
        events,
        &tables,
        NoReturn {
            targets: cx.runtime.noreturn(),
            call_len: match img.arch {
                Arch::Amd64 => 5,
                Arch::Arm64 => 4,
            },
        },
    );
    let fsites: Vec<&Site> = idx.iter().map(|&i| &report.sites[i]).collect();
    let open_pcs: Vec<u64> = fsites
        .iter()
        .filter(|s| s.kind == Kind::OpenCoded)
        .map(|s| s.pc)
        .collect();
    let first_site = fsites.iter().map(|s| s.pc).min().unwrap_or(f.end);
    let vals = cx.value_pass(code, f.entry, events, &cfg, &open_pcs, first_site);

    // Per-site facts.
    for &i in idx {
        let s = &report.sites[i];
        if let Some(&c) = vals.fn_code.get(&s.pc) {
            let ((target, via, indirect), rec) = cx.unwrap(c);
            let rec = match rec {
                Some(r) => r,
                None => cx.calls_recover(c),
            };
            sites[i].deferred_target = target;
            sites[i].deferred_via = via;
            sites[i].deferred_indirect = indirect;
            sites[i].calls_recover = rec;
        }
        if let Some((alloc, size)) = vals.heap_closure.get(&s.pc) {
            sites[i].heap_closure_allocator = Some(alloc.clone());
            sites[i].heap_closure_bytes = *size;
            sites[i].est_ns = cost.ns(s.kind, true);
        }
    }

    let nstack = fsites
        .iter()
        .filter(|s| s.kind == Kind::StackAllocated)
        .count();
    fx.defer_record_bytes = nstack as u64 * if cx.go122 { 48 } else { 72 };
    if let Some(n) = fi.open_coded_defers {
        fx.open_slot_bytes = Some(8 * n as u64 + 1);
        // Exit sequences: code at the defer lines outside the recording
        // instructions' runs.
        let lines = ix.lines(&f);
        let mut bytes = 0;
        for &(start, end, line) in lines.line_runs() {
            let at_defer = fsites.iter().any(|s| {
                s.line as i32 == line && lines.at(start).is_some_and(|(file, _)| file == s.file)
            });
            let recording = fsites.iter().any(|s| s.pc >= start && s.pc < end);
            if at_defer && !recording {
                bytes += end - start;
            }
        }
        fx.exit_code_bytes = Some(bytes);
        return fx;
    }
    if fsites.is_empty() && !fi.calls_deferrangefunc {
        return fx;
    }

    // Reasons.
    let mut details: Vec<ReasonDetail> = Vec::new();
    let idoms = cfg.idoms();
    let mut site_reasons: HashMap<usize, Vec<Reason>> = HashMap::new();
    let mut call_at: HashMap<u64, u64> = HashMap::with_capacity(vals.calls.len());
    for &(pc, t) in &vals.calls {
        call_at.entry(pc).or_insert(t);
    }
    let call_target = |pc: u64| call_at.get(&pc).copied();
    // in-loop: a heap-allocated (deferproc) call inside a natural loop.
    let heap_sites: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&i| {
            let s = &report.sites[i];
            s.kind == Kind::HeapAllocated && call_target(s.pc) != cx.rt.deferprocat
        })
        .collect();
    // The loops, line table and inline tree serve only these sites.
    let (loops, lines, inl) = match heap_sites.is_empty() {
        true => (Vec::new(), None, None),
        false => (
            cfg.loops_with(&idoms),
            Some(ix.lines(&f)),
            deferscope_index::InlineTree::new(ix, img, &f),
        ),
    };
    for &i in &heap_sites {
        let s = &report.sites[i];
        let Some(lines) = &lines else {
            break;
        };
        let Some(b) = cfg.block_of(s.pc) else {
            continue;
        };
        // The innermost loop holding the site; else a loop the site is
        // reached from through an exit edge out of the body (a defer
        // followed by a return inside the loop: `for { ...; defer f();
        // return }`), whose target has that one predecessor and whose
        // exiting branch is not at the loop's own first line (the
        // condition's normal exit).
        let holding = loops
            .iter()
            .filter(|l| l.blocks.binary_search(&b).is_ok())
            .min_by_key(|l| l.blocks.len());
        let l = match holding {
            Some(l) => l,
            None => {
                let dom = |h: usize, mut u: usize| loop {
                    if u == h {
                        break true;
                    }
                    match idoms[u] {
                        Some(d) if d != u => u = d,
                        _ => break false,
                    }
                };
                let first_line = |l: &crate::cfg::Loop| {
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
                let found = loops
                    .iter()
                    .filter(|l| {
                        let fl = first_line(l);
                        l.blocks.iter().any(|&u| {
                            cfg.blocks[u].succs.iter().any(|&v| {
                                l.blocks.binary_search(&v).is_err()
                                    && cfg.blocks[v].preds.len() == 1
                                    && dom(v, b)
                                    && lines
                                        .at(cfg.blocks[u]
                                            .end
                                            .saturating_sub(1)
                                            .max(cfg.blocks[u].start))
                                        .map(|(_, ln)| Some(ln) != fl)
                                        .unwrap_or(false)
                            })
                        })
                    })
                    .min_by_key(|l| l.blocks.len());
                match found {
                    Some(l) => l,
                    None => continue,
                }
            }
        };
        let mut lo = u32::MAX;
        let mut hi = 0;
        for &bi in &l.blocks {
            let blk = &cfg.blocks[bi];
            for &(start, end, line) in lines.line_runs() {
                if end <= blk.start || start >= blk.end || line <= 0 {
                    continue;
                }
                // The function's own code only: code inlined from the
                // same file has that file's lines too.
                // Nor the `func` line, which the compiler gives to moves of
                // the parameters wherever they land (go1.19-1.21 amd64 put
                // one inside unlockInLoop's loop).
                let at = start.max(blk.start);
                if lines.at(at).is_some_and(|(file, _)| file == s.file)
                    && inl.as_ref().is_none_or(|t| t.index_at(at).is_none())
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
        let ll = LoopLines {
            file: s.file.clone(),
            first_line: lo.min(s.line),
            last_line: hi.max(s.line),
        };
        details.push(ReasonDetail {
            code: Reason::InLoop,
            detail: format!(
                "the defer at {}:{} is inside the loop at {}:{}-{}: each iteration pushes a \
                 heap-allocated _defer record (runtime.deferproc) that waits until {} returns",
                base_name(&s.file),
                s.line,
                base_name(&ll.file),
                ll.first_line,
                ll.last_line,
                short_name(&fi.name)
            ),
            fix: "move the loop body into its own function so each iteration's defer runs at its \
                  end, or make the call explicitly at the end of the iteration"
                .into(),
        });
        sites[i].loop_lines = Some(ll);
        site_reasons.entry(i).or_default().push(Reason::InLoop);
    }
    let ndefers = fsites.len();
    if ndefers > MAX_OPEN_DEFERS {
        details.push(ReasonDetail {
            code: Reason::TooManyDefers,
            detail: format!(
                "{ndefers} defers in one function; open-coding allows at most {MAX_OPEN_DEFERS} \
                 (one deferBits byte)"
            ),
            fix: "split the function, or merge cleanups into one deferred closure".into(),
        });
    }
    // Returns: deferreturn exits that are neither unreachable nor the
    // recovery branch after a deferproc* call.
    let defer_calls: HashSet<u64> = vals
        .calls
        .iter()
        .filter(|(_, t)| {
            [cx.rt.deferproc, cx.rt.deferproc_stack, cx.rt.deferprocat].contains(&Some(*t))
        })
        .map(|c| c.0)
        .collect();
    // The last call (in `calls` order) inside [start, end): by binary
    // search when the calls are in address order, as the decoder gives
    // them.
    let calls_sorted = vals.calls.windows(2).all(|w| w[0].0 < w[1].0);
    let last_call_in = |start: u64, end: u64| -> Option<u64> {
        if calls_sorted {
            let k = vals.calls.partition_point(|&(c, _)| c < end);
            k.checked_sub(1)
                .map(|k| vals.calls[k].0)
                .filter(|&c| c >= start)
        } else {
            vals.calls
                .iter()
                .rfind(|&&(c, _)| c >= start && c < end)
                .map(|c| c.0)
        }
    };
    let mut returns = 0;
    for &(pc, t) in &vals.calls {
        if Some(t) != cx.rt.deferreturn {
            continue;
        }
        let Some(b) = cfg.block_of(pc) else { continue };
        if idoms[b].is_none() {
            continue;
        }
        let recovery = cfg.blocks[b].preds.iter().any(|&p| {
            let pb = &cfg.blocks[p];
            pb.term == crate::cfg::Term::Cond
                && p + 1 != b
                && !cx.go125
                // The TESTL/JNE (CMP/BNE) right after the call (perhaps
                // after alignment NOPs): the block's last call is a
                // deferproc*.
                && last_call_in(pb.start, pb.end).is_some_and(|c| defer_calls.contains(&c))
        });
        if !recovery {
            returns += 1;
        }
    }
    // The compiler counts `return` statements (walk's NumReturns), not
    // exits: a function without results that can run off its end has one
    // exit more. With register results (go1.17+), an exit that reloads no
    // register after deferreturn belongs to a function without results;
    // take one exit off there for the fall-off-the-end one. (That is an
    // estimate: the end may be unreachable, and a function returning only
    // floats looks the same.)
    let exits = returns;
    let fall_off = cx.regabi && !vals.results_reloaded && exits > 0;
    let returns = exits - usize::from(fall_off);
    if ndefers > 0 {
        fx.est_returns = Some(returns);
        if returns * ndefers > MAX_RETURNS_X_DEFERS {
            details.push(ReasonDetail {
                code: Reason::TooManyReturns,
                detail: format!(
                    "an estimated {returns} return statements ({exits} exits{}) x {ndefers} {} = \
                     {} > {MAX_RETURNS_X_DEFERS}: open-coding would copy the defer calls to every \
                     return",
                    if fall_off {
                        ", less the fall-off-the-end one"
                    } else {
                        ""
                    },
                    if ndefers == 1 { "defer" } else { "defers" },
                    returns * ndefers
                ),
                fix: "return from fewer places (set a result and break or goto one exit), or move \
                      the deferring part into a smaller function"
                    .into(),
            });
        }
    }
    // Build flags.
    let race = vals.calls.iter().any(|(_, t)| {
        matches!(
            cx.runtime.role_at(*t),
            Some(RuntimeFn::RaceFuncEnter | RuntimeFn::RaceFuncExit)
        )
    });
    // Only the function's own race hooks count: a -race build leaves
    // some functions without them (the runtime's packages; //go:norace;
    // from go1.26 also sync, sync/atomic, internal/sync and
    // internal/runtime/atomic, whose functions may then be open-coded:
    // ssagen buildssa sets instrumentEnterExit only for packages without
    // objabi's NoRaceFunc).
    if race {
        details.push(ReasonDetail {
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
        if (g.n || g.noopendefer) && g.applies(&fi.package, fi.origin) {
            details.push(ReasonDetail {
                code: Reason::BuildFlags,
                detail: format!(
                    "built with -gcflags={}: {} disables open-coded defers",
                    g.raw,
                    if g.n { "-N" } else { "-d=noopendefer" }
                ),
                fix: format!(
                    "build without {} to measure",
                    if g.n { "-N" } else { "-d=noopendefer" }
                ),
            });
        }
    }
    // Range-over-func.
    let body = idx.iter().any(|&i| {
        call_target(report.sites[i].pc) == cx.rt.deferprocat && cx.rt.deferprocat.is_some()
    });
    if body {
        details.push(ReasonDetail {
            code: Reason::RangeFunc,
            detail: "a defer in a range-over-func loop body belongs to the enclosing function's \
                     frame: it is always a heap-allocated record (runtime.deferprocat)"
                .into(),
            fix: "call the cleanup explicitly in the loop body, or collect the work and defer one \
                  cleanup in the enclosing function"
                .into(),
        });
    } else if fi.calls_deferrangefunc {
        details.push(ReasonDetail {
            code: Reason::RangeFunc,
            detail: "a range-over-func loop in this function has a defer in its body \
                     (runtime.deferrangefunc), which rules out open-coding for the whole function"
                .into(),
            fix: "move the defer out of the range-over-func loop body, or the loop into its own \
                  function"
                .into(),
        });
    }
    if vals.result_escapes {
        details.push(ReasonDetail {
            code: Reason::ResultEscapes,
            detail:
                "a result parameter lives on the heap (its address escapes): it is copied back \
                     after the deferred calls run, which open-coding does not support"
                    .into(),
            fix:
                "do not take the address of the named result; use a local and assign it at the end"
                    .into(),
        });
    }
    if details.is_empty() {
        details.push(ReasonDetail {
            code: Reason::Unknown,
            detail: format!(
                "no rule of the compiler found in the binary explains it: no defer in a loop, \
                 {ndefers} {} (at most {MAX_OPEN_DEFERS} allowed), an estimated {returns} return \
                 statements x {ndefers} = {} (at most {MAX_RETURNS_X_DEFERS} allowed), no -N, \
                 -d=noopendefer or race hooks, no heap-allocated result, no range-over-func; \
                 the binary cannot show return statements the optimizer deleted as dead code, \
                 which the compiler counts before deleting them",
                if ndefers == 1 { "defer" } else { "defers" },
                returns * ndefers
            ),
            fix: "rebuild with -gcflags=-d=defer to see the compiler's decision".into(),
        });
    }
    let mut codes: BTreeSet<Reason> = details.iter().map(|d| d.code).collect();
    // The rules are function-wide: every non-open-coded site shares them,
    // except that in-loop belongs to the sites in a loop.
    for &i in idx {
        let mut r: Vec<Reason> = codes
            .iter()
            .copied()
            .filter(|&c| c != Reason::InLoop)
            .collect();
        if site_reasons
            .get(&i)
            .is_some_and(|v| v.contains(&Reason::InLoop))
        {
            r.push(Reason::InLoop);
        }
        if r.is_empty() {
            // Only in-loop explains the function: the other sites lost
            // open-coding because of the loop's.
            r.push(Reason::InLoop);
        }
        r.sort();
        sites[i].reasons = r;
    }
    fx.reasons = std::mem::take(&mut codes).into_iter().collect();
    details.shrink_to_fit();
    fx.reason_details = details;
    fx
}

/// `pkg/path.F` -> `F`'s last path element form (`path.F`).
pub fn short_name(name: &str) -> &str {
    let base = &name[..name.find('[').unwrap_or(name.len())];
    let slash = base.rfind('/').map_or(0, |i| i + 1);
    &name[slash..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_names() {
        // Spec §2.4.
        assert!(is_wrapper_name("main.inLoop.deferwrap2"));
        assert!(is_wrapper_name("main.f.dwrap.7"));
        assert!(!is_wrapper_name("main.f.func1"));
        assert!(!is_wrapper_name("main.deferwrapper"));
    }

    #[test]
    fn gcflags_scopes() {
        let g = GcFlags::parse("all=-N -l -d=defer");
        assert!(g.n && !g.noopendefer);
        assert!(g.applies("net/http", Origin::Std));
        let g = GcFlags::parse("-d=defer,noopendefer");
        assert!(g.noopendefer && !g.n);
        assert!(g.applies("main", Origin::Main));
        assert!(!g.applies("net/http", Origin::Std));
        let g = GcFlags::parse("example.com/m/...=-N");
        assert!(g.applies("example.com/m/lib", Origin::Main));
        assert!(!g.applies("example.com/mx", Origin::Dependency));
    }

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
}

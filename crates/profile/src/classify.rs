//! Classifying a profile's locations, once each, and then its samples.
//!
//! Every location of the binary's mapping is named by our own tables
//! ([`crate::symbolize`]: the pclntab function and its inline chain at
//! the address, less the load bias) and each of its frames gets a
//! [`FrameKind`]:
//!
//! - a runtime function of the defer machinery, by role, for the
//!   binary's Go version ([`deferscope_index::runtime::machinery_of`]);
//! - a function with defers from the scan, with the role of the
//!   instruction at the address as the disassembly annotator labels it
//!   ([`deferscope_disasm::machinery`]: the open-coded bookkeeping, the
//!   deferred call at an open-coded exit, the heap closure's allocation,
//!   the `deferproc*` and `deferreturn` calls);
//! - anything else.
//!
//! A sample is then one walk up its stack from the leaf
//! ([`classify_sample`]); the first frame that decides wins:
//!
//! - a machinery function: the sample is **machinery**; the run of
//!   machinery frames ends at the first frame outside it, which caused
//!   it (its instruction names the site: the `CALL deferproc*` is the
//!   site's pc); the phase is the outermost machinery function's, or the
//!   causing call's (`CALL deferreturn`, `CALL gopanic`). A panic raised
//!   in a function without defers is charged to the nearest function
//!   with defers above it, whose deferred calls the panic runs;
//! - a frame whose caller runs deferred calls (`deferreturn`, `gopanic`,
//!   `deferCallSave`, ...), or a function with defers at an open-coded
//!   exit's deferred call: the sample is in a **deferred call**;
//! - a function with defers at a heap-closure allocation: machinery
//!   (registration), charged to the site the closure is for;
//! - the leaf in a function with defers at its own bookkeeping code
//!   (deferBits, slots, registration): machinery;
//! - none of these: **other** work.

use std::collections::HashMap;

use deferscope_disasm::annotate::Machinery;
use deferscope_index::runtime::{machinery_of, Phase, RuntimeFn};
use deferscope_model::{Kind, Scan};

use crate::decode::Decoded;
use crate::matching::Matched;
use crate::symbolize::Symbolizer;

/// What one (logical) frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Machinery(RuntimeFn),
    /// `systemstack` and friends: part of a run of machinery frames when
    /// machinery is on both sides ([`RuntimeFn::StackSwitch`]).
    StackSwitch,
    /// A function with defers (index in the scan's functions), at the
    /// instruction starting at `ipc`, with the annotator's role there.
    Deferring {
        func: u32,
        ipc: u64,
        at: Option<Machinery>,
    },
    Other,
}

/// A logical frame: its kind and its name (index in [`Names`]), and
/// whether the profile itself lists it.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub name: u32,
    /// `go tool pprof BIN PROFILE` names this frame's function at this
    /// location: per-name totals count, like pprof, only those frames,
    /// while every frame still classifies the sample. pprof shows the
    /// profile's own lines when the profile's mapping is marked
    /// symbolized (Go's runtime does so from go1.24); the runtime writes
    /// fewer lines than our inline tree has frames, and not always the
    /// innermost ones (go1.19 and go1.21 write `runtime.readvarintUnsafe`
    /// inlined in `runtime.runOpenDeferFrame` as the one line). An
    /// unmarked profile (go1.23 and before) pprof symbolizes again from
    /// the binary with the Go symbol table, one frame per address: the
    /// function holding it, so inlined functions get no samples of their
    /// own (`runtime.acquirem`'s go to `runtime.newdefer`).
    pub listed: bool,
}

/// Interned function names (ours).
#[derive(Default, Debug)]
pub struct Names {
    pub list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Names {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// The frames of every location of one profile, innermost first.
pub struct LocFrames {
    pub starts: Vec<u32>,
    pub frames: Vec<Frame>,
}

impl LocFrames {
    pub fn of(&self, loc: u32) -> &[Frame] {
        let i = loc as usize;
        &self.frames[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
}

/// What the scan says, indexed for the walk.
pub struct Sites<'s> {
    pub scan: &'s Scan,
    /// Function entry -> index in `scan.functions`.
    pub func_by_entry: HashMap<u64, u32>,
    /// Per function, its sites' indices in `scan.sites`, by pc.
    pub of_func: Vec<Vec<u32>>,
    /// The annotator's roles per function entry: (pc, len, role), by pc.
    pub machinery: HashMap<u64, Vec<(u64, u32, Machinery)>>,
    /// Per function, the names of its deferred calls' wrappers and
    /// targets (from explain) -> site.
    pub deferred_names: Vec<Vec<(String, u32)>>,
}

impl<'s> Sites<'s> {
    pub fn new(scan: &'s Scan, explain: Option<&deferscope_model::explain::Explain>) -> Self {
        let func_by_entry: HashMap<u64, u32> = scan
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.entry, i as u32))
            .collect();
        let mut of_func = vec![Vec::new(); scan.functions.len()];
        let mut deferred_names = vec![Vec::new(); scan.functions.len()];
        for (k, s) in scan.sites.iter().enumerate() {
            let Some(fi) = scan
                .functions
                .iter()
                .position(|f| s.pc >= f.entry && s.pc < f.entry + f.size)
            else {
                continue;
            };
            of_func[fi].push(k as u32);
            if let Some(x) = explain.and_then(|x| x.sites.get(k)) {
                for n in [&x.deferred_via, &x.deferred_target].into_iter().flatten() {
                    deferred_names[fi].push((n.clone(), k as u32));
                }
            }
        }
        for v in &mut of_func {
            v.sort_by_key(|&k| scan.sites[k as usize].pc);
        }
        Sites {
            scan,
            func_by_entry,
            of_func,
            machinery: HashMap::new(),
            deferred_names,
        }
    }

    /// The function's only site, if it has one.
    fn single(&self, func: u32) -> Option<u32> {
        match self.of_func[func as usize].as_slice() {
            [s] => Some(*s),
            _ => None,
        }
    }

    /// The site registered by the instruction at `ipc`.
    fn at_pc(&self, func: u32, ipc: u64) -> Option<u32> {
        self.of_func[func as usize]
            .iter()
            .copied()
            .find(|&k| self.scan.sites[k as usize].pc == ipc)
    }

    /// The open-coded site with bit `bit` (or the only site).
    fn by_bit(&self, func: u32, bit: Option<u8>) -> Option<u32> {
        match bit {
            Some(b) => self.of_func[func as usize].iter().copied().find(|&k| {
                let s = &self.scan.sites[k as usize];
                s.kind == Kind::OpenCoded && s.index == Some(b)
            }),
            None => self.single(func),
        }
    }

    /// The first site registered after `pc` (a heap closure is built just
    /// before its `deferproc`).
    fn after(&self, func: u32, pc: u64) -> Option<u32> {
        self.of_func[func as usize]
            .iter()
            .copied()
            .find(|&k| self.scan.sites[k as usize].pc > pc)
    }

    /// The site whose deferred call is the function `name` (a symbol's
    /// name; the explain pass's names have their package paths unescaped,
    /// docs/design.md §4.9).
    fn by_deferred(&self, func: u32, name: &str) -> Option<u32> {
        let name = deferscope_index::names::display_name(name);
        let hits: Vec<u32> = self.deferred_names[func as usize]
            .iter()
            .filter(|(n, _)| *n == *name)
            .map(|&(_, k)| k)
            .collect();
        match hits.as_slice() {
            [k, ..] if hits.iter().all(|h| h == k) => Some(*k),
            _ => self.single(func),
        }
    }
}

/// Name and classify every location of `d`.
pub fn locations(
    sym: &Symbolizer<'_, '_>,
    d: &Decoded,
    m: &Matched,
    sites: &Sites<'_>,
    minor: Option<u32>,
    names: &mut Names,
) -> LocFrames {
    let mut out = LocFrames {
        starts: Vec::with_capacity(d.locations.len() + 1),
        frames: Vec::new(),
    };
    out.starts.push(0);
    // pprof symbolizes a mapping again from the binary unless it has any
    // of these flags (Go's runtime sets has_functions from go1.24 on).
    let symbolized = m.mapping.is_none_or(|k| {
        let mp = &d.mappings[k as usize];
        mp.has_functions || mp.has_filenames || mp.has_line_numbers
    });
    for (i, loc) in d.locations.iter().enumerate() {
        let ours = if m.holds(d, i) {
            sym.frames(loc.address.wrapping_sub(m.bias))
        } else {
            None
        };
        match ours {
            Some(fr) => {
                let pc = loc.address.wrapping_sub(m.bias);
                let last = fr.names.len() - 1;
                // The functions `go tool pprof BIN PROFILE` shows at this
                // location: the profile's own lines when its mapping says
                // it is symbolized; else pprof symbolizes it again from
                // the binary, one frame per address named by the Go
                // symbol table: the function holding the pc, our last.
                let listed_names: Vec<&str> = if symbolized && !loc.line.is_empty() {
                    loc.line
                        .iter()
                        .map(|l| crate::matching::function_name(d, l.function_id))
                        .collect()
                } else {
                    vec![fr.names[last]]
                };
                for (k, n) in fr.names.iter().enumerate() {
                    let kind = match machinery_of(n, minor) {
                        Some(r) => FrameKind::Machinery(r),
                        None if RuntimeFn::of(n) == Some(RuntimeFn::StackSwitch) => {
                            FrameKind::StackSwitch
                        }
                        None if k == last => match sites.func_by_entry.get(&fr.func.entry) {
                            Some(&func) => {
                                let (ipc, at) = instruction(sites, fr.func.entry, pc);
                                match at {
                                    None => statement(sym, sites, func, &fr.func, pc).map_or(
                                        FrameKind::Deferring { func, ipc, at },
                                        |site| FrameKind::Deferring {
                                            func,
                                            ipc: site,
                                            at: Some(Machinery::Register),
                                        },
                                    ),
                                    _ => FrameKind::Deferring { func, ipc, at },
                                }
                            }
                            None => FrameKind::Other,
                        },
                        None => FrameKind::Other,
                    };
                    out.frames.push(Frame {
                        kind,
                        name: names.id(n),
                        listed: listed_names.contains(n),
                    });
                }
            }
            None => {
                // Outside the binary (or unknown to it): one frame, named
                // as the profile names it.
                let n = loc
                    .line
                    .first()
                    .map_or("?", |l| crate::matching::function_name(d, l.function_id));
                out.frames.push(Frame {
                    kind: FrameKind::Other,
                    name: names.id(n),
                    listed: true,
                });
            }
        }
        out.starts.push(out.frames.len() as u32);
    }
    out
}

/// The registration pc of the stack- or heap-allocated site whose `defer`
/// statement's line `pc` is on, before the site's own call: the code of
/// the statement itself (building the `_defer` record in the frame or the
/// closure, the `deferproc*` call and its result test) is registration.
/// Open-coded sites are left out: their statement's code beyond the slot
/// and deferBits stores is the call's own argument evaluation.
fn statement(
    sym: &Symbolizer<'_, '_>,
    sites: &Sites<'_>,
    func: u32,
    f: &deferscope_index::Func,
    pc: u64,
) -> Option<u64> {
    let ids = &sites.of_func[func as usize];
    if !ids
        .iter()
        .any(|&k| sites.scan.sites[k as usize].kind != Kind::OpenCoded)
    {
        return None;
    }
    let (file, line) = sym.ix.lines(f).at(pc)?;
    ids.iter()
        .map(|&k| &sites.scan.sites[k as usize])
        .find(|s| s.kind != Kind::OpenCoded && s.line == line && s.file == file)
        .map(|s| s.pc)
}

/// The instruction holding `pc` in the function at `entry`, and its role.
fn instruction(sites: &Sites<'_>, entry: u64, pc: u64) -> (u64, Option<Machinery>) {
    let Some(v) = sites.machinery.get(&entry) else {
        return (pc, None);
    };
    let k = v.partition_point(|x| x.0 <= pc);
    match k.checked_sub(1).map(|k| v[k]) {
        Some((ipc, len, role)) if pc < ipc + u64::from(len) => (ipc, Some(role)),
        _ => (pc, None),
    }
}

/// What one sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Other,
    Machinery {
        func: Option<u32>,
        site: Option<u32>,
        phase: Phase,
        alloc: Option<AllocKind>,
        /// The synthetic frame goes above logical frame `above` (or as
        /// the new leaf when `None`).
        above: Option<usize>,
    },
    Deferred {
        func: Option<u32>,
        site: Option<u32>,
        above: usize,
    },
}

/// What a machinery allocation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocKind {
    DeferRecord,
    Closure,
}

/// Classify one sample's logical frames, leaf first (see the module
/// docs).
pub fn classify_sample(frames: &[Frame], sites: &Sites<'_>, deferred: &DeferredIds) -> Outcome {
    let n = frames.len();
    let runner_above = |i: usize| {
        matches!(frames.get(i + 1).map(|f| f.kind),
            Some(FrameKind::Machinery(r)) if r.runs_deferred_calls())
    };
    let mut i = 0;
    while i < n {
        match frames[i].kind {
            FrameKind::Machinery(_) => {
                let j = machinery_run(frames, i);
                let mut alloc = None;
                let mut outer = RuntimeFn::Deferreturn;
                for f in &frames[i..j] {
                    if let FrameKind::Machinery(r) = f.kind {
                        if r == RuntimeFn::Newdefer {
                            alloc = Some(AllocKind::DeferRecord);
                        }
                        outer = r;
                    }
                }
                let mut phase = outer.phase().unwrap_or(Phase::Run);
                let (func, site) = match frames.get(j).map(|f| f.kind) {
                    Some(FrameKind::Deferring { func, ipc, at }) => {
                        // The call that entered the machinery says why;
                        // go1.22+ tracebacks leave `deferreturn` out, so
                        // `(*_panic).nextDefer` sits right under the
                        // `CALL deferreturn`.
                        match at {
                            Some(Machinery::Deferreturn) => phase = Phase::Run,
                            Some(Machinery::Register) => phase = Phase::Register,
                            Some(Machinery::Panic) => phase = Phase::Panic,
                            _ => {}
                        }
                        let site = match at {
                            Some(Machinery::Register) => sites.at_pc(func, ipc),
                            _ => None,
                        }
                        .or_else(|| sites.single(func));
                        (Some(func), site)
                    }
                    // A panic raised by a function without defers runs
                    // the defers of the frames above it: charge the
                    // nearest function with defers (the one that
                    // recovers, or the first to run a deferred call).
                    _ if phase == Phase::Panic => frames[j..]
                        .iter()
                        .find_map(|f| match f.kind {
                            FrameKind::Deferring { func, .. } => {
                                Some((Some(func), sites.single(func)))
                            }
                            _ => None,
                        })
                        .unwrap_or((None, None)),
                    _ => (None, None),
                };
                return Outcome::Machinery {
                    func,
                    site,
                    phase,
                    alloc,
                    above: Some(j - 1),
                };
            }
            FrameKind::Deferring { func, ipc, at } => {
                if i > 0 {
                    match at {
                        Some(Machinery::OpenCall { bit }) => {
                            return Outcome::Deferred {
                                func: Some(func),
                                site: sites.by_bit(func, bit),
                                above: i - 1,
                            }
                        }
                        Some(Machinery::HeapClosure) => {
                            return Outcome::Machinery {
                                func: Some(func),
                                site: sites.after(func, ipc),
                                phase: Phase::Register,
                                alloc: Some(AllocKind::Closure),
                                above: Some(i - 1),
                            }
                        }
                        Some(Machinery::Deferreturn) => {
                            // go1.13-go1.17: jmpdefer left the deferred
                            // function returning to the deferreturn call.
                            return Outcome::Deferred {
                                func: Some(func),
                                site: sites.single(func),
                                above: i - 1,
                            };
                        }
                        _ => {}
                    }
                } else if let Some(m) = at {
                    let (phase, site) = match m {
                        Machinery::Open { run, bit } => (
                            if run { Phase::Run } else { Phase::Register },
                            sites.by_bit(func, bit),
                        ),
                        Machinery::OpenCall { bit } => (Phase::Run, sites.by_bit(func, bit)),
                        Machinery::Register | Machinery::HeapClosure => (
                            Phase::Register,
                            sites.at_pc(func, ipc).or_else(|| sites.after(func, ipc)),
                        ),
                        Machinery::Deferreturn => (Phase::Run, sites.single(func)),
                        Machinery::Panic => (Phase::Panic, sites.single(func)),
                    };
                    return Outcome::Machinery {
                        func: Some(func),
                        site,
                        phase,
                        // An allocation profile's stack can start at the
                        // call that allocated: the allocator's own frames
                        // (and `deferproc`'s, `newdefer`'s) fall in the
                        // runtime's fixed skip count.
                        alloc: match m {
                            Machinery::HeapClosure => Some(AllocKind::Closure),
                            Machinery::Register => Some(AllocKind::DeferRecord),
                            _ => None,
                        },
                        above: None,
                    };
                }
                if runner_above(i) {
                    return deferred_via_runner(frames, i, sites, deferred);
                }
            }
            FrameKind::Other | FrameKind::StackSwitch => {
                if runner_above(i) {
                    return deferred_via_runner(frames, i, sites, deferred);
                }
            }
        }
        i += 1;
    }
    Outcome::Other
}

/// The end of the run of machinery frames that starts at `i`: machinery
/// functions, and stack switches with machinery above them.
fn machinery_run(frames: &[Frame], i: usize) -> usize {
    let mut j = i;
    let mut end = i;
    while j < frames.len() {
        match frames[j].kind {
            FrameKind::Machinery(_) => end = j + 1,
            FrameKind::StackSwitch => {}
            _ => break,
        }
        j += 1;
    }
    end
}

/// Frame `i` was called by a runner of deferred calls: the sample is in
/// that deferred call, charged to the function whose defers the runner
/// runs (the first frame above the machinery).
fn deferred_via_runner(
    frames: &[Frame],
    i: usize,
    sites: &Sites<'_>,
    deferred: &DeferredIds,
) -> Outcome {
    let j = machinery_run(frames, i + 1);
    match frames.get(j).map(|f| f.kind) {
        Some(FrameKind::Deferring { func, .. }) => Outcome::Deferred {
            func: Some(func),
            site: deferred
                .get(&(func, frames[i].name))
                .copied()
                .or_else(|| sites.single(func)),
            above: i,
        },
        _ => Outcome::Deferred {
            func: None,
            site: None,
            above: i,
        },
    }
}

/// (function, name id of a deferred call's wrapper or target) -> site.
pub type DeferredIds = HashMap<(u32, u32), u32>;

/// Resolve the deferred-call names of every function to site indices by
/// name id (so the per-sample walk compares integers).
pub fn deferred_by_id(sites: &Sites<'_>, names: &Names) -> DeferredIds {
    let mut out = HashMap::new();
    for (f, v) in sites.deferred_names.iter().enumerate() {
        for (n, _) in v {
            if let Some(&id) = names.index.get(n) {
                if let Some(k) = sites.by_deferred(f as u32, n) {
                    out.insert((f as u32, id), k);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use deferscope_model::{BinaryInfo, FuncInfo, Origin, Site};

    /// One function `main.f` at 0x1000..0x1100 with a heap site at 0x1040
    /// (a `CALL deferproc`) and an open-coded site #0 at 0x1080.
    fn scan() -> Scan {
        let site = |pc, kind, index| Site {
            function: "main.f".into(),
            file: "f.go".into(),
            line: pc as u32,
            kind,
            pc,
            package: "main".into(),
            origin: Origin::Main,
            index,
        };
        Scan {
            binary: BinaryInfo {
                path: "t".into(),
                functions: 1,
                ..Default::default()
            },
            sites: vec![
                site(0x1040, Kind::HeapAllocated, None),
                site(0x1080, Kind::OpenCoded, Some(0)),
            ],
            functions: vec![FuncInfo {
                name: "main.f".into(),
                entry: 0x1000,
                size: 0x100,
                file: "f.go".into(),
                line: 1,
                package: "main".into(),
                origin: Origin::Main,
                sites: 2,
                open_coded_defers: None,
                calls_deferrangefunc: false,
                deferreturn: 0x90,
            }],
        }
    }

    fn m(r: RuntimeFn) -> Frame {
        Frame {
            kind: FrameKind::Machinery(r),
            name: 0,
            listed: true,
        }
    }
    fn other() -> Frame {
        Frame {
            kind: FrameKind::Other,
            name: 1,
            listed: true,
        }
    }
    fn f(ipc: u64, at: Option<Machinery>) -> Frame {
        Frame {
            kind: FrameKind::Deferring { func: 0, ipc, at },
            name: 2,
            listed: true,
        }
    }

    #[test]
    fn samples() {
        let s = scan();
        let sites = Sites::new(&s, None);
        let d = DeferredIds::default();
        let c = |fr: &[Frame]| classify_sample(fr, &sites, &d);
        // mallocgc <- newdefer <- deferproc <- main.f at the CALL deferproc.
        assert_eq!(
            c(&[
                other(),
                m(RuntimeFn::Newdefer),
                m(RuntimeFn::Deferproc),
                f(0x1040, Some(Machinery::Register)),
                other()
            ]),
            Outcome::Machinery {
                func: Some(0),
                site: Some(0),
                phase: Phase::Register,
                alloc: Some(AllocKind::DeferRecord),
                above: Some(2)
            }
        );
        // A stack switch inside the run: nextFrame.func1 <- systemstack <-
        // nextFrame <- main.f at CALL deferreturn (go1.22+ leaves
        // deferreturn's own frame out): running at return, no one site.
        let sw = Frame {
            kind: FrameKind::StackSwitch,
            name: 3,
            listed: true,
        };
        assert_eq!(
            c(&[
                m(RuntimeFn::PanicNextFrame),
                sw,
                m(RuntimeFn::PanicNextFrame),
                f(0x1090, Some(Machinery::Deferreturn))
            ]),
            Outcome::Machinery {
                func: Some(0),
                site: None,
                phase: Phase::Run,
                alloc: None,
                above: Some(2)
            }
        );
        // work <- wrapper <- deferreturn <- main.f: a deferred call.
        assert_eq!(
            c(&[
                other(),
                other(),
                m(RuntimeFn::Deferreturn),
                f(0x1090, Some(Machinery::Deferreturn))
            ]),
            Outcome::Deferred {
                func: Some(0),
                site: None,
                above: 1
            }
        );
        // work <- main.f at an open-coded exit's call of defer #0.
        assert_eq!(
            c(&[
                other(),
                f(0x10a0, Some(Machinery::OpenCall { bit: Some(0) }))
            ]),
            Outcome::Deferred {
                func: Some(0),
                site: Some(1),
                above: 0
            }
        );
        // The leaf in main.f's deferBits test for #0.
        assert_eq!(
            c(&[
                f(
                    0x10b0,
                    Some(Machinery::Open {
                        run: true,
                        bit: Some(0)
                    })
                ),
                other()
            ]),
            Outcome::Machinery {
                func: Some(0),
                site: Some(1),
                phase: Phase::Run,
                alloc: None,
                above: None
            }
        );
        // newobject <- main.f at the heap closure's allocation, charged to
        // the next site (its deferproc).
        assert_eq!(
            c(&[other(), f(0x1030, Some(Machinery::HeapClosure))]),
            Outcome::Machinery {
                func: Some(0),
                site: Some(0),
                phase: Phase::Register,
                alloc: Some(AllocKind::Closure),
                above: Some(0)
            }
        );
        // gopanic <- main.g (no defers) <- main.f: charged to main.f.
        assert_eq!(
            c(&[m(RuntimeFn::Gopanic), other(), f(0x10c0, None)]),
            Outcome::Machinery {
                func: Some(0),
                site: None,
                phase: Phase::Panic,
                alloc: None,
                above: Some(0)
            }
        );
        // Plain work in main.f: other.
        assert_eq!(c(&[other(), f(0x10d0, None), other()]), Outcome::Other);
    }
}

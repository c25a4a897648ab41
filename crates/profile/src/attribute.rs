//! Summing the classified samples: totals, per function, per site, per
//! runtime function; in parallel over chunks of samples (rayon), each
//! chunk into its own flat accumulator, added up at the end.

use deferscope_index::runtime::Phase;
use deferscope_model::profile::{
    Allocs, Attribution, FunctionShare, Phases, RuntimeTotal, SiteShare,
};
use rayon::prelude::*;

use crate::classify::{classify_sample, AllocKind, Frame, FrameKind, Outcome};
use crate::decode::Decoded;
use crate::{Attributor, PerProfile};

/// Samples per rayon task.
const CHUNK: usize = 32 * 1024;

/// Per-function counters, in [`Acc::funcs`].
const F_SAMPLES: usize = 0;
const F_MACH: usize = 1;
const F_UNATTR: usize = 2;
const F_PHASE: usize = 3; // 3 phases
const F_DEFERRED: usize = 6;
const F_N: usize = 7;
/// Per-site counters, in [`Acc::sites`].
const S_MACH: usize = 0;
const S_PHASE: usize = 1; // 3 phases
const S_DEFERRED: usize = 4;
const S_ALLOC: usize = 5; // records, record bytes, closures, closure bytes
const S_N: usize = 9;

/// Sums over some samples.
#[derive(Clone)]
struct Acc {
    total: i64,
    machinery: i64,
    phases: [i64; 3],
    deferred: i64,
    unattributed: i64,
    in_runtime: i64,
    allocs: [i64; 4],
    funcs: Vec<i64>,
    sites: Vec<i64>,
    /// Per name: flat, cum.
    names: Vec<i64>,
}

impl Acc {
    fn new(nf: usize, ns: usize, nn: usize) -> Acc {
        Acc {
            total: 0,
            machinery: 0,
            phases: [0; 3],
            deferred: 0,
            unattributed: 0,
            in_runtime: 0,
            allocs: [0; 4],
            funcs: vec![0; nf * F_N],
            sites: vec![0; ns * S_N],
            names: vec![0; nn * 2],
        }
    }

    fn add(mut self, o: Acc) -> Acc {
        self.total += o.total;
        self.machinery += o.machinery;
        self.deferred += o.deferred;
        self.unattributed += o.unattributed;
        self.in_runtime += o.in_runtime;
        for (a, b) in self.phases.iter_mut().zip(o.phases) {
            *a += b;
        }
        for (a, b) in self.allocs.iter_mut().zip(o.allocs) {
            *a += b;
        }
        for (a, b) in self.funcs.iter_mut().zip(o.funcs) {
            *a += b;
        }
        for (a, b) in self.sites.iter_mut().zip(o.sites) {
            *a += b;
        }
        for (a, b) in self.names.iter_mut().zip(o.names) {
            *a += b;
        }
        self
    }
}

fn phase_ix(p: Phase) -> usize {
    match p {
        Phase::Register => 0,
        Phase::Run => 1,
        Phase::Panic => 2,
    }
}

/// The logical frames of sample `i`, leaf first, into `buf`; and for
/// each, the position of its location in the sample's stack.
pub fn frames_of(d: &Decoded, p: &PerProfile, i: usize, buf: &mut Vec<Frame>, pos: &mut Vec<u32>) {
    buf.clear();
    pos.clear();
    for (k, &loc) in d.stack(i).iter().enumerate() {
        for f in p.locs.of(loc) {
            buf.push(*f);
            pos.push(k as u32);
        }
    }
}

impl Attributor<'_> {
    /// Attribute every sample of `profiles` (those given to
    /// [`Attributor::new`], in the same order).
    pub fn attribution(&self, profiles: &[Decoded]) -> Attribution {
        let (nf, ns, nn) = (
            self.sites.scan.functions.len(),
            self.sites.scan.sites.len(),
            self.names.list.len(),
        );
        let mut acc = Acc::new(nf, ns, nn);
        for (d, p) in profiles.iter().zip(&self.per) {
            let chunks: Vec<usize> = (0..d.len()).step_by(CHUNK).collect();
            let part = chunks
                .par_iter()
                .map(|&from| {
                    let mut a = Acc::new(nf, ns, nn);
                    let (mut buf, mut pos, mut seen) = (Vec::new(), Vec::new(), Vec::new());
                    for i in from..(from + CHUNK).min(d.len()) {
                        frames_of(d, p, i, &mut buf, &mut pos);
                        self.one(d, p, i, &buf, &mut seen, &mut a);
                    }
                    a
                })
                .reduce(|| Acc::new(nf, ns, nn), Acc::add);
            acc = acc.add(part);
        }
        self.result(profiles, acc)
    }

    /// Count sample `i`.
    fn one(
        &self,
        d: &Decoded,
        p: &PerProfile,
        i: usize,
        frames: &[Frame],
        seen: &mut Vec<u32>,
        a: &mut Acc,
    ) {
        let v = d.value(i, self.col);
        a.total += v;
        // Functions with defers and machinery names on the stack, once
        // each.
        seen.clear();
        let mut in_runtime = false;
        for f in frames {
            match f.kind {
                FrameKind::Deferring { func, .. } => {
                    let key = func | 1 << 31;
                    if !seen.contains(&key) {
                        seen.push(key);
                        a.funcs[func as usize * F_N + F_SAMPLES] += v;
                    }
                }
                FrameKind::Machinery(_) if f.listed => {
                    in_runtime = true;
                    if !seen.contains(&f.name) {
                        seen.push(f.name);
                        a.names[f.name as usize * 2 + 1] += v;
                    }
                }
                _ => {}
            }
        }
        if in_runtime {
            a.in_runtime += v;
        }
        if let Some(f) = frames.iter().find(|f| f.listed) {
            if matches!(f.kind, FrameKind::Machinery(_)) {
                a.names[f.name as usize * 2] += v;
            }
        }
        match classify_sample(frames, &self.sites, &p.deferred) {
            Outcome::Other => {}
            Outcome::Machinery {
                func,
                site,
                phase,
                alloc,
                ..
            } => {
                let ph = phase_ix(phase);
                a.machinery += v;
                a.phases[ph] += v;
                let (obj, bytes) = self.alloc_values(d, i);
                let slot = match alloc {
                    Some(AllocKind::DeferRecord) => Some(0),
                    Some(AllocKind::Closure) => Some(2),
                    None => None,
                };
                if let Some(s) = slot.filter(|_| self.alloc_cols.is_some()) {
                    a.allocs[s] += obj;
                    a.allocs[s + 1] += bytes;
                }
                match func {
                    Some(f) => {
                        let fb = f as usize * F_N;
                        a.funcs[fb + F_MACH] += v;
                        a.funcs[fb + F_PHASE + ph] += v;
                        match site {
                            Some(s) => {
                                let sb = s as usize * S_N;
                                a.sites[sb + S_MACH] += v;
                                a.sites[sb + S_PHASE + ph] += v;
                                if let Some(k) = slot.filter(|_| self.alloc_cols.is_some()) {
                                    a.sites[sb + S_ALLOC + k] += obj;
                                    a.sites[sb + S_ALLOC + k + 1] += bytes;
                                }
                            }
                            None => a.funcs[fb + F_UNATTR] += v,
                        }
                    }
                    None => a.unattributed += v,
                }
            }
            Outcome::Deferred { func, site, .. } => {
                a.deferred += v;
                if let Some(f) = func {
                    a.funcs[f as usize * F_N + F_DEFERRED] += v;
                }
                if let Some(s) = site {
                    a.sites[s as usize * S_N + S_DEFERRED] += v;
                }
            }
        }
    }

    /// Sample `i`'s objects and bytes, when the profile has allocation
    /// columns.
    fn alloc_values(&self, d: &Decoded, i: usize) -> (i64, i64) {
        match self.alloc_cols {
            Some((o, b)) => (d.value(i, o), d.value(i, b)),
            None => (0, 0),
        }
    }

    fn result(&self, profiles: &[Decoded], a: Acc) -> Attribution {
        let scan = self.sites.scan;
        let explain = self.explain;
        let phases = |x: &[i64]| Phases {
            register: x[0],
            run: x[1],
            panic: x[2],
        };
        let allocs = |x: &[i64]| Allocs {
            defer_records: x[0],
            defer_record_bytes: x[1],
            closures: x[2],
            closure_bytes: x[3],
        };
        let mut functions = Vec::new();
        for (fi, f) in scan.functions.iter().enumerate() {
            let c = &a.funcs[fi * F_N..(fi + 1) * F_N];
            if c[F_SAMPLES] == 0 && c[F_MACH] == 0 && c[F_DEFERRED] == 0 {
                continue;
            }
            let sites = self.sites.of_func[fi]
                .iter()
                .map(|&k| {
                    let s = &scan.sites[k as usize];
                    let c = &a.sites[k as usize * S_N..(k as usize + 1) * S_N];
                    let x = explain.and_then(|x| x.sites.get(k as usize));
                    let fx = explain.and_then(|x| x.functions.get(fi));
                    SiteShare {
                        file: s.file.clone(),
                        line: s.line,
                        kind: s.kind,
                        pc: s.pc,
                        machinery_samples: c[S_MACH],
                        phases: phases(&c[S_PHASE..S_PHASE + 3]),
                        deferred_call_samples: c[S_DEFERRED],
                        reasons: x.map(|x| x.reasons.clone()).unwrap_or_default(),
                        fix: fx
                            .and_then(|fx| fx.reason_details.first())
                            .filter(|_| x.is_some_and(|x| !x.reasons.is_empty()))
                            .map(|d| d.fix.clone()),
                        allocs: self.alloc_cols.map(|_| allocs(&c[S_ALLOC..S_ALLOC + 4])),
                    }
                })
                .collect();
            functions.push(FunctionShare {
                function: f.name.clone(),
                file: f.file.clone(),
                line: f.line,
                samples: c[F_SAMPLES],
                machinery_samples: c[F_MACH],
                unattributed_machinery_samples: c[F_UNATTR],
                phases: phases(&c[F_PHASE..F_PHASE + 3]),
                deferred_call_samples: c[F_DEFERRED],
                sites,
            });
        }
        functions.sort_by(|x, y| {
            y.machinery_samples
                .cmp(&x.machinery_samples)
                .then(y.samples.cmp(&x.samples))
                .then(x.function.cmp(&y.function))
        });
        let mut runtime_functions: Vec<RuntimeTotal> = self
            .names
            .list
            .iter()
            .enumerate()
            .filter(|(k, _)| a.names[k * 2 + 1] != 0)
            .map(|(k, n)| RuntimeTotal {
                function: n.clone(),
                flat: a.names[k * 2],
                cum: a.names[k * 2 + 1],
            })
            .collect();
        runtime_functions.sort_by(|x, y| y.cum.cmp(&x.cum).then(x.function.cmp(&y.function)));
        let st = &profiles[0].sample_types;
        Attribution {
            profiles: profiles.iter().map(|d| d.path.clone()).collect(),
            sample_type: st[self.col].r#type.clone(),
            unit: st[self.col].unit.clone(),
            sample_types: st.iter().map(|t| t.r#type.clone()).collect(),
            total_samples: a.total,
            sample_records: profiles.iter().map(Decoded::len).sum(),
            machinery_samples: a.machinery,
            phases: phases(&a.phases),
            deferred_call_samples: a.deferred,
            unattributed_machinery_samples: a.unattributed,
            allocs: self.alloc_cols.map(|_| allocs(&a.allocs)),
            matched: self.per.iter().map(|p| p.matched.info.clone()).collect(),
            functions,
            runtime_functions,
            runtime_function_samples: a.in_runtime,
        }
    }
}

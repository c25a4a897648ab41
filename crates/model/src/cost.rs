//! What one execution of a defer costs, per kind: a table with its sources.
//!
//! Two tables exist. [`CostTable::published`] holds the only figures the Go
//! project has published (docs/design.md §7; none are newer than Go 1.14):
//!
//! | figure | value | source |
//! |---|---|---|
//! | direct call | 4.4 ns | commit be64a19d99 (CL 202340, Go 1.14), `BenchmarkDefer` "the function call alone" |
//! | open-coded defer + call | 5.6 ns | same commit, open-coded |
//! | stack-allocated defer + call | 35.4 ns | same commit, "stack-allocated defers only" |
//! | heap-allocated defer + call | 52.2 ns | commit fff4f599fe (CL 171758, Go 1.13): `Defer-4 52.2ns` before stack allocation, i.e. Go 1.12's heap `_defer`; the design doc 34481 rounds it to "about 50ns" |
//! | panic + recover | 255 ns | commit be64a19d99: 62.0 -> 255 ns/op |
//! | cgo crossing | 32.9 ns | no published figure: measured here, [`CGO_CALL_NS`] |
//!
//! No published figure isolates a heap closure for the deferred call, so
//! the published table leaves it out. Nor one for heap defers in a loop:
//! the default table carries `heap_pending_ns` measured with `deferscope
//! bench` here (go1.22.10; docs/design.md §7.5), used only as the ratio of
//! the cost per defer at N records pending to the cost at one. `deferscope bench` measures the same
//! rows (plus a heap defer with a captured-variable closure) on the machine
//! at hand with the installed Go toolchain and saves a table that replaces
//! the published one (the CLI loads it; see `docs/json.md`).
//!
//! Every figure is the time of "defer f(); ...; return" including the call
//! of `f` itself, so the defer's own overhead is `kind - direct_call`.

use serde::{Deserialize, Serialize};

use crate::Kind;

/// Nanoseconds per executed defer, per kind, and where they come from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CostTable {
    /// `"published"` or `"measured"`.
    pub origin: String,
    /// Where the figures come from, in words.
    pub source: String,
    /// The Go version that was measured (measured tables only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_version: Option<String>,
    pub direct_call_ns: f64,
    pub open_coded_ns: f64,
    pub stack_allocated_ns: f64,
    pub heap_allocated_ns: f64,
    /// A heap defer whose deferred closure is itself heap-allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_closure_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_recover_ns: Option<f64>,
    /// What a call into C through cgo (`_Cfunc_` wrapper,
    /// `runtime.cgocall`) costs over a call of a Go function: added to
    /// the estimate of a defer whose deferred call crosses into C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgo_call_ns: Option<f64>,
    /// A heap defer in a loop: ns per defer (with its call) when a call of
    /// the function leaves `pending` records pending at its return, for
    /// the measured trip counts, fewest first (docs/design.md §7.5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heap_pending_ns: Vec<PendingCost>,
    /// A heap defer whose closure captures a variable the capture moves to
    /// the heap: the record, the closure and the variable's `newobject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_moved_ns: Option<f64>,
}

/// The cost of one heap defer with `pending` records pending at return.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingCost {
    pub pending: u32,
    pub ns: f64,
}

/// What is known about a site that changes its price (everything but the
/// kind defaults to "nothing more").
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SiteCostFacts {
    /// The deferred closure is heap-allocated (a heap site whose closure
    /// captures).
    pub heap_closure: bool,
    /// Records pending at the function's return, when known (a traced
    /// function's maximum; `None` prices one pending record).
    pub in_loop_pending: Option<u32>,
    /// Variables moved to the heap because the deferred closure captures
    /// them: one allocation each.
    pub heap_moved: usize,
}

/// A call into C over a Go call, when `bench` has not measured it: the
/// minimum of three `go test -bench` runs of the `deferscope bench` cgo
/// package with go1.27.3, gcc 12.2, linux/amd64 (AMD EPYC, 2 cores):
/// 35.91 - 3.04 ns (docs/design.md §7.4).
pub const CGO_CALL_NS: f64 = 32.9;

impl CostTable {
    /// The published figures (docs/design.md §7); see the module docs for each one.
    pub fn published() -> CostTable {
        CostTable {
            origin: "published".into(),
            source: "published figures: Go 1.14 open-coded defer commit be64a19d99 (CL 202340) \
                     and Go 1.13 stack defer commit fff4f599fe (CL 171758); \
                     cgo crossing measured with go1.27.3 (docs/design.md §7.4)"
                .into(),
            go_version: None,
            direct_call_ns: 4.4,
            open_coded_ns: 5.6,
            stack_allocated_ns: 35.4,
            heap_allocated_ns: 52.2,
            heap_closure_ns: None,
            panic_recover_ns: Some(255.0),
            cgo_call_ns: Some(CGO_CALL_NS),
            // Not published: measured here (docs/design.md §7.5), and
            // used only as ratios to the heap figure above.
            heap_pending_ns: vec![
                PendingCost {
                    pending: 1,
                    ns: 32.16,
                },
                PendingCost {
                    pending: 10,
                    ns: 19.6,
                },
                PendingCost {
                    pending: 100,
                    ns: 24.89,
                },
                PendingCost {
                    pending: 1000,
                    ns: 27.02,
                },
            ],
            heap_moved_ns: None,
        }
    }

    /// Time of one execution of a site of `kind` with the facts `f`
    /// (docs/design.md §7.5): [`CostTable::ns`]; for a heap site with
    /// `in_loop_pending` records pending, scaled by the measured cost per
    /// defer at that many over the cost at one (interpolated linearly in
    /// log(pending) between the measured counts, the nearest end beyond
    /// them): a ratio, so that it applies to any table's heap figure; and
    /// for each heap-moved variable the measured price of one more
    /// allocation (`heap_moved_ns - heap_closure_ns`). A table without
    /// these rows adds nothing.
    pub fn site_ns(&self, kind: Kind, f: SiteCostFacts) -> f64 {
        let mut ns = self.ns(kind, f.heap_closure);
        if kind == Kind::HeapAllocated {
            if let (Some(n), Some(one)) = (f.in_loop_pending, self.pending_ns(1)) {
                if let Some(at_n) = self.pending_ns(n).filter(|_| one > 0.0) {
                    ns *= at_n / one;
                }
            }
        }
        if let (Some(moved), Some(closure)) = (self.heap_moved_ns, self.heap_closure_ns) {
            ns += f.heap_moved as f64 * (moved - closure).max(0.0);
        }
        ns
    }

    /// The measured cost per heap defer with `n` pending (see
    /// [`CostTable::site_ns`]); `None` without measurements.
    pub fn pending_ns(&self, n: u32) -> Option<f64> {
        let v = &self.heap_pending_ns;
        let (first, last) = (v.first()?, v.last()?);
        if n <= first.pending {
            return Some(first.ns);
        }
        if n >= last.pending {
            return Some(last.ns);
        }
        let k = v.partition_point(|p| p.pending <= n);
        let (a, b) = (v[k - 1], v[k]);
        let x = |p: u32| f64::from(p.max(1)).ln();
        let t = (x(n) - x(a.pending)) / (x(b.pending) - x(a.pending));
        Some(a.ns + t * (b.ns - a.ns))
    }

    /// Time of one execution of a defer of `kind` (with its call);
    /// `heap_closure` when the deferred closure is heap-allocated too.
    pub fn ns(&self, kind: Kind, heap_closure: bool) -> f64 {
        match kind {
            Kind::OpenCoded => self.open_coded_ns,
            Kind::StackAllocated => self.stack_allocated_ns,
            Kind::HeapAllocated => match (heap_closure, self.heap_closure_ns) {
                (true, Some(ns)) => ns,
                _ => self.heap_allocated_ns,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_figures_are_the_spec_s() {
        let t = CostTable::published();
        // Spec §7: 4.4 / 5.6 / 35.4 (CL 202340), 52.2 (CL 171758).
        assert_eq!(t.ns(Kind::OpenCoded, false), 5.6);
        assert_eq!(t.ns(Kind::StackAllocated, false), 35.4);
        assert_eq!(t.ns(Kind::HeapAllocated, true), 52.2);
        assert_eq!(t.direct_call_ns, 4.4);
        // No heap-moved row; the pending ratio at 1000 records:
        // 27.02 / 32.16 of the heap figure.
        let f = SiteCostFacts {
            heap_closure: true,
            in_loop_pending: Some(1000),
            heap_moved: 2,
        };
        let want = 52.2 * 27.02 / 32.16;
        assert!((t.site_ns(Kind::HeapAllocated, f) - want).abs() < 1e-9);
        let f = SiteCostFacts {
            heap_closure: true,
            ..SiteCostFacts::default()
        };
        assert_eq!(t.site_ns(Kind::HeapAllocated, f), 52.2);
    }

    #[test]
    fn pending_and_heap_moved_change_the_price() {
        let mut t = CostTable::published();
        t.heap_closure_ns = Some(60.0);
        t.heap_moved_ns = Some(80.0);
        t.heap_pending_ns = vec![
            PendingCost {
                pending: 1,
                ns: 50.0,
            },
            PendingCost {
                pending: 10,
                ns: 40.0,
            },
            PendingCost {
                pending: 100,
                ns: 60.0,
            },
        ];
        let at = |n: Option<u32>, moved: usize| {
            let f = SiteCostFacts {
                heap_closure: false,
                in_loop_pending: n,
                heap_moved: moved,
            };
            t.site_ns(Kind::HeapAllocated, f)
        };
        assert_eq!(at(None, 0), 52.2);
        assert_eq!(at(Some(1), 0), 52.2);
        assert!((at(Some(10), 0) - 52.2 * 0.8).abs() < 1e-9);
        // Between 10 and 100, linear in log(pending): 31 is 0.491 of the
        // way, 49.8 ns.
        assert!((t.pending_ns(31).unwrap() - 49.83).abs() < 0.01);
        assert!((at(Some(5000), 0) - 52.2 * 1.2).abs() < 1e-9);
        // Each heap-moved variable: 80 - 60 = 20 ns more.
        assert_eq!(at(None, 2), 92.2);
        // Open-coded and stack sites have no records pending in a loop.
        let f = SiteCostFacts {
            in_loop_pending: Some(100),
            ..SiteCostFacts::default()
        };
        assert_eq!(t.site_ns(Kind::OpenCoded, f), 5.6);
    }
}

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
//! the published table leaves it out. `deferscope bench` measures the same
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
        }
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
    }
}

//! What `deferscope profile` finds: a pprof profile's samples attributed
//! to the binary's defer sites (`deferscope-profile` computes it; the
//! printers of `deferscope-report` show it; `docs/json.md` is the
//! contract).
//!
//! Every count is a sum of one sample type's values (the profile's
//! default, or `--sample-index`): samples or nanoseconds for CPU
//! profiles, objects or bytes for allocation profiles, contentions or
//! delay for mutex and block profiles.

use serde::Serialize;

use crate::explain::Reason;
use crate::Kind;

/// Where a machinery sample was spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// Registering: `deferproc*`, `newdefer`, the heap closure, the
    /// open-coded registration (closure slot and deferBits stores).
    pub register: i64,
    /// Running at return: `deferreturn`, `freedefer`, `popDefer`, the
    /// open-coded exit sequences (deferBits tests and clears).
    pub run: i64,
    /// Panics: `gopanic`, the walk to open-coded frames, `recover`.
    pub panic: i64,
}

impl Phases {
    pub fn total(&self) -> i64 {
        self.register + self.run + self.panic
    }
}

/// Allocations made by one site's machinery (allocation profiles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Allocs {
    /// `_defer` records (`newdefer`): objects and bytes.
    pub defer_records: i64,
    pub defer_record_bytes: i64,
    /// Heap closures built for the deferred call.
    pub closures: i64,
    pub closure_bytes: i64,
}

/// One defer site's share.
#[derive(Clone, Debug, Serialize)]
pub struct SiteShare {
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    /// The site's registration pc (as in the scan).
    pub pc: u64,
    /// Samples spent in this site's machinery.
    pub machinery_samples: i64,
    /// ... of which, by phase.
    pub phases: Phases,
    /// Samples spent in the deferred call itself (its wrapper and callee),
    /// run at return or by a panic.
    pub deferred_call_samples: i64,
    /// The explain pass's reason codes and fix (non-open-coded sites).
    pub reasons: Vec<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Allocation profiles only: objects and bytes, from the profile's
    /// `alloc_objects`/`alloc_space` (or `inuse_*`) columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocs: Option<Allocs>,
}

/// One function with defers, and its share.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionShare {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// Samples whose stack includes the function.
    pub samples: i64,
    /// ... of them, spent in its defers' machinery (its sites' sum plus
    /// what no one site can be charged with: `deferreturn` running
    /// several sites' defers).
    pub machinery_samples: i64,
    /// Machinery samples not charged to one site.
    pub unattributed_machinery_samples: i64,
    pub phases: Phases,
    /// Samples in its deferred calls.
    pub deferred_call_samples: i64,
    pub sites: Vec<SiteShare>,
}

/// A runtime defer function's samples, by name, as `go tool pprof -top`
/// counts them: `flat` in the function itself (the innermost frame),
/// `cum` with the function anywhere on the stack.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RuntimeTotal {
    pub function: String,
    pub flat: i64,
    pub cum: i64,
}

/// How the binary was matched with the profile.
#[derive(Clone, Debug, Serialize)]
pub struct MatchInfo {
    /// `"gnu-build-id"`, `"go-build-id"`, `"symbols"` (no build ID in the
    /// profile: the profile's own function names at its addresses agree
    /// with the binary's), or `"forced"`.
    pub by: &'static str,
    /// The profile mapping's file name.
    pub mapping_file: String,
    /// Locations of the binary's mapping checked against the profile's
    /// names, and how many agreed.
    pub checked: usize,
    pub agreed: usize,
    /// The load bias: mapped address minus the binary's own address.
    pub bias: i64,
}

/// The result of `deferscope profile`.
#[derive(Clone, Debug, Serialize)]
pub struct Attribution {
    /// The profile files, merged.
    pub profiles: Vec<String>,
    /// The sample type counted (`cpu`, `samples`, `alloc_space`, ...),
    /// its unit, and every type the profile has.
    pub sample_type: String,
    pub unit: String,
    pub sample_types: Vec<String>,
    /// Sum over all samples.
    pub total_samples: i64,
    /// Number of sample records read.
    pub sample_records: usize,
    /// Spent in defer machinery (all functions).
    pub machinery_samples: i64,
    pub phases: Phases,
    /// Spent in deferred calls.
    pub deferred_call_samples: i64,
    /// Machinery samples whose causing frame is not a function with
    /// defers of the scan (filtered out, or a runtime-internal caller).
    pub unattributed_machinery_samples: i64,
    /// Allocation profiles: the machinery's allocations over all sites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocs: Option<Allocs>,
    pub matched: Vec<MatchInfo>,
    /// Functions with defers that have samples, most machinery first.
    pub functions: Vec<FunctionShare>,
    /// The runtime's defer functions, by name.
    pub runtime_functions: Vec<RuntimeTotal>,
    /// Samples with any of `runtime_functions` on the stack (what
    /// `go tool pprof -focus` on their names counts).
    pub runtime_function_samples: i64,
}

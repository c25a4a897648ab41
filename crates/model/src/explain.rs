//! What the explain pass adds to a [`crate::Scan`]: per function, why its
//! defers are not open-coded (a [`Reason`] code with words and a fix) and
//! what its defer machinery costs in frame and code bytes; per site, the
//! function it finally calls, its heap closure, and its estimated time.
//! The vectors of [`Explain`] run parallel to the scan's.

use serde::Serialize;

use crate::cost::CostTable;

/// Why a function's defers are not open-coded: stable codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Reason {
    #[serde(rename = "in-loop")]
    InLoop,
    #[serde(rename = "too-many-defers")]
    TooManyDefers,
    #[serde(rename = "too-many-returns")]
    TooManyReturns,
    #[serde(rename = "build-flags")]
    BuildFlags,
    #[serde(rename = "range-func")]
    RangeFunc,
    #[serde(rename = "result-escapes")]
    ResultEscapes,
    #[serde(rename = "unknown")]
    Unknown,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::InLoop,
        Reason::TooManyDefers,
        Reason::TooManyReturns,
        Reason::BuildFlags,
        Reason::RangeFunc,
        Reason::ResultEscapes,
        Reason::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InLoop => "in-loop",
            Reason::TooManyDefers => "too-many-defers",
            Reason::TooManyReturns => "too-many-returns",
            Reason::BuildFlags => "build-flags",
            Reason::RangeFunc => "range-func",
            Reason::ResultEscapes => "result-escapes",
            Reason::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason, in words, with what to do about it.
#[derive(Clone, Debug, Serialize)]
pub struct ReasonDetail {
    pub code: Reason,
    pub detail: String,
    pub fix: String,
}

/// Source lines of a loop holding a defer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LoopLines {
    pub file: String,
    pub first_line: u32,
    pub last_line: u32,
}

/// What `explain` adds to one [`crate::Site`].
#[derive(Clone, Debug, Serialize)]
pub struct SiteExplain {
    /// The function's reason codes that apply to this site (empty for
    /// open-coded sites).
    pub reasons: Vec<Reason>,
    /// The loop holding this defer (in-loop sites).
    #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_lines: Option<LoopLines>,
    /// The function the defer finally calls, through any wrapper closure;
    /// `null` when it could not be resolved.
    pub deferred_target: Option<String>,
    /// The closure the runtime calls, when it is a wrapper around
    /// `deferred_target` (`main.f.deferwrap1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_via: Option<String>,
    /// True when the deferred closure is an indirect call (a func value or
    /// an interface method): `deferred_target` is then null.
    pub deferred_indirect: bool,
    /// The deferred function calls `recover` (`runtime.gorecover`).
    pub calls_recover: bool,
    /// Bytes of the heap closure built for the deferred call, from its type
    /// descriptor (or the size class of a go1.27 allocator); null if none.
    pub heap_closure_bytes: Option<u64>,
    /// The allocator that built it (`runtime.newobject`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_closure_allocator: Option<String>,
    /// Estimated nanoseconds per execution (defer plus the call), from the
    /// cost table.
    pub est_ns: f64,
    /// Stack-allocated sites: bytes of the `_defer` record in the frame,
    /// for the binary's Go release (design.md §3.4: 48 from go1.22, 72
    /// before); null for other kinds, and before go1.18, where the
    /// arguments follow the record.
    pub record_bytes: Option<u64>,
    /// The deferred call crosses into C: its target is a cgo `_Cfunc_`
    /// wrapper or `runtime.cgocall`; `est_ns` includes the crossing
    /// (`cost_table.cgo_call_ns`).
    pub crosses_cgo: bool,
    /// The C function, as Go source names it (`main._Cfunc_add` ->
    /// `C.add`); null when the site does not call C.
    pub c_function: Option<String>,
}

/// What `explain` adds to one [`crate::FuncInfo`].
#[derive(Clone, Debug, Serialize)]
pub struct FuncExplain {
    /// Reason codes, sorted; empty for open-coded functions.
    pub reasons: Vec<Reason>,
    pub reason_details: Vec<ReasonDetail>,
    /// Estimated number of return statements (non-open-coded functions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub est_returns: Option<usize>,
    /// Frame bytes for `_defer` records of stack-allocated sites.
    pub defer_record_bytes: u64,
    /// Open-coded: frame bytes of the closure slots plus deferBits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_slot_bytes: Option<u64>,
    /// Open-coded: estimated code bytes of the exit sequences repeated at
    /// every return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code_bytes: Option<u64>,
    /// Direct call sites of this function in the binary (small functions
    /// only; see [`InlineCandidate`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_callers: Option<usize>,
}

/// A small function that cannot be inlined because it defers.
#[derive(Clone, Debug, Serialize)]
pub struct InlineCandidate {
    pub function: String,
    pub size: u64,
    /// Direct `CALL`/`BL` instructions targeting it in the whole text.
    pub direct_callers: usize,
}

/// The result of the explain pass: vectors parallel to the scan's sites
/// and functions.
#[derive(Clone, Debug, Serialize)]
pub struct Explain {
    pub sites: Vec<SiteExplain>,
    pub functions: Vec<FuncExplain>,
    pub inline_candidates: Vec<InlineCandidate>,
    pub cost_table: CostTable,
}

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
    /// `deferred_target` was inlined into the wrapper closure (named by the
    /// wrapper's inline tree); omitted when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred_inlined: bool,
    /// The wrapper closure (`deferred_via`) makes no call and writes no
    /// memory: the deferred call was inlined into it and compiled to
    /// nothing (`defer sum(a, b)` with the result unused);
    /// `deferred_target` is then null, as no code names it. Omitted when
    /// false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred_elided: bool,
    /// `deferred_target` is a compiler intrinsic expanded in the wrapper in
    /// place of a call (`runtime/internal/atomic.Store` for `defer
    /// atomic.StoreUint32(&x, 1)`); omitted when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred_intrinsic: bool,
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
    /// What the deferred call receives, in the closure's field order:
    /// values copied at the defer statement and addresses of variables.
    /// `null` when the closure the defer registers was not found (a func
    /// value built elsewhere); empty when it captures nothing.
    pub captures: Option<Vec<Capture>>,
    /// The function's results the deferred call writes: by name when the
    /// binary has DWARF, else `result word N`, the Nth integer result
    /// register (a string or an interface result takes two words).
    pub writes_results: Vec<String>,
    /// Heap allocations one execution of the defer statement makes: the
    /// closure, and the variables and objects it keeps that are allocated
    /// as often as the statement runs. `null` when not known.
    pub allocs_per_exec: Option<u32>,
    /// Bytes of those allocations as the runtime counts them (size class,
    /// or the tiny allocator's share), per execution.
    pub bytes_per_exec: Option<u64>,
    /// Each of those allocations, and the ones made once per call of the
    /// function for this defer (a captured variable declared outside the
    /// loop that holds the defer).
    pub allocations: Vec<Allocation>,
    /// The instructions that reload a rewritten result after the deferred
    /// calls ran (for the annotated listing; not in JSON).
    #[serde(skip)]
    pub result_reloads: Vec<u64>,
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

/// How a deferred call receives a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CaptureMode {
    /// Evaluated and copied at the defer statement: the deferred call does
    /// not see later changes.
    #[serde(rename = "value")]
    Value,
    /// The address of a variable: the deferred call sees (and may make)
    /// later changes.
    #[serde(rename = "ref")]
    Ref,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Value => "value",
            CaptureMode::Ref => "ref",
        }
    }
}

/// One value a deferred call receives through its closure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// The variable's name, where the binary has one (DWARF); `null` for
    /// the compiler's temporaries (the arguments of `defer f(x)`) and
    /// without DWARF.
    pub name: Option<String>,
    pub mode: CaptureMode,
    /// Bytes in the closure: the value's size, or 8 for an address.
    pub bytes: u64,
    /// Offset of the field in the closure (the code pointer is at 0).
    pub offset: u64,
    /// A reference to a variable the function allocates on the heap (the
    /// compiler's "moved to heap").
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub moved_to_heap: bool,
    /// False when the field's boundaries come from the stores alone (a
    /// closure in the frame of a binary without DWARF): a multi-word value
    /// then shows as one capture per stored word.
    pub exact: bool,
    /// The instruction that stores the field when the closure is built
    /// (`null` for a field never stored after the closure was zeroed).
    pub pc: Option<u64>,
    /// The allocating call of the heap object the stored word points at,
    /// when it points at one this function allocates (the pc of one of the
    /// site's `allocations`); internal.
    #[serde(skip)]
    pub points_to: Option<u64>,
}

/// How often an allocation happens for a defer statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AllocPer {
    /// Every execution of the statement.
    #[serde(rename = "exec")]
    Exec,
    /// Once per call of the function (outside the loop holding the defer).
    #[serde(rename = "call")]
    Call,
}

/// One heap allocation a defer statement costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// `closure`, `variable x` (moved to heap), `object` (kept by a
    /// captured value).
    pub what: String,
    /// Bytes as the runtime counts them.
    pub bytes: u64,
    /// The allocating call: its target and address.
    pub allocator: String,
    pub pc: u64,
    pub per: AllocPer,
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

/// A small function (machine code under 200 bytes) that defers and has
/// direct callers. Go does not inline a function holding a defer statement
/// (every version 1.19-1.27, inl.go: "unhandled op DEFER"), so each of
/// those calls stays a call. Whether the function would inline without the
/// defer (its cost within the budget of 80, no `//go:noinline`) is not
/// recorded in the binary, so nothing here claims the defer is the only
/// obstacle.
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

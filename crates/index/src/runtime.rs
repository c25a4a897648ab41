//! The Go runtime's functions that deferscope looks for, by role: the one
//! place their names are written down (`docs/design.md` §2 says what each
//! one does for `defer`).
//!
//! [`Runtime::find`] reads the function table once and keeps the entry of
//! every function with a role, so the later stages ask by role
//! ([`Runtime::entry`], [`Runtime::role_at`]) and never by name. The pure
//! name rules ([`is_noreturn`], [`builtin_of`], [`is_helper`]) are here
//! too, beside the names.

use std::collections::HashMap;

use crate::GoIndex;

/// What a runtime function is, for the defer machinery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuntimeFn {
    /// `runtime.deferproc`: registers a heap-allocated `_defer`.
    Deferproc,
    /// `runtime.deferprocStack`: registers a `_defer` built in the frame.
    DeferprocStack,
    /// `runtime.deferprocat` (go1.22+): a defer in a range-over-func body.
    Deferprocat,
    /// `runtime.deferrangefunc` (go1.22+): called by the function that
    /// encloses a range-over-func loop whose body defers.
    Deferrangefunc,
    /// `runtime.deferreturn`: runs a frame's pending defers at return.
    Deferreturn,
    /// `runtime.newobject`: allocates a heap object (a closure, a variable
    /// moved to the heap).
    Newobject,
    /// go1.27's size-specialized allocators (`runtime.mallocgcSmall*`,
    /// `runtime.mallocgcTiny*`), which replace `newobject` for small
    /// objects.
    MallocgcSized,
    /// Any other `runtime.mallocgc*` (`mallocgc` itself, `mallocgcLarge`).
    Mallocgc,
    /// `runtime.makeslice`: a slice's backing array (a `make` whose result
    /// escapes, as one a heap closure keeps).
    Makeslice,
    /// `runtime.gopanic`: every panic.
    Gopanic,
    /// `runtime.gorecover`: every call of `recover()`.
    Gorecover,
    /// `runtime.recovery`: resumes a frame after a `recover()` stopped a
    /// panic.
    Recovery,
    /// `runtime.(*_panic).nextDefer` (go1.22+ only, so its presence dates
    /// a binary whose version is unknown).
    NextDefer,
    /// `runtime.racefuncenter` / `runtime.racefuncexit`: a function's own
    /// race hooks (`-race`). The pclntab gives the assembly (ABI0)
    /// function and its ABIInternal wrapper the same name, so each has two
    /// entries.
    RaceFuncEnter,
    RaceFuncExit,
    /// The write barrier helpers (`runtime.gcWriteBarrier*`), which keep
    /// the general registers.
    GcWriteBarrier,
    /// `runtime.newdefer`: takes a `_defer` record from the P's pool, or
    /// allocates one (called by `deferproc`, `deferprocat`,
    /// `deferrangefunc`; all versions).
    Newdefer,
    /// `runtime.freedefer`: puts a heap `_defer` back in the pool (all
    /// versions; inlined into `popDefer` from go1.23, so seen through the
    /// inline tree).
    Freedefer,
    /// `runtime.popDefer` (go1.22+): unlinks the top `_defer` and frees it.
    PopDefer,
    /// `runtime.deferconvert` (go1.22+): turns a range-over-func loop's
    /// atomic defer list into ordinary records, at `deferreturn` or panic.
    Deferconvert,
    /// `runtime.jmpdefer` (go1.13-go1.17): the assembly jump from
    /// `deferreturn` into the deferred function.
    Jmpdefer,
    /// `runtime.addOneOpenDeferFrame` (go1.14-go1.21): a panic's stack
    /// walk for the next frame with open-coded defers.
    AddOneOpenDeferFrame,
    /// `runtime.runOpenDeferFrame` (go1.14-go1.21): runs one frame's
    /// open-coded defers during a panic.
    RunOpenDeferFrame,
    /// `runtime.deferCallSave` (go1.17-go1.21): calls a deferred function
    /// for a panic, keeping the panic's state.
    DeferCallSave,
    /// `runtime.reflectcallSave` (go1.14-go1.16): the same, with an
    /// argument frame.
    ReflectcallSave,
    /// `runtime.(*_panic).start` (go1.22+): begins a panic or a
    /// `deferreturn` over the defer records and open-coded frames.
    PanicStart,
    /// `runtime.(*_panic).nextFrame` (go1.22+): the stack walk to the next
    /// frame with pending defers.
    PanicNextFrame,
    /// `runtime.(*_panic).initOpenCodedDefers` (go1.22+): reads a frame's
    /// open-coded funcdata and deferBits.
    InitOpenCodedDefers,
    /// `runtime.systemstack`, `runtime.systemstack_switch`, `runtime.mcall`:
    /// switches to the system stack. Not machinery, but a stack walk sees
    /// them between machinery frames (`(*_panic).nextFrame` runs its walk
    /// through `systemstack`), so a run of machinery goes on through them.
    StackSwitch,
    /// The runtime's hook just before `execve` (`syscall.runtime_BeforeExec`,
    /// linknamed; `runtime.syscall_runtime_BeforeExec` where the pclntab
    /// names it on the runtime's side): the last moment a traced program's
    /// own counters can be read before the image is replaced.
    BeforeExec,
}

/// The part of the defer machinery a runtime function belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Registering a defer: `deferproc*`, `newdefer`, the closure.
    Register,
    /// Running defers at return: `deferreturn` and what it calls.
    Run,
    /// Panics: `gopanic`, the open-coded frame walk, `recover`.
    Panic,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Register => "register",
            Phase::Run => "run",
            Phase::Panic => "panic",
        }
    }
}

/// Every role with an exact name.
const NAMES: [(&str, RuntimeFn); 31] = [
    ("syscall.runtime_BeforeExec", RuntimeFn::BeforeExec),
    ("runtime.syscall_runtime_BeforeExec", RuntimeFn::BeforeExec),
    ("runtime.systemstack", RuntimeFn::StackSwitch),
    ("runtime.systemstack_switch", RuntimeFn::StackSwitch),
    ("runtime.mcall", RuntimeFn::StackSwitch),
    ("runtime.newdefer", RuntimeFn::Newdefer),
    ("runtime.freedefer", RuntimeFn::Freedefer),
    ("runtime.popDefer", RuntimeFn::PopDefer),
    ("runtime.deferconvert", RuntimeFn::Deferconvert),
    ("runtime.jmpdefer", RuntimeFn::Jmpdefer),
    (
        "runtime.addOneOpenDeferFrame",
        RuntimeFn::AddOneOpenDeferFrame,
    ),
    ("runtime.runOpenDeferFrame", RuntimeFn::RunOpenDeferFrame),
    ("runtime.deferCallSave", RuntimeFn::DeferCallSave),
    ("runtime.reflectcallSave", RuntimeFn::ReflectcallSave),
    ("runtime.(*_panic).start", RuntimeFn::PanicStart),
    ("runtime.(*_panic).nextFrame", RuntimeFn::PanicNextFrame),
    (
        "runtime.(*_panic).initOpenCodedDefers",
        RuntimeFn::InitOpenCodedDefers,
    ),
    ("runtime.deferproc", RuntimeFn::Deferproc),
    ("runtime.deferprocStack", RuntimeFn::DeferprocStack),
    ("runtime.deferprocat", RuntimeFn::Deferprocat),
    ("runtime.deferrangefunc", RuntimeFn::Deferrangefunc),
    ("runtime.deferreturn", RuntimeFn::Deferreturn),
    ("runtime.newobject", RuntimeFn::Newobject),
    ("runtime.gopanic", RuntimeFn::Gopanic),
    ("runtime.gorecover", RuntimeFn::Gorecover),
    ("runtime.recovery", RuntimeFn::Recovery),
    ("runtime.(*_panic).nextDefer", RuntimeFn::NextDefer),
    ("runtime.racefuncenter", RuntimeFn::RaceFuncEnter),
    ("runtime.racefuncexit", RuntimeFn::RaceFuncExit),
    ("runtime.mallocgc", RuntimeFn::Mallocgc),
    ("runtime.makeslice", RuntimeFn::Makeslice),
];

impl RuntimeFn {
    /// The role of the function named `name`, if it has one.
    pub fn of(name: &str) -> Option<RuntimeFn> {
        if let Some(&(_, f)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Some(f);
        }
        let r = name.strip_prefix("runtime.")?;
        if r.starts_with("mallocgcSmall") || r.starts_with("mallocgcTiny") {
            Some(RuntimeFn::MallocgcSized)
        } else if r.starts_with("mallocgc") {
            Some(RuntimeFn::Mallocgc)
        } else if r.starts_with("gcWriteBarrier") {
            Some(RuntimeFn::GcWriteBarrier)
        } else {
            None
        }
    }

    /// The function's name (for the roles that match a family of names,
    /// the size-specialized allocators and the write barriers, the first
    /// prefix of the family).
    pub fn name(self) -> &'static str {
        match self {
            RuntimeFn::MallocgcSized => "runtime.mallocgcSmall",
            RuntimeFn::GcWriteBarrier => "runtime.gcWriteBarrier",
            f => NAMES
                .iter()
                .find(|(_, g)| *g == f)
                .map_or("runtime.?", |(n, _)| n),
        }
    }

    /// The `deferproc*` entry points that register a defer.
    pub const REGISTER: [RuntimeFn; 3] = [
        RuntimeFn::Deferproc,
        RuntimeFn::DeferprocStack,
        RuntimeFn::Deferprocat,
    ];

    /// The Go releases (minor numbers, inclusive) in which the function is
    /// part of the defer machinery, from the runtime's sources
    /// (`runtime/panic.go` of each release; checked with `go tool nm` on
    /// go1.19 ... go1.27.3 builds, where the inlined ones are absent).
    pub fn releases(self) -> (u32, u32) {
        use RuntimeFn::*;
        match self {
            Jmpdefer => (13, 17),
            ReflectcallSave => (14, 16),
            AddOneOpenDeferFrame | RunOpenDeferFrame => (14, 21),
            DeferCallSave => (17, 21),
            Deferprocat | Deferrangefunc | Deferconvert | PopDefer | PanicStart
            | PanicNextFrame | NextDefer | InitOpenCodedDefers => (22, u32::MAX),
            _ => (0, u32::MAX),
        }
    }

    /// Where the function belongs in the defer machinery; `None` for the
    /// roles that are not machinery (allocators, race hooks, barriers).
    pub fn phase(self) -> Option<Phase> {
        use RuntimeFn::*;
        Some(match self {
            Deferproc | DeferprocStack | Deferprocat | Deferrangefunc | Newdefer => Phase::Register,
            Deferreturn | Freedefer | PopDefer | Deferconvert | Jmpdefer => Phase::Run,
            Gopanic | Gorecover | Recovery | NextDefer | AddOneOpenDeferFrame
            | RunOpenDeferFrame | DeferCallSave | ReflectcallSave | PanicStart | PanicNextFrame
            | InitOpenCodedDefers => Phase::Panic,
            Newobject | MallocgcSized | Mallocgc | Makeslice | RaceFuncEnter | RaceFuncExit
            | GcWriteBarrier | StackSwitch | BeforeExec => return None,
        })
    }

    /// The functions that call deferred functions: a function they call
    /// that is not machinery itself is a deferred call (`deferreturn` and
    /// `gopanic` call `fn()` from go1.22; `runOpenDeferFrame` through
    /// `deferCallSave` / `reflectcallSave` before; `jmpdefer` jumps).
    pub fn runs_deferred_calls(self) -> bool {
        matches!(
            self,
            RuntimeFn::Deferreturn
                | RuntimeFn::Gopanic
                | RuntimeFn::RunOpenDeferFrame
                | RuntimeFn::DeferCallSave
                | RuntimeFn::ReflectcallSave
                | RuntimeFn::Jmpdefer
        )
    }

    /// An allocator a closure or a moved variable comes from.
    pub fn is_alloc(self) -> bool {
        matches!(
            self,
            RuntimeFn::Newobject | RuntimeFn::MallocgcSized | RuntimeFn::Mallocgc
        )
    }
}

/// The machinery role of the function named `name` (a closure of one,
/// `runtime.addOneOpenDeferFrame.func1` or
/// `runtime.(*_panic).nextFrame.func1`, counts as it) in a binary built
/// by Go 1.`minor` (any release when unknown): see
/// [`RuntimeFn::releases`] and [`RuntimeFn::phase`].
pub fn machinery_of(name: &str, minor: Option<u32>) -> Option<RuntimeFn> {
    if !name.starts_with("runtime.") {
        return None;
    }
    let mut base = name;
    // Strip `.funcN` and the `.N` of nested closures.
    while let Some((head, tail)) = base.rsplit_once('.') {
        let closure = tail.strip_prefix("func").unwrap_or(tail);
        if !closure.is_empty() && closure.bytes().all(|c| c.is_ascii_digit()) && head != "runtime" {
            base = head;
        } else {
            break;
        }
    }
    let f = RuntimeFn::of(base)?;
    f.phase()?;
    let (lo, hi) = f.releases();
    minor.is_none_or(|m| (lo..=hi).contains(&m)).then_some(f)
}

/// The runtime functions of one binary, by role.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    /// Entry -> role.
    by_entry: HashMap<u64, RuntimeFn>,
    /// Role -> entries, in address order.
    by_role: HashMap<RuntimeFn, Vec<u64>>,
    /// Entries of the runtime functions that never return (sorted).
    noreturn: Vec<u64>,
}

impl Runtime {
    /// Find them all, in one pass over the function table.
    pub fn find(ix: &GoIndex<'_>) -> Runtime {
        let mut rt = Runtime::default();
        for f in ix.funcs() {
            let Some(bytes) = ix.pcln.name_bytes(&f) else {
                continue;
            };
            if !bytes.starts_with(b"runtime.") && !bytes.starts_with(b"syscall.runtime_") {
                continue;
            }
            let name = ix.name(&f);
            if let Some(role) = RuntimeFn::of(name) {
                rt.by_entry.entry(f.entry).or_insert(role);
                rt.by_role.entry(role).or_default().push(f.entry);
            }
            if is_noreturn(name) {
                rt.noreturn.push(f.entry);
            }
        }
        rt.noreturn.sort_unstable();
        rt
    }

    /// The entry of the (first) function with role `f`.
    pub fn entry(&self, f: RuntimeFn) -> Option<u64> {
        self.by_role.get(&f).and_then(|v| v.first().copied())
    }

    /// Every entry of role `f` (the race hooks and allocators have more
    /// than one).
    pub fn entries(&self, f: RuntimeFn) -> &[u64] {
        self.by_role.get(&f).map_or(&[], Vec::as_slice)
    }

    /// Whether the binary has a function of role `f`.
    pub fn has(&self, f: RuntimeFn) -> bool {
        self.by_role.contains_key(&f)
    }

    /// The role of the function that starts at `entry`.
    pub fn role_at(&self, entry: u64) -> Option<RuntimeFn> {
        self.by_entry.get(&entry).copied()
    }

    /// Entries of the runtime functions that never return, sorted.
    pub fn noreturn(&self) -> &[u64] {
        &self.noreturn
    }
}

/// Whether `name` is a runtime function that never returns: the calls the
/// compiler ends a block with (`ssagen` `stmt`, case `OCALLFUNC`:
/// `gopanic`, `panicwrap`, `block`, `panicmakeslice*`, `panicunsafe*`,
/// `panicrangestate`, `throw`, `throwinit`; `rtcall`s without a return:
/// `panicdivide`, `panicshift`, `panicoverflow`, `panicdottype*`,
/// `panicnildottype`, `panicmem*`; the bounds check panics
/// `panicIndex*`/`panicSlice*`/`goPanic*`/`panicExtend*` and go1.25+'s
/// `panicBounds*`), plus `fatal*` and `Goexit`, which do not return either.
pub fn is_noreturn(name: &str) -> bool {
    let Some(r) = name.strip_prefix("runtime.") else {
        return false;
    };
    if r.contains('.') {
        return false;
    }
    matches!(
        r,
        "gopanic"
            | "throw"
            | "throwinit"
            | "fatal"
            | "fatalthrow"
            | "fatalpanic"
            | "panicwrap"
            | "block"
            | "panicdivide"
            | "panicshift"
            | "panicoverflow"
            | "panicfloat"
            | "panicmem"
            | "panicmemAddr"
            | "panicnildottype"
            | "panicdottypeE"
            | "panicdottypeI"
            | "panicrangestate"
            | "Goexit"
    ) || [
        "panicIndex",
        "panicSlice",
        "goPanic",
        "panicExtend",
        "panicBounds",
        "panicmakeslice",
        "panicunsafe",
    ]
    .iter()
    .any(|p| r.starts_with(p))
}

/// The builtin a runtime function implements, for deferred builtins
/// (walk's `close` -> `closechan`, `delete` -> `mapdelete*`, `panic` ->
/// `gopanic`, `recover` -> `gorecover`, `clear` of a map -> `mapclear`).
pub fn builtin_of(runtime_fn: &str) -> Option<&'static str> {
    let r = runtime_fn.strip_prefix("runtime.")?;
    match r {
        "closechan" => Some("close"),
        "gopanic" => Some("panic"),
        "gorecover" => Some("recover"),
        "mapclear" => Some("clear"),
        // print and println lock the print buffer first; println ends
        // with printnl, unless the compiler folded its newline into a
        // constant last argument (`println("x")` prints "x\n" as one
        // string), which print("x\n") compiles to as well.
        "printlock" => Some("print/println"),
        "printnl" => Some("println"),
        _ if r == "mapdelete" || r.starts_with("mapdelete_") => Some("delete"),
        _ => None,
    }
}

/// Runtime helpers a wrapper may call before the real callee (any
/// lower-case runtime function or method).
pub fn is_helper(name: &str) -> bool {
    name.strip_prefix("runtime.")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_lowercase()) || r.starts_with('('))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_name() {
        assert_eq!(
            RuntimeFn::of("runtime.deferprocStack"),
            Some(RuntimeFn::DeferprocStack)
        );
        assert_eq!(
            RuntimeFn::of("runtime.mallocgcSmallScanNoHeaderSC1"),
            Some(RuntimeFn::MallocgcSized)
        );
        assert_eq!(
            RuntimeFn::of("runtime.mallocgcTiny16"),
            Some(RuntimeFn::MallocgcSized)
        );
        assert_eq!(RuntimeFn::of("runtime.mallocgc"), Some(RuntimeFn::Mallocgc));
        assert_eq!(
            RuntimeFn::of("runtime.mallocgcLarge"),
            Some(RuntimeFn::Mallocgc)
        );
        assert_eq!(RuntimeFn::of("runtime.deferprocStack.abi0"), None);
        assert_eq!(RuntimeFn::of("main.deferproc"), None);
        for (n, f) in NAMES {
            assert_eq!(RuntimeFn::of(n), Some(f));
            // Roles with several names give their first.
            if ![RuntimeFn::StackSwitch, RuntimeFn::BeforeExec].contains(&f) {
                assert_eq!(f.name(), n);
            }
        }
    }

    #[test]
    fn machinery_names() {
        assert_eq!(
            machinery_of("runtime.addOneOpenDeferFrame.func1.1", Some(19)),
            Some(RuntimeFn::AddOneOpenDeferFrame)
        );
        assert_eq!(machinery_of("runtime.addOneOpenDeferFrame", Some(22)), None);
        assert_eq!(
            machinery_of("runtime.(*_panic).nextFrame.func1", Some(22)),
            Some(RuntimeFn::PanicNextFrame)
        );
        assert_eq!(
            machinery_of("runtime.(*_panic).nextDefer", None),
            Some(RuntimeFn::NextDefer)
        );
        assert_eq!(
            machinery_of("runtime.gorecover.func1", Some(26)),
            Some(RuntimeFn::Gorecover)
        );
        assert_eq!(machinery_of("runtime.newobject", Some(22)), None);
        assert_eq!(machinery_of("runtime.preprintpanics.func1", Some(22)), None);
        assert_eq!(machinery_of("main.deferreturn", None), None);
        assert_eq!(
            machinery_of("runtime.deferreturn", Some(19)).and_then(|f| f.phase()),
            Some(Phase::Run)
        );
    }

    #[test]
    fn noreturn_names() {
        // ssagen stmt's BlockExit list and the bounds panics (go1.19 and
        // go1.25+ names), fatal*, Goexit.
        for n in [
            "runtime.gopanic",
            "runtime.panicIndex",
            "runtime.goPanicSliceAlen",
            "runtime.panicBounds64",
            "runtime.panicdottypeE",
            "runtime.panicunsafeslicelen1",
            "runtime.throw",
            "runtime.fatalthrow",
        ] {
            assert!(is_noreturn(n), "{n}");
        }
        for n in [
            "runtime.panicCheck1",
            "runtime.throw.func1",
            "runtime.deferreturn",
            "main.gopanic",
            "runtime.printpanics",
        ] {
            assert!(!is_noreturn(n), "{n}");
        }
    }

    #[test]
    fn builtins() {
        assert_eq!(builtin_of("runtime.closechan"), Some("close"));
        assert_eq!(builtin_of("runtime.mapdelete_faststr"), Some("delete"));
        assert_eq!(builtin_of("runtime.mapdelete"), Some("delete"));
        assert_eq!(builtin_of("runtime.mapdeleteX"), None);
        assert_eq!(builtin_of("runtime.printlock"), Some("print/println"));
        assert_eq!(builtin_of("runtime.printnl"), Some("println"));
        assert_eq!(builtin_of("main.closechan"), None);
    }

    #[test]
    fn runtime_helpers() {
        assert!(is_helper("runtime.morestack_noctxt"));
        assert!(is_helper("runtime.(*_panic).nextDefer"));
        assert!(!is_helper("runtime.GC"));
        assert!(!is_helper("main.g"));
    }
}

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
}

/// Every role with an exact name.
const NAMES: [(&str, RuntimeFn); 13] = [
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
];

impl RuntimeFn {
    /// The role of the function named `name`, if it has one.
    pub fn of(name: &str) -> Option<RuntimeFn> {
        let r = name.strip_prefix("runtime.")?;
        if let Some(&(_, f)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Some(f);
        }
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

    /// An allocator a closure or a moved variable comes from.
    pub fn is_alloc(self) -> bool {
        matches!(
            self,
            RuntimeFn::Newobject | RuntimeFn::MallocgcSized | RuntimeFn::Mallocgc
        )
    }
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
            if !bytes.starts_with(b"runtime.") {
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
            assert_eq!(f.name(), n);
        }
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

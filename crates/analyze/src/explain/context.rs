//! What every pass of `explain` shares: [`Cx`].
//!
//! The binary and its index; the runtime's functions, asked by role
//! ([`Runtime`], found once by the front end) and never by name; the facts
//! that depend on the Go release and the architecture (the `_defer`
//! record's size, the recovery exits, how calls pass arguments and
//! results); the build settings that can rule out open-coding
//! ([`GcFlags`], `-race`); and function names by address, with the call
//! targets' names cached (the same few runtime and library functions are
//! called from every function).
//!
//! The passes' own state lives here too, so it is kept from one function
//! to the next: the value pass's scratch buffers and the target
//! resolution's memos, each bounded ([`Memo`]).

use std::collections::{BTreeMap, HashMap};

use deferscope_decode::SP;
use deferscope_index::names::display_name;
use deferscope_index::runtime::{Runtime, RuntimeFn};
use deferscope_index::{Func, GoIndex};
use deferscope_load::{Arch, Image};
use deferscope_model::Origin;

use super::values::Scratch;

/// The explain passes' shared context.
pub(super) struct Cx<'a, 'd> {
    pub img: &'a Image<'d>,
    pub ix: &'a GoIndex<'d>,
    /// The runtime's functions, by role.
    pub runtime: &'a Runtime,
    /// go1.22+ (48-byte `_defer`, deferwrap names).
    pub go122: bool,
    /// go1.25+: no branch to a recovery exit after deferproc (design.md §3.5).
    pub go125: bool,
    /// go1.17+ (or go1.22+ by its runtime when the version is unknown): a
    /// `runtime.deferproc` site is a defer escape analysis found in a loop
    /// (design.md §1.2, "Heap means in a loop").
    pub heap_means_loop: bool,
    /// go1.17 amd64 passes the closure to deferproc in BX.
    pub go117_amd64: bool,
    /// Function results come back in registers (go1.17+ amd64, go1.18+
    /// arm64): they are reloaded after `runtime.deferreturn`.
    pub regabi: bool,
    /// The `-gcflags` build setting.
    pub gcflags: Option<GcFlags>,
    /// The `-race` build setting is `true`.
    pub race_setting: bool,
    /// The binary records build settings (go1.18+ build info; `go build`
    /// always records `-compiler`), so a missing `-gcflags` means none.
    pub settings_recorded: bool,
    /// Names of call targets (`None`: not a function's entry), by address.
    /// Closures are looked up without it ([`Cx::name`]): each site has its
    /// own, so caching them would only hold memory.
    callee_names: HashMap<u64, Option<&'d str>>,
    /// Whether a function (by entry) is a wrapper, where deciding it
    /// decoded the function (many sites defer the same function).
    pub wrapper_at: Memo,
    /// Whether a function (by address) calls `recover`.
    pub recovers_at: Memo,
    /// The value pass's buffers, kept (empty) between functions.
    pub scratch: Scratch,
    /// The sites whose captures or results DWARF may name, once every
    /// function is done ([`super::dwarfnames`]).
    pub unnamed: Vec<super::dwarfnames::Unnamed>,
}

impl<'a, 'd> Cx<'a, 'd> {
    /// The context for one binary; `settings` are its build settings.
    pub fn new(
        img: &'a Image<'d>,
        ix: &'a GoIndex<'d>,
        runtime: &'a Runtime,
        settings: &BTreeMap<String, String>,
    ) -> Self {
        let v = ix.version;
        Cx {
            img,
            ix,
            runtime,
            go122: v.map_or(runtime.has(RuntimeFn::NextDefer), |v| v.at_least(22)),
            go125: v.is_some_and(|v| v.at_least(25)),
            heap_means_loop: v.map_or(runtime.has(RuntimeFn::NextDefer), |v| v.at_least(17)),
            go117_amd64: img.arch == Arch::Amd64 && v.is_some_and(|v| v.minor == 17),
            regabi: v.is_some_and(|v| match img.arch {
                Arch::Amd64 => v.at_least(17),
                Arch::Arm64 => v.at_least(18),
            }),
            gcflags: settings.get("-gcflags").map(|v| GcFlags::parse(v)),
            race_setting: settings.get("-race").is_some_and(|v| v == "true"),
            settings_recorded: settings.contains_key("-compiler"),
            callee_names: HashMap::new(),
            wrapper_at: Memo::default(),
            recovers_at: Memo::default(),
            scratch: Scratch::default(),
            unnamed: Vec::new(),
        }
    }

    /// The role of the runtime function a call to `target` reaches. The
    /// defer entry points and `recover` are only the first function of
    /// their name, the one [`crate::scan`] counts; the other roles are any
    /// of their entries.
    pub fn call_role(&self, target: u64) -> Option<RuntimeFn> {
        let role = self.runtime.role_at(target)?;
        match role {
            RuntimeFn::Deferproc
            | RuntimeFn::DeferprocStack
            | RuntimeFn::Deferprocat
            | RuntimeFn::Deferreturn
            | RuntimeFn::Gorecover => (self.runtime.entry(role) == Some(target)).then_some(role),
            _ => Some(role),
        }
    }

    /// The name of the function that starts at `entry`, if one does.
    pub fn entry_name(&self, entry: u64) -> Option<&'d str> {
        self.ix
            .func_for_pc(entry)
            .filter(|f| f.entry == entry)
            .map(|f| self.ix.name(&f))
    }

    /// [`Cx::entry_name`] of a call target, cached.
    pub fn callee_name(&mut self, entry: u64) -> Option<&'d str> {
        if let Some(&n) = self.callee_names.get(&entry) {
            return n;
        }
        let n = self.entry_name(entry);
        self.callee_names.insert(entry, n);
        n
    }

    /// The name of the function at `entry`, else the address in hex.
    pub fn name(&self, entry: u64) -> String {
        self.name_in(self.ix.func_for_pc(entry), entry)
    }

    /// [`Cx::name`], with the function holding `entry` already looked up.
    pub fn name_in(&self, holder: Option<Func>, entry: u64) -> String {
        holder.filter(|f| f.entry == entry).map_or_else(
            || format!("{entry:#x}"),
            |f| display_name(self.ix.name(&f)).into_owned(),
        )
    }

    /// Whether a function starts at `a`.
    pub fn is_entry(&self, a: u64) -> bool {
        self.ix.func_for_pc(a).is_some_and(|f| f.entry == a)
    }

    /// Registers an epilogue writes: SP and BP on amd64; SP, the frame
    /// pointer R29, the link register R30 and the assembler's temporary
    /// R27 on arm64.
    pub fn is_frame_reg(&self, r: u8) -> bool {
        match self.img.arch {
            Arch::Amd64 => r == SP || r == 4 || r == 5,
            Arch::Arm64 => r == SP || r == 31 || (27..=30).contains(&r),
        }
    }
}

/// Most answers a [`Memo`] holds: it is emptied when full, so its memory
/// stays bounded whatever the binary (the answers asked again and again
/// come back after it is emptied).
const MEMO_MAX: usize = 1 << 14;

/// Yes/no answers by address, at most [`MEMO_MAX`].
#[derive(Default)]
pub(super) struct Memo(HashMap<u64, bool>);

impl Memo {
    pub fn get(&self, k: u64) -> Option<bool> {
        self.0.get(&k).copied()
    }

    pub fn insert(&mut self, k: u64, v: bool) {
        if self.0.len() >= MEMO_MAX {
            self.0.clear();
        }
        self.0.insert(k, v);
    }
}

/// The `-gcflags` build setting, as far as defers care: whether it holds
/// `-N` or `-d=noopendefer`, and which packages it reaches.
pub(super) struct GcFlags {
    /// The package pattern before `=`, if any.
    scope: Option<String>,
    pub n: bool,
    pub noopendefer: bool,
    /// The setting as written.
    pub raw: String,
}

impl GcFlags {
    pub fn parse(v: &str) -> GcFlags {
        let (scope, flags) = match v.split_once('=') {
            Some((p, rest)) if !p.starts_with('-') => (Some(p.to_owned()), rest),
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
    pub fn applies(&self, package: &str, origin: Origin) -> bool {
        match self.scope.as_deref() {
            None => origin == Origin::Main,
            Some("all") => true,
            Some("std") => origin == Origin::Std,
            Some(p) => match p.strip_suffix("/...") {
                Some(pre) => package == pre || package.starts_with(&format!("{pre}/")),
                None => package == p,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let g = GcFlags::parse("std=-N");
        assert!(g.applies("net/http", Origin::Std));
        assert!(!g.applies("main", Origin::Main));
    }

    #[test]
    fn memo_stays_bounded() {
        let mut m = Memo::default();
        for k in 0..(MEMO_MAX as u64 + 10) {
            m.insert(k, k % 2 == 0);
        }
        assert!(m.0.len() <= MEMO_MAX);
        assert_eq!(m.get(MEMO_MAX as u64 + 9), Some(false));
        assert_eq!(m.get(0), None);
    }
}

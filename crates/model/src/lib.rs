//! The one result of a deferscope analysis, and its parts: plain data.
//!
//! The pipeline runs one way: **load** (the object file) -> **index**
//! (Go's tables) -> **decode** (instruction facts) -> **analyze** (sites,
//! reasons, costs) -> **report** (printers). This crate is what flows
//! between analyze and report: [`Analysis`] and every type it holds. It
//! reads no binary and depends on nothing of the pipeline, so the printers
//! (`deferscope-report`) see only data, and a test can build a result by
//! hand. The stages that compute these values say how in their own docs;
//! `docs/design.md` says why.
//!
//! - [`Scan`]: every defer site with its kind, function and line
//!   (`deferscope scan`);
//! - [`explain::Explain`]: why each function's defers are not open-coded,
//!   what each defer calls and costs (`deferscope explain`);
//! - [`verify::Verification`]: the compiler's `-d=defer` lines compared
//!   with the scan (`deferscope check --verify`);
//! - [`diff`]: two builds' sites, matched (`deferscope diff`);
//! - [`listing`]: rows of annotated disassembly, for the printers that
//!   show code;
//! - [`cost::CostTable`]: what one execution of each kind of defer costs;
//! - [`batch::Batch`]: many binaries (directories, container images) in
//!   one report.
//! - [`profile::Attribution`]: a pprof profile's samples charged to the
//!   sites (`deferscope profile`).

pub mod batch;
pub mod cost;
pub mod diff;
pub mod explain;
pub mod listing;
pub mod names;
pub mod profile;
pub mod verify;

use std::collections::BTreeMap;

use serde::Serialize;

pub use names::{package_of, repository_root, Origin};

/// The compiler's three kinds of defer, spelled as `-d=defer` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    #[serde(rename = "open-coded")]
    OpenCoded,
    #[serde(rename = "stack-allocated")]
    StackAllocated,
    #[serde(rename = "heap-allocated")]
    HeapAllocated,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::OpenCoded, Kind::StackAllocated, Kind::HeapAllocated];

    /// The compiler's words: `open-coded`, `stack-allocated`, `heap-allocated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OpenCoded => "open-coded",
            Kind::StackAllocated => "stack-allocated",
            Kind::HeapAllocated => "heap-allocated",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One defer statement as compiled into one function.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    /// The function, as the pclntab names it (`main.(*T).Close`).
    pub function: String,
    /// The source file, as the pclntab spells it.
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    /// Address of the instruction that registers the defer: the call to
    /// `runtime.deferproc*`, or the store of an open-coded defer's closure.
    pub pc: u64,
    /// The function's package path.
    pub package: String,
    /// Whether the package is the main module's, the standard library's or
    /// another module's.
    pub origin: Origin,
    /// Open-coded only: the defer's bit in deferBits (source order, 0-7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u8>,
}

/// A function that contains defers.
#[derive(Clone, Debug, Serialize)]
pub struct FuncInfo {
    pub name: String,
    pub entry: u64,
    pub size: u64,
    pub file: String,
    /// Line of the function's first instruction.
    pub line: u32,
    pub package: String,
    pub origin: Origin,
    /// Number of sites found in this function.
    pub sites: usize,
    /// Open-coded functions: the number of defers the funcdata records. It
    /// can exceed `sites` when the compiler deleted a dead defer's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_coded_defers: Option<u8>,
    /// Calls `runtime.deferrangefunc`: encloses a range-over-func loop whose
    /// body defers.
    pub calls_deferrangefunc: bool,
    /// Offset of the first `CALL runtime.deferreturn` from the entry.
    pub deferreturn: u32,
}

/// Facts about the binary as a whole.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BinaryInfo {
    pub path: String,
    pub format: &'static str,
    pub goos: String,
    pub goarch: &'static str,
    /// From the build info, else the runtime's version string; `None` when
    /// neither is found.
    pub go_version: Option<String>,
    /// `"buildinfo"` or `"runtime.buildVersion"`.
    pub go_version_source: Option<&'static str>,
    /// The pclntab layout (`go1.20+` etc.): a floor on the Go version.
    pub pclntab: &'static str,
    pub stripped: bool,
    pub pie: bool,
    /// The main module's path (the build info's `mod` line).
    pub main_module: Option<String>,
    /// Set when the build info names a main package but no main module: a
    /// GOPATH-mode build (`GO111MODULE=off`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gopath_build: Option<GopathBuild>,
    /// Build settings from the build info: `-gcflags`, `CGO_ENABLED`, ...
    pub build_settings: BTreeMap<String, String>,
    pub functions: usize,
}

/// A build without a main module (GOPATH mode): what counts as the
/// program's own code.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct GopathBuild {
    /// The main package's import path (the build info's `path` line).
    pub main_package: String,
    /// The repository root of the main package
    /// ([`names::repository_root`]): its packages are the
    /// [`Origin::Main`] ones.
    pub own_code: String,
}

/// Per-kind counts.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    #[serde(rename = "open-coded")]
    pub open_coded: usize,
    #[serde(rename = "stack-allocated")]
    pub stack_allocated: usize,
    #[serde(rename = "heap-allocated")]
    pub heap_allocated: usize,
}

impl Counts {
    pub fn add(&mut self, k: Kind) {
        *self.get_mut(k) += 1;
    }
    pub fn get(&self, k: Kind) -> usize {
        match k {
            Kind::OpenCoded => self.open_coded,
            Kind::StackAllocated => self.stack_allocated,
            Kind::HeapAllocated => self.heap_allocated,
        }
    }
    fn get_mut(&mut self, k: Kind) -> &mut usize {
        match k {
            Kind::OpenCoded => &mut self.open_coded,
            Kind::StackAllocated => &mut self.stack_allocated,
            Kind::HeapAllocated => &mut self.heap_allocated,
        }
    }
    pub fn total(&self) -> usize {
        self.open_coded + self.stack_allocated + self.heap_allocated
    }
}

/// The result of a scan: the binary, its defer sites and the functions
/// that hold them.
#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    pub binary: BinaryInfo,
    pub sites: Vec<Site>,
    pub functions: Vec<FuncInfo>,
}

impl Scan {
    /// Keep only the sites and functions for which `keep(function, origin)`
    /// holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, Origin) -> bool) {
        self.sites.retain(|s| keep(&s.function, s.origin));
        self.functions.retain(|f| keep(&f.name, f.origin));
    }

    /// Counts per kind over all sites, and per origin.
    pub fn counts(&self) -> (Counts, BTreeMap<Origin, Counts>) {
        let mut all = Counts::default();
        let mut by: BTreeMap<Origin, Counts> = BTreeMap::new();
        for s in &self.sites {
            all.add(s.kind);
            by.entry(s.origin).or_default().add(s.kind);
        }
        (all, by)
    }

    /// Counts per package, sorted by package path.
    pub fn per_package(&self) -> BTreeMap<&str, Counts> {
        let mut by: BTreeMap<&str, Counts> = BTreeMap::new();
        for s in &self.sites {
            by.entry(&s.package).or_default().add(s.kind);
        }
        by
    }
}

/// Everything deferscope found out about one binary: the scan, and what
/// the caller asked for on top of it. Every printer takes this one value.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub scan: Scan,
    /// The explain pass (reasons, targets, costs), parallel to the scan's
    /// sites and functions; present when asked for.
    pub explain: Option<explain::Explain>,
    /// The compiler's own account compared with the scan (`check
    /// --verify`), made before the scan was filtered.
    pub verification: Option<verify::Verification>,
    /// A pprof profile attributed to the sites (`deferscope profile`).
    pub profile: Option<profile::Attribution>,
}

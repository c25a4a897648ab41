//! Stage 4 of the deferscope pipeline: **analyze**.
//!
//! [`scan`] finds every defer site of a Go binary and gives it the kind the
//! compiler chose, following the defer spec (`go-defer-internals.md` §1.5):
//!
//! 1. A function with `FUNCDATA_OpenCodedDeferInfo` has only open-coded
//!    defers. Their number and closure-slot offsets come from the funcdata
//!    (three encodings: go1.14-1.17, 1.18-1.21, 1.22+). Each site's pc is the
//!    instruction that stores the deferred closure into its slot; its line is
//!    that instruction's line.
//! 2. Otherwise each `CALL runtime.deferprocStack` is a stack-allocated site
//!    and each `CALL runtime.deferproc` / `runtime.deferprocat` a
//!    heap-allocated one. Calls to `runtime.deferrangefunc` mark a function
//!    that encloses a range-over-func loop with a defer in its body.
//!
//! Only functions that can hold a defer are decoded: those with a non-zero
//! `_func.deferreturn`, plus any function in which a byte scan of the text
//! finds what looks like a call to a `deferproc*` entry point.

pub mod batch;
pub mod cfg;
pub mod cost;
pub mod diff;
pub mod explain;
pub mod front;
pub mod paths;
pub mod verify;

use std::collections::BTreeMap;

use deferscope_decode::Event;
use deferscope_index::names::{display_name, display_package};
use deferscope_index::runtime::{Runtime, RuntimeFn};
use deferscope_index::{Func, GoIndex, OpenDeferFormat};
use deferscope_load::Image;

pub use deferscope_model::{
    package_of, repository_root, Analysis, BinaryInfo, Counts, FuncInfo, GopathBuild, Kind, Origin,
    Scan, Site,
};
pub use front::{run, with_binary, Filter, Request};

/// Why a binary could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The file could not be read or is not an object file we read.
    #[error(transparent)]
    Load(#[from] deferscope_load::LoadError),
    /// The file is not a Go binary, or its tables are damaged.
    #[error("{path}")]
    Index {
        path: String,
        #[source]
        source: deferscope_index::IndexError,
    },
}

/// The call targets that register a defer, and their kinds.
struct Targets {
    deferproc: Option<u64>,
    deferproc_stack: Option<u64>,
    deferprocat: Option<u64>,
    deferrangefunc: Option<u64>,
}

impl Targets {
    fn new(rt: &Runtime) -> Targets {
        Targets {
            deferproc: rt.entry(RuntimeFn::Deferproc),
            deferproc_stack: rt.entry(RuntimeFn::DeferprocStack),
            deferprocat: rt.entry(RuntimeFn::Deferprocat),
            deferrangefunc: rt.entry(RuntimeFn::Deferrangefunc),
        }
    }

    fn all(&self) -> Vec<u64> {
        [
            self.deferproc,
            self.deferproc_stack,
            self.deferprocat,
            self.deferrangefunc,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn kind_of_call(&self, target: u64) -> Option<Kind> {
        if Some(target) == self.deferproc_stack {
            Some(Kind::StackAllocated)
        } else if Some(target) == self.deferproc || Some(target) == self.deferprocat {
            Some(Kind::HeapAllocated)
        } else {
            None
        }
    }
}

/// Scan the whole binary. `path` is used only in the report.
pub fn scan(path: &str, img: &Image<'_>, ix: &GoIndex<'_>) -> Result<Scan, AnalyzeError> {
    scan_with(path, img, ix, &Runtime::find(ix))
}

/// [`scan`], with the runtime's functions already found.
pub fn scan_with(
    path: &str,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    rt: &Runtime,
) -> Result<Scan, AnalyzeError> {
    let targets = Targets::new(rt);
    let layout = ix.open_defer_layout(rt);
    let main_module = ix
        .buildinfo
        .as_ref()
        .and_then(|b| b.main_module.as_ref().map(|m| m.0.clone()));
    // A main package and no main module: a GOPATH-mode build, whose own
    // code is told by the main package's repository root (docs/design.md
    // §4.8).
    let gopath_build = ix.buildinfo.as_ref().and_then(|b| {
        let p = b.path.as_ref().filter(|_| b.main_module.is_none())?;
        Some(GopathBuild {
            main_package: p.clone(),
            own_code: repository_root(p).to_owned(),
        })
    });
    let own_code = main_module
        .clone()
        .or_else(|| gopath_build.as_ref().map(|g| g.own_code.clone()));

    // Functions that look like they call a deferproc entry point.
    let mut candidates: Vec<u64> = Vec::new();
    // Whether `candidates` covers the whole text, so that a function's
    // deferproc calls are all among them.
    let mut scanned_all = false;
    let call_targets = targets.all();
    if !call_targets.is_empty() {
        if let Some((start, end)) = ix.text_range() {
            if let Some(text) = img.read(start, end.saturating_sub(start)) {
                candidates =
                    deferscope_decode::call_candidates(img.arch, text, start, &call_targets);
                scanned_all = true;
            }
        }
    }
    candidates.sort_unstable();

    let mut sites = Vec::new();
    let mut functions = Vec::new();
    for f in ix.funcs() {
        let here = {
            let i = candidates.partition_point(|&pc| pc < f.entry);
            // A damaged table can have end < entry: then j <= i.
            let j = candidates.partition_point(|&pc| pc < f.end).max(i);
            &candidates[i..j]
        };
        let has_candidate = !here.is_empty();
        // Calls need decoding only up to the last candidate (a call is at
        // most 5 bytes); with no candidate, not at all.
        let call_end = if scanned_all {
            here.last().map_or(f.entry, |&pc| pc + 5)
        } else {
            f.end
        };
        if f.deferreturn == 0 && !has_candidate {
            continue;
        }
        if [
            targets.deferproc,
            targets.deferproc_stack,
            targets.deferprocat,
        ]
        .contains(&Some(f.entry))
        {
            continue;
        }
        if let Some(info) = analyze_func(
            img,
            ix,
            &targets,
            layout,
            &f,
            call_end,
            own_code.as_deref(),
            &mut sites,
        ) {
            functions.push(info);
        }
    }

    let bi = ix.buildinfo.as_ref();
    let settings: BTreeMap<String, String> = bi
        .map(|b| b.settings.iter().cloned().collect())
        .unwrap_or_default();
    let goos = settings
        .get("GOOS")
        .cloned()
        .unwrap_or_else(|| img.format.default_goos().to_owned());
    let binary = BinaryInfo {
        path: path.to_owned(),
        format: img.format.name(),
        goos,
        goarch: img.arch.goarch(),
        go_version: ix.version_string.as_ref().map(|(v, _)| v.clone()),
        go_version_source: ix.version_string.as_ref().map(|(_, src)| src.name()),
        pclntab: ix.pcln.layout.releases(),
        // Mach-O executables keep their dynamic imports in the symbol
        // table even with -s; what stripping removes is Go's own symbols.
        stripped: !img.has_symbols || img.symbol("runtime.main").is_none(),
        pie: img.pie,
        main_module,
        gopath_build,
        build_settings: settings,
        functions: ix.nfunc(),
    };
    Ok(Scan {
        binary,
        sites,
        functions,
    })
}

/// Analyze one function; push its sites and return its summary, or `None`
/// when it holds no defer after all.
#[allow(clippy::too_many_arguments)]
fn analyze_func(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    targets: &Targets,
    layout: (u8, OpenDeferFormat),
    f: &Func,
    call_end: u64,
    own_code: Option<&str>,
    sites: &mut Vec<Site>,
) -> Option<FuncInfo> {
    // Names and packages as people write them (docs/design.md §4.9).
    let raw = ix.name(f);
    let name = &*display_name(raw);
    let code = img.read(f.entry, f.end.checked_sub(f.entry)?)?;
    let package = display_package(raw).into_owned();
    let origin = Origin::of(&package, own_code);
    let lines = ix.lines(f);
    let before = sites.len();
    let mut push = |pc: u64, kind: Kind, index: Option<u8>| {
        let (file, line) = lines.at(pc).unwrap_or(("?", 0));
        sites.push(Site {
            function: name.to_owned(),
            file: file.to_owned(),
            line,
            kind,
            pc,
            package: package.clone(),
            origin,
            index,
        });
    };

    let mut open_coded_defers = None;
    let mut calls_deferrangefunc = false;
    if let Some(info) = ix.open_defer_info(img, f, layout) {
        open_coded_defers = Some(info.closure_offsets.len() as u8);
        let sp = ix.spdelta(f);
        // First store of a non-zero value into each closure slot.
        let mut first: Vec<Option<u64>> = vec![None; info.closure_offsets.len()];
        deferscope_decode::scan(img.arch, code, f.entry, |e| {
            if let Event::StackStore {
                pc,
                offset,
                size: 8,
                zero: false,
            } = e
            {
                let Some(delta) = sp.at(pc) else { return };
                for (k, &off) in info.closure_offsets.iter().enumerate() {
                    if slot_sp_offset(delta, off) == offset && first[k].is_none() {
                        first[k] = Some(pc);
                    }
                }
            }
        });
        for (k, pc) in first.iter().enumerate() {
            if let Some(pc) = pc {
                push(*pc, Kind::OpenCoded, Some(k as u8));
            }
        }
        // Keep sites in address order within the function.
        sites[before..].sort_by_key(|s| s.pc);
    } else {
        let n = (call_end.saturating_sub(f.entry) as usize).min(code.len());
        deferscope_decode::scan(img.arch, &code[..n], f.entry, |e| {
            if let Event::Call { pc, target } = e {
                if let Some(kind) = targets.kind_of_call(target) {
                    push(pc, kind, None);
                } else if Some(target) == targets.deferrangefunc {
                    calls_deferrangefunc = true;
                }
            }
        });
    }
    let nsites = sites.len() - before;
    if nsites == 0 && open_coded_defers.is_none() && !calls_deferrangefunc && f.deferreturn == 0 {
        return None;
    }
    let (file, line) = lines.at(f.entry).unwrap_or(("?", 0));
    Some(FuncInfo {
        name: name.to_owned(),
        entry: f.entry,
        size: f.end - f.entry,
        file: file.to_owned(),
        line,
        package,
        origin,
        sites: nsites,
        open_coded_defers,
        calls_deferrangefunc,
        deferreturn: f.deferreturn,
    })
}

/// The SP offset of a frame slot `off` bytes below `varp`, at an
/// instruction where the pcsp table gives SP delta `delta`.
///
/// `varp - SP = delta - PtrSize` on both architectures: on amd64 the
/// caller's CALL pushed the return address and the prologue saves BP right
/// below it; on arm64 the frame pointer is saved at -8 of the entry SP
/// (runtime traceback: `varp = fp - PtrSize`, less the LR/FP words).
pub fn slot_sp_offset(delta: i32, off: u64) -> i64 {
    delta as i64 - 8 - off as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_offsets_match_spec_examples() {
        // Spec §3.1: go1.22 amd64 openCond, frame 0x48 (delta 0x50),
        // deferBits offset 57 -> 0xf(SP).
        assert_eq!(slot_sp_offset(0x50, 57), 0xf);
        // go1.22 arm64, T=96, offset 57 -> 31(RSP).
        assert_eq!(slot_sp_offset(96, 57), 31);
        // go1.14 amd64 openSimple, SUBQ $0x28 then MOVQ BP (delta 0x28),
        // offset 17 -> 0xf.
        assert_eq!(slot_sp_offset(0x28, 17), 0xf);
    }
}

#[cfg(test)]
mod synth_tests {
    use deferscope_index::synth;
    use deferscope_load::{Arch, Format, Image};

    /// The synthetic image's sites follow from the encodings the spec
    /// describes; the expected pcs and lines are fixed by the builder.
    #[test]
    fn synthetic_image_sites() {
        let data = synth::image();
        let img = Image::from_raw(&data, synth::BASE, Format::Elf, Arch::Amd64);
        let ix = deferscope_index::GoIndex::new(&img).expect("index");
        let r = super::scan("synth", &img, &ix).expect("scan");
        let got: Vec<(u64, u32, &str)> = r
            .sites
            .iter()
            .map(|s| (s.pc, s.line, s.kind.as_str()))
            .collect();
        assert_eq!(got, synth::EXPECTED_SITES.to_vec());
        assert!(r.sites.iter().all(|s| s.file == synth::FILE));
        let g = r.functions.iter().find(|f| f.name == "main.g").unwrap();
        assert_eq!(g.open_coded_defers, Some(1));
    }
}

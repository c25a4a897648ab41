//! What to trace: every defer site of a binary, and three runtime entry
//! points, each with the original bytes of the instruction a breakpoint
//! will replace. In counters mode also every call of `runtime.gopanic`
//! and `runtime.gorecover` (their callers), the hook that reads the
//! counters before an `execve`, and the patch of each point
//! ([`crate::rewrite`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deferscope_analyze::{BinaryInfo, Site};
use deferscope_index::runtime::{Runtime, RuntimeFn};
use deferscope_index::GoIndex;
use deferscope_load::{Arch, Format, Image};

use crate::rewrite::{self, DeferLayout, Fallback, Patch, Planner, Rewrite, Want};
use crate::TraceError;

/// What a breakpoint counts. Runtime probes sit after the function's
/// stack check ([`after_stack_check`]), where each call passes once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A defer site: index into [`Plan::sites`].
    Site(usize),
    /// `runtime.gopanic`: one hit per panic (explicit or from the runtime).
    Panic,
    /// `runtime.gorecover`: one hit per call of `recover()`.
    Recover,
    /// `runtime.recovery`: one hit per panic that a `recover()` stopped.
    Recovered,
    /// Counters mode: one `CALL runtime.gopanic`; its count is the
    /// calling function's share of the panics.
    PanicCall,
    /// Counters mode: one `CALL runtime.gorecover` (a `recover()` call).
    RecoverCall,
    /// Counters mode: one `CALL runtime.deferreturn` of a function with
    /// stack- or heap-allocated sites. Its slot holds the largest number
    /// of the frame's `_defer` records pending at that call (a maximum,
    /// not a count; docs/design.md §3.7).
    Pending,
    /// Counters mode: `syscall.runtime_BeforeExec`, a breakpoint that
    /// counts nothing: the program is about to `execve`, which discards
    /// the counters, so the tracer reads them first.
    Exec,
}

impl Probe {
    /// Counts defers, panics or recovers (all but [`Probe::Exec`] and
    /// [`Probe::Pending`]).
    pub fn counts(self) -> bool {
        !matches!(self, Probe::Exec | Probe::Pending)
    }

    /// Gets a patch in counters mode (all but [`Probe::Exec`]).
    pub fn patched(self) -> bool {
        self != Probe::Exec
    }
}

/// What to plan for.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// Plan the counters mode: patches, call sites, the exec hook.
    pub counters: bool,
}

/// One breakpoint: a link-time address and the instruction found there.
#[derive(Clone, Debug)]
pub struct Point {
    /// Address in the file's own address space (before any PIE load bias).
    pub pc: u64,
    pub probe: Probe,
    /// Bytes from `pc` to at most 15 bytes on (the longest x86 instruction),
    /// from the file.
    pub code: Vec<u8>,
}

/// Everything the tracer needs from the binary, read before the program
/// runs.
#[derive(Debug)]
pub struct Plan {
    /// The file that was scanned.
    pub path: PathBuf,
    pub binary: BinaryInfo,
    /// Every defer site, as `deferscope scan` lists them.
    pub sites: Vec<Site>,
    /// Every breakpoint: one per site, then the runtime entry points that
    /// exist in this binary.
    pub points: Vec<Point>,
    /// The ELF entry point (`e_entry`), to find the load bias of a PIE
    /// from the process's `AT_ENTRY`.
    pub elf_entry: u64,
    /// Device and inode of the file, to recognise it after an `execve`.
    pub file_id: (u64, u64),
    /// Every function as (entry, end, name), in address order: names the
    /// callers of `runtime.gopanic` and `runtime.gorecover`.
    pub funcs: Vec<(u64, u64, String)>,
    /// Planned for the counters mode.
    pub counters: bool,
    /// Counters mode: per point (same order as `points`), its patch or why
    /// it keeps a breakpoint. Empty in breakpoints mode.
    pub patches: Vec<Result<Patch, Fallback>>,
    /// Link-time text range: the first function's entry to the last one's
    /// end.
    pub text: (u64, u64),
    /// Link-time address of the bytes `0f 05` (`syscall`) in the text: the
    /// tracer runs injected system calls there.
    pub syscall_at: Option<u64>,
    /// Time spent planning the patches (finding the call sites, decoding
    /// and checking functions).
    pub patch_plan_time: Duration,
    /// Bytes of code decoded for the patch plan.
    pub patch_plan_bytes: u64,
}

/// The runtime functions whose entries are traced, with what they count.
const RUNTIME_PROBES: [(RuntimeFn, Probe); 3] = [
    (RuntimeFn::Gopanic, Probe::Panic),
    (RuntimeFn::Gorecover, Probe::Recover),
    (RuntimeFn::Recovery, Probe::Recovered),
];

impl Plan {
    /// Scan `path` and plan one breakpoint per defer site and runtime entry.
    ///
    /// Only linux/amd64 ELF binaries can be traced; anything else is an
    /// [`TraceError::Unsupported`] with the reason.
    pub fn new(path: &Path) -> Result<Plan, TraceError> {
        Plan::with(path, PlanOptions::default())
    }

    /// [`Plan::new`], and with `opts.counters` the counters mode's points
    /// and patches.
    pub fn with(path: &Path, opts: PlanOptions) -> Result<Plan, TraceError> {
        deferscope_analyze::with_binary(path, |img, ix| Plan::of(path, img, ix, opts))
    }

    fn of(
        path: &Path,
        img: &Image<'_>,
        ix: &GoIndex<'_>,
        opts: PlanOptions,
    ) -> Result<Plan, TraceError> {
        let shown = path.display().to_string();
        if img.format != Format::Elf || img.arch != Arch::Amd64 {
            return Err(TraceError::Unsupported(format!(
                "{shown}: {} {} binary; deferscope trace runs linux/amd64 ELF programs",
                img.format.name(),
                img.arch.goarch()
            )));
        }
        let rt = Runtime::find(ix);
        let report = deferscope_analyze::run(
            &shown,
            img,
            ix,
            // The report keeps the recorded paths (the traced program's
            // own runtime.Caller names them so).
            &deferscope_analyze::Filter {
                full_paths: true,
                ..Default::default()
            },
            deferscope_analyze::Request::default(),
        )?
        .scan;
        if report.binary.goos != "linux" {
            return Err(TraceError::Unsupported(format!(
                "{shown}: built for {}; deferscope trace runs linux/amd64 programs",
                report.binary.goos
            )));
        }
        let elf_entry = elf_entry(img.data()).ok_or_else(|| {
            TraceError::Other(format!("{shown}: cannot read the ELF entry point"))
        })?;
        let code_at = |pc: u64| -> Option<Vec<u8>> {
            (1..=15u64)
                .rev()
                .find_map(|n| img.read(pc, n))
                .map(<[u8]>::to_vec)
        };
        let mut points = Vec::with_capacity(report.sites.len() + RUNTIME_PROBES.len());
        for (i, s) in report.sites.iter().enumerate() {
            let code = code_at(s.pc).ok_or_else(|| {
                TraceError::Other(format!("{shown}: no code at defer site {:#x}", s.pc))
            })?;
            points.push(Point {
                pc: s.pc,
                probe: Probe::Site(i),
                code,
            });
        }
        for (role, probe) in RUNTIME_PROBES {
            let Some(f) = rt.entry(role).and_then(|e| ix.func_for_pc(e)) else {
                continue;
            };
            let Some(body) = img.read(f.entry, f.end.saturating_sub(f.entry)) else {
                continue;
            };
            let pc = after_stack_check(body, f.entry);
            if points.iter().any(|p| p.pc == pc) {
                continue;
            }
            if let Some(code) = code_at(pc) {
                points.push(Point { pc, probe, code });
            }
        }
        let file_id = file_id(path).map_err(|e| TraceError::Os {
            what: format!("cannot stat {shown}"),
            source: e,
        })?;
        let funcs: Vec<(u64, u64, String)> = ix
            .funcs()
            .map(|f| {
                let name = deferscope_index::names::display_name(ix.name(&f));
                (f.entry, f.end, name.into_owned())
            })
            .collect();
        let text = (
            funcs.first().map_or(0, |f| f.0),
            funcs.iter().map(|f| f.1).max().unwrap_or(0),
        );
        let text_bytes = img.read(text.0, text.1.saturating_sub(text.0));
        let syscall_at = text_bytes
            .and_then(|t| memchr::memmem::find(t, b"\x0f\x05"))
            .map(|off| text.0 + off as u64);
        let mut plan = Plan {
            funcs,
            path: path.to_owned(),
            binary: report.binary,
            sites: report.sites,
            points,
            elf_entry,
            file_id,
            counters: opts.counters,
            patches: Vec::new(),
            text,
            syscall_at,
            patch_plan_time: Duration::ZERO,
            patch_plan_bytes: 0,
        };
        if opts.counters {
            plan.plan_counters(img, &rt, text_bytes, &code_at);
        }
        Ok(plan)
    }

    /// The counters mode's part: the calls of `gopanic` / `gorecover` and
    /// the exec hook as more points, and every point's patch.
    fn plan_counters(
        &mut self,
        img: &Image<'_>,
        rt: &Runtime,
        text_bytes: Option<&[u8]>,
        code_at: &dyn Fn(u64) -> Option<Vec<u8>>,
    ) {
        let t0 = Instant::now();
        let read = |a: u64, n: u64| img.read(a, n);
        let funcs = std::mem::take(&mut self.funcs);
        let mut planner = Planner::new(&read, &funcs);
        let called: Vec<(u64, Probe)> = [RuntimeFn::Gopanic, RuntimeFn::Gorecover]
            .into_iter()
            .zip([Probe::PanicCall, Probe::RecoverCall])
            .filter_map(|(f, p)| Some((rt.entry(f)?, p)))
            .collect();
        if let Some(t) = text_bytes {
            let targets: Vec<u64> = called.iter().map(|c| c.0).collect();
            for (pc, k) in rewrite::find_calls(t, self.text.0, &targets) {
                if planner.is_instruction(pc) {
                    if let Some(code) = code_at(pc) {
                        self.points.push(Point {
                            pc,
                            probe: called[k].1,
                            code,
                        });
                    }
                }
            }
        }
        let layout = self.defer_layout();
        if let (Some(t), Some(dr), Some(_)) = (text_bytes, rt.entry(RuntimeFn::Deferreturn), layout)
        {
            let rangefunc = rt.entry(RuntimeFn::Deferrangefunc);
            for pc in self.pending_calls(t, dr, rangefunc, &funcs) {
                if planner.is_instruction(pc) {
                    if let Some(code) = code_at(pc) {
                        self.points.push(Point {
                            pc,
                            probe: Probe::Pending,
                            code,
                        });
                    }
                }
            }
        }
        if let Some(entry) = rt.entry(RuntimeFn::BeforeExec) {
            if let Some(code) = code_at(entry) {
                self.points.push(Point {
                    pc: entry,
                    probe: Probe::Exec,
                    code,
                });
            }
        }
        let sites = &self.sites;
        self.patches = self
            .points
            .iter()
            .map(|p| {
                let want = match p.probe {
                    Probe::Site(i) => match sites[i].kind {
                        deferscope_analyze::Kind::OpenCoded => Want::Relocate,
                        _ => Want::Call,
                    },
                    Probe::Panic | Probe::Recover | Probe::Recovered => Want::Relocate,
                    Probe::PanicCall | Probe::RecoverCall | Probe::Pending => Want::Call,
                    // A hook, not a count: it stays a breakpoint.
                    Probe::Exec => return Err(Fallback::NotDirectCall),
                };
                let patch = planner.plan(p.pc, want)?;
                match (p.probe, patch.rewrite, layout) {
                    (Probe::Pending, Rewrite::Call { target }, Some(layout)) => Ok(Patch {
                        rewrite: Rewrite::Pending { target, layout },
                        ..patch
                    }),
                    _ => Ok(patch),
                }
            })
            .collect();
        self.patch_plan_bytes = planner.decoded_bytes;
        drop(planner);
        self.funcs = funcs;
        self.patch_plan_time = t0.elapsed();
    }

    /// The `_defer` layout of the binary's Go version, if known
    /// ([`DeferLayout::for_minor`]).
    pub fn defer_layout(&self) -> Option<DeferLayout> {
        let v = self.binary.go_version.as_deref()?;
        let minor = v
            .strip_prefix("go1.")?
            .split(|c: char| !c.is_ascii_digit())
            .next()?;
        DeferLayout::for_minor(minor.parse().ok()?)
    }

    /// Every `CALL deferreturn` (link-time) in a function that has a
    /// stack- or heap-allocated site or calls `deferrangefunc` (its
    /// range-over-func bodies' records pend on its frame): the returns of
    /// the frames whose records can pend. (An open-coded function's one
    /// call is reached only after a recover.)
    fn pending_calls(
        &self,
        text: &[u8],
        deferreturn: u64,
        deferrangefunc: Option<u64>,
        funcs: &[(u64, u64, String)],
    ) -> Vec<u64> {
        let func_of = |pc: u64| -> Option<u64> {
            let i = funcs.partition_point(|f| f.0 <= pc).checked_sub(1)?;
            (pc < funcs[i].1).then_some(funcs[i].0)
        };
        let mut with_records: Vec<u64> = self
            .sites
            .iter()
            .filter(|s| s.kind != deferscope_analyze::Kind::OpenCoded)
            .filter_map(|s| func_of(s.pc))
            .collect();
        let targets: Vec<u64> = std::iter::once(deferreturn).chain(deferrangefunc).collect();
        let calls = rewrite::find_calls(text, self.text.0, &targets);
        with_records.extend(
            calls
                .iter()
                .filter(|c| c.1 == 1)
                .filter_map(|c| func_of(c.0)),
        );
        with_records.sort_unstable();
        with_records.dedup();
        calls
            .into_iter()
            .filter(|c| c.1 == 0)
            .map(|(pc, _)| pc)
            .filter(|&pc| func_of(pc).is_some_and(|f| with_records.binary_search(&f).is_ok()))
            .collect()
    }

    /// The function containing link-time address `pc`.
    pub fn func_at(&self, pc: u64) -> Option<&str> {
        let i = self.funcs.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        let (entry, end, name) = &self.funcs[i];
        (*entry <= pc && pc < *end).then_some(name.as_str())
    }

    /// Whether the binary has a breakpoint for `probe` (older runtimes may
    /// lack one of the entry points).
    pub fn has(&self, probe: Probe) -> bool {
        self.points.iter().any(|p| p.probe == probe)
    }
}

/// Where one call of a function is counted exactly once: the first
/// instruction after its stack-bound check, or its entry if it has none.
///
/// A Go function that needs stack space starts by comparing SP with
/// `g.stackguard0` and branching to a stub at its end that calls
/// `runtime.morestack` and then jumps back to the entry. Growing the stack,
/// or a preemption request (which poisons `stackguard0`), therefore runs
/// the entry again for the same call: a breakpoint there would count some
/// calls twice. The instruction after the last conditional branch to such a
/// stub (one that reaches `JMP entry`) runs once per call.
pub fn after_stack_check(body: &[u8], entry: u64) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, FlowControl};
    let end = entry + body.len() as u64;
    let goes_to_morestack = |target: u64| -> bool {
        if target <= entry || target >= end {
            return false;
        }
        let off = (target - entry) as usize;
        let mut dec = Decoder::with_ip(64, &body[off..], target, DecoderOptions::NONE);
        for ins in dec.iter().take(32) {
            match ins.flow_control() {
                FlowControl::UnconditionalBranch => return ins.near_branch_target() == entry,
                FlowControl::Return | FlowControl::Exception => return false,
                _ => {}
            }
        }
        false
    };
    let mut pc = entry;
    let mut dec = Decoder::with_ip(64, body, entry, DecoderOptions::NONE);
    // The check is at most a handful of instructions (LEAQ/MOVQ/SUBQ, JCS,
    // CMPQ, JLS for large frames).
    for ins in dec.iter().take(8) {
        match ins.flow_control() {
            FlowControl::ConditionalBranch => {
                if goes_to_morestack(ins.near_branch_target()) {
                    pc = ins.next_ip();
                }
            }
            FlowControl::Next => {}
            _ => break,
        }
    }
    pc
}

/// `e_entry` of a 64-bit little-endian ELF file.
fn elf_entry(b: &[u8]) -> Option<u64> {
    if b.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    Some(u64::from_le_bytes(b.get(0x18..0x20)?.try_into().ok()?))
}

#[cfg(unix)]
pub(crate) fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(crate) fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|_| (0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_go_after_the_stack_check() {
        // go1.21 runtime.gopanic: LEAQ -0x28(SP), R12; CMPQ R12, 0x10(R14);
        // JBE stub; PUSHQ BP; ... stub: MOVQ AX, 8(SP); CALL morestack;
        // MOVQ 8(SP), AX; JMP entry.
        let entry = 0x42f0e0u64;
        let mut b = vec![0x4c, 0x8d, 0x64, 0x24, 0xd8, 0x4d, 0x3b, 0x66, 0x10];
        let jbe_at = b.len();
        b.extend_from_slice(&[0x0f, 0x86, 0, 0, 0, 0]); // JBE rel32 (patched below)
        let body_at = b.len();
        b.extend_from_slice(&[0x55, 0x48, 0x89, 0xe5, 0xc3]); // PUSHQ BP; MOVQ SP, BP; RET
        let stub = b.len();
        b.extend_from_slice(&[0x48, 0x89, 0x44, 0x24, 0x08]); // MOVQ AX, 8(SP)
        b.extend_from_slice(&[0xe8, 0, 0, 0, 0]); // CALL
        b.extend_from_slice(&[0x48, 0x8b, 0x44, 0x24, 0x08]); // MOVQ 8(SP), AX
        let jmp_at = b.len();
        b.extend_from_slice(&[0xe9, 0, 0, 0, 0]); // JMP entry
        let rel = (stub as i32) - (body_at as i32);
        b[jbe_at + 2..jbe_at + 6].copy_from_slice(&rel.to_le_bytes());
        let back = -((jmp_at + 5) as i32);
        b[jmp_at + 1..jmp_at + 5].copy_from_slice(&back.to_le_bytes());
        assert_eq!(after_stack_check(&b, entry), entry + body_at as u64);
        // No check (go1.19 runtime.gorecover: MOVQ 0x20(R14), CX; TESTQ CX, CX;
        // JE ret ...): the entry.
        let g = [
            0x49, 0x8b, 0x4e, 0x20, 0x48, 0x85, 0xc9, 0x74, 0x01, 0xc3, 0xc3,
        ];
        assert_eq!(after_stack_check(&g, 0x1000), 0x1000);
    }

    #[test]
    fn elf_entry_reads_the_header() {
        let mut h = vec![0u8; 64];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[0x18..0x20].copy_from_slice(&0x46_2f20u64.to_le_bytes());
        assert_eq!(elf_entry(&h), Some(0x46_2f20));
        h[4] = 1; // 32-bit
        assert_eq!(elf_entry(&h), None);
        assert_eq!(elf_entry(b"MZ"), None);
    }
}

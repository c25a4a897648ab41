//! Sizes and costs: what a function's defers take in frame and code bytes,
//! and which small functions are not inlined while they defer.
//!
//! - `_defer` records of stack-allocated sites: 48 bytes from go1.22, 72
//!   before (design.md §3.4).
//! - An open-coded function's frame: 8 bytes per closure slot plus the
//!   deferBits byte; the code of its exit sequences: per exit and defer,
//!   from the store of the cleared deferBits to the end of the deferred
//!   call ([`exit_code_bytes`]).
//! - Each site's time comes from the cost table
//!   ([`deferscope_model::cost::CostTable::ns`]; a heap closure has its
//!   own figure), set where the site is explained.
//! - Inlining candidates: functions under [`INLINE_MAX_BYTES`] with
//!   defers, with their direct callers counted by one byte scan of the
//!   whole text. The defer keeps each from being inlined (design.md §5.4);
//!   whether it alone does (the inlining budget, `//go:noinline`) the binary
//!   cannot tell, and the candidates make no such claim.

use std::collections::HashMap;

use deferscope_decode::Event;
use deferscope_index::{Func, GoIndex};
use deferscope_load::{Arch, Image};
use deferscope_model::explain::{FuncExplain, InlineCandidate};
use deferscope_model::{Kind, Scan, Site};

use super::context::Cx;

/// Functions smaller than this many bytes are inlining candidates.
const INLINE_MAX_BYTES: u64 = 200;

/// Frame bytes of the `_defer` records of `sites`' stack-allocated ones.
pub(super) fn defer_record_bytes(go122: bool, sites: &[&Site]) -> u64 {
    let n = sites
        .iter()
        .filter(|s| s.kind == Kind::StackAllocated)
        .count();
    n as u64 * if go122 { 48 } else { 72 }
}

/// Frame bytes of `n` open-coded closure slots and the deferBits byte.
pub(super) fn open_slot_bytes(n: u8) -> u64 {
    8 * n as u64 + 1
}

/// Code bytes of an open-coded function's exit sequences (ssagen's
/// openDeferExit, design.md §2.1 and §3.1): at every exit, for each
/// pending defer, the store of the cleared deferBits, then the call of
/// the deferred function, through its closure
/// (`MOVB $0x0, 0xf(SP); MOVQ 0x28(SP), DX; MOVQ 0(DX), CX; CALL CX`) or
/// directly when the closure is a static funcval (`MOVB $0x0, 0x7(SP);
/// CALL main.f.deferwrap1(SB)`). A store to deferBits is the prologue's
/// when it is the first, a registration when it follows a site (the
/// store of the defer's closure into its slot) at the site's line, and an
/// exit's otherwise (the compiler drops the registration of a defer right
/// before an exit: the exit's store then follows the site, at the line of
/// the return). A piece runs from an exit's store, else from a load from
/// a slot (only exits read them), to the end of the next call; the test
/// of a deferBits bit the compiler could not fold, before the store, is
/// not counted.
///
/// The exit code has the line of the return, not of the defer statement
/// (counting the bytes at the defer lines gave 0 for most functions).
pub(super) fn exit_code_bytes(
    cx: &Cx<'_, '_>,
    f: &Func,
    code: &[u8],
    events: &[Event],
    sites: &[&Site],
) -> u64 {
    let layout = cx.ix.open_defer_layout(cx.runtime);
    let Some(info) = cx.ix.open_defer_info(cx.img, f, layout) else {
        return 0;
    };
    let sp = cx.ix.spdelta(f);
    let lines = cx.ix.lines(f);
    let at = |pc: u64, off: u64| sp.at(pc).map(|d| crate::slot_sp_offset(d, off));
    let (mut bytes, mut zeroed) = (0, false);
    // The line of a site since the last deferBits store; the start of
    // the exit piece since the last call.
    let (mut site_line, mut start): (Option<u32>, Option<u64>) = (None, None);
    for e in events {
        match *e {
            Event::StackStore { pc, .. } if sites.iter().any(|s| s.pc == pc) => {
                site_line = sites.iter().find(|s| s.pc == pc).map(|s| s.line);
            }
            Event::StackStore {
                pc,
                offset,
                size: 1,
                ..
            } if at(pc, info.deferbits_offset) == Some(offset) => {
                let line = lines.at(pc).map(|(_, l)| l);
                let registers = site_line.is_some() && site_line == line;
                if zeroed && !registers {
                    start.get_or_insert(pc);
                }
                (zeroed, site_line) = (true, None);
            }
            Event::Load {
                pc, base, offset, ..
            } if base == deferscope_decode::SP
                && info
                    .closure_offsets
                    .iter()
                    .any(|&o| at(pc, o) == Some(offset)) =>
            {
                start.get_or_insert(pc);
            }
            Event::Call { pc, .. } | Event::CallIndirect { pc } => {
                if let Some(from) = start.take() {
                    let direct = matches!(e, Event::Call { .. });
                    bytes += pc + call_len(cx.img.arch, code, pc - f.entry, direct) - from;
                }
            }
            Event::Ret { .. } | Event::Halt { .. } => start = None,
            _ => {}
        }
    }
    bytes
}

/// The length of the call at `off` in `code`: 4 on arm64 (`BL`, `BLR`);
/// on amd64 5 for `CALL rel32`, and for an indirect call `FF /2` with a
/// register operand, 2 bytes, 3 with a REX prefix (the compiler calls a
/// deferred closure through a register).
fn call_len(arch: Arch, code: &[u8], off: u64, direct: bool) -> u64 {
    match arch {
        Arch::Arm64 => 4,
        Arch::Amd64 if direct => 5,
        Arch::Amd64 => match code.get(off as usize) {
            Some(0x40..=0x4f) => 3,
            _ => 2,
        },
    }
}

/// Small functions with defers, by direct callers (most first), each
/// with callers; every small function's `direct_callers` is set in
/// `functions` (parallel to `report.functions`).
pub(super) fn inline_candidates(
    report: &Scan,
    counts: &HashMap<u64, usize>,
    functions: &mut [FuncExplain],
) -> Vec<InlineCandidate> {
    let small: Vec<(u64, usize)> = small_functions(report).collect();
    let mut out = Vec::new();
    for &(entry, i) in &small {
        let n = counts.get(&entry).copied().unwrap_or(0);
        functions[i].direct_callers = Some(n);
        if n > 0 {
            out.push(InlineCandidate {
                function: report.functions[i].name.clone(),
                size: report.functions[i].size,
                direct_callers: n,
            });
        }
    }
    out.sort_by(|a, b| {
        b.direct_callers
            .cmp(&a.direct_callers)
            .then(a.function.cmp(&b.function))
    });
    out
}

/// The functions small enough that the inliner's budget is worth a
/// word: (entry, index in `report.functions`).
fn small_functions(report: &Scan) -> impl Iterator<Item = (u64, usize)> + '_ {
    report
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.size < INLINE_MAX_BYTES && f.sites > 0)
        .map(|(i, f)| (f.entry, i))
}

/// The direct calls to each function [`inline_candidates`] considers
/// (a scan of the whole text: on a thread of its own, beside the explain
/// pass).
pub(super) fn call_counts(img: &Image<'_>, ix: &GoIndex<'_>, report: &Scan) -> HashMap<u64, usize> {
    direct_call_counts(img, ix, small_functions(report).map(|(e, _)| e).collect())
}

/// Direct calls (`CALL rel32` / `BL`) to each of `targets` in the text, by
/// a byte scan (the patterns [`deferscope_decode::call_candidates`] looks
/// for; it suits a few targets, this many).
fn direct_call_counts(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    mut targets: Vec<u64>,
) -> HashMap<u64, usize> {
    let mut out = HashMap::new();
    targets.sort_unstable();
    if targets.is_empty() {
        return out;
    }
    let Some((base, end)) = ix.text_range() else {
        return out;
    };
    let Some(text) = img.read(base, end.saturating_sub(base)) else {
        return out;
    };
    // A bit per 16 bytes from the first target to the last, set where a
    // target is: most calls go elsewhere, and a bit test settles them.
    let (lo, hi) = (targets[0], targets[targets.len() - 1]);
    let mut bits = vec![0u64; (((hi - lo) >> 4) / 64 + 1) as usize];
    for &t in &targets {
        let k = (t - lo) >> 4;
        bits[(k / 64) as usize] |= 1 << (k % 64);
    }
    let mut hit = |t: u64| {
        if t < lo || t > hi {
            return;
        }
        let k = (t - lo) >> 4;
        if bits[(k / 64) as usize] & (1 << (k % 64)) != 0 && targets.binary_search(&t).is_ok() {
            *out.entry(t).or_insert(0) += 1;
        }
    };
    match img.arch {
        Arch::Amd64 => {
            for i in memchr::memchr_iter(0xe8, text) {
                let Some(r) = text.get(i + 1..i + 5) else {
                    break;
                };
                let rel = i32::from_le_bytes([r[0], r[1], r[2], r[3]]) as i64;
                hit(((base + i as u64) as i64).wrapping_add(5).wrapping_add(rel) as u64);
            }
        }
        Arch::Arm64 => {
            for (i, c) in text.chunks_exact(4).enumerate() {
                if c[3] >> 2 != 0b100101 {
                    continue;
                }
                let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let off = (((w & 0x03ff_ffff) as i64) << 38 >> 38) * 4;
                hit((base + 4 * i as u64).wrapping_add(off as u64));
            }
        }
    }
    out
}

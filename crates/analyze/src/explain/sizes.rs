//! Sizes and costs: what a function's defers take in frame and code bytes,
//! and which small functions cannot be inlined because they defer.
//!
//! - `_defer` records of stack-allocated sites: 48 bytes from go1.22, 72
//!   before (design.md §3.4).
//! - An open-coded function's frame: 8 bytes per closure slot plus the
//!   deferBits byte; the code of its exit sequences, estimated as the
//!   bytes at the defer statements' lines outside their recording
//!   instructions.
//! - Each site's time comes from the cost table
//!   ([`deferscope_model::cost::CostTable::ns`]; a heap closure has its
//!   own figure), set where the site is explained.
//! - Inlining candidates: functions under [`INLINE_MAX_BYTES`] with
//!   defers, with their direct callers counted by one byte scan of the
//!   whole text.

use std::collections::HashMap;

use deferscope_index::{Func, GoIndex};
use deferscope_load::{Arch, Image};
use deferscope_model::explain::{FuncExplain, InlineCandidate};
use deferscope_model::{Kind, Scan, Site};

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

/// Code bytes of an open-coded function's exit sequences: the code at the
/// defer lines outside the recording instructions' runs.
pub(super) fn exit_code_bytes(ix: &GoIndex<'_>, f: &Func, sites: &[&Site]) -> u64 {
    let lines = ix.lines(f);
    let mut bytes = 0;
    for &(start, end, line) in lines.line_runs() {
        let at_defer = sites.iter().any(|s| {
            s.line as i32 == line && lines.at(start).is_some_and(|(file, _)| file == s.file)
        });
        let recording = sites.iter().any(|s| s.pc >= start && s.pc < end);
        if at_defer && !recording {
            bytes += end - start;
        }
    }
    bytes
}

/// Small functions with defers, by direct callers (most first), each
/// with callers; every small function's `direct_callers` is set in
/// `functions` (parallel to `report.functions`).
pub(super) fn inline_candidates(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    report: &Scan,
    functions: &mut [FuncExplain],
) -> Vec<InlineCandidate> {
    let small: Vec<(u64, usize)> = report
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.size < INLINE_MAX_BYTES && f.sites > 0)
        .map(|(i, f)| (f.entry, i))
        .collect();
    let counts = direct_call_counts(img, ix, small.iter().map(|&(e, _)| e).collect());
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
    let mut hit = |t: u64| {
        if targets.binary_search(&t).is_ok() {
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

//! Truncation and corruption sweep: a fixture binary cut at many points and
//! damaged by bit flips in its pclntab and text, through scan, the explain
//! pass and the annotated disassembly (the functions with defers on every
//! input, the whole binary on every 16th). Every input must end, within
//! a time bound, with either a result or an error — never a panic or a hang.
//!
//! The pipeline runs in-process on the damaged bytes (no temporary files),
//! one input at a time on a worker thread, so a hang shows up as a timeout
//! naming the input.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries};

/// Generous per-input bound: a healthy scan of a fixture takes milliseconds.
const PER_INPUT: Duration = Duration::from_secs(5);

/// Run the whole pipeline on `data`; Ok(number of sites) or Err(message).
/// `whole`: list every function, not only those with defers.
fn pipeline(data: &[u8], whole: bool) -> Result<usize, String> {
    let img = deferscope_load::Image::parse(Path::new("input"), data).map_err(|e| e.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|e| e.to_string())?;
    let r = deferscope_analyze::scan("input", &img, &ix).map_err(|e| e.to_string())?;
    // The explain pass reads the same damaged bytes (CFG, targets, sizes).
    let cost = deferscope_analyze::cost::CostTable::published();
    let x = deferscope_analyze::explain::explain(&img, &ix, &r, &cost);
    // The disassembler reads the same damaged text, symbols and funcdata.
    let opts = deferscope_disasm::Options {
        filter: deferscope_disasm::Filter {
            defer_only: !whole,
            ..Default::default()
        },
        ..Default::default()
    };
    deferscope_disasm::write_listing(&img, &ix, Some(&r), &opts, &mut std::io::sink())
        .map_err(|e| e.to_string())?;
    Ok(r.sites.len() + x.sites.len())
}

/// Run every input; fail on the first panic or timeout.
fn run_all(inputs: Vec<(String, Vec<u8>)>) -> Result<String, Failed> {
    let n = inputs.len();
    let (tx, rx) = mpsc::channel::<(String, std::thread::Result<Result<usize, String>>)>();
    let worker = std::thread::spawn(move || {
        for (i, (name, data)) in inputs.into_iter().enumerate() {
            let r = std::panic::catch_unwind(|| pipeline(&data, i % 16 == 0));
            if tx.send((name, r)).is_err() {
                return;
            }
        }
    });
    let (mut ok, mut err) = (0, 0);
    let start = Instant::now();
    for _ in 0..n {
        match rx.recv_timeout(PER_INPUT) {
            Ok((_, Ok(Ok(_)))) => ok += 1,
            Ok((_, Ok(Err(msg)))) => {
                if msg.contains('\n') {
                    return Err(format!("multi-line error: {msg:?}").into());
                }
                err += 1
            }
            Ok((name, Err(payload))) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(format!("panic on input {name}: {msg}").into());
            }
            Err(_) => {
                return Err(
                    format!("no result within {PER_INPUT:?} (after {ok} ok, {err} errors)").into(),
                )
            }
        }
    }
    let _ = worker.join();
    Ok(format!(
        "{n} inputs: {ok} results, {err} errors in {:?}",
        start.elapsed()
    ))
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// File ranges of the sections named `names`, from the binary itself.
fn section_ranges(data: &[u8], pred: impl Fn(&str) -> bool) -> Vec<(usize, usize)> {
    let Ok(img) = deferscope_load::Image::parse(Path::new("x"), data) else {
        return Vec::new();
    };
    img.sections()
        .iter()
        .filter(|s| pred(&s.name))
        .filter_map(|s| s.file_range.map(|(o, n)| (o as usize, n as usize)))
        .collect()
}

fn fixture_bins() -> Vec<(String, Vec<u8>)> {
    entries(&committed_root())
        .into_iter()
        .filter(|e| !e.meta.stripped)
        .filter_map(|e| Some((e.name(), std::fs::read(e.bin()).ok()?)))
        .collect()
}

fn truncations(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut cuts: Vec<usize> = (0..data.len()).step_by(64 << 10).collect();
    for (off, size) in section_ranges(data, |_| true) {
        for c in [
            off,
            off + 1,
            off + size / 2,
            off + size.saturating_sub(1),
            off + size,
        ] {
            cuts.push(c);
        }
    }
    cuts.retain(|&c| c < data.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.into_iter()
        .map(|c| (format!("cut at {c:#x}"), data[..c].to_vec()))
        .collect()
}

fn bitflips(data: &[u8], seed: u64, count: usize) -> Vec<(String, Vec<u8>)> {
    let targets = section_ranges(data, |n| {
        n.contains("pclntab")
            || n == ".text"
            || n == "__text"
            || n.contains("rodata")
            || n.contains("buildinfo")
    });
    if targets.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng(seed);
    (0..count)
        .map(|i| {
            let mut d = data.to_vec();
            let (off, size) = targets[rng.below(targets.len())];
            // A burst of 1 to 16 flips near one place: damage that a
            // parser meets as one corrupt field or record.
            let at = off + rng.below(size.max(1));
            let flips = 1 + rng.below(16);
            for _ in 0..flips {
                let p = (at + rng.below(256)).min(d.len() - 1);
                d[p] ^= 1 << rng.below(8);
            }
            (format!("flip #{i} near {at:#x}"), d)
        })
        .collect()
}

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("sweep::truncations", || {
            let bins = fixture_bins();
            if bins.is_empty() {
                return Err("no committed fixtures".into());
            }
            let mut notes = Vec::new();
            for (name, data) in bins {
                notes.push(format!("{name}: {}", run_all(truncations(&data))?));
            }
            let _ = notes;
            Ok(())
        }),
        Trial::test("sweep::bitflips", || {
            let bins = fixture_bins();
            if bins.is_empty() {
                return Err("no committed fixtures".into());
            }
            for (i, (_, data)) in bins.into_iter().enumerate() {
                run_all(bitflips(&data, 0x5eed + i as u64, 150))?;
            }
            Ok(())
        }),
    ]
}

//! `deferscope disasm` against its oracles.
//!
//! - `disasm::objdump::*`: on every unstripped fixture binary whose Go
//!   toolchain is present, at least 99.9% of the instruction lines
//!   `go tool objdump` prints (from that binary's own toolchain) are
//!   byte-identical in our listing (same pc, file:line and text). The
//!   percentage is computed from objdump's lines; lines where objdump has
//!   no decoding (`?`, or a pc inside one of our instructions after it lost
//!   sync, or a VEX instruction read as a legacy opcode) are left out.
//! - `disasm::twin::*`: a stripped binary's listing equals its unstripped
//!   twin's listed without the symbol table.
//! - `disasm::annotations::*`: every defer site the classifier finds is
//!   marked at its pc, and every open-coded function has a marked exit.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, Entry};

fn listing(bin: &Path, opts: &deferscope_disasm::Options) -> Result<String, String> {
    let m = deferscope_load::Mapped::open(bin).map_err(|e| e.to_string())?;
    let img = m.image().map_err(|e| e.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|e| e.to_string())?;
    let report = deferscope_analyze::scan(&bin.display().to_string(), &img, &ix)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    deferscope_disasm::write_listing(&img, &ix, Some(&report), opts, &mut out)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn plain() -> deferscope_disasm::Options {
    deferscope_disasm::Options {
        annotate: false,
        ..Default::default()
    }
}

/// pc -> (file:line, instruction, bytes, comment) of objdump-format text.
fn parse(text: &str) -> HashMap<u64, (String, String, String, String)> {
    let mut out = HashMap::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("  ") else {
            continue;
        };
        let cells: Vec<&str> = rest.split('\t').filter(|c| !c.is_empty()).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(pc) = cells[1]
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        else {
            continue;
        };
        let comment = cells.get(4).copied().unwrap_or("").to_owned();
        out.insert(
            pc,
            (
                cells[0].to_owned(),
                cells[3].to_owned(),
                cells[2].replace(' ', ""),
                comment,
            ),
        );
    }
    out
}

fn objdump(e: &Entry) -> Option<Result<String, String>> {
    let go = e.meta.goroot.join("bin/go");
    if !go.exists() {
        return None;
    }
    let out = Command::new(&go)
        .args(["tool", "objdump"])
        .arg(e.bin())
        .env("GOROOT", &e.meta.goroot)
        .env("GOTOOLCHAIN", "local")
        .output();
    Some(match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "go tool objdump: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(x) => Err(format!("go tool objdump: {x}")),
    })
}

/// objdump's legacy reading of a VEX/EVEX-prefixed instruction it does not
/// know (before go1.27).
fn misdecoded_vex(hex: &str, ins: &str) -> bool {
    let mut b = hex;
    while b.len() >= 2
        && [
            "66", "f2", "f3", "2e", "3e", "26", "36", "64", "65", "67", "f0",
        ]
        .contains(&&b[..2])
    {
        b = &b[2..];
    }
    b.len() >= 2 && ["c4", "c5", "62"].contains(&&b[..2]) && !ins.starts_with('V') && ins != "?"
}

fn check_objdump(e: &Entry) -> Result<String, String> {
    let od = match objdump(e) {
        None => return Ok(format!("no toolchain at {}", e.meta.goroot.display())),
        Some(r) => r?,
    };
    let od = parse(&od);
    let ours = parse(&listing(&e.bin(), &plain())?);
    let mut covered = HashSet::new();
    for (pc, (_, _, hex, _)) in &ours {
        for k in 1..(hex.len() / 2) as u64 {
            covered.insert(pc + k);
        }
    }
    let (mut total, mut same) = (0usize, 0usize);
    let mut diffs = Vec::new();
    for (pc, (pos, ins, hex, _)) in &od {
        let ours_at = ours.get(pc);
        let both_unknown = ins == "?" && ours_at.is_some_and(|o| o.1 == "?");
        if !both_unknown
            && (ins == "?"
                || (ours_at.is_none() && covered.contains(pc))
                || misdecoded_vex(hex, ins))
        {
            continue;
        }
        total += 1;
        match ours_at {
            Some((p, i, _, _)) if p == pos && i == ins => same += 1,
            other => diffs.push(format!(
                "{pc:#x} objdump {pos} {ins:?} ours {:?}",
                other.map(|o| (&o.0, &o.1))
            )),
        }
    }
    if total == 0 {
        return Err("objdump printed no instructions".into());
    }
    let pct = 100.0 * same as f64 / total as f64;
    diffs.sort();
    if pct >= 99.9 {
        Ok(format!("{pct:.3}% of {total}"))
    } else {
        Err(format!(
            "{pct:.3}% identical ({same}/{total}); first differences:\n{}",
            diffs
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

fn check_twin(e: &Entry) -> Result<(), String> {
    let t = e.twin().ok_or("twin entry not found")?;
    let a = listing(&e.bin(), &plain())?;
    let b = listing(
        &t.bin(),
        &deferscope_disasm::Options {
            use_symtab: false,
            ..plain()
        },
    )?;
    if a == b {
        return Ok(());
    }
    let first = a
        .lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("stripped: {x:?}\ntwin:     {y:?}"))
        .unwrap_or_else(|| format!("lengths {} vs {}", a.len(), b.len()));
    Err(format!("listings differ; first difference:\n{first}"))
}

fn check_annotations(e: &Entry) -> Result<String, String> {
    let r = crate::fixtures::scan(&e.bin())?;
    let text = listing(&e.bin(), &deferscope_disasm::Options::default())?;
    let lines = parse(&text);
    let mut missing = Vec::new();
    for s in &r.sites {
        match lines.get(&s.pc) {
            Some((_, _, _, c)) if c.starts_with("// ") => {}
            _ => missing.push(format!("{} {}:{} {:#x}", s.function, s.file, s.line, s.pc)),
        }
    }
    let mut no_exit = Vec::new();
    for f in r
        .functions
        .iter()
        .filter(|f| f.open_coded_defers.is_some() && f.sites > 0)
    {
        let exit = lines.iter().any(|(pc, (_, _, _, c))| {
            *pc >= f.entry
                && *pc < f.entry + f.size
                && (c.contains("run deferred call") || c.contains("about to run"))
        });
        if !exit {
            no_exit.push(f.name.clone());
        }
    }
    if missing.is_empty() && no_exit.is_empty() {
        Ok(format!("{} sites", r.sites.len()))
    } else {
        Err(format!(
            "{} sites without a mark: {:?}\n{} open-coded functions without a marked exit: {:?}",
            missing.len(),
            missing.iter().take(10).collect::<Vec<_>>(),
            no_exit.len(),
            no_exit.iter().take(10).collect::<Vec<_>>()
        ))
    }
}

pub fn trials() -> Vec<Trial> {
    // The objdump comparison of the whole matrix runs in
    // scripts/disasm-vs-objdump.py (CI: scripts/test-all.sh), which caches
    // objdump's text and checks the per-version figures; here it runs on
    // the committed fixtures, and on the matrix with
    // DEFERSCOPE_DISASM_ORACLE=1. The annotation trials (the older
    // version of disasm_annotate's checks) run with that switch only.
    let slow = std::env::var_os("DEFERSCOPE_DISASM_ORACLE").is_some();
    let mut roots: Vec<(PathBuf, &str)> = vec![(committed_root(), "committed")];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push((PathBuf::from(m), "matrix"));
        }
    }
    let mut out = Vec::new();
    for (root, tag) in roots {
        for e in entries(&root) {
            let name = e.name();
            if e.meta.stripped {
                if e.meta.twin.is_some() {
                    let e2 = e.clone();
                    out.push(Trial::test(
                        format!("disasm::twin::{tag}::{name}"),
                        move || check_twin(&e2).map_err(Failed::from),
                    ));
                }
            } else if tag == "committed" || slow {
                let e2 = e.clone();
                out.push(Trial::test(
                    format!("disasm::objdump::{tag}::{name}"),
                    move || check_objdump(&e2).map(drop).map_err(Failed::from),
                ));
            }
            if slow {
                out.push(Trial::test(
                    format!("disasm::annotations::{tag}::{name}"),
                    move || check_annotations(&e).map(drop).map_err(Failed::from),
                ));
            }
        }
    }
    out
}

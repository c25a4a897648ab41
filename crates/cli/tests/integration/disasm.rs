//! `deferscope disasm` against its oracles.
//!
//! - `disasm::objdump::*`: on every unstripped fixture binary whose Go
//!   toolchain is present, at least 99.9% of the instruction lines
//!   `go tool objdump` prints (from that binary's own toolchain) are
//!   byte-identical in our listing (same pc, file:line and text). The
//!   percentage is computed from objdump's lines; lines where objdump has
//!   no decoding (`?`, or a pc inside one of our instructions after it lost
//!   sync, or a VEX instruction read as a legacy opcode) are left out.
//!   Lines where ours names a data address objdump leaves as a number
//!   (arm64 ADRP pairs, go1.27 EVEX RIP-relative operands) or has a
//!   file:line where objdump found no function are counted as better and
//!   left out too. The committed fixtures always run; the matrix runs
//!   here with DEFERSCOPE_DISASM_ORACLE=1, and in CI through
//!   scripts/disasm-vs-objdump.py (per version and arch, cached objdump).
//! - `disasm::twin::*`: a stripped binary's listing equals its unstripped
//!   twin's listed without the symbol table (see `check_twin` for the one
//!   relaxation, `-ldflags=-s -w` builds being a separate link).
//! - `disasm::annotations::*` (with DEFERSCOPE_DISASM_ORACLE=1): every
//!   defer site the classifier finds is marked at its pc, and every
//!   open-coded function has a marked exit.

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
    let (mut total, mut same, mut better) = (0usize, 0usize, 0usize);
    let mut diffs = Vec::new();
    let adrp = regex::Regex::new(r"^ADRP -?\d+\(PC\), (R\d+)$").expect("regex");
    let hexaddr = regex::Regex::new(r"^0x[0-9a-f]+$").expect("regex");
    // Ours names a data address objdump leaves as a number: the
    // instruction after an arm64 ADRP, or go1.27's EVEX RIP-relative
    // operand printed as a bare displacement.
    let named_data = |pc: u64, ins: &str, o: &str| -> bool {
        if !o.contains("(SB)") || ins.contains("(SB)") {
            return false;
        }
        if let Some(c) = pc
            .checked_sub(4)
            .and_then(|p| od.get(&p))
            .and_then(|prev| adrp.captures(&prev.1))
        {
            return ins.contains(&c[1]);
        }
        let (a, b): (Vec<&str>, Vec<&str>) = (ins.split(", ").collect(), o.split(", ").collect());
        a.len() == b.len()
            && a[0].split(' ').next() == b[0].split(' ').next()
            && a.iter().zip(&b).all(|(x, y)| {
                let x = x.rsplit(' ').next().unwrap_or(x);
                let y = y.rsplit(' ').next().unwrap_or(y);
                x == y || (hexaddr.is_match(x) && y.ends_with("(SB)"))
            })
    };
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
        if let Some((p, i, _, _)) = ours_at {
            // objdump found no function for the pc (go1.19, arm64 PIE).
            let noline = pos == ":0" && p != pos && (i == ins || named_data(*pc, ins, i));
            if noline || (p == pos && named_data(*pc, ins, i)) {
                better += 1;
                continue;
            }
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
        Ok(format!("{pct:.3}% of {total}, {better} better"))
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

/// The instruction text with every number replaced by `#`, a memory
/// operand without an offset (`(R27)`) included.
fn numbers_masked(ins: &str) -> String {
    // Not the digits of a register or symbol name (R27, main.f1).
    let num = regex::Regex::new(r"(^|[^\w.])-?(0x[0-9a-f]+|\d+)").expect("regex");
    let bare = regex::Regex::new(r"(^|[ ,])\(").expect("regex");
    let s = num.replace_all(ins, "${1}#");
    bare.replace_all(&s, "${1}#(").into_owned()
}

/// A stripped binary lists like its twin read without the symbol table:
/// the pclntab names, extents and lines are all a stripped binary keeps.
/// What the symbol table adds to the unstripped listing (data symbols,
/// objdump's function extents) is the one difference there is reason for.
/// - `strip` (external strip of the twin's very bytes): identical text.
/// - `stripped` (`-ldflags=-s -w`, a separate link): the linker places
///   data elsewhere and the build ID differs, so the same pcs, file:line
///   and functions, and the same instructions up to the numbers in their
///   operands (displacements); the go:buildid bytes are not code. Both
///   sides are listed from the pclntab: a go1.19-1.21 darwin `-s` link
///   keeps a symbol table.
fn check_twin(e: &Entry) -> Result<String, String> {
    let t = e.twin().ok_or("twin entry not found")?;
    let a = listing(
        &e.bin(),
        &deferscope_disasm::Options {
            use_symtab: false,
            ..plain()
        },
    )?;
    let b = listing(
        &t.bin(),
        &deferscope_disasm::Options {
            use_symtab: false,
            ..plain()
        },
    )?;
    if a == b {
        return Ok("identical".into());
    }
    if e.meta.variant == "strip" {
        let first = a
            .lines()
            .zip(b.lines())
            .find(|(x, y)| x != y)
            .map(|(x, y)| format!("stripped: {x:?}\ntwin:     {y:?}"))
            .unwrap_or_else(|| format!("lengths {} vs {}", a.len(), b.len()));
        return Err(format!("listings differ; first difference:\n{first}"));
    }
    let without_buildid = |text: &str| -> String {
        let mut out = String::new();
        let mut skip = false;
        for l in text.lines() {
            if l.starts_with("TEXT ") {
                skip = l.starts_with("TEXT go:buildid(SB)") || l.starts_with("TEXT go.buildid(SB)");
            }
            if !skip {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    };
    let (a, b) = (without_buildid(&a), without_buildid(&b));
    let (pa, pb) = (parse(&a), parse(&b));
    let headers = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("TEXT "))
            .map(str::to_owned)
            .collect()
    };
    if headers(&a) != headers(&b) {
        return Err("function headers differ".into());
    }
    let mut masked = 0usize;
    let mut bad = Vec::new();
    for (pc, (pos, ins, hex, _)) in &pa {
        match pb.get(pc) {
            Some((p2, i2, h2, _)) if p2 == pos && i2 == ins && h2 == hex => {}
            Some((p2, i2, h2, _))
                if p2 == pos
                    && h2.len() == hex.len()
                    && numbers_masked(i2) == numbers_masked(ins) =>
            {
                masked += 1
            }
            other => bad.push(format!("{pc:#x} stripped {pos} {ins:?} twin {other:?}")),
        }
    }
    if pa.len() != pb.len() {
        bad.push(format!("{} vs {} instructions", pa.len(), pb.len()));
    }
    bad.sort();
    if bad.is_empty() {
        Ok(format!(
            "{} instructions, {masked} differ in displacements only",
            pa.len()
        ))
    } else {
        Err(format!(
            "{} differences, first: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        ))
    }
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
                        move || check_twin(&e2).map(drop).map_err(Failed::from),
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

//! `defer_fields::*`: the `_defer` record of stack-allocated sites, field by
//! field (issue 14 item 4), against the binary's own DWARF.
//!
//! The oracle is the DWARF type `runtime._defer` of each unstripped fixture
//! binary, read by `deferfields.go` with Go's `debug/dwarf` (ELF, Mach-O
//! with its compressed `__zdebug` sections, PE), built once with the newest
//! installed toolchain. For every binary with DWARF and stack-allocated
//! sites (`cmdgo` left out: its listing is large):
//!
//! - `disasm --defer-only`: before each `CALL runtime.deferprocStack(SB)`,
//!   the record's address is the last `LEAQ d(SP), AX` / `ADD $d, RSP, R0`
//!   since the previous call (design.md §3.2); every store in that stretch
//!   whose comment names `_defer` fields writes, read from the instruction
//!   text (`off(SP)`, `off(RSP)`, `off(R27)` after `ADD $n, RSP, R27`, and
//!   the store's width from its mnemonic), exactly the DWARF members that
//!   overlap its bytes at their offsets from `d`; and each call has a
//!   store naming `fn` (the compiler always stores it, ssagen's
//!   `callDeferStack`).
//! - `explain --format json`: every stack-allocated site's `record_bytes`
//!   is DWARF's `byte_size`; other sites have none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, go_tool, Entry};

/// `runtime._defer` as DWARF gives it: byte size and (name, offset, size).
struct Dwarf {
    size: i64,
    fields: Vec<(String, i64, i64)>,
}

fn dwarf_of(bin: &Path) -> Result<Option<Dwarf>, String> {
    let Some(r) = go_tool("deferfields") else {
        return Err("no Go toolchain to build deferfields.go".into());
    };
    let out = Command::new(r)
        .arg(bin)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let cols: Vec<&str> = text.trim_end().split('\t').collect();
    if cols.get(1) == Some(&"none") || cols.len() < 3 {
        return Ok(None);
    }
    let fields = cols[2]
        .split(' ')
        .filter_map(|f| {
            let mut p = f.split(':');
            let name = p.next()?.to_owned();
            Some((name, p.next()?.parse().ok()?, p.next()?.parse().ok()?))
        })
        .collect();
    Ok(Some(Dwarf {
        size: cols[1].parse().map_err(|_| format!("bad line {text}"))?,
        fields,
    }))
}

fn run(args: &[&str], bin: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_deferscope"))
        .args(args)
        .arg(bin)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "deferscope {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Width in bytes of a store by its Go assembler mnemonic (`MOVW` is 2
/// bytes on amd64, 4 on arm64).
fn width(mnemonic: &str, arm64: bool) -> Option<i64> {
    Some(match mnemonic {
        "MOVB" => 1,
        "MOVW" if arm64 => 4,
        "MOVW" | "MOVH" => 2,
        "MOVL" | "FMOVS" => 4,
        "MOVQ" | "MOVD" | "FMOVD" => 8,
        "MOVUPS" | "MOVOU" | "STP" | "FMOVQ" => 16,
        "STPW" => 8,
        _ => return None,
    })
}

/// `$88`, `$(1<<12)`.
fn immediate(op: &str) -> Option<i64> {
    let v = op.strip_prefix('$')?;
    match v.strip_prefix("(1<<") {
        Some(s) => Some(1 << s.strip_suffix(')')?.parse::<i64>().ok()?),
        None => v.parse().ok(),
    }
}

/// `off(SP)`, `off(RSP)`, `(R27)`, `off(R27)` -> (offset, base register).
fn mem_operand(op: &str) -> Option<(i64, &str)> {
    let (off, rest) = op.split_once('(')?;
    let base = rest.strip_suffix(')')?;
    let off = match off {
        "" => 0,
        o => match o.strip_prefix("0x").or_else(|| o.strip_prefix("-0x")) {
            Some(h) => i64::from_str_radix(h, 16).ok()? * if o.starts_with('-') { -1 } else { 1 },
            None => o.parse().ok()?,
        },
    };
    Some((off, base))
}

/// The `_defer` fields a comment names (`_defer.sp, _defer.pc = 0 (...)`),
/// or `["<args>"]` for the argument area.
fn named_fields(comment: &str) -> Option<Vec<String>> {
    let c = comment.strip_prefix("_defer")?;
    if c.starts_with(" argument area") {
        return Some(vec!["<args>".into()]);
    }
    let head = c
        .split(" (")
        .next()?
        .split(" =")
        .next()?
        .split(" stored")
        .next()?
        .split(" and the argument area")
        .next()?;
    Some(
        head.split(", ")
            .map(|f| {
                f.trim_start_matches("_defer.")
                    .trim_start_matches('.')
                    .to_owned()
            })
            .collect(),
    )
}

/// Check the listing of one binary; the number of annotated stores.
fn check_listing(text: &str, d: &Dwarf, minor: u32, arm64: bool) -> Result<usize, String> {
    let mut checked = 0;
    // Per function: instruction text and comment of the lines since the
    // last call.
    let mut since: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        if l.starts_with("TEXT ") {
            since.clear();
            continue;
        }
        let cells: Vec<&str> = l.split('\t').filter(|c| !c.is_empty()).collect();
        if cells.len() < 4 || !l.starts_with("  ") {
            continue;
        }
        let ins = cells[3].trim().to_owned();
        let comment = cells
            .get(4)
            .and_then(|c| c.trim().strip_prefix("// "))
            .unwrap_or("")
            .to_owned();
        if !ins.starts_with("CALL ") {
            since.push((ins, comment));
            continue;
        }
        if ins.starts_with("CALL runtime.deferprocStack(SB)") {
            checked += check_record(&since, d, minor, arm64).map_err(|e| format!("{e}\n  {l}"))?;
        }
        since.clear();
    }
    Ok(checked)
}

/// The stores of one stack-allocated record, before its deferprocStack call.
fn check_record(
    lines: &[(String, String)],
    d: &Dwarf,
    minor: u32,
    arm64: bool,
) -> Result<usize, String> {
    let mut bases: HashMap<String, i64> = HashMap::new();
    let mut rec = None;
    for (ins, _) in lines {
        let ops: Vec<&str> = ins.splitn(2, ' ').collect();
        let args: Vec<&str> = ops.get(1).map_or(vec![], |a| a.split(", ").collect());
        match (ops[0], args.as_slice()) {
            ("LEAQ", [m, "AX"]) => rec = mem_operand(m).filter(|m| m.1 == "SP").map(|m| m.0),
            ("ADD", [imm, src, r]) => {
                let from = match *src {
                    "RSP" => Some(0),
                    s => bases.get(s).copied(),
                };
                if let (Some(v), Some(from)) = (immediate(imm), from) {
                    if *r == "R0" {
                        rec = Some(from + v);
                    }
                    bases.insert((*r).to_owned(), from + v);
                }
            }
            _ => {}
        }
    }
    let rec = rec.ok_or("no record address before deferprocStack")?;
    let (mut n, mut fn_seen) = (0, false);
    for (ins, comment) in lines {
        let Some(names) = named_fields(comment) else {
            continue;
        };
        let (mn, args) = ins.split_once(' ').ok_or("no operands")?;
        let w = width(mn, arm64).ok_or(format!("store width of {ins}"))?;
        let dst = args.rsplit(", ").next().unwrap_or("");
        let (off, base) = mem_operand(dst).ok_or(format!("no memory operand in {ins}"))?;
        let off = match base {
            "SP" | "RSP" => off,
            r => off + bases.get(r).ok_or(format!("base {r} of {ins}"))?,
        };
        let rel = off - rec;
        let want: Vec<String> = if rel >= d.size {
            vec!["<args>".into()]
        } else {
            d.fields
                .iter()
                .filter(|(_, o, s)| *o < rel + w && rel < o + s)
                .map(|(name, _, _)| name.clone())
                .collect()
        };
        if names != want || (rel >= d.size && minor >= 18) {
            return Err(format!(
                "{ins} // {comment}: record at {rec}, bytes [{rel}, {}) are {want:?} in DWARF",
                rel + w
            ));
        }
        fn_seen |= names.iter().any(|f| f == "fn");
        n += 1;
    }
    if !fn_seen {
        return Err(format!(
            "no store marked _defer.fn before deferprocStack (record at {rec})"
        ));
    }
    Ok(n)
}

fn check(e: &Entry) -> Result<(), String> {
    let Some(d) = dwarf_of(&e.bin())? else {
        return Ok(());
    };
    let x: serde_json::Value =
        serde_json::from_str(&run(&["explain", "--format", "json"], &e.bin())?)
            .map_err(|e| e.to_string())?;
    let sites = x["sites"].as_array().ok_or("no sites")?;
    let mut stack = 0;
    for s in sites {
        let rb = &s["record_bytes"];
        if s["kind"] == "stack-allocated" {
            stack += 1;
            if rb.as_i64() != Some(d.size) {
                return Err(format!(
                    "{}:{}: record_bytes {rb}, DWARF runtime._defer byte_size {}",
                    s["file"], s["line"], d.size
                ));
            }
        } else if !rb.is_null() {
            return Err(format!(
                "{}:{}: record_bytes {rb} on a {} site",
                s["file"], s["line"], s["kind"]
            ));
        }
    }
    if stack == 0 {
        return Ok(());
    }
    let minor = e
        .meta
        .go_version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let listing = run(&["disasm", "--defer-only", "--color", "never"], &e.bin())?;
    let n = check_listing(&listing, &d, minor, e.meta.goarch == "arm64")?;
    if n < stack {
        return Err(format!(
            "{n} annotated record stores for {stack} stack-allocated sites"
        ));
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let mut roots: Vec<(PathBuf, &str)> = vec![(committed_root(), "committed")];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push((PathBuf::from(m), "matrix"));
        }
    }
    let mut out = Vec::new();
    for (root, tag) in roots {
        for e in entries(&root) {
            if e.meta.stripped || e.meta.program == "cmdgo" {
                continue;
            }
            out.push(Trial::test(
                format!("defer_fields::{tag}::{}", e.name()),
                move || check(&e).map_err(Failed::from),
            ));
        }
    }
    out
}

//! `disasm_annotate::*`: the annotated listing marks every defer site's
//! registration and exits, on every fixture binary (the committed ones
//! always, the whole matrix when `DEFERSCOPE_MATRIX` is set; stripped,
//! PIE, race, Windows and macOS binaries included).
//!
//! The sites come from the scan, which the oracle trials check against the
//! compiler's `-d=defer`. Which instructions register and run a defer is
//! decided here from the listing's instruction text (objdump's, which the
//! `disasm::objdump` trials compare) and the rules of
//! shared/docs/go-defer-internals.md, never from the annotator's own
//! reasoning:
//!
//! - heap- and stack-allocated sites: the site's instruction is `CALL
//!   runtime.deferproc(SB)` / `deferprocat` (heap, §3.3) or
//!   `deferprocStack` (stack, §3.2), and it is marked as a registration of
//!   that kind;
//! - open-coded sites: the site's instruction stores the closure to a frame
//!   slot (§3.1), marked as that defer's slot; the deferBits byte is the
//!   one the prologue zeroes (`MOVB $0x0, d(SP)` / `MOVB ZR, d(RSP)`, §3.1),
//!   and the first store to it after the site is marked;
//! - exits of a function without open-coded defers: every `CALL
//!   runtime.deferreturn(SB)` is marked, and there is at least one (§3.6);
//! - exits of an open-coded function: exactly one `CALL
//!   runtime.deferreturn(SB)`, marked (§3.6); every call through a closure
//!   loaded from a site's slot (`MOVQ slot, DX; MOVQ 0(DX), AX; CALL AX`,
//!   `MOVD slot, R26; MOVD (R26), R0; CALL (R0)`, §3.1 "At each exit") is
//!   marked as running that site's defer; when the function returns
//!   normally (a `RET` other than the one after the deferreturn call) at
//!   least one deferred call is marked; and every call marked as a
//!   deferred call has a store to deferBits at most eight instructions
//!   before it with no call in between (deferBits is cleared before the
//!   call, §2.1).
//!
//! An arm64 frame over 4 KiB reaches slots beyond the 12-bit immediate
//! through REGTMP (`ADD $(1<<12), RSP, R27; MOVB ZR, 63(R27)`, as Go's
//! assembler expands one instruction; time.readFile is one): such an
//! access is read here as the `off(RSP)` slot it addresses (`4159(RSP)`)
//! and checked like any other.
//!
//! The legend is printed once, after the listing.
//!
//! `disasm_source::*`: with `--source`, the source line printed before
//! each site's instruction is that line of the Go file, read here: the
//! fixture's own source (found through `--source-root BUILD=REPO`, or a
//! bare root for `-trimpath` paths like `example.com/defers/f.go`), and
//! standard-library files from the GOROOT of the binary's Go version.
//!
//! `disasm_color`: ANSI colour only on a terminal (under `script`'s pty),
//! never when piped or with `NO_COLOR` set; `--color always` only adds
//! escape sequences (the text without them is the plain listing).

use std::path::{Path, PathBuf};
use std::process::Command;

use deferscope_analyze::{Kind, Scan};
use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, repo_root, Entry};

/// One instruction line of the listing.
struct Line {
    pc: u64,
    ins: String,
    comment: String,
}

/// Function name -> its lines, in listing order.
fn parse(text: &str) -> Vec<(String, Vec<Line>)> {
    let mut out: Vec<(String, Vec<Line>)> = Vec::new();
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("TEXT ") {
            let name = h.split("(SB)").next().unwrap_or("").to_owned();
            out.push((name, Vec::new()));
            continue;
        }
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
        if let Some((_, lines)) = out.last_mut() {
            let ins = lines
                .last()
                .filter(|p| p.pc + 4 == pc)
                .and_then(|p| through_regtmp(&p.ins, cells[3]))
                .unwrap_or_else(|| cells[3].to_owned());
            lines.push(Line {
                pc,
                ins,
                comment: cells.get(4).copied().unwrap_or("").to_owned(),
            });
        }
    }
    out
}

fn listing(bin: &Path) -> Result<(Scan, String), String> {
    let m = deferscope_load::Mapped::open(bin).map_err(|e| e.to_string())?;
    let img = m.image().map_err(|e| e.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|e| e.to_string())?;
    let report = deferscope_analyze::scan(&bin.display().to_string(), &img, &ix)
        .map_err(|e| e.to_string())?;
    let opts = deferscope_disasm::Options {
        filter: deferscope_disasm::Filter {
            defer_only: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut out = Vec::new();
    deferscope_disasm::write_listing(&img, &ix, Some(&report), &opts, &mut out)
        .map_err(|e| e.to_string())?;
    Ok((report, String::from_utf8(out).map_err(|e| e.to_string())?))
}

/// `ins` right after `prev = ADD $hi, RSP, R27` with its `lo(R27)`
/// operand written as the slot it addresses, `hi+lo(RSP)`.
fn through_regtmp(prev: &str, ins: &str) -> Option<String> {
    let hi = prev.strip_prefix("ADD $")?.strip_suffix(", RSP, R27")?;
    let hi: i64 = match hi.strip_prefix('(').and_then(|h| h.strip_suffix(')')) {
        Some(sh) => {
            let (a, b) = sh.split_once("<<")?;
            a.parse::<i64>().ok()? << b.parse::<u32>().ok()?
        }
        None => hi.parse().ok()?,
    };
    let end = ins.find("(R27)")?;
    let start = ins[..end]
        .rfind(|c: char| !(c.is_ascii_digit() || c == '-'))
        .map_or(0, |i| i + 1);
    let lo: i64 = if start == end {
        0
    } else {
        ins[start..end].parse().ok()?
    };
    Some(format!(
        "{}{}(RSP){}",
        &ins[..start],
        hi + lo,
        &ins[end + "(R27)".len()..]
    ))
}

/// `(source, destination)` operands of a two-operand instruction.
fn operands(ins: &str) -> Option<(&str, &str)> {
    let (_, ops) = ins.split_once(' ')?;
    // The destination is the last operand; arm64 pairs are parenthesised.
    let i = ops.rfind(", ")?;
    Some((&ops[..i], &ops[i + 2..]))
}

/// The prologue's zeroing of deferBits: its operand, e.g. `0x7(SP)`.
fn deferbits_slot(lines: &[Line]) -> Option<String> {
    lines.iter().find_map(|l| match operands(&l.ins) {
        Some(("$0x0", d)) if l.ins.starts_with("MOVB ") && d.ends_with("(SP)") => Some(d.into()),
        Some(("ZR", d)) if l.ins.starts_with("MOVB ") && d.ends_with("(RSP)") => Some(d.into()),
        _ => None,
    })
}

fn stores_to(l: &Line, slot: &str) -> bool {
    l.ins.starts_with("MOVB ") && operands(&l.ins).is_some_and(|(_, d)| d == slot)
}

fn check_function(name: &str, lines: &[Line], r: &Scan, errs: &mut Vec<String>) {
    let Some(f) = r.functions.iter().find(|f| {
        lines
            .first()
            .is_some_and(|l| l.pc >= f.entry && l.pc < f.entry + f.size.max(1))
    }) else {
        return;
    };
    let sites: Vec<_> = r
        .sites
        .iter()
        .filter(|s| s.pc >= f.entry && s.pc < f.entry + f.size)
        .collect();
    let at = |pc: u64| lines.iter().position(|l| l.pc == pc);
    let mut err = |m: String| errs.push(format!("{name}: {m}"));
    let deferreturns: Vec<&Line> = lines
        .iter()
        .filter(|l| l.ins == "CALL runtime.deferreturn(SB)")
        .collect();
    for l in &deferreturns {
        if !l.comment.contains("run pending defers") {
            err(format!("{:#x} deferreturn call not marked", l.pc));
        }
    }
    let open = f.open_coded_defers.is_some();
    let dbits = if open { deferbits_slot(lines) } else { None };
    if open && dbits.is_none() && !sites.is_empty() {
        err("no deferBits zeroing in the prologue".into());
    }
    let mut slots: Vec<(String, u8)> = Vec::new();
    for s in &sites {
        let Some(k) = at(s.pc) else {
            err(format!("no instruction at site pc {:#x}", s.pc));
            continue;
        };
        let l = &lines[k];
        let ok = match s.kind {
            Kind::HeapAllocated => {
                (l.ins == "CALL runtime.deferproc(SB)" || l.ins == "CALL runtime.deferprocat(SB)")
                    && l.comment.contains("register heap-allocated defer")
            }
            Kind::StackAllocated => {
                l.ins == "CALL runtime.deferprocStack(SB)"
                    && l.comment.contains("register stack-allocated defer")
            }
            Kind::OpenCoded => {
                let Some(i) = s.index else {
                    err(format!("open-coded site {:#x} without a bit", s.pc));
                    continue;
                };
                let store = operands(&l.ins).map(|(_, d)| d.to_owned());
                let is_store = (l.ins.starts_with("MOV") || l.ins.starts_with("STP"))
                    && store
                        .as_deref()
                        .is_some_and(|d| d.ends_with("(SP)") || d.ends_with("(RSP)"));
                if let Some(d) = store.filter(|_| is_store) {
                    slots.push((d, i));
                }
                // The first deferBits store after the registration.
                if let Some(db) = &dbits {
                    if let Some(b) = lines[k + 1..].iter().find(|x| stores_to(x, db)) {
                        if !b.comment.contains("deferBits") {
                            err(format!(
                                "{:#x} deferBits store after site #{i} not marked: {:?}",
                                b.pc, b.ins
                            ));
                        }
                    }
                }
                is_store && l.comment.contains(&format!("slot #{i}"))
            }
        };
        if !ok {
            err(format!(
                "{} site {:#x} not marked as its registration: {:?} {:?}",
                s.kind.as_str(),
                s.pc,
                l.ins,
                l.comment
            ));
        }
    }
    if sites.is_empty() {
        return;
    }
    if !open {
        if deferreturns.is_empty() && !f.calls_deferrangefunc {
            err("no CALL runtime.deferreturn".into());
        }
        return;
    }
    if deferreturns.len() != 1 {
        err(format!(
            "{} deferreturn calls in an open-coded function",
            deferreturns.len()
        ));
    }
    // Calls through a closure loaded from a site's slot.
    for (k, l) in lines.iter().enumerate() {
        if !l.ins.starts_with("CALL ") || l.ins.ends_with("(SB)") {
            continue;
        }
        let lo = k.saturating_sub(3);
        let from_slot = lines[lo..k].iter().find_map(|x| {
            let (src, _) = operands(&x.ins)?;
            if !x.ins.starts_with("MOV") {
                return None;
            }
            slots.iter().find(|(s, _)| s == src).map(|(_, i)| *i)
        });
        if let Some(i) = from_slot {
            if !l
                .comment
                .contains(&format!("run deferred call #{i} (open-coded exit)"))
            {
                err(format!(
                    "{:#x} call of defer #{i}'s closure not marked: {:?}",
                    l.pc, l.comment
                ));
            }
        }
    }
    let marked: Vec<usize> = (0..lines.len())
        .filter(|&k| lines[k].comment.contains("run deferred call"))
        .collect();
    if let Some(db) = &dbits {
        for &k in &marked {
            let lo = k.saturating_sub(8);
            let since_call = lines[lo..k]
                .iter()
                .rposition(|x| x.ins.starts_with("CALL "))
                .map_or(lo, |j| lo + j + 1);
            if !lines[since_call..k].iter().any(|x| stores_to(x, db)) {
                err(format!(
                    "{:#x} marked as a deferred call without a deferBits store before it",
                    lines[k].pc
                ));
            }
        }
    }
    // A normal return: a RET not in the deferreturn call's epilogue.
    let dr = deferreturns.first().map(|l| l.pc);
    let normal_ret = lines
        .iter()
        .any(|l| l.ins == "RET" && dr.is_none_or(|d| l.pc < d));
    if normal_ret && marked.is_empty() {
        err("returns normally but no deferred call is marked at an exit".into());
    }
}

fn check(bin: &Path) -> Result<(), String> {
    let (r, text) = listing(bin)?;
    let funcs = parse(&text);
    let mut errs = Vec::new();
    for (name, lines) in &funcs {
        check_function(name, lines, &r, &mut errs);
    }
    let listed: usize = funcs.iter().map(|(_, l)| l.len()).sum();
    if !r.sites.is_empty() && listed == 0 {
        errs.push("--defer-only listed nothing".into());
    }
    let legends = text.matches("// deferscope disasm:").count();
    let any_mark = funcs
        .iter()
        .any(|(_, l)| l.iter().any(|x| x.comment.starts_with("// ")));
    let after_listing = text.rfind("// deferscope disasm:") > text.rfind("\nTEXT ");
    if legends != usize::from(any_mark) || (any_mark && !after_listing) {
        errs.push(format!("{legends} legends; want one, at the end"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        let n = errs.len();
        errs.truncate(12);
        Err(format!("{n} problems:\n{}", errs.join("\n")))
    }
}

/// The Go file a pclntab path names, read independently of the listing:
/// the fixture's source in the repository, or the standard library of the
/// binary's toolchain.
fn expected_file(e: &Entry, file: &str, module: &str) -> Option<PathBuf> {
    let src = repo_root().join("fixtures/go").join(&e.meta.program);
    let build = e.meta.build_dir.to_string_lossy().into_owned();
    if let Some(rest) = file.strip_prefix(build.as_str()) {
        return Some(src.join(rest.trim_start_matches('/')));
    }
    if let Some(rest) = file.strip_prefix(module) {
        return Some(src.join(rest.trim_start_matches('/')));
    }
    let rel = match file.rfind("/src/") {
        Some(i) if file.starts_with('/') || file.starts_with("$GOROOT") => &file[i + 5..],
        _ if !file.starts_with('/') => file,
        _ => return None,
    };
    Some(e.meta.goroot.join("src").join(rel))
}

fn check_source(e: &Entry) -> Result<String, String> {
    let m = deferscope_load::Mapped::open(&e.bin()).map_err(|x| x.to_string())?;
    let img = m.image().map_err(|x| x.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|x| x.to_string())?;
    let r = deferscope_analyze::scan("bin", &img, &ix).map_err(|x| x.to_string())?;
    let module = ix
        .buildinfo
        .as_ref()
        .and_then(|b| b.main_module.as_ref().map(|m| m.0.clone()))
        .unwrap_or_default();
    let src = repo_root().join("fixtures/go").join(&e.meta.program);
    let opts = deferscope_disasm::Options {
        filter: deferscope_disasm::Filter {
            defer_only: true,
            ..Default::default()
        },
        source: Some(deferscope_disasm::source::SourceOptions {
            roots: vec![
                (e.meta.build_dir.to_string_lossy().into_owned(), src.clone()),
                (String::new(), src),
            ],
        }),
        ..Default::default()
    };
    let mut out = Vec::new();
    deferscope_disasm::write_listing(&img, &ix, Some(&r), &opts, &mut out)
        .map_err(|x| x.to_string())?;
    let text = String::from_utf8(out).map_err(|x| x.to_string())?;
    // pc -> the source line printed last before it.
    let mut before: std::collections::HashMap<u64, &str> = Default::default();
    let mut cur = "";
    for l in text.lines() {
        let pc = l
            .strip_prefix("  0x")
            .and_then(|t| t.split('\t').next())
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        match pc {
            Some(pc) => {
                before.insert(pc, cur);
            }
            None if l.starts_with("TEXT ") => cur = "",
            None => cur = l,
        }
    }
    let (mut checked, mut std_checked) = (0, 0);
    let mut bad = Vec::new();
    for s in &r.sites {
        let Some(path) = expected_file(e, &s.file, &module) else {
            continue;
        };
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(want) = body.split('\n').nth(s.line as usize - 1) else {
            continue;
        };
        checked += 1;
        if !path.starts_with(repo_root()) {
            std_checked += 1;
        }
        let got = before.get(&s.pc).copied();
        if got != Some(want) {
            bad.push(format!(
                "{}:{} {:#x}: {got:?}, want {want:?}",
                s.file, s.line, s.pc
            ));
        }
    }
    if checked == 0 {
        return Err("no site's source file found".into());
    }
    if !bad.is_empty() {
        let n = bad.len();
        bad.truncate(10);
        return Err(format!("{n} of {checked} sites:\n{}", bad.join("\n")));
    }
    Ok(format!(
        "{checked} sites ({std_checked} in the standard library)"
    ))
}

/// `deferscope disasm` on `bin` with `args`, under a pty when `tty`.
fn run_cli(bin: &Path, args: &[&str], tty: bool, no_color: bool) -> Result<String, String> {
    let exe = env!("CARGO_BIN_EXE_deferscope");
    let mut cmd = if tty {
        let mut line = format!("{exe} disasm");
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        line.push_str(&format!(" '{}'", bin.display()));
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new(exe);
        c.arg("disasm").args(args).arg(bin);
        c
    };
    cmd.env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let o = cmd.output().map_err(|x| format!("{cmd:?}: {x}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_color() -> Result<(), String> {
    let e = entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.program == "defers" && !e.meta.stripped)
        .ok_or("no committed defers fixture")?;
    let bin = e.bin();
    let f = ["--funcs", "^main\\.closureCapture$"];
    let esc = |s: &str| s.contains("\x1b[");
    let piped = run_cli(&bin, &f, false, false)?;
    if esc(&piped) || !piped.contains("// deferBits") {
        return Err("piped listing: want no colour and annotations".into());
    }
    let always = run_cli(
        &bin,
        &[&f[..], &["--color", "always"]].concat(),
        false,
        false,
    )?;
    if !esc(&always) || strip_ansi(&always) != piped {
        return Err("--color always: want escapes that only wrap the plain text".into());
    }
    let never = run_cli(&bin, &[&f[..], &["--color", "never"]].concat(), true, false)?;
    if esc(&never) {
        return Err("--color never on a terminal printed escapes".into());
    }
    let tty = run_cli(&bin, &f, true, false)?;
    if !esc(&tty) {
        return Err("no colour on a terminal".into());
    }
    // The pty turns \n into \r\n.
    if strip_ansi(&tty).replace("\r\n", "\n") != piped {
        return Err("terminal listing differs from the piped one beyond colour".into());
    }
    let nc = run_cli(&bin, &f, true, true)?;
    if esc(&nc) {
        return Err("NO_COLOR set, but the terminal listing has colour".into());
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
    let mut out = vec![Trial::test("disasm_color", || {
        check_color().map_err(Failed::from)
    })];
    for (root, tag) in roots {
        for e in entries(&root) {
            let e: Entry = e;
            if e.meta.program == "defers" {
                let e2 = e.clone();
                out.push(Trial::test(
                    format!("disasm_source::{tag}::{}", e.name()),
                    move || check_source(&e2).map(drop).map_err(Failed::from),
                ));
            }
            out.push(Trial::test(
                format!("disasm_annotate::{tag}::{}", e.name()),
                move || check(&e.bin()).map_err(Failed::from),
            ));
        }
    }
    out
}

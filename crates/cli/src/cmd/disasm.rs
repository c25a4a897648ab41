//! `deferscope disasm`: annotated disassembly in Go assembler syntax.
//!
//! `--syntax intel` is amd64's; on arm64 the listing is in ARM's own
//! syntax, and stderr says so once.
//!
//! Like grep, a listing that selects nothing says so on stderr and exits
//! with status 1 (`--funcs`, `--line`, `--pc` and `--defer-only` that
//! match no function). `--source` says on stderr how many source files
//! were not found where the binary recorded them, and how to map them.
//!
//! While it lists, stderr shows `listing K/N functions` when it is a
//! terminal and the listing does not go to that same terminal
//! (crate::progress).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cli::{ColorChoice, DisasmArgs, DisasmSyntax};
use crate::progress::{self, Progress};
use deferscope_analyze::{Filter, Request};
use deferscope_disasm::{source::SourceOptions, Options, Syntax};

fn parse_pc(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(t, 16).with_context(|| format!("bad --pc address {s:?}"))
}

fn parse_line(s: &str) -> Result<(String, u32)> {
    let Some((file, line)) = s.rsplit_once(':') else {
        bail!("bad --line {s:?}: want FILE:LINE");
    };
    let line = line
        .parse()
        .with_context(|| format!("bad --line {s:?}: want FILE:LINE"))?;
    Ok((file.to_owned(), line))
}

fn parse_root(s: &str) -> (String, PathBuf) {
    match s.split_once('=') {
        Some((old, new)) => (old.to_owned(), PathBuf::from(new)),
        None => (String::new(), PathBuf::from(s)),
    }
}

pub fn run(args: DisasmArgs) -> Result<()> {
    let funcs = args
        .funcs
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("bad --funcs regular expression")?;
    let line = args.line.as_deref().map(parse_line).transpose()?;
    let pc = args.pc.as_deref().map(parse_pc).transpose()?;
    let path = args.binary.display().to_string();
    deferscope_analyze::with_binary(&args.binary, |img, ix| -> Result<()> {
        if args.syntax == DisasmSyntax::Intel && img.arch == deferscope_load::Arch::Arm64 {
            eprintln!(
                "deferscope: --syntax intel is for amd64; this arm64 binary is listed in ARM's \
                 assembler syntax"
            );
        }
        // Annotations and --defer-only need the sites; the annotations
        // also the explain pass (captures, allocations, results).
        let costs = deferscope_analyze::cost::CostTable::published();
        let (scan, site_notes) = if !args.no_annotate || args.defer_only {
            let req = Request {
                explain: (!args.no_annotate).then_some(&costs),
                ..Request::default()
            };
            let filter = Filter {
                full_paths: true,
                ..Filter::default()
            };
            let a = deferscope_analyze::run(&path, img, ix, &filter, req)?;
            let notes = a
                .explain
                .as_ref()
                .map(|x| deferscope_analyze::explain::listing_notes(&a.scan, x))
                .unwrap_or_default();
            (Some(a.scan), notes)
        } else {
            (None, Default::default())
        };
        let stdout = io::stdout();
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        let opts = Options {
            syntax: match args.syntax {
                DisasmSyntax::Go => Syntax::Go,
                DisasmSyntax::Intel => Syntax::Intel,
            },
            filter: deferscope_disasm::Filter {
                funcs,
                line,
                pc,
                defer_only: args.defer_only,
            },
            annotate: !args.no_annotate,
            source: args.source.then(|| SourceOptions {
                roots: args.source_root.iter().map(|s| parse_root(s)).collect(),
            }),
            use_symtab: !args.no_symtab,
            color,
            dialect: None,
            // objdump's names, as the listing's other columns (design §4.9).
            real_names: false,
            site_notes,
        };
        // `listing K/N functions` on stderr, unless the listing goes to
        // the same terminal (the line would overwrite it).
        let bar = Progress::counter(
            !progress::stdout_shares_terminal(),
            0,
            "listing {pos}/{len} functions {wide_bar} {elapsed}",
        );
        let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let stats = deferscope_disasm::write_listing_with(
            img,
            ix,
            scan.as_ref(),
            &opts,
            &mut out,
            &mut |k, n| {
                bar.set_len(n as u64);
                bar.set(k as u64);
            },
        )?;
        out.flush()?;
        drop(bar);
        if stats.source_files_missing > 0 {
            eprintln!("deferscope: {}", source_note(&stats));
        }
        if stats.functions == 0 {
            eprintln!("deferscope: no function matched {}", filters(&args));
            std::process::exit(1);
        }
        Ok(())
    })
}

/// The selecting flags given, as typed (for "no function matched").
fn filters(args: &DisasmArgs) -> String {
    let mut v = Vec::new();
    if let Some(f) = &args.funcs {
        v.push(format!("--funcs {f}"));
    }
    if let Some(l) = &args.line {
        v.push(format!("--line {l}"));
    }
    if let Some(p) = &args.pc {
        v.push(format!("--pc {p}"));
    }
    if args.defer_only {
        v.push("--defer-only".to_owned());
    }
    if v.is_empty() {
        "(the binary lists no functions)".to_owned()
    } else {
        v.join(" ")
    }
}

/// Why `--source` printed fewer source lines than asked.
fn source_note(s: &deferscope_disasm::Stats) -> String {
    let (missing, all) = (
        s.source_files_missing,
        s.source_files_found + s.source_files_missing,
    );
    format!(
        "--source: {missing} of {all} source files not found at the paths the binary \
         recorded (the TEXT lines show them), so their lines are left out; \
         --source-root OLD=NEW reads them from NEW instead of OLD (NEW alone: a root \
         for -trimpath paths)"
    )
}

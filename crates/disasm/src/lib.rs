//! Annotated disassembly of Go binaries, in Go assembler syntax.
//!
//! `deferscope disasm` prints the same columns as `go tool objdump` so that
//! people and scripts can switch between the two: a `TEXT sym(SB) file`
//! header per function, then one line per instruction,
//! `  file.go:LINE\t0xPC\t\tHEXBYTES\t\tINSTRUCTION`, laid out by the same
//! tab rules ([`tabwriter`]). What it adds is a trailing `// comment` on the
//! instructions that implement `defer`, and it works on stripped binaries.
//!
//! Design:
//!
//! - **Decoders are libraries, printers are ours.** amd64 is decoded with
//!   iced-x86 and arm64 with yaxpeax-arm; both are printed by our own Go
//!   syntax printers ([`x86`], [`arm64`]), which follow the rules of
//!   golang.org/x/arch's `GoSyntax` and keep mnemonic and register
//!   spellings in data tables. `--syntax intel` uses iced-x86's Intel
//!   formatter (amd64) or yaxpeax-arm's own (arm64).
//! - **objdump changed between Go releases**, and the listing follows the
//!   release that built the binary ([`Dialect`]): `CMP` operand order
//!   (go1.21), which immediates are symbolized (go1.25), which arm64
//!   loads and stores get `.W`/`.P` (go1.27).
//! - **Symbols** ([`symbols`]) come from the symbol table when it holds Go's
//!   symbols, exactly as objdump uses it, and from the pclntab function
//!   table otherwise, so a stripped binary still gets named functions,
//!   calls and jumps.
//! - **Annotations** ([`annotate`]) come from deferscope's classifier
//!   ([`deferscope_analyze::scan`]) and the open-coded defer funcdata: the
//!   deferBits slot and closure slots are located exactly, and the stores,
//!   tests and calls around them are labelled.
//! - Printers write to any `&mut impl Write`; colour is a flag the caller
//!   sets (the CLI turns it on for terminals only).
//! - **Speed** (scripts/bench.py compares with `go tool objdump`): no
//!   allocation per instruction (decoders print into reused strings, the
//!   [`tabwriter::Block`] keeps one arena per function), and functions are
//!   listed in batches of about 64 KiB of code by up to 4 threads, each
//!   with its own decoder state; batches are written in order, at most two
//!   per thread in flight, so memory stays bounded and the output is the
//!   same as a single thread's.

pub mod annotate;
pub mod arm64;
pub mod facts;
pub mod source;
pub mod symbols;
pub mod tabwriter;
pub mod x86;

use std::collections::HashSet;
use std::io::{self, Write};

use deferscope_analyze::Report;
use deferscope_index::{Func, GoIndex, LineTable};
use deferscope_load::{Arch, Image};

pub use symbols::{SymbolSource, Symbols};

use tabwriter::Block;

/// Instruction syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    Go,
    Intel,
}

/// The rules of the `go tool objdump` of one Go release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// go1.21+: `CMPQ AX, CX` reads left to right (x/arch CL 60920).
    pub x86_cmp_swap: bool,
    /// Before go1.25 every immediate that falls in a symbol is printed as
    /// `$sym(SB)`; from go1.25 only 32-bit MOV and PUSH immediates.
    pub x86_imm_sym_all: bool,
    /// go1.27+: the full AVX/AVX-512 decoder; before, only a few VEX
    /// moves were known, printed with X registers.
    pub x86_avx: bool,
    /// go1.27+: `.W`/`.P` on every pre/post-indexed arm64 memory operand,
    /// not only on LDR/STR/LDP/STP forms.
    pub arm64_wb_all: bool,
}

impl Dialect {
    /// The dialect of the objdump shipped with Go 1.`minor`; the newest
    /// when the version is unknown.
    pub fn for_version(minor: Option<u32>) -> Dialect {
        let m = minor.unwrap_or(u32::MAX);
        Dialect {
            x86_cmp_swap: m >= 21,
            x86_imm_sym_all: m < 25,
            x86_avx: m >= 27,
            arm64_wb_all: m >= 27,
        }
    }
}

/// Which functions to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Functions whose name matches.
    pub funcs: Option<regex::Regex>,
    /// Functions with code at `file:line` (the file matched as a path
    /// suffix).
    pub line: Option<(String, u32)>,
    /// The function containing this address.
    pub pc: Option<u64>,
    /// Only functions with defers.
    pub defer_only: bool,
}

/// Listing options.
#[derive(Clone, Debug)]
pub struct Options {
    pub syntax: Syntax,
    pub filter: Filter,
    /// Trailing `// ...` comments on the defer machinery, and a legend.
    pub annotate: bool,
    /// Interleave source lines (objdump `-S`).
    pub source: Option<source::SourceOptions>,
    /// Use the symbol table when it has Go symbols (else the pclntab).
    pub use_symtab: bool,
    /// ANSI colour.
    pub color: bool,
    /// Override the dialect (default: from the binary's Go version).
    pub dialect: Option<Dialect>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            syntax: Syntax::Go,
            filter: Filter::default(),
            annotate: true,
            source: None,
            use_symtab: true,
            color: false,
            dialect: None,
        }
    }
}

/// What a listing printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub functions: usize,
    pub instructions: usize,
    pub annotations: usize,
}

/// The legend for the annotations, printed once before the listing.
pub const LEGEND: &str = "\
// deferscope disasm: go tool objdump columns; `// ...` marks defer machinery:
//   deferBits        the byte whose bit i says open-coded defer #i is pending
//   slot #i          the frame slot holding defer #i's closure
//   _defer.fn        the closure field of a stack-allocated _defer record
//   register/run     CALL runtime.deferproc*/deferreturn, or a deferred call at exit
";

/// ANSI styles per column: file:line, pc, bytes, instruction, comment.
const STYLE_POS: (&str, &str) = ("\x1b[2m", "\x1b[0m");
const STYLE_PC: (&str, &str) = ("\x1b[36m", "\x1b[0m");
const STYLE_HEX: (&str, &str) = ("\x1b[2m", "\x1b[0m");
const STYLE_INS: (&str, &str) = ("", "");
const STYLE_COMMENT: (&str, &str) = ("\x1b[33m", "\x1b[0m");
const STYLE_HEADER: (&str, &str) = ("\x1b[1m", "\x1b[0m");

/// The base name of a path, Unix or Windows (objdump's `base`).
pub fn base(path: &str) -> &str {
    let p = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    &p[p.rfind('\\').map_or(0, |i| i + 1)..]
}

/// Line information for the pcs of one listed function (gosym's
/// `PCToLine`: pcs outside every Go function have no file and line 0; pcs
/// in a function but not in its tables have no file and line -1).
struct Liner<'a, 'd> {
    ix: &'a GoIndex<'d>,
    syms: &'a Symbols<'d>,
    cur: Option<(Func, LineTable<'d>)>,
}

impl<'d> Liner<'_, 'd> {
    fn at(&mut self, pc: u64) -> (&'d str, i64) {
        let hit = self
            .cur
            .as_ref()
            .is_some_and(|(f, _)| pc >= f.entry && pc < f.end);
        if !hit {
            self.cur = self.ix.func_for_pc(pc).map(|f| (f, self.ix.lines(&f)));
        }
        match &self.cur {
            None => ("", 0),
            Some((f, lt)) => match lt.at(pc) {
                Some((file, line)) => (file, line as i64),
                None => self.syms.gosym_pos(self.ix, f, pc),
            },
        }
    }
}

/// Disassemble `img` to `out`. `report` (from [`deferscope_analyze::scan`])
/// is needed for annotations and `--defer-only`.
pub fn write_listing<W: Write>(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    report: Option<&Report>,
    opts: &Options,
    out: &mut W,
) -> io::Result<Stats> {
    let syms = Symbols::new(img, ix, opts.use_symtab);
    let dialect = opts
        .dialect
        .unwrap_or_else(|| Dialect::for_version(ix.version.map(|v| v.minor)));
    let defer_funcs: HashSet<u64> = report
        .map(|r| r.functions.iter().map(|f| f.entry).collect())
        .unwrap_or_default();
    let annotator = match (opts.annotate, report) {
        (true, Some(r)) => Some(annotate::Annotator::new(img, ix, r)),
        _ => None,
    };
    let funcs: Vec<&symbols::Function<'_>> = syms
        .functions
        .iter()
        .filter(|f| selected(ix, &opts.filter, &defer_funcs, f))
        .collect();
    // Batches of about BATCH_BYTES of code, listed in order.
    let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut from, mut bytes) = (0, 0u64);
    for (i, f) in funcs.iter().enumerate() {
        bytes += f.end.saturating_sub(f.start);
        if bytes >= BATCH_BYTES {
            batches.push(from..i + 1);
            (from, bytes) = (i + 1, 0);
        }
    }
    if from < funcs.len() {
        batches.push(from..funcs.len());
    }
    let ctx = Ctx {
        img,
        ix,
        syms: &syms,
        opts,
        dialect,
        defer_funcs: &defer_funcs,
        annotator: annotator.as_ref(),
    };
    // Source lines come from one cache, so `--source` stays on one thread.
    let threads = if opts.source.is_some() {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(batches.len())
    };
    let mut stats = Stats::default();
    let mut legend_due = false;
    if threads <= 1 {
        let mut w = Worker::new(&ctx);
        for (k, f) in funcs.iter().enumerate() {
            w.function(f, k > 0, out)?;
        }
        stats = w.stats;
        legend_due = w.legend_due;
    } else {
        // Worker t lists batches t, t + threads, ...; each sends its
        // batches' text through its own bounded channel, and they are
        // written in order, so at most 2 batches per worker are held.
        std::thread::scope(|sc| -> io::Result<()> {
            let mut rxs = Vec::with_capacity(threads);
            for t in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Done>(2);
                rxs.push(rx);
                let (ctx, funcs, batches) = (&ctx, &funcs, &batches);
                sc.spawn(move || {
                    let mut w = Worker::new(ctx);
                    for b in batches.iter().skip(t).step_by(threads) {
                        let mut buf = Vec::with_capacity(BATCH_BYTES as usize * 8);
                        let before = w.stats;
                        for k in b.clone() {
                            // Writing to a Vec cannot fail.
                            let _ = w.function(funcs[k], k > 0, &mut buf);
                        }
                        let done = Done {
                            text: buf,
                            stats: Stats {
                                functions: w.stats.functions - before.functions,
                                instructions: w.stats.instructions - before.instructions,
                                annotations: w.stats.annotations - before.annotations,
                            },
                            legend: w.legend_due,
                        };
                        if tx.send(done).is_err() {
                            return;
                        }
                    }
                });
            }
            for j in 0..batches.len() {
                let Ok(d) = rxs[j % threads].recv() else {
                    return Err(io::Error::other("disassembly worker failed"));
                };
                out.write_all(&d.text)?;
                stats.functions += d.stats.functions;
                stats.instructions += d.stats.instructions;
                stats.annotations += d.stats.annotations;
                legend_due |= d.legend;
            }
            Ok(())
        })?;
    }
    if legend_due {
        // Once, after the listing, so the listing itself stays in
        // objdump's format.
        out.write_all(b"\n")?;
        out.write_all(LEGEND.as_bytes())?;
    }
    Ok(stats)
}

/// Code bytes per batch of functions handed to a worker thread.
const BATCH_BYTES: u64 = 64 << 10;
/// Worker threads at most (the listing is written by the caller's thread).
const MAX_THREADS: usize = 4;

/// One batch's listing.
struct Done {
    text: Vec<u8>,
    stats: Stats,
    legend: bool,
}

/// What every worker reads.
struct Ctx<'a, 'd> {
    img: &'a Image<'d>,
    ix: &'a GoIndex<'d>,
    syms: &'a Symbols<'d>,
    opts: &'a Options,
    dialect: Dialect,
    defer_funcs: &'a HashSet<u64>,
    annotator: Option<&'a annotate::Annotator>,
}

/// The state of one listing thread, reused from function to function.
struct Worker<'a, 'd> {
    ctx: &'a Ctx<'a, 'd>,
    x86: x86::X86,
    arm: arm64::Arm64,
    liner: Liner<'a, 'd>,
    sources: Option<source::SourceCache>,
    block: Block,
    text: String,
    insns: Vec<annotate::Insn>,
    rows: Vec<usize>,
    styles: tabwriter::Styles,
    stats: Stats,
    legend_due: bool,
}

impl<'a, 'd> Worker<'a, 'd> {
    fn new(ctx: &'a Ctx<'a, 'd>) -> Worker<'a, 'd> {
        let (ix, opts) = (ctx.ix, ctx.opts);
        let sources = opts.source.clone().map(|o| {
            source::SourceCache::new(
                o,
                ix.version.map(|v| v.to_string()),
                ix.buildinfo
                    .as_ref()
                    .and_then(|b| b.main_module.as_ref().map(|m| m.0.clone())),
            )
        });
        let styles: tabwriter::Styles = match (opts.color, sources.is_some()) {
            (false, _) => &[],
            (true, false) => &[STYLE_POS, STYLE_PC, STYLE_HEX, STYLE_INS],
            (true, true) => &[STYLE_PC, STYLE_HEX, STYLE_INS],
        };
        Worker {
            ctx,
            x86: x86::X86::new(ctx.dialect),
            arm: arm64::Arm64::new(ctx.dialect),
            liner: Liner {
                ix,
                syms: ctx.syms,
                cur: None,
            },
            sources,
            block: Block::default(),
            text: String::new(),
            insns: Vec::new(),
            rows: Vec::new(),
            styles,
            stats: Stats::default(),
            legend_due: false,
        }
    }

    /// List one function (`gap`: a blank line before it).
    fn function(
        &mut self,
        func: &symbols::Function<'_>,
        gap: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let Ctx {
            img, syms, opts, ..
        } = *self.ctx;
        let start = func.start.max(syms.text_start);
        let end = func.end.min(syms.text_end);
        let code = if end > start {
            img.read(start, end - start).unwrap_or(&[])
        } else {
            &[]
        };
        if gap {
            out.write_all(b"\n")?;
        }
        self.stats.functions += 1;
        let (hfile, _) = self.liner.at(func.start);
        if opts.color {
            writeln!(
                out,
                "{}TEXT {}(SB) {hfile}{}",
                STYLE_HEADER.0, func.name, STYLE_HEADER.1
            )?;
        } else {
            writeln!(out, "TEXT {}(SB) {hfile}", func.name)?;
        }
        // Decode the whole function into the block first: annotations
        // look around, and become the rows' tails afterwards.
        let block = &mut self.block;
        self.insns.clear();
        self.rows.clear();
        let mut last: Option<(&str, i64)> = None;
        // The base name of the last file (the same pclntab string runs on).
        let mut last_base: (&str, &str) = ("", "");
        let mut off = 0usize;
        while off < code.len() {
            let pc = start + off as u64;
            let (n, facts) = match img.arch {
                Arch::Amd64 => self.x86.decode(
                    &code[off..],
                    pc,
                    syms,
                    opts.syntax == Syntax::Go,
                    &mut self.text,
                ),
                Arch::Arm64 => self.arm.decode(
                    &code[off..],
                    pc,
                    syms,
                    opts.syntax == Syntax::Go,
                    &mut self.text,
                ),
            };
            let n = n.min(code.len() - off).max(1);
            let (file, line) = self.liner.at(pc);
            if let Some(src) = self.sources.as_mut() {
                if last != Some((file, line)) {
                    if let Some(l) = src.line(file, line) {
                        block.text(&l);
                    }
                    last = Some((file, line));
                }
            }
            self.rows.push(block.start_row(self.styles));
            let b = block.buf();
            b.push_str("  ");
            if self.sources.is_none() {
                if !std::ptr::eq(file, last_base.0) {
                    last_base = (file, base(file));
                }
                b.push_str(last_base.1);
                b.push(':');
                push_dec(b, line);
                block.end_cell();
            }
            push_hex(block.buf(), pc);
            block.end_cell();
            hex_cell(img.arch, &code[off..off + n], block.buf());
            block.end_cell();
            block.buf().push_str(&self.text);
            block.end_cell();
            self.insns.push(annotate::Insn { pc, len: n, facts });
            off += n;
        }
        self.stats.instructions += self.insns.len();
        if let Some(a) = self.ctx.annotator {
            if self.ctx.defer_funcs.contains(&func.start) || a.has_runtime_calls(&self.insns) {
                let notes = a.annotate(func.start, &self.insns);
                for (k, note) in notes.iter().enumerate() {
                    let Some(note) = note else { continue };
                    self.stats.annotations += 1;
                    self.legend_due = true;
                    if opts.color {
                        block.set_tail(
                            self.rows[k],
                            &[STYLE_COMMENT.0, "// ", note, STYLE_COMMENT.1],
                        );
                    } else {
                        block.set_tail(self.rows[k], &["// ", note]);
                    }
                }
            }
        }
        block.flush(out)
    }
}

/// Go's `%d`.
fn push_dec(s: &mut String, v: i64) {
    if (0..10).contains(&v) {
        s.push((b'0' + v as u8) as char);
        return;
    }
    if v < 0 {
        s.push('-');
    }
    let mut u = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(d as char);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Go's `%#x` of an address.
fn push_hex(s: &mut String, v: u64) {
    s.push_str("0x");
    let nibbles = (64 - (v | 1).leading_zeros()).div_ceil(4);
    for i in (0..nibbles).rev() {
        s.push(HEX[(v >> (4 * i) & 15) as usize] as char);
    }
}

fn hex_cell(arch: Arch, bytes: &[u8], s: &mut String) {
    let byte = |s: &mut String, b: u8| {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    };
    if arch == Arch::Arm64 && bytes.len().is_multiple_of(4) {
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            // Words print big-end first.
            for &b in w.iter().rev() {
                byte(s, b);
            }
        }
    } else {
        for &b in bytes {
            byte(s, b);
        }
    }
}

fn selected(
    ix: &GoIndex<'_>,
    filter: &Filter,
    defer_funcs: &HashSet<u64>,
    f: &symbols::Function<'_>,
) -> bool {
    if let Some(re) = &filter.funcs {
        if !re.is_match(&f.name) {
            return false;
        }
    }
    if let Some(pc) = filter.pc {
        if !(pc >= f.start && pc < f.end.max(f.start + 1)) {
            return false;
        }
    }
    if filter.defer_only && !defer_funcs.contains(&f.start) {
        return false;
    }
    if let Some((file, line)) = &filter.line {
        let Some(gf) = ix.func_for_pc(f.start) else {
            return false;
        };
        let lt = ix.lines(&gf);
        let want = *line as i32;
        let hit = lt.line_runs().iter().any(|&(s, e, l)| {
            l == want
                && s < f.end
                && e > f.start
                && lt
                    .at(s.max(f.start))
                    .is_some_and(|(p, _)| path_suffix_match(p, file))
        });
        if !hit {
            return false;
        }
    }
    true
}

/// `full` ends with `suffix` at a path-component boundary.
pub fn path_suffix_match(full: &str, suffix: &str) -> bool {
    let full = full.replace('\\', "/");
    let suffix = suffix.replace('\\', "/");
    full == suffix
        || full
            .strip_suffix(suffix.as_str())
            .is_some_and(|p| p.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base("/a/b/c.go"), "c.go");
        assert_eq!(base(r"C:\x\y.go"), "y.go");
        assert_eq!(base(""), "");
    }

    #[test]
    fn suffix_match() {
        assert!(path_suffix_match("/w/m/main.go", "main.go"));
        assert!(path_suffix_match("/w/m/main.go", "m/main.go"));
        assert!(!path_suffix_match("/w/m/xmain.go", "main.go"));
    }

    #[test]
    fn numbers_as_go_prints_them() {
        // fmt's %d and %#x.
        let mut s = String::new();
        for v in [0i64, 7, -1, 42, 1234567890, i64::MIN] {
            s.clear();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        for v in [0u64, 1, 0xf, 0x10, 0x401000, u64::MAX] {
            s.clear();
            push_hex(&mut s, v);
            assert_eq!(s, format!("{v:#x}"));
        }
        s.clear();
        hex_cell(Arch::Arm64, &[0xff, 0x3f, 0x00, 0x39, 1, 2, 3, 4], &mut s);
        assert_eq!(s, "39003fff 04030201");
        s.clear();
        hex_cell(Arch::Amd64, &[0xc6, 0x44, 0x24, 0x07, 0x00], &mut s);
        assert_eq!(s, "c644240700");
    }

    #[test]
    fn dialects() {
        let d19 = Dialect::for_version(Some(19));
        assert!(!d19.x86_cmp_swap && d19.x86_imm_sym_all && !d19.arm64_wb_all);
        let d27 = Dialect::for_version(Some(27));
        assert!(d27.x86_cmp_swap && !d27.x86_imm_sym_all && d27.arm64_wb_all);
    }
}

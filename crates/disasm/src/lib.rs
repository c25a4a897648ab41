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
pub mod source;
pub mod symbols;
pub mod tabwriter;
pub mod text;
pub mod x86;

use std::collections::HashSet;
use std::io::{self, Write};

use deferscope_index::{Func, GoIndex, LineTable};
use deferscope_load::{Arch, Image};
use deferscope_model::listing::{FunctionRows, Row, RowSink};
use deferscope_model::Scan;

pub use deferscope_model::listing::base;
pub use symbols::{SymbolSource, Symbols};

pub(crate) use text::{push_dec, push_hex};

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
    /// Name symbols by their unescaped package paths, as the reports do
    /// (the HTML page's listings); else as objdump does.
    pub real_names: bool,
    /// More trailing comments by pc (the explain pass's
    /// [`deferscope_analyze::explain::listing_notes`]), appended to the
    /// annotator's.
    pub site_notes: std::collections::HashMap<u64, String>,
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
            real_names: false,
            site_notes: std::collections::HashMap::new(),
        }
    }
}

/// What a listing printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub functions: usize,
    pub instructions: usize,
    pub annotations: usize,
    /// With `--source`: the distinct Go source files found and not found.
    pub source_files_found: usize,
    pub source_files_missing: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.functions += o.functions;
        self.instructions += o.instructions;
        self.annotations += o.annotations;
        self.source_files_found += o.source_files_found;
        self.source_files_missing += o.source_files_missing;
    }
}

impl std::ops::Sub for Stats {
    type Output = Stats;
    fn sub(self, o: Stats) -> Stats {
        Stats {
            functions: self.functions - o.functions,
            instructions: self.instructions - o.instructions,
            annotations: self.annotations - o.annotations,
            source_files_found: self.source_files_found - o.source_files_found,
            source_files_missing: self.source_files_missing - o.source_files_missing,
        }
    }
}

/// Line information for the pcs of one listed function (gosym's
/// `PCToLine`: pcs outside every Go function have no file and line 0; pcs
/// in a function but not in its tables get debug/gosym's answer,
/// [`deferscope_index::Pclntab::gosym_pos`]).
struct Liner<'a, 'd> {
    ix: &'a GoIndex<'d>,
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
                None => self.ix.pcln.gosym_pos(f, pc),
            },
        }
    }
}

/// What every listing thread reads: the binary, its symbols, the options
/// and the annotator.
struct Ctx<'a, 'd> {
    img: &'a Image<'d>,
    ix: &'a GoIndex<'d>,
    syms: &'a Symbols<'d>,
    opts: &'a Options,
    dialect: Dialect,
    defer_funcs: HashSet<u64>,
    annotator: Option<annotate::Annotator>,
}

impl<'a, 'd> Ctx<'a, 'd> {
    fn new(
        img: &'a Image<'d>,
        ix: &'a GoIndex<'d>,
        syms: &'a Symbols<'d>,
        scan: Option<&Scan>,
        opts: &'a Options,
    ) -> Ctx<'a, 'd> {
        Ctx {
            img,
            ix,
            syms,
            opts,
            dialect: opts
                .dialect
                .unwrap_or_else(|| Dialect::for_version(ix.version.map(|v| v.minor))),
            defer_funcs: scan
                .map(|r| r.functions.iter().map(|f| f.entry).collect())
                .unwrap_or_default(),
            annotator: match (opts.annotate, scan) {
                (true, Some(r)) => Some(annotate::Annotator::new(img, ix, r)),
                _ => None,
            },
        }
    }

    /// The functions the filter selects, in address order.
    fn selected(&self) -> Vec<&'a symbols::Function<'d>> {
        self.syms
            .functions
            .iter()
            .filter(|f| selected(self.ix, &self.opts.filter, &self.defer_funcs, f))
            .collect()
    }
}

/// List the functions `opts` selects to `sink`, one function at a time,
/// in address order, on the caller's thread. `scan` (from
/// [`deferscope_analyze::scan`]) is needed for annotations and
/// `--defer-only`.
pub fn list_rows(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    scan: Option<&Scan>,
    opts: &Options,
    sink: &mut impl RowSink,
) -> io::Result<Stats> {
    let mut syms = Symbols::new(img, ix, opts.use_symtab);
    if opts.real_names {
        syms = syms.with_real_names();
    }
    let ctx = Ctx::new(img, ix, &syms, scan, opts);
    let mut w = Worker::new(&ctx);
    for f in ctx.selected() {
        w.function(f, sink)?;
    }
    Ok(w.finish())
}

/// The defer machinery of the functions that start at `entries`, per
/// instruction: `(pc, length, role)` for every annotated instruction
/// ([`annotate::Machinery`]), in address order. The same decoding and
/// annotator as the listing, without printing; `scan` gives the sites.
/// Entries that are not function starts are left out.
pub fn machinery(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    scan: &Scan,
    entries: &[u64],
) -> std::collections::HashMap<u64, Vec<(u64, u32, annotate::Machinery)>> {
    let syms = Symbols::new(img, ix, false);
    let opts = Options::default();
    let ctx = Ctx::new(img, ix, &syms, Some(scan), &opts);
    let mut w = Worker::new(&ctx);
    let mut out = std::collections::HashMap::new();
    let Some(a) = ctx.annotator.as_ref() else {
        return out;
    };
    for &entry in entries {
        let Ok(k) = syms.functions.binary_search_by_key(&entry, |f| f.start) else {
            continue;
        };
        w.decode(&syms.functions[k]);
        let notes = a.annotate(entry, &w.insns);
        let roles = w
            .insns
            .iter()
            .zip(&notes)
            .filter_map(|(i, n)| {
                let m = annotate::Machinery::of_note(n.as_deref()?)?;
                Some((i.pc, i.len as u32, m))
            })
            .collect();
        out.insert(entry, roles);
    }
    out
}

/// Disassemble `img` to `out` in `go tool objdump`'s columns
/// ([`text::TextPrinter`]), with the legend after the listing when any
/// instruction was annotated. `scan` (from [`deferscope_analyze::scan`])
/// is needed for annotations and `--defer-only`.
pub fn write_listing<W: Write>(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    scan: Option<&Scan>,
    opts: &Options,
    out: &mut W,
) -> io::Result<Stats> {
    write_listing_with(img, ix, scan, opts, out, &mut |_, _| {})
}

/// [`write_listing`], calling `progress(k, n)` as the listing goes: `k` of
/// the `n` selected functions written to `out` (after each batch, or every
/// [`PROGRESS_EVERY`] functions on one thread, and at the end).
pub fn write_listing_with<W: Write>(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    scan: Option<&Scan>,
    opts: &Options,
    out: &mut W,
    progress: &mut dyn FnMut(usize, usize),
) -> io::Result<Stats> {
    let mut syms = Symbols::new(img, ix, opts.use_symtab);
    if opts.real_names {
        syms = syms.with_real_names();
    }
    let ctx = Ctx::new(img, ix, &syms, scan, opts);
    let funcs = ctx.selected();
    let n = funcs.len();
    progress(0, n);
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
    if threads <= 1 {
        let mut w = Worker::new(&ctx);
        let mut p = text::TextPrinter::new(&mut *out, img.arch, opts, false);
        for (k, f) in funcs.iter().enumerate() {
            w.function(f, &mut p)?;
            if (k + 1) % PROGRESS_EVERY == 0 {
                progress(k + 1, n);
            }
        }
        stats = w.finish();
    } else {
        // Worker t lists batches t, t + threads, ...; each sends its
        // batches' text through its own bounded channel, and they are
        // written in order, so at most 2 batches per worker are held.
        std::thread::scope(|sc| -> io::Result<()> {
            let mut rxs = Vec::with_capacity(threads);
            for t in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, Stats)>(2);
                rxs.push(rx);
                let (ctx, funcs, batches) = (&ctx, &funcs, &batches);
                sc.spawn(move || {
                    let mut w = Worker::new(ctx);
                    let mut p = text::TextPrinter::new(Vec::new(), ctx.img.arch, ctx.opts, false);
                    for b in batches.iter().skip(t).step_by(threads) {
                        p.start_batch(Vec::with_capacity(BATCH_BYTES as usize * 8), b.start > 0);
                        let before = w.stats;
                        for &f in &funcs[b.clone()] {
                            // Writing to a Vec cannot fail.
                            let _ = w.function(f, &mut p);
                        }
                        let text = std::mem::take(&mut p.out);
                        if tx.send((text, w.stats - before)).is_err() {
                            return;
                        }
                    }
                });
            }
            for j in 0..batches.len() {
                let Ok((text, done)) = rxs[j % threads].recv() else {
                    return Err(io::Error::other("disassembly worker failed"));
                };
                out.write_all(&text)?;
                stats += done;
                progress(batches[j].end, n);
            }
            Ok(())
        })?;
    }
    progress(n, n);
    if stats.annotations > 0 {
        // Once, after the listing, so the listing itself stays in
        // objdump's format.
        out.write_all(b"\n")?;
        out.write_all(text::LEGEND.as_bytes())?;
    }
    Ok(stats)
}

/// Functions listed on one thread between two progress calls.
const PROGRESS_EVERY: usize = 64;
/// Code bytes per batch of functions handed to a worker thread.
const BATCH_BYTES: u64 = 64 << 10;
/// Worker threads at most (the listing is written by the caller's thread).
const MAX_THREADS: usize = 4;

/// One instruction of the function being listed: where its text and
/// source line sit in [`Worker::arena`].
struct RowRec<'d> {
    pc: u64,
    bytes: &'d [u8],
    file: &'d str,
    line: i64,
    text: std::ops::Range<usize>,
    source: Option<std::ops::Range<usize>>,
}

/// The state of one listing thread, reused from function to function:
/// decoders, the line cursor, and the buffers a function's rows are
/// built in.
struct Worker<'a, 'd> {
    ctx: &'a Ctx<'a, 'd>,
    x86: x86::X86,
    arm: arm64::Arm64,
    liner: Liner<'a, 'd>,
    sources: Option<source::SourceCache>,
    /// One instruction's text, as a decoder prints it.
    text: String,
    /// The function's instruction texts and source lines.
    arena: String,
    recs: Vec<RowRec<'d>>,
    insns: Vec<annotate::Insn>,
    stats: Stats,
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
        Worker {
            ctx,
            x86: x86::X86::new(ctx.dialect),
            arm: arm64::Arm64::new(ctx.dialect),
            liner: Liner { ix, cur: None },
            sources,
            text: String::new(),
            arena: String::new(),
            recs: Vec::new(),
            insns: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The statistics of everything listed, with the source files found.
    fn finish(&self) -> Stats {
        let mut s = self.stats;
        if let Some(src) = &self.sources {
            (s.source_files_found, s.source_files_missing) = src.files_found_missing();
        }
        s
    }

    /// Decode one function, annotate it, and hand its rows to `sink`.
    fn function(
        &mut self,
        func: &symbols::Function<'_>,
        sink: &mut impl RowSink,
    ) -> io::Result<()> {
        let (hfile, _) = self.liner.at(func.start);
        self.decode(func);
        self.stats.functions += 1;
        self.stats.instructions += self.insns.len();
        let notes = match self.ctx.annotator.as_ref() {
            Some(a)
                if self.ctx.defer_funcs.contains(&func.start)
                    || a.has_runtime_calls(&self.insns) =>
            {
                a.annotate(func.start, &self.insns)
            }
            _ => Vec::new(),
        };
        let mut notes = notes;
        let extra = &self.ctx.opts.site_notes;
        if self.ctx.opts.annotate && !extra.is_empty() {
            notes.resize(self.insns.len(), None);
            for (n, i) in notes.iter_mut().zip(&self.insns) {
                if let Some(e) = extra.get(&i.pc) {
                    *n = Some(match n.take() {
                        Some(a) => format!("{a}; {e}"),
                        None => e.clone(),
                    });
                }
            }
        }
        self.stats.annotations += notes.iter().flatten().count();
        let arena = &self.arena;
        let rows: Vec<Row<'_>> = self
            .recs
            .iter()
            .enumerate()
            .map(|(k, r)| Row {
                pc: r.pc,
                bytes: r.bytes,
                file: r.file,
                line: r.line,
                text: &arena[r.text.clone()],
                annotation: notes.get(k).and_then(|n| n.as_deref()),
                source: r.source.clone().map(|s| &arena[s]),
            })
            .collect();
        sink.function(&FunctionRows {
            name: &func.name,
            entry: func.start,
            file: hfile,
            rows: &rows,
        })
    }

    /// Decode the function's code into [`Worker::recs`] and
    /// [`Worker::insns`].
    fn decode(&mut self, func: &symbols::Function<'_>) {
        let Ctx {
            img, syms, opts, ..
        } = *self.ctx;
        let start = func.start.max(syms.text_start);
        let end = func.end.min(syms.text_end);
        let code: &'d [u8] = if end > start {
            img.read(start, end - start).unwrap_or(&[])
        } else {
            &[]
        };
        self.arena.clear();
        self.recs.clear();
        self.insns.clear();
        let go = opts.syntax == Syntax::Go;
        let mut last: Option<(&str, i64)> = None;
        let mut off = 0usize;
        while off < code.len() {
            let pc = start + off as u64;
            let (n, facts) = match img.arch {
                Arch::Amd64 => self.x86.decode(&code[off..], pc, syms, go, &mut self.text),
                Arch::Arm64 => self.arm.decode(&code[off..], pc, syms, go, &mut self.text),
            };
            let n = n.min(code.len() - off).max(1);
            let (file, line) = self.liner.at(pc);
            let mut source = None;
            if let Some(src) = self.sources.as_mut() {
                if last != Some((file, line)) {
                    if let Some(l) = src.line(file, line) {
                        let at = self.arena.len();
                        self.arena.push_str(&l);
                        source = Some(at..self.arena.len());
                    }
                    last = Some((file, line));
                }
            }
            let at = self.arena.len();
            self.arena.push_str(&self.text);
            self.recs.push(RowRec {
                pc,
                bytes: &code[off..off + n],
                file,
                line,
                text: at..self.arena.len(),
                source,
            });
            self.insns.push(annotate::Insn { pc, len: n, facts });
            off += n;
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
        // The symbol's name, or its package path unescaped as the reports
        // show it (docs/design.md §4.9).
        if !re.is_match(&f.name) && !re.is_match(&deferscope_index::names::display_name(&f.name)) {
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
    fn suffix_match() {
        assert!(path_suffix_match("/w/m/main.go", "main.go"));
        assert!(path_suffix_match("/w/m/main.go", "m/main.go"));
        assert!(!path_suffix_match("/w/m/xmain.go", "main.go"));
    }

    #[test]
    fn dialects() {
        let d19 = Dialect::for_version(Some(19));
        assert!(!d19.x86_cmp_swap && d19.x86_imm_sym_all && !d19.arm64_wb_all);
        let d27 = Dialect::for_version(Some(27));
        assert!(d27.x86_cmp_swap && !d27.x86_imm_sym_all && d27.arm64_wb_all);
    }
}

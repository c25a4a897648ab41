//! The page's disassembly: rows of `deferscope-disasm` in, compact
//! listings out, within a size budget.
//!
//! A [`Collector`] is the [`RowSink`] the disassembler lists the report's
//! functions into (`--defer-only`, annotated). It keeps no rows: each
//! function is encoded as it arrives, as an excerpt (the annotated
//! instructions with one instruction of context either side, and the count
//! left out) and, when it is a full-listing candidate, whole. The encoding
//! is one line per instruction: `file:line` only when it changes, the pc as
//! an offset from the entry, the instruction, the annotation; no
//! instruction bytes. [`Collector::finish`] then hands out the budgets in
//! priority order (see the module docs of [`crate::html`]).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io;

use deferscope_model::explain::Explain;
use deferscope_model::listing::{base, FunctionRows, Row, RowSink};
use deferscope_model::{Kind, Scan};
use serde::Serialize;

use super::{site_funcs, EXCERPT_BUDGET, FULL_LISTING_BUDGET, FULL_LISTING_MAX_FUNC_BYTES};

/// How much of a function's disassembly the page carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListingMode {
    Full,
    Excerpt,
}

/// Compact listings, by function entry.
#[derive(Default, Debug)]
pub struct Listings {
    pub by_entry: HashMap<u64, (ListingMode, String)>,
}

impl Listings {
    /// Total bytes of listing text.
    pub fn bytes(&self) -> usize {
        self.by_entry.values().map(|(_, s)| s.len()).sum()
    }
}

/// The report's functions, most in need of a look first: heap sites, then
/// stack sites, then reasons, main module before dependencies before the
/// standard library, then by address.
fn priority(r: &Scan, x: &Explain) -> Vec<usize> {
    let mut counts = vec![(0usize, 0usize); r.functions.len()];
    for (s, owner) in r.sites.iter().zip(site_funcs(r)) {
        if let Some(i) = owner {
            match s.kind {
                Kind::HeapAllocated => counts[i].0 += 1,
                Kind::StackAllocated => counts[i].1 += 1,
                Kind::OpenCoded => {}
            }
        }
    }
    let reasons = |i: usize| x.functions.get(i).map_or(0, |fx| fx.reasons.len());
    let mut order: Vec<usize> = (0..r.functions.len()).collect();
    order.sort_by_key(|&i| {
        let f = &r.functions[i];
        (
            std::cmp::Reverse(counts[i].0),
            std::cmp::Reverse(counts[i].1),
            std::cmp::Reverse(reasons(i)),
            f.origin,
            f.entry,
        )
    });
    order
}

/// Whether a function's defers are not all open-coded (or it has a reason,
/// or encloses a range-over-func loop that defers): the full-listing
/// candidates.
fn wants_full(r: &Scan, x: &Explain, i: usize, not_open: &HashSet<&str>) -> bool {
    let f = &r.functions[i];
    not_open.contains(f.name.as_str())
        || x.functions.get(i).is_some_and(|fx| !fx.reasons.is_empty())
        || f.calls_deferrangefunc
}

/// One function's rows, encoded.
fn encode(rows: &[Row<'_>], entry: u64, mode: ListingMode) -> String {
    let keep: Vec<bool> = match mode {
        ListingMode::Full => vec![true; rows.len()],
        ListingMode::Excerpt => {
            let mut k = vec![false; rows.len()];
            for (i, r) in rows.iter().enumerate() {
                if r.annotation.is_some() {
                    let hi = (i + 2).min(rows.len());
                    k[i.saturating_sub(1)..hi].fill(true);
                }
            }
            k
        }
    };
    let mut s = String::new();
    let mut last_pos: Option<(&str, i64)> = None;
    let mut skipped = 0usize;
    for (r, &k) in rows.iter().zip(&keep) {
        if !k {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            let _ = writeln!(s, "~{skipped}");
            skipped = 0;
        }
        let pos = (base(r.file), r.line);
        if last_pos != Some(pos) {
            let _ = write!(s, "{}:{}", pos.0, pos.1);
            last_pos = Some(pos);
        }
        let _ = write!(s, "\t{:x}\t{}", r.pc.wrapping_sub(entry), r.text.trim());
        if let Some(n) = r.annotation {
            s.push('\t');
            s.push_str(n.trim());
        }
        s.push('\n');
    }
    if skipped > 0 {
        let _ = writeln!(s, "~{skipped}");
    }
    s
}

/// Collects the listings of a report's functions: see the module docs.
pub struct Collector {
    /// Functions in priority order.
    order: Vec<u64>,
    /// Entries of the report's functions.
    entries: HashSet<u64>,
    /// Entries of the functions that may get a full listing.
    full: HashSet<u64>,
    /// Entry -> (excerpt, full listing when a candidate).
    got: HashMap<u64, (String, Option<String>)>,
    /// Bytes of full listings and of excerpts the page may carry.
    budgets: (usize, usize),
}

impl Collector {
    /// Decide which functions may get a full listing, for the report `r`
    /// and its explain pass `x`. The candidates are chosen up front from
    /// an estimate (about 5 bytes of listing per byte of code), so that a
    /// binary with thousands of such functions is not held in memory in
    /// full; [`Collector::finish`] applies the exact budget.
    pub fn new(r: &Scan, x: &Explain) -> Collector {
        Collector::with_budgets(r, x, FULL_LISTING_BUDGET, EXCERPT_BUDGET)
    }

    /// [`Collector::new`] with other budgets than [`FULL_LISTING_BUDGET`]
    /// and [`EXCERPT_BUDGET`] (a page of many binaries gives each less).
    pub fn with_budgets(
        r: &Scan,
        x: &Explain,
        full_budget: usize,
        excerpt_budget: usize,
    ) -> Collector {
        let order = priority(r, x);
        let not_open: HashSet<&str> = r
            .sites
            .iter()
            .filter(|s| s.kind != Kind::OpenCoded)
            .map(|s| s.function.as_str())
            .collect();
        let mut full = HashSet::new();
        let mut left = full_budget as u64 * 2;
        for &i in &order {
            let f = &r.functions[i];
            if wants_full(r, x, i, &not_open) && f.size <= FULL_LISTING_MAX_FUNC_BYTES {
                let est = f.size * 5;
                if est <= left {
                    left -= est;
                    full.insert(f.entry);
                }
            }
        }
        Collector {
            order: order.iter().map(|&i| r.functions[i].entry).collect(),
            entries: r.functions.iter().map(|f| f.entry).collect(),
            full,
            got: HashMap::new(),
            budgets: (full_budget, excerpt_budget),
        }
    }

    /// In priority order, each function's full listing while
    /// [`FULL_LISTING_BUDGET`] lasts, else its excerpt while
    /// [`EXCERPT_BUDGET`] lasts, else none.
    pub fn finish(mut self) -> Listings {
        let mut out = Listings::default();
        let (mut full_left, mut excerpt_left) = self.budgets;
        for entry in &self.order {
            let Some((excerpt, full)) = self.got.remove(entry) else {
                continue;
            };
            if let Some(t) = full.filter(|t| t.len() <= full_left) {
                full_left -= t.len();
                out.by_entry.insert(*entry, (ListingMode::Full, t));
            } else if excerpt.len() <= excerpt_left {
                excerpt_left -= excerpt.len();
                out.by_entry.insert(*entry, (ListingMode::Excerpt, excerpt));
            }
        }
        out
    }
}

impl RowSink for Collector {
    fn function(&mut self, f: &FunctionRows<'_>) -> io::Result<()> {
        // A function is known by its first instruction's address.
        let Some(entry) = f.rows.first().map(|r| r.pc) else {
            return Ok(());
        };
        if !self.entries.contains(&entry) {
            return Ok(());
        }
        let excerpt = encode(f.rows, entry, ListingMode::Excerpt);
        let full = self
            .full
            .contains(&entry)
            .then(|| encode(f.rows, entry, ListingMode::Full));
        self.got.insert(entry, (excerpt, full));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_annotated_rows_with_context() {
        let texts: Vec<String> = (0..10).map(|i| format!("NOP{i}")).collect();
        let rows: Vec<Row> = (0..10)
            .map(|i| Row {
                pc: 0x1000 + i as u64 * 4,
                bytes: &[],
                file: "/src/a.go",
                line: if i < 5 { 1 } else { 2 },
                text: &texts[i],
                annotation: (i == 5).then_some("deferBits = 0"),
                source: None,
            })
            .collect();
        let s = encode(&rows, 0x1000, ListingMode::Excerpt);
        assert_eq!(
            s,
            "~4\na.go:1\t10\tNOP4\na.go:2\t14\tNOP5\tdeferBits = 0\n\t18\tNOP6\n~3\n"
        );
        let full = encode(&rows, 0x1000, ListingMode::Full);
        assert_eq!(full.lines().count(), 10);
    }
}

//! Which units of the DWARF are read (design.md §6.4, "Loading").
//!
//! Parsing every DIE of every unit to find the subprograms' entry
//! addresses cost more than the explain pass itself on cmd/go. Go emits
//! one compilation unit per package, named by the package's path, and a
//! function's subprogram is in its package's unit; so the units are only
//! listed (header and root DIE) when the sections are decompressed, and
//! indexed when a question needs them: [`Dwarf::want`] indexes the units
//! of the packages its functions' names give; a question about an entry
//! no indexed unit holds first indexes the units where the name `want`
//! gave it is written (a function inlined into another package is in
//! that package's unit), then all the others, so every answer is the one
//! a full index gives (tests/dwarf_units.rs checks it on cmd/go).

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use gimli::{Abbreviations, DebugInfoOffset, Section, Unit, UnitOffset};

use super::{index_unit, light_unit_with, read_var, Dwarf, Parsed, R};

/// A function a caller will ask about.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'n> {
    /// Its entry address.
    pub entry: u64,
    /// Its name in the Go function table (`cmd/go/internal/modload.f.func1`).
    pub name: &'n str,
    /// The line of its entry, from the Go line table (`.debug_line` is
    /// generated from the same table, so its row at the entry has this
    /// line); used when the subprogram has no `DW_AT_decl_line` (go1.19).
    pub line: Option<u64>,
}

/// The entry-address table, built unit by unit.
pub(super) struct FuncIndex {
    /// (low_pc, DIE offset in .debug_info) of each top-level subprogram
    /// of the units indexed, sorted by address, one per address (the
    /// lowest offset).
    funcs: Vec<(u64, usize)>,
    /// Whether each unit (as [`Parsed::units`]) is indexed.
    indexed: Vec<bool>,
    /// Every unit is indexed.
    all: bool,
    /// The names [`Dwarf::want`] gave of the entries its units did not
    /// hold.
    names: HashMap<u64, String>,
}

impl FuncIndex {
    pub(super) fn new(units: usize) -> FuncIndex {
        FuncIndex {
            funcs: Vec::new(),
            indexed: vec![false; units],
            all: units == 0,
            names: HashMap::new(),
        }
    }
}

impl Dwarf<'_> {
    /// Decompress the sections and list the units now, as the first
    /// question would (to do it on another thread meanwhile); false when
    /// the DWARF is unreadable.
    pub fn prepare(&self) -> bool {
        self.parsed().is_some()
    }

    /// Index the units of the packages of `funcs`, and keep their names
    /// (for those not found there) and entry lines. Questions about other
    /// functions still get answers, after indexing more units. May be
    /// called several times, from another thread than the questions'.
    pub fn want(&self, funcs: &[Wanted<'_>]) {
        {
            let mut lines = self
                .entry_lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            lines.extend(funcs.iter().filter_map(|w| Some((w.entry, w.line?))));
        }
        let Some(p) = self.parsed() else {
            return;
        };
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in p.names.iter().enumerate() {
            by_name.entry(n).or_default().push(i);
        }
        let mut pick = vec![false; p.units.len()];
        for w in funcs {
            for i in package_prefixes(w.name)
                .filter_map(|n| by_name.get(n))
                .flatten()
            {
                pick[*i] = true;
            }
        }
        let dwarf = p
            .sections
            .borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
        let mut ix = lock(p);
        index_units(p, &dwarf, &mut ix, |i| pick[i]);
        for w in funcs {
            if ix.funcs.binary_search_by_key(&w.entry, |f| f.0).is_err() {
                ix.names.insert(w.entry, w.name.to_string());
            }
        }
    }

    /// The entry line [`Dwarf::want`] was given for `entry`.
    pub(super) fn hinted_line(&self, entry: u64) -> Option<u64> {
        self.entry_lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&entry)
            .copied()
    }
}

/// The names a function's package path can have: each prefix of `name`
/// (before any type arguments `[...]`) that a `.` follows
/// (`gopkg.in/yaml.v3.Marshal`: `gopkg`, `gopkg.in/yaml`,
/// `gopkg.in/yaml.v3`).
fn package_prefixes(name: &str) -> impl Iterator<Item = &str> {
    let plain = name.split('[').next().unwrap_or(name);
    plain.match_indices('.').map(move |(k, _)| &plain[..k])
}

fn lock<'a>(p: &'a Parsed<'_>) -> MutexGuard<'a, FuncIndex> {
    p.index.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The units: offsets and names (`DW_AT_name`; empty when absent), from
/// each unit's header and root DIE only; the abbreviations parsed.
pub(super) struct List {
    pub offsets: Vec<usize>,
    pub names: Vec<Box<str>>,
    pub abbrevs: Abbrevs,
}

/// List the units of `dwarf`.
pub(super) fn list(dwarf: &gimli::Dwarf<R<'_>>) -> List {
    let mut l = List {
        offsets: Vec::new(),
        names: Vec::new(),
        abbrevs: HashMap::new(),
    };
    let mut headers = dwarf.units();
    while let Ok(Some(h)) = headers.next() {
        let Some(off) = h.offset().as_debug_info_offset() else {
            continue;
        };
        l.offsets.push(off.0);
        let name = abbreviations(&mut l.abbrevs, dwarf, &h)
            .and_then(|a| light_unit_with(dwarf, h, a))
            .and_then(|u| {
                let mut c = u.entries();
                let (_, root) = c.next_dfs().ok()??;
                let v = root.attr_value(gimli::DW_AT_name).ok()??;
                let s = dwarf.attr_string(&u, v).ok()?;
                Some(String::from_utf8_lossy(s.slice()).into())
            });
        l.names.push(name.unwrap_or_default());
    }
    l
}

/// Index the units not yet indexed that `pick` selects.
fn index_units(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    ix: &mut FuncIndex,
    pick: impl Fn(usize) -> bool,
) {
    let before = ix.funcs.len();
    for (i, &off) in p.units.iter().enumerate() {
        if ix.indexed[i] || !pick(i) {
            continue;
        }
        ix.indexed[i] = true;
        let Ok(h) = dwarf.debug_info.header_from_offset(DebugInfoOffset(off)) else {
            continue;
        };
        if let Some(unit) = light_unit_cached(p, dwarf, h) {
            index_unit(dwarf, &unit, &mut ix.funcs);
        }
    }
    if ix.funcs.len() != before {
        // Two sorted runs: the stable sort merges them in linear time.
        ix.funcs[before..].sort_unstable();
        ix.funcs.sort();
        ix.funcs.dedup_by_key(|f| f.0);
    }
    ix.all = ix.indexed.iter().all(|&d| d);
}

/// Index every unit; the number of subprograms with an entry address.
pub(super) fn index_all(p: &Parsed<'_>) -> usize {
    let dwarf = p
        .sections
        .borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
    let mut ix = lock(p);
    index_units(p, &dwarf, &mut ix, |_| true);
    ix.funcs.len()
}

/// [`super::light_unit_with`], the abbreviations parsed once per table.
pub(super) fn light_unit_cached<'a>(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'a>>,
    header: gimli::UnitHeader<R<'a>>,
) -> Option<Unit<R<'a>>> {
    let abbrevs = {
        let mut all = p.abbrevs.lock().unwrap_or_else(PoisonError::into_inner);
        abbreviations(&mut all, dwarf, &header)?
    };
    light_unit_with(dwarf, header, abbrevs)
}

/// The abbreviations of `header`'s unit, parsed once into `cache`.
fn abbreviations(
    cache: &mut Abbrevs,
    dwarf: &gimli::Dwarf<R<'_>>,
    header: &gimli::UnitHeader<R<'_>>,
) -> Option<Arc<Abbreviations>> {
    let off = header.debug_abbrev_offset();
    if let Some(a) = cache.get(&off.0) {
        return Some(a.clone());
    }
    let a = Arc::new(dwarf.debug_abbrev.abbreviations(off).ok()?);
    cache.insert(off.0, a.clone());
    Some(a)
}

/// Parsed abbreviation tables by `.debug_abbrev` offset.
pub(super) type Abbrevs = HashMap<usize, Arc<Abbreviations>>;

/// The `.debug_info` offset of the subprogram whose code starts at
/// `entry`: from the units indexed, else (when not all are) after
/// indexing the rest.
pub(super) fn entry_die(p: &Parsed<'_>, dwarf: &gimli::Dwarf<R<'_>>, entry: u64) -> Option<usize> {
    let mut ix = lock(p);
    let find = |ix: &FuncIndex| {
        ix.funcs
            .binary_search_by_key(&entry, |f| f.0)
            .ok()
            .map(|i| ix.funcs[i].1)
    };
    if let Some(d) = find(&ix) {
        return Some(d);
    }
    if ix.all {
        return None;
    }
    // A function inlined into another package (sync.OnceFunc's closures)
    // is in that package's unit: first the units where its name is
    // written.
    if let Some(name) = ix.names.remove(&entry) {
        let info = dwarf.debug_info.reader().slice();
        let mut pat = name.into_bytes();
        pat.push(0);
        let mut pick = vec![false; p.units.len()];
        for at in memchr::memmem::find_iter(info, &pat) {
            if let Some(i) = p.units.partition_point(|&u| u <= at).checked_sub(1) {
                pick[i] = true;
            }
        }
        index_units(p, dwarf, &mut ix, |i| pick[i]);
        if let Some(d) = find(&ix) {
            return Some(d);
        }
    }
    index_units(p, dwarf, &mut ix, |_| true);
    find(&ix)
}

/// The unit offset of the first top-level subprogram of `unit` named
/// `name` (through its abstract origin): one pass over the unit the first
/// time one of its names is asked, not one per question.
pub(super) fn subprogram_named(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    name: &str,
) -> Option<UnitOffset> {
    let key = unit.header.offset().as_debug_info_offset()?.0;
    let mut all = p.by_name.lock().unwrap_or_else(PoisonError::into_inner);
    let names = all.entry(key).or_insert_with(|| {
        let mut names = HashMap::new();
        let mut cursor = unit.entries();
        let mut depth = 0isize;
        // Bounded by the unit's size: every step consumes bytes.
        while let Ok(Some((delta, e))) = cursor.next_dfs() {
            depth += delta;
            if depth == 1 && e.tag() == gimli::DW_TAG_subprogram {
                names
                    .entry(read_var(p, dwarf, unit, e).name)
                    .or_insert(e.offset().0);
            }
        }
        names
    });
    names.get(name).map(|&o| UnitOffset(o))
}

#[cfg(test)]
mod tests {
    use super::package_prefixes;

    #[test]
    fn package_paths_of_a_name() {
        let p = |n| package_prefixes(n).collect::<Vec<_>>();
        assert_eq!(p("main.f.func1"), ["main", "main.f"]);
        assert_eq!(
            p("gopkg.in/yaml.v3.(*T).M"),
            [
                "gopkg",
                "gopkg.in/yaml",
                "gopkg.in/yaml.v3",
                "gopkg.in/yaml.v3.(*T)"
            ]
        );
        assert_eq!(p("slices.Sort[...]"), ["slices"]);
        assert_eq!(p("x"), Vec::<&str>::new());
    }
}

//! Which units of the DWARF are read (design.md §6.4, "Loading").
//!
//! Parsing every DIE of every unit to find the subprograms' entry
//! addresses cost more than the explain pass itself on cmd/go. Go emits
//! one compilation unit per package, named by the package's path, and a
//! function's subprogram is in its package's unit; so the units are only
//! listed (header and root DIE) when the sections are decompressed, and
//! indexed when a question needs them: [`Dwarf::want`] indexes the units
//! of the packages its functions' names give, then for a function not
//! found there (one inlined into another package, or a generic instance,
//! is in that package's unit) those of the functions beside it in the
//! text, then those where its name is written; a question about an entry
//! no indexed unit holds indexes all the others, so every answer is the
//! one a full index gives (tests/dwarf_units.rs checks it on cmd/go).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, MutexGuard, PoisonError};

use gimli::{Abbreviations, DebugInfoOffset, Section, Unit, UnitOffset};

use super::{
    fill, light_unit_with, producer_minor, ref_offset, skip, with_die, Dwarf, Parsed, Var, R,
};

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
    /// The names of the functions just before and after it in the text.
    /// The linker lays out each package's code together, and a function
    /// compiled into another package than its name says (a closure of
    /// `sync.OnceFunc` inlined there, a generic instance) is in that
    /// package's unit: theirs tell which.
    pub near: [Option<&'n str>; 2],
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
    /// The entries whose names were searched for ([`index_named`]):
    /// never twice.
    searched: HashSet<u64>,
}

impl FuncIndex {
    pub(super) fn new(units: usize) -> FuncIndex {
        FuncIndex {
            funcs: Vec::new(),
            indexed: vec![false; units],
            all: units == 0,
            searched: HashSet::new(),
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

    /// Index the units that hold `funcs` (by their packages' names, their
    /// neighbours', or where their names are written), and keep their
    /// entry lines. Questions about other functions still get answers,
    /// after indexing more units. May be called several times, from
    /// another thread than the questions'.
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
        // Those not in their name's package's unit: the units of the
        // functions beside them.
        let mut more = false;
        for w in funcs {
            if ix.funcs.binary_search_by_key(&w.entry, |f| f.0).is_ok() {
                continue;
            }
            for i in w
                .near
                .iter()
                .flatten()
                .flat_map(|n| package_prefixes(n))
                .filter_map(|n| by_name.get(n))
                .flatten()
            {
                more |= !pick[*i];
                pick[*i] = true;
            }
        }
        if more {
            index_units(p, &dwarf, &mut ix, |i| pick[i]);
        }
        // Else (a generic instance or a closure the linker placed with
        // other packages' duplicates): the units where its name is
        // written, found now, on the thread that calls this.
        for w in funcs {
            if ix.funcs.binary_search_by_key(&w.entry, |f| f.0).is_err()
                && ix.searched.insert(w.entry)
            {
                index_named(p, &dwarf, &mut ix, w.name);
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
            if let Some(names) = index_unit(p, dwarf, &unit, &mut ix.funcs) {
                p.by_name
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(off)
                    .or_insert(names);
            }
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

/// Record the top-level subprograms of `unit` with an entry address, and,
/// for a unit compiled before go1.23 (whose closures' captures are found
/// through the enclosing function's variables, [`subprogram_named`]),
/// return the unit offset of each top-level subprogram by name (through
/// its abstract origin; the first of a name): one pass over the unit for
/// both, which reads only the top-level subprograms' attributes and steps
/// over the others' ([`skip`]).
fn index_unit(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    funcs: &mut Vec<(u64, usize)>,
) -> Option<HashMap<String, usize>> {
    let want_names = producer_minor(dwarf, unit).is_some_and(|m| m < 23);
    let mut top = TopSubprograms::default();
    let plans = skip::Plans::new(&unit.abbreviations, unit.encoding());
    let base = unit.header.header_size();
    let buf = unit.header.range_from(UnitOffset(base)..).ok()?.slice();
    let (mut at, mut depth) = (0, 0isize);
    // Bounded by the unit's size: every entry consumes bytes.
    while at < buf.len() {
        let off = base + at;
        let (code, k) = skip::leb(buf, at)?;
        at += k;
        if code == 0 {
            depth -= 1;
            continue;
        }
        match plans.get(code) {
            Some(plan) if depth != 1 || plan.tag != gimli::DW_TAG_subprogram => {
                at = plan.skip(buf, at)?;
                depth += isize::from(plan.children);
            }
            // A top-level subprogram, or an abbreviation without a plan:
            // read by gimli.
            _ => {
                let mut raw = unit.entries_raw(Some(UnitOffset(off))).ok()?;
                let abbrev = raw.read_abbreviation().ok()??;
                if depth == 1 && abbrev.tag() == gimli::DW_TAG_subprogram {
                    top.read(dwarf, unit, &mut raw, abbrev, off, want_names)?;
                } else {
                    raw.skip_attributes(abbrev.attributes()).ok()?;
                }
                depth += isize::from(abbrev.has_children());
                at = raw.next_offset().0.checked_sub(base)?;
            }
        }
    }
    funcs.extend(top.funcs);
    want_names.then(|| finish_names(p, dwarf, unit, top.named, top.by_origin))
}

/// What [`index_unit`] reads of a unit's top-level subprograms.
#[derive(Default)]
struct TopSubprograms<'a> {
    /// (low_pc, `.debug_info` offset).
    funcs: Vec<(u64, usize)>,
    /// (unit offset, name) in DIE order.
    named: Vec<(usize, &'a [u8])>,
    /// (unit offset, origin's `.debug_info` offset) of those named by
    /// their abstract origin.
    by_origin: Vec<(usize, usize)>,
}

impl<'a> TopSubprograms<'a> {
    /// Read the subprogram at unit offset `off`, whose abbreviation `raw`
    /// has just read; `None` when its attributes are damaged.
    fn read(
        &mut self,
        dwarf: &gimli::Dwarf<R<'a>>,
        unit: &Unit<R<'a>>,
        raw: &mut gimli::EntriesRaw<'_, '_, R<'a>>,
        abbrev: &gimli::Abbreviation,
        off: usize,
        want_names: bool,
    ) -> Option<()> {
        let (mut name, mut origin, mut low_pc) = (None, None, None);
        for spec in abbrev.attributes() {
            let a = raw.read_attribute(*spec).ok()?;
            match a.name() {
                gimli::DW_AT_name if want_names => name = dwarf.attr_string(unit, a.value()).ok(),
                gimli::DW_AT_abstract_origin if want_names => origin = ref_offset(unit, a.value()),
                gimli::DW_AT_low_pc => low_pc = dwarf.attr_address(unit, a.value()).ok().flatten(),
                _ => {}
            }
        }
        match (name, origin) {
            _ if !want_names => {}
            (Some(n), _) => self.named.push((off, n.slice())),
            (None, Some(o)) => self.by_origin.push((off, o)),
            (None, None) => self.named.push((off, &[])),
        }
        let die = UnitOffset(off).to_debug_info_offset(&unit.header);
        if let (Some(pc), Some(d)) = (low_pc, die) {
            self.funcs.push((pc, d.0));
        }
        Some(())
    }
}

/// [`index_unit`]'s names: each subprogram's own, or its abstract
/// origin's (found among the unit's, else read), the first offset of each
/// name kept.
fn finish_names(
    p: &Parsed<'_>,
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    named: Vec<(usize, &[u8])>,
    by_origin: Vec<(usize, usize)>,
) -> HashMap<String, usize> {
    let base = unit
        .header
        .offset()
        .as_debug_info_offset()
        .map_or(0, |o| o.0);
    let own: HashMap<usize, &[u8]> = named.iter().map(|&(o, n)| (base + o, n)).collect();
    let mut all: Vec<(usize, String)> = named
        .iter()
        .map(|&(o, n)| (o, String::from_utf8_lossy(n).into_owned()))
        .collect();
    for (off, origin) in by_origin {
        let name = match own.get(&origin) {
            Some(n) => String::from_utf8_lossy(n).into_owned(),
            None => {
                let mut v = Var::default();
                let _ = with_die(p, dwarf, origin, |u, d| fill(dwarf, u, d, &mut v));
                v.name
            }
        };
        all.push((off, name));
    }
    all.sort_unstable_by_key(|&(o, _)| o);
    let mut names = HashMap::with_capacity(all.len());
    for (off, name) in all {
        names.entry(name).or_insert(off);
    }
    names
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

/// Index the units where `name` is written (as a `DW_FORM_string`).
fn index_named(p: &Parsed<'_>, dwarf: &gimli::Dwarf<R<'_>>, ix: &mut FuncIndex, name: &str) {
    if ix.all {
        return;
    }
    let info = dwarf.debug_info.reader().slice();
    let mut pat = Vec::with_capacity(name.len() + 1);
    pat.extend_from_slice(name.as_bytes());
    pat.push(0);
    let mut pick = vec![false; p.units.len()];
    for at in memchr::memmem::find_iter(info, &pat) {
        if let Some(i) = p.units.partition_point(|&u| u <= at).checked_sub(1) {
            pick[i] = true;
        }
    }
    index_units(p, dwarf, ix, |i| pick[i]);
}

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
    index_units(p, dwarf, &mut ix, |_| true);
    find(&ix)
}

/// The unit offset of the first top-level subprogram of `unit` named
/// `name` (through its abstract origin), from the names the unit's index
/// pass kept ([`index_unit`]: every unit compiled before go1.23, the only
/// ones asked, and a question reaches a unit through that index).
pub(super) fn subprogram_named(
    p: &Parsed<'_>,
    unit: &Unit<R<'_>>,
    name: &str,
) -> Option<UnitOffset> {
    let key = unit.header.offset().as_debug_info_offset()?.0;
    let all = p.by_name.lock().unwrap_or_else(PoisonError::into_inner);
    all.get(&key)?.get(name).map(|&o| UnitOffset(o))
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

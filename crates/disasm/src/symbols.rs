//! Which functions to list, and how to name an address.
//!
//! Two sources, chosen once per binary:
//!
//! - **The symbol table**, when the binary has Go's own symbols. Then the
//!   listing follows `go tool objdump` exactly: every text symbol at or
//!   after the start of the text section is a function, with the size the
//!   format gives it (ELF: `st_size`; PE and Mach-O: up to the next
//!   symbol's address), and every symbol, data included, names addresses.
//!   Mach-O names with a dot lose their leading `_`, as in debug/macho.
//! - **The pclntab function table** otherwise (stripped binaries), or when
//!   the caller asks for it. A function runs from its entry to the end of
//!   its line table, which is where the linker's symbol would have ended
//!   (alignment padding is not code). Data addresses stay numeric.
//!
//! Every read of Go's own tables (functions, line tables, the text
//! bounds, debug/gosym's quirky positions) is deferscope-index's; this
//! module reads only the object file's symbol table.
//!
//! Naming follows objdump's rule: an address is named by the last symbol
//! at or below it, and only if that symbol's extent covers it. Which of
//! several symbols at one address is "last" is decided by the order Go's
//! `sort.Sort` / `slices.SortFunc` (pattern-defeating quicksort, not
//! stable) leaves them in, from the file's symbol order: [`go_sort`]
//! reproduces that permutation, so aliases (`runtime.rodata` and
//! `go:string.*` in a PE file, C symbols and their section names in a
//! race binary) resolve to the same name as in objdump.

use std::borrow::Cow;

use deferscope_index::GoIndex;
use deferscope_load::{Format, Image};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolSection};

/// One named range of addresses.
#[derive(Clone, Debug)]
pub struct Sym<'d> {
    pub addr: u64,
    pub size: u64,
    pub name: Cow<'d, str>,
}

/// Where the symbols came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolSource {
    SymbolTable,
    Pclntab,
}

/// A function to list.
#[derive(Clone, Debug)]
pub struct Function<'d> {
    pub name: Cow<'d, str>,
    pub start: u64,
    pub end: u64,
}

/// The functions of a binary and a name lookup for addresses.
pub struct Symbols<'d> {
    /// Sorted by address; equal addresses in objdump's order.
    syms: Vec<Sym<'d>>,
    pub functions: Vec<Function<'d>>,
    pub source: SymbolSource,
    /// The text section: instructions are decoded only inside it.
    pub text_start: u64,
    pub text_end: u64,
}

/// Names the linker gives to section bounds; objdump drops them.
const SECTION_MARKERS: [&str; 6] = [
    "runtime.text",
    "text",
    "_text",
    "runtime.etext",
    "etext",
    "_etext",
];

impl<'d> Symbols<'d> {
    /// Build the symbols of `img`. `use_symtab` false forces the pclntab.
    pub fn new(img: &Image<'d>, ix: &GoIndex<'d>, use_symtab: bool) -> Symbols<'d> {
        let (text_start, text_end) = ix.text_bounds(img);
        let mut s = None;
        if use_symtab {
            let x = go_sort::Xorshift::for_version(ix.version.map(|v| v.minor));
            s = from_symtab(img, text_start, text_end, x);
        }
        s.unwrap_or_else(|| from_pclntab(ix, text_start, text_end))
    }

    /// The names with their package paths unescaped as the reports show
    /// them (`gopkg.in/yaml%2ev3.F` -> `gopkg.in/yaml.v3.F`,
    /// docs/design.md §4.9); objdump prints the symbols' own.
    pub fn with_real_names(mut self) -> Symbols<'d> {
        fn fix(n: &mut Cow<'_, str>) {
            if let Cow::Owned(s) = deferscope_index::names::display_name(n) {
                *n = Cow::Owned(s);
            }
        }
        self.syms.iter_mut().for_each(|s| fix(&mut s.name));
        self.functions.iter_mut().for_each(|f| fix(&mut f.name));
        self
    }

    /// objdump's lookup: the last symbol at or below `addr`, if it covers
    /// `addr`. Returns the name and the symbol's address.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let s = self.syms.get(i.checked_sub(1)?)?;
        (s.addr != 0 && addr < s.addr.wrapping_add(s.size)).then_some((&*s.name, s.addr))
    }
}

impl crate::x86::Lookup for Symbols<'_> {
    fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        Symbols::lookup(self, addr)
    }
}

fn from_symtab<'d>(
    img: &Image<'d>,
    text_start: u64,
    text_end: u64,
    xorshift: go_sort::Xorshift,
) -> Option<Symbols<'d>> {
    let file = object::File::parse(img.data()).ok()?;
    // Go's own symbols must be there; a stripped Mach-O keeps only the
    // dynamic imports.
    let main: &[u8] = if img.format == Format::MachO {
        b"_runtime.main"
    } else {
        b"runtime.main"
    };
    if !file
        .symbols()
        .any(|s| s.name_bytes().is_ok_and(|n| n == main))
    {
        return None;
    }
    struct Raw<'d> {
        addr: u64,
        size: u64,
        name: &'d str,
        text: bool,
    }
    let mut raw: Vec<Raw<'d>> = Vec::new();
    for s in file.symbols() {
        let Ok(name) = s.name() else { continue };
        // Symbols borrow the file bytes, which live as long as the image.
        let mut name: &'d str = name;
        if img.format == Format::MachO && name.contains('.') {
            // The linker prefixes Go names (those with a dot) with `_` in
            // Mach-O; debug/macho drops it.
            name = name.strip_prefix('_').unwrap_or(name);
        }
        let text = match s.section() {
            SymbolSection::Section(i) => {
                file.section_by_index(i).is_ok_and(|sec| match img.format {
                    Format::MachO => {
                        sec.segment_name().ok().flatten() == Some("__TEXT")
                            && sec.name().ok() == Some("__text")
                    }
                    _ => sec.kind() == SectionKind::Text,
                })
            }
            _ => false,
        };
        raw.push(Raw {
            addr: s.address(),
            size: s.size(),
            name,
            text,
        });
    }
    if matches!(img.format, Format::Pe | Format::MachO) {
        // Sizes run to the next symbol's address.
        let mut addrs: Vec<u64> = raw.iter().map(|r| r.addr).collect();
        addrs.sort_unstable();
        for r in &mut raw {
            let j = addrs.partition_point(|&a| a <= r.addr);
            r.size = addrs.get(j).map_or(0, |&a| a - r.addr);
        }
    }
    // objdump sorts by address with Go's unstable sort, then drops the
    // section markers; among symbols at one address, the last in that
    // order names it. Same permutation here (`go_sort`).
    go_sort::sort_by(&mut raw, xorshift, |a, b| a.addr < b.addr);
    raw.retain(|r| !SECTION_MARKERS.contains(&r.name));
    let functions = raw
        .iter()
        .filter(|r| r.text && r.addr >= text_start && r.addr < text_end)
        .map(|r| Function {
            name: Cow::Borrowed(r.name),
            start: r.addr,
            end: (r.addr + r.size).min(text_end),
        })
        .collect();
    let syms: Vec<Sym<'d>> = raw
        .iter()
        .map(|r| Sym {
            addr: r.addr,
            size: r.size,
            name: Cow::Borrowed(r.name),
        })
        .collect();
    Some(Symbols {
        syms,
        functions,
        source: SymbolSource::SymbolTable,
        text_start,
        text_end,
    })
}

fn from_pclntab<'d>(ix: &GoIndex<'d>, text_start: u64, text_end: u64) -> Symbols<'d> {
    let mut functions = Vec::with_capacity(ix.nfunc());
    for f in ix.funcs() {
        let lines = ix.lines(&f);
        let end = lines
            .line_runs()
            .last()
            .map_or(f.end, |r| r.1)
            .min(f.end)
            .max(f.entry);
        functions.push(Function {
            name: Cow::Borrowed(ix.name(&f)),
            start: f.entry,
            end,
        });
    }
    functions.sort_by_key(|f| f.start);
    let syms = functions
        .iter()
        .map(|f| Sym {
            addr: f.start,
            size: f.end - f.start,
            name: f.name.clone(),
        })
        .collect();
    Symbols {
        syms,
        functions,
        source: SymbolSource::Pclntab,
        text_start,
        text_end,
    }
}

/// The permutation Go's unstable sort (`sort.Sort`, `slices.SortFunc`;
/// the same pattern-defeating quicksort since go1.19) produces, so that
/// equal keys end up in the order objdump sees them. Parameters as in Go:
/// insertion sort below 13 elements, Tukey's ninther from 50, at most 5
/// out-of-order pairs fixed by the partial insertion sort (arrays of 50
/// or more), pattern breaking by xorshift seeded with the length, heap
/// sort after log2(n) unbalanced partitions.
pub mod go_sort {
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum Hint {
        Unknown,
        Increasing,
        Decreasing,
    }

    fn bits_len(n: usize) -> u32 {
        usize::BITS - n.leading_zeros()
    }

    /// The xorshift generator behind pattern breaking: go1.24 changed its
    /// shifts from (13, 17, 5) to (13, 7, 17).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Xorshift {
        Go119,
        Go124,
    }

    impl Xorshift {
        /// The generator of Go 1.`minor` (the newest when unknown).
        pub fn for_version(minor: Option<u32>) -> Xorshift {
            match minor {
                Some(m) if m < 24 => Xorshift::Go119,
                _ => Xorshift::Go124,
            }
        }
    }

    /// Sort `v` by `less` exactly as Go's `sort.Sort` would.
    pub fn sort_by<T, F: Fn(&T, &T) -> bool>(v: &mut [T], x: Xorshift, less: F) {
        let n = v.len();
        if n > 1 {
            pdq(v, 0, n, bits_len(n), x, &less);
        }
    }

    fn insertion<T, F: Fn(&T, &T) -> bool>(v: &mut [T], a: usize, b: usize, less: &F) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    }

    fn sift_down<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        lo: usize,
        hi: usize,
        first: usize,
        less: &F,
    ) {
        let mut root = lo;
        loop {
            let mut child = 2 * root + 1;
            if child >= hi {
                return;
            }
            if child + 1 < hi && less(&v[first + child], &v[first + child + 1]) {
                child += 1;
            }
            if !less(&v[first + root], &v[first + child]) {
                return;
            }
            v.swap(first + root, first + child);
            root = child;
        }
    }

    fn heap<T, F: Fn(&T, &T) -> bool>(v: &mut [T], a: usize, b: usize, less: &F) {
        let hi = b - a;
        for i in (0..=(hi - 1) / 2).rev() {
            sift_down(v, i, hi, a, less);
        }
        for i in (0..hi).rev() {
            v.swap(a, a + i);
            sift_down(v, 0, i, a, less);
        }
    }

    fn pdq<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        mut a: usize,
        mut b: usize,
        mut limit: u32,
        x: Xorshift,
        less: &F,
    ) {
        let (mut balanced, mut partitioned) = (true, true);
        loop {
            let len = b - a;
            if len <= 12 {
                insertion(v, a, b, less);
                return;
            }
            if limit == 0 {
                heap(v, a, b, less);
                return;
            }
            if !balanced {
                break_patterns(v, a, b, x);
                limit -= 1;
            }
            let (mut pivot, mut hint) = choose_pivot(v, a, b, less);
            if hint == Hint::Decreasing {
                v[a..b].reverse();
                pivot = (b - 1) - (pivot - a);
                hint = Hint::Increasing;
            }
            if balanced
                && partitioned
                && hint == Hint::Increasing
                && partial_insertion(v, a, b, less)
            {
                return;
            }
            if a > 0 && !less(&v[a - 1], &v[pivot]) {
                a = partition_equal(v, a, b, pivot, less);
                continue;
            }
            let (mid, already) = partition(v, a, b, pivot, less);
            partitioned = already;
            let (l, r) = (mid - a, b - mid);
            if l < r {
                balanced = l >= len / 8;
                pdq(v, a, mid, limit, x, less);
                a = mid + 1;
            } else {
                balanced = r >= len / 8;
                pdq(v, mid + 1, b, limit, x, less);
                b = mid;
            }
        }
    }

    fn partition<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        a: usize,
        b: usize,
        pivot: usize,
        less: &F,
    ) -> (usize, bool) {
        v.swap(a, pivot);
        // i and j are inclusive bounds of what is left; j may reach a.
        let (mut i, mut j) = (a as isize + 1, b as isize - 1);
        let lt = |v: &[T], x: isize| less(&v[x as usize], &v[a]);
        while i <= j && lt(v, i) {
            i += 1;
        }
        while i <= j && !lt(v, j) {
            j -= 1;
        }
        if i > j {
            v.swap(j as usize, a);
            return (j as usize, true);
        }
        v.swap(i as usize, j as usize);
        i += 1;
        j -= 1;
        loop {
            while i <= j && lt(v, i) {
                i += 1;
            }
            while i <= j && !lt(v, j) {
                j -= 1;
            }
            if i > j {
                break;
            }
            v.swap(i as usize, j as usize);
            i += 1;
            j -= 1;
        }
        v.swap(j as usize, a);
        (j as usize, false)
    }

    fn partition_equal<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        a: usize,
        b: usize,
        pivot: usize,
        less: &F,
    ) -> usize {
        v.swap(a, pivot);
        let (mut i, mut j) = (a as isize + 1, b as isize - 1);
        loop {
            while i <= j && !less(&v[a], &v[i as usize]) {
                i += 1;
            }
            while i <= j && less(&v[a], &v[j as usize]) {
                j -= 1;
            }
            if i > j {
                break;
            }
            v.swap(i as usize, j as usize);
            i += 1;
            j -= 1;
        }
        i as usize
    }

    fn partial_insertion<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        a: usize,
        b: usize,
        less: &F,
    ) -> bool {
        let mut i = a + 1;
        for _ in 0..5 {
            while i < b && !less(&v[i], &v[i - 1]) {
                i += 1;
            }
            if i == b {
                return true;
            }
            if b - a < 50 {
                return false;
            }
            v.swap(i, i - 1);
            if i - a >= 2 {
                let mut j = i - 1;
                while j >= 1 && less(&v[j], &v[j - 1]) {
                    v.swap(j, j - 1);
                    j -= 1;
                }
            }
            if b - i >= 2 {
                let mut j = i + 1;
                while j < b && less(&v[j], &v[j - 1]) {
                    v.swap(j, j - 1);
                    j += 1;
                }
            }
        }
        false
    }

    fn break_patterns<T>(v: &mut [T], a: usize, b: usize, x: Xorshift) {
        let len = b - a;
        if len >= 8 {
            let mut r = len as u64;
            let modulus = 1usize << bits_len(len);
            let mid = a + (len / 4) * 2;
            for idx in mid - 1..=mid + 1 {
                r ^= r << 13;
                match x {
                    Xorshift::Go119 => {
                        r ^= r >> 17;
                        r ^= r << 5;
                    }
                    Xorshift::Go124 => {
                        r ^= r >> 7;
                        r ^= r << 17;
                    }
                }
                let mut other = (r as usize) & (modulus - 1);
                if other >= len {
                    other -= len;
                }
                v.swap(idx, a + other);
            }
        }
    }

    fn choose_pivot<T, F: Fn(&T, &T) -> bool>(
        v: &mut [T],
        a: usize,
        b: usize,
        less: &F,
    ) -> (usize, Hint) {
        let l = b - a;
        let mut swaps = 0;
        let (mut i, mut j, mut k) = (a + l / 4, a + l / 4 * 2, a + l / 4 * 3);
        if l >= 8 {
            if l >= 50 {
                i = median(v, i - 1, i, i + 1, &mut swaps, less);
                j = median(v, j - 1, j, j + 1, &mut swaps, less);
                k = median(v, k - 1, k, k + 1, &mut swaps, less);
            }
            j = median(v, i, j, k, &mut swaps, less);
        }
        match swaps {
            0 => (j, Hint::Increasing),
            12 => (j, Hint::Decreasing),
            _ => (j, Hint::Unknown),
        }
    }

    /// The index of the median of three, counting the swaps a sorting
    /// network would make (nothing moves).
    fn median<T, F: Fn(&T, &T) -> bool>(
        v: &[T],
        a: usize,
        b: usize,
        c: usize,
        swaps: &mut u32,
        less: &F,
    ) -> usize {
        let mut order = |x: usize, y: usize| {
            if less(&v[y], &v[x]) {
                *swaps += 1;
                (y, x)
            } else {
                (x, y)
            }
        };
        let (a, b) = order(a, b);
        let (b, c) = order(b, c);
        let _ = c;
        let (_, b) = order(a, b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(syms: Vec<(u64, u64, &'static str)>) -> Symbols<'static> {
        Symbols {
            syms: syms
                .into_iter()
                .map(|(addr, size, n)| Sym {
                    addr,
                    size,
                    name: Cow::Borrowed(n),
                })
                .collect(),
            functions: Vec::new(),
            source: SymbolSource::Pclntab,
            text_start: 0,
            text_end: 0,
        }
    }

    #[test]
    fn lookup_needs_cover() {
        let t = table(vec![
            (0x1000, 0x10, "a"),
            (0x1020, 0, "b"),
            (0x1030, 8, "c"),
        ]);
        assert_eq!(t.lookup(0x1000), Some(("a", 0x1000)));
        assert_eq!(t.lookup(0x100f), Some(("a", 0x1000)));
        // Past a's end and in zero-size b: no name.
        assert_eq!(t.lookup(0x1010), None);
        assert_eq!(t.lookup(0x1020), None);
        assert_eq!(t.lookup(0x1034), Some(("c", 0x1030)));
        assert_eq!(t.lookup(0xfff), None);
    }

    /// The permutation of Go's own sort, from running it: keys
    /// `(i*7919 + i*i) % 11` for ids `0..n`, sorted by key with
    /// `sort.Sort` (go1.19 and go1.22.10 print the first table) and
    /// `sort.Sort` / `slices.SortFunc` (go1.24.11, go1.26.6: the second).
    #[test]
    fn go_sort_permutation() {
        let go119: &[(usize, &str)] = &[
            (20, "1,12,11,0,8,19,15,4,10,13,2,9,14,3,6,17,7,5,16,18"),
            (60, "12,1,33,44,23,22,56,55,45,34,0,11,52,41,30,15,37,48,26,19,8,59,4,57,24,21,46,43,13,54,10,35,32,2,14,53,36,3,58,9,31,47,42,20,25,39,50,28,17,6,40,18,16,51,27,7,49,5,38,29"),
            (300, "231,243,111,220,121,221,298,297,122,100,210,11,12,209,99,254,264,265,253,132,89,199,22,23,198,88,165,1,34,78,77,188,187,33,56,143,232,144,287,286,0,275,177,176,44,45,154,67,66,155,276,133,242,110,166,55,26,169,162,59,52,279,283,63,158,239,48,235,173,151,70,41,180,147,74,37,184,30,191,140,246,81,272,268,250,85,136,290,195,202,19,129,92,294,228,224,96,15,125,206,213,8,4,103,118,257,261,107,114,217,109,230,112,2,299,222,211,255,263,10,120,13,101,123,208,98,296,266,252,200,21,131,90,87,134,24,197,219,288,189,79,32,142,76,186,145,35,233,285,274,244,178,43,153,68,65,156,175,46,277,167,241,54,57,164,163,58,278,168,53,240,284,47,64,174,157,152,42,69,179,245,234,273,36,146,185,75,141,31,80,190,267,289,251,229,25,196,86,135,130,91,201,20,295,97,223,14,207,124,102,119,256,212,9,262,108,3,113,218,149,248,215,6,17,204,292,226,28,39,50,193,281,61,182,72,270,83,237,94,171,105,259,160,116,127,138,260,73,139,249,148,137,128,150,126,117,159,115,258,161,216,106,170,104,95,238,93,84,236,269,172,271,82,247,181,71,62,183,60,51,280,192,282,194,49,40,203,38,29,227,27,291,225,293,18,205,16,7,214,5"),
        ];
        let go124: &[(usize, &str)] = &[
            (20, "1,12,11,0,8,19,15,4,10,13,2,9,14,3,6,17,7,5,16,18"),
            (60, "12,1,33,44,23,22,56,55,45,34,0,11,52,41,30,15,37,48,26,19,8,59,4,57,24,21,46,43,13,54,10,35,32,2,14,53,36,3,58,9,31,47,42,20,25,39,50,28,17,6,7,18,40,51,27,16,49,5,38,29"),
            (300, "231,45,111,220,121,221,298,297,122,100,210,11,12,209,99,254,264,265,253,132,89,199,22,23,198,88,1,110,66,78,77,188,187,33,34,143,232,144,287,286,0,275,177,176,44,133,154,67,56,155,276,243,242,165,166,55,26,169,162,59,52,279,283,63,158,239,48,235,173,151,70,41,180,147,74,37,184,30,191,140,246,81,272,268,250,85,136,290,195,202,19,129,92,294,228,224,96,15,125,206,213,8,4,103,118,257,261,107,114,217,109,230,112,2,299,222,211,255,263,10,120,13,101,123,208,98,296,266,252,200,21,131,90,87,134,24,197,219,288,189,79,32,142,76,186,145,35,233,285,274,244,178,43,153,68,65,156,175,46,277,167,241,54,57,164,163,58,278,168,53,240,284,47,64,174,157,152,42,69,179,245,234,273,36,146,185,75,141,31,80,190,267,289,251,229,25,196,86,135,130,91,201,20,295,97,223,14,207,124,102,119,256,212,9,262,108,3,113,218,149,248,215,6,17,204,292,226,28,39,50,193,281,61,182,72,270,83,237,94,171,105,259,160,116,127,138,260,73,139,249,148,137,128,150,126,117,159,115,258,161,216,106,170,104,95,238,93,84,236,269,172,271,82,247,181,71,62,183,60,51,280,192,282,194,49,40,203,38,29,227,27,291,225,293,18,205,16,7,214,5"),
        ];
        for (table, x) in [
            (go119, go_sort::Xorshift::Go119),
            (go124, go_sort::Xorshift::Go124),
        ] {
            for &(n, want) in table {
                let mut v: Vec<(usize, usize)> =
                    (0..n).map(|i| ((i * 7919 + i * i) % 11, i)).collect();
                go_sort::sort_by(&mut v, x, |a, b| a.0 < b.0);
                let got: Vec<String> = v.iter().map(|e| e.1.to_string()).collect();
                assert_eq!(got.join(","), want, "n={n} {x:?}");
            }
        }
    }
}

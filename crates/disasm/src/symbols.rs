//! Which functions to list, and how to name an address.
//!
//! Two sources, chosen once per binary:
//!
//! - **The symbol table**, when the binary has Go's own symbols. Then the
//!   listing follows `go tool objdump` exactly: every text symbol at or
//!   after the start of the text section is a function, with the size the
//!   format gives it (ELF: `st_size`; PE and Mach-O: up to the next
//!   symbol's address), and every symbol, data included, names addresses.
//! - **The pclntab function table** otherwise (stripped binaries), or when
//!   the caller asks for it. A function runs from its entry to the end of
//!   its line table, which is where the linker's symbol would have ended
//!   (alignment padding is not code). Data addresses stay numeric.
//!
//! Naming follows objdump's rule: an address is named by the last symbol
//! at or below it, and only if that symbol's extent covers it.

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
    /// Sorted by address (stable for equal addresses).
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
        let (text_start, text_end) = text_bounds(img, ix);
        if use_symtab {
            if let Some(s) = from_symtab(img, text_start, text_end) {
                return s;
            }
        }
        from_pclntab(ix, text_start, text_end)
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

fn text_bounds(img: &Image<'_>, ix: &GoIndex<'_>) -> (u64, u64) {
    let name = match img.format {
        Format::Elf | Format::Pe => ".text",
        Format::MachO => "__text",
    };
    if let Some(s) = img.section(name) {
        return (s.addr, s.addr + s.size);
    }
    let first = ix.func(0).map_or(0, |f| f.entry);
    let last = ix
        .nfunc()
        .checked_sub(1)
        .and_then(|i| ix.func(i))
        .map_or(first, |f| f.end);
    (first, last)
}

fn from_symtab<'d>(img: &Image<'d>, text_start: u64, text_end: u64) -> Option<Symbols<'d>> {
    let file = object::File::parse(img.data()).ok()?;
    // Go's own symbols must be there; a stripped Mach-O keeps only the
    // dynamic imports.
    if !file
        .symbols()
        .any(|s| s.name_bytes().is_ok_and(|n| n == b"runtime.main"))
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
        let name: &'d str = name;
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
    raw.retain(|r| !SECTION_MARKERS.contains(&r.name));
    raw.sort_by_key(|r| r.addr);
    let functions = raw
        .iter()
        .filter(|r| r.text && r.addr >= text_start && r.addr < text_end)
        .map(|r| Function {
            name: Cow::Borrowed(r.name),
            start: r.addr,
            end: (r.addr + r.size).min(text_end),
        })
        .collect();
    // For lookups, among symbols at one address the one with the largest
    // extent decides (objdump's unstable sort leaves this unspecified).
    let mut syms: Vec<Sym<'d>> = raw
        .iter()
        .map(|r| Sym {
            addr: r.addr,
            size: r.size,
            name: Cow::Borrowed(r.name),
        })
        .collect();
    syms.sort_by_key(|s| (s.addr, s.size));
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
}

//! Inline trees: which inlined function each instruction of a function
//! belongs to.
//!
//! The compiler records inlining per function in two tables (runtime
//! `symtab.go` / `symtabinl.go`, `cmd/internal/obj/inl.go`):
//!
//! - `PCDATA_InlTreeIndex` (pc-value table 2): for each pc, the index in
//!   the function's inline tree of the innermost inlined call the
//!   instruction comes from, or -1 for the function's own code;
//! - `FUNCDATA_InlTree` (funcdata 3): the tree, an array of
//!   `inlinedCall` records. Their layout changed in go1.20:
//!   - go1.12–go1.19, 20 bytes: `parent int16` (index of the enclosing
//!     inlined call, < 0 at the outermost), `funcID uint8`, a pad byte,
//!     `file int32`, `line int32`, `func_ int32` (name offset), and
//!     `parentPc int32`;
//!   - go1.20+, 16 bytes: `funcID uint8`, 3 pad bytes, `nameOff int32`,
//!     `parentPc int32`, `startLine int32`. The parent is no longer stored:
//!     it is the inline index at `entry + parentPc`, an instruction whose
//!     position is the call site.
//!
//! The name offset indexes the function name table (go1.16+) or the
//! whole pclntab (go1.2 layout). The layout is told from the pclntab
//! magic: go1.20's is the first with the 16-byte records.
//!
//! Nothing is trusted: indices are bounded by the bytes that exist, and
//! parent chains are cut after [`MAX_DEPTH`] steps.

use deferscope_load::Image;

use crate::pclntab::{Func, Layout, PcTable};
use crate::GoIndex;

/// `PCDATA_InlTreeIndex`.
pub const PCDATA_INL_TREE_INDEX: u32 = 2;
/// `FUNCDATA_InlTree`.
pub const FUNCDATA_INL_TREE: u8 = 3;
/// Longest parent chain followed (the compiler's inlining budget keeps
/// real chains far shorter; a longer one means a damaged table).
pub const MAX_DEPTH: usize = 64;

/// One `inlinedCall` record, as far as deferscope needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlinedCall {
    /// Offset of the inlined function's name (see the module docs).
    pub name_off: u32,
    /// The call site: an offset from the function's entry whose inline
    /// index is the enclosing call's (go1.20+), also kept before.
    pub parent_pc: u32,
    /// The enclosing call's index, < 0 at the outermost (go1.19 and
    /// before; `None` from go1.20, where `parent_pc` gives it).
    pub parent: Option<i16>,
}

/// Record size for a pclntab layout.
pub fn record_size(layout: Layout) -> u64 {
    match layout {
        Layout::Go120 => 16,
        _ => 20,
    }
}

/// Decode record `b` (at least [`record_size`] bytes) of `layout`.
pub fn parse_record(layout: Layout, b: &[u8]) -> Option<InlinedCall> {
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
    match layout {
        Layout::Go120 => Some(InlinedCall {
            name_off: u32_at(4)?,
            parent_pc: u32_at(8)?,
            parent: None,
        }),
        _ => Some(InlinedCall {
            name_off: u32_at(12)?,
            parent_pc: u32_at(16)?,
            parent: Some(i16::from_le_bytes(b.get(0..2)?.try_into().ok()?)),
        }),
    }
}

/// The inline tree of one function.
pub struct InlineTree<'a, 'd> {
    ix: &'a GoIndex<'d>,
    img: &'a Image<'d>,
    func: Func,
    /// pc -> innermost inline index (-1: the function's own code).
    index: PcTable,
    /// Address of record 0.
    tree: u64,
}

impl<'a, 'd> InlineTree<'a, 'd> {
    /// The tree of `f`, or `None` when nothing was inlined into it (no
    /// `PCDATA_InlTreeIndex` table or no `FUNCDATA_InlTree`).
    pub fn new(ix: &'a GoIndex<'d>, img: &'a Image<'d>, f: &Func) -> Option<Self> {
        let off = ix.pcln.pcdata(f, PCDATA_INL_TREE_INDEX)?;
        let tree = ix.funcdata_addr(f, FUNCDATA_INL_TREE)?;
        let index = PcTable::decode(ix.pcln.pcvalue(off, f.entry), f.end);
        Some(InlineTree {
            ix,
            img,
            func: *f,
            index,
            tree,
        })
    }

    /// The innermost inline index at `pc`, or `None` for the function's own
    /// code (or a pc outside the table).
    pub fn index_at(&self, pc: u64) -> Option<u32> {
        self.index.at(pc).and_then(|v| u32::try_from(v).ok())
    }

    /// Record `i`, if its bytes exist.
    pub fn record(&self, i: u32) -> Option<InlinedCall> {
        let size = record_size(self.ix.pcln.layout);
        let at = self.tree.checked_add(size.checked_mul(i as u64)?)?;
        let b = self.img.read(at, size)?;
        parse_record(self.ix.pcln.layout, b)
    }

    /// The name of the function inlined by record `i`.
    pub fn name(&self, i: u32) -> Option<&'d str> {
        self.ix.pcln.name_at(self.record(i)?.name_off)
    }

    /// The inlined calls `pc` is inside, innermost first, as indices.
    pub fn chain(&self, pc: u64) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = self.index_at(pc);
        while let Some(i) = cur {
            if out.len() >= MAX_DEPTH || out.contains(&i) {
                break;
            }
            out.push(i);
            let Some(r) = self.record(i) else { break };
            cur = match r.parent {
                Some(p) => u32::try_from(p).ok(),
                None => self
                    .func
                    .entry
                    .checked_add(r.parent_pc as u64)
                    .filter(|&a| a < self.func.end)
                    .and_then(|a| self.index_at(a)),
            };
        }
        out
    }

    /// The outermost function inlined at `pc`: the callee the function's own
    /// source called there. `None` when `pc` is the function's own code.
    pub fn outermost(&self, pc: u64) -> Option<&'d str> {
        self.chain(pc).last().and_then(|&i| self.name(i))
    }

    /// Runs of pcs `(start, end, index)` that come from inlined code, in
    /// address order.
    pub fn inlined_runs(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.index
            .runs()
            .iter()
            .filter_map(|&(s, e, v)| u32::try_from(v).ok().map(|v| (s, e, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outermost_names(bin: &str, func: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/bin")
            .join(bin)
            .join("bin");
        let m = deferscope_load::Mapped::open(&path).expect("committed fixture");
        let img = m.image().expect("image");
        let ix = GoIndex::new(&img).expect("index");
        let f = ix.find_funcs(&[func])[0].expect("function");
        let t = InlineTree::new(&ix, &img, &f).expect("inline tree");
        let mut out: Vec<String> = t
            .inlined_runs()
            .filter_map(|(s, _, _)| t.outermost(s).map(str::to_owned))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// fixtures/go/defers/closures.go: `mutexUnlock` calls `m.Lock()` (line
    /// 73) and defers `m.Unlock()` (line 74); the compiler inlines Lock
    /// into it and Unlock into the defer wrapper. Both record layouts.
    #[test]
    fn committed_fixtures() {
        for (bin, wrapper) in [
            (
                "go1.22.10-linux-amd64-default-defers",
                "main.mutexUnlock.deferwrap1",
            ),
            (
                "go1.27.3-linux-arm64-default-defers",
                "main.mutexUnlock.deferwrap1",
            ),
        ] {
            assert_eq!(
                outermost_names(bin, "main.mutexUnlock"),
                ["sync.(*Mutex).Lock"],
                "{bin}"
            );
            assert_eq!(
                outermost_names(bin, wrapper),
                ["sync.(*Mutex).Unlock"],
                "{bin}"
            );
        }
        // go1.19 (20-byte records): the wrapper is a closure that calls
        // Unlock without inlining it; Lock is inlined into the function.
        assert_eq!(
            outermost_names("go1.19-windows-amd64-default-defers", "main.mutexUnlock"),
            ["sync.(*Mutex).Lock"]
        );
    }

    /// go1.20+ record: funcID 0, pad, nameOff 0x1234, parentPc 0x40,
    /// startLine 7 (runtime `inlinedCall`, symtabinl.go).
    #[test]
    fn record_go120() {
        let mut b = vec![0u8, 0, 0, 0];
        b.extend(0x1234u32.to_le_bytes());
        b.extend(0x40u32.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        assert_eq!(record_size(Layout::Go120), 16);
        assert_eq!(
            parse_record(Layout::Go120, &b),
            Some(InlinedCall {
                name_off: 0x1234,
                parent_pc: 0x40,
                parent: None
            })
        );
        assert_eq!(parse_record(Layout::Go120, &b[..11]), None);
    }

    /// go1.12-go1.19 record: parent -1, funcID 0, pad, file 3, line 99,
    /// func_ 0x55, parentPc 0x10 (runtime `inlinedCall`, symtab.go).
    #[test]
    fn record_go118() {
        let mut b = Vec::new();
        b.extend((-1i16).to_le_bytes());
        b.extend([0u8, 0]);
        b.extend(3i32.to_le_bytes());
        b.extend(99i32.to_le_bytes());
        b.extend(0x55u32.to_le_bytes());
        b.extend(0x10u32.to_le_bytes());
        for l in [Layout::Go118, Layout::Go116, Layout::Go12] {
            assert_eq!(record_size(l), 20);
            assert_eq!(
                parse_record(l, &b),
                Some(InlinedCall {
                    name_off: 0x55,
                    parent_pc: 0x10,
                    parent: Some(-1)
                })
            );
        }
    }
}

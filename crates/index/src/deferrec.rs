//! The `_defer` record, field by field, per Go release (docs/design.md §3.4).
//!
//! Source: `type _defer struct` in `src/runtime/runtime2.go` of each
//! release (the compiler's `deferstruct()` in `ssagen/ssa.go` must match it,
//! and says so), on 64-bit targets. Checked against the DWARF type
//! `runtime._defer` of the unstripped fixture binaries of go1.19 and
//! go1.21 to go1.27 (linux/amd64, linux/arm64, windows/amd64,
//! darwin/arm64) by the integration test `disasm_defer_fields_match_dwarf`.
//!
//! | Go | fields | size |
//! |---|---|---|
//! | 1.13 | `siz@0 started@4 heap@5 sp@8 pc@16 fn@24 _panic@32 link@40`, arguments follow | 48 + arguments |
//! | 1.14–1.17 | `siz@0 started@4 heap@5 openDefer@6 sp@8 pc@16 fn@24 _panic@32 link@40 fd@48 varp@56 framepc@64`, arguments follow | 72 + arguments |
//! | 1.18–1.21 | `started@0 heap@1 openDefer@2 sp@8 pc@16 fn@24 _panic@32 link@40 fd@48 varp@56 framepc@64` | 72 |
//! | 1.22–1.27 | `heap@0 rangefunc@1 sp@8 pc@16 fn@24 link@32 head@40` | 48 |

/// One field of the record: name, byte offset, byte size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferField {
    pub name: &'static str,
    pub off: u64,
    pub size: u64,
}

/// The `_defer` record of one range of Go releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferLayout {
    /// Fields in offset order.
    pub fields: &'static [DeferField],
    /// Bytes of the fixed part (the whole record from go1.18).
    pub header_bytes: u64,
    /// The deferred call's arguments are copied right after the header
    /// (go1.13–go1.17; `siz` holds their size).
    pub args_follow: bool,
}

const fn f(name: &'static str, off: u64, size: u64) -> DeferField {
    DeferField { name, off, size }
}

const GO113: &[DeferField] = &[
    f("siz", 0, 4),
    f("started", 4, 1),
    f("heap", 5, 1),
    f("sp", 8, 8),
    f("pc", 16, 8),
    f("fn", 24, 8),
    f("_panic", 32, 8),
    f("link", 40, 8),
];

const GO114: &[DeferField] = &[
    f("siz", 0, 4),
    f("started", 4, 1),
    f("heap", 5, 1),
    f("openDefer", 6, 1),
    f("sp", 8, 8),
    f("pc", 16, 8),
    f("fn", 24, 8),
    f("_panic", 32, 8),
    f("link", 40, 8),
    f("fd", 48, 8),
    f("varp", 56, 8),
    f("framepc", 64, 8),
];

const GO118: &[DeferField] = &[
    f("started", 0, 1),
    f("heap", 1, 1),
    f("openDefer", 2, 1),
    f("sp", 8, 8),
    f("pc", 16, 8),
    f("fn", 24, 8),
    f("_panic", 32, 8),
    f("link", 40, 8),
    f("fd", 48, 8),
    f("varp", 56, 8),
    f("framepc", 64, 8),
];

const GO122: &[DeferField] = &[
    f("heap", 0, 1),
    f("rangefunc", 1, 1),
    f("sp", 8, 8),
    f("pc", 16, 8),
    f("fn", 24, 8),
    f("link", 32, 8),
    f("head", 40, 8),
];

impl DeferLayout {
    /// The layout of go1.`minor` (go1.13 for anything older: stack records
    /// start there).
    pub fn for_minor(minor: u32) -> DeferLayout {
        let (fields, header_bytes, args_follow) = match minor {
            0..=13 => (GO113, 48, true),
            14..=17 => (GO114, 72, true),
            18..=21 => (GO118, 72, false),
            _ => (GO122, 48, false),
        };
        DeferLayout {
            fields,
            header_bytes,
            args_follow,
        }
    }

    /// The layout of the binary `ix` indexes: by its Go version, else
    /// go1.22+ when the runtime has `nextDefer` (as the explain pass
    /// decides), else go1.18–go1.21.
    pub fn of_binary(ix: &crate::GoIndex<'_>, rt: &crate::runtime::Runtime) -> DeferLayout {
        let minor = ix.version.map_or_else(
            || {
                if rt.has(crate::runtime::RuntimeFn::NextDefer) {
                    22
                } else {
                    18
                }
            },
            |v| v.minor,
        );
        DeferLayout::for_minor(minor)
    }

    /// The offset of `fn` (24 in every release).
    pub fn fn_offset(&self) -> u64 {
        self.field("fn").map_or(24, |f| f.off)
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<DeferField> {
        self.fields.iter().copied().find(|f| f.name == name)
    }

    /// The fields that bytes `[off, off + size)` of the record overlap, in
    /// offset order (padding overlaps none).
    pub fn fields_in(&self, off: u64, size: u64) -> Vec<DeferField> {
        self.fields
            .iter()
            .copied()
            .filter(|f| f.off < off + size && off < f.off + f.size)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_contiguous_and_sized() {
        for minor in [13, 14, 17, 18, 21, 22, 27] {
            let l = DeferLayout::for_minor(minor);
            let last = l.fields.last().unwrap();
            assert_eq!(last.off + last.size, l.header_bytes, "go1.{minor}");
            assert!(l
                .fields
                .windows(2)
                .all(|w| w[0].off + w[0].size <= w[1].off));
            assert_eq!(l.fn_offset(), 24);
        }
        let l = DeferLayout::for_minor(22);
        let names: Vec<_> = l.fields_in(0, 16).iter().map(|f| f.name).collect();
        assert_eq!(names, ["heap", "rangefunc", "sp"]);
        assert!(l.fields_in(2, 6).is_empty());
    }
}

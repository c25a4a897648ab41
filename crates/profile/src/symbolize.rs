//! Our own names for a profile's addresses: the pclntab's function and
//! the inline tree's chain at a pc, innermost first, as `runtime/pprof`
//! writes a location's lines.

use deferscope_index::{Func, GoIndex, InlineTree};
use deferscope_load::Image;

/// Names pcs of one binary.
pub struct Symbolizer<'a, 'd> {
    pub ix: &'a GoIndex<'d>,
    pub img: &'a Image<'d>,
}

/// One pc, named.
pub struct Frames<'d> {
    /// The physical function.
    pub func: Func,
    /// Function names, innermost first; the last is `func`'s.
    pub names: Vec<&'d str>,
}

impl<'a, 'd> Symbolizer<'a, 'd> {
    pub fn new(img: &'a Image<'d>, ix: &'a GoIndex<'d>) -> Self {
        Symbolizer { ix, img }
    }

    /// The function and inlined calls at `pc`.
    pub fn frames(&self, pc: u64) -> Option<Frames<'d>> {
        let f = self.ix.func_for_pc(pc)?;
        let mut names = Vec::new();
        if let Some(t) = InlineTree::new(self.ix, self.img, &f) {
            for i in t.chain(pc) {
                names.push(t.name(i).unwrap_or("?"));
            }
        }
        names.push(self.ix.name(&f));
        Some(Frames { func: f, names })
    }

    /// The innermost function name at `pc`.
    pub fn innermost(&self, pc: u64) -> Option<&'d str> {
        self.frames(pc).and_then(|f| f.names.first().copied())
    }
}

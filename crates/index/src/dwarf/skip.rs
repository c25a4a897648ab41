//! Stepping over DIEs without reading their attributes (design.md §6.4,
//! "Loading").
//!
//! Indexing a unit visits every DIE but reads the attributes of its
//! top-level subprograms only. gimli's raw entries skip the others by
//! asking each attribute's form its size, once per DIE; here each
//! abbreviation's attributes are turned once into a few steps (runs of
//! fixed-size forms added up, a `DW_FORM_string` found with `memchr`), so
//! stepping over a DIE is a table lookup and a few additions. An
//! abbreviation with a form this does not know (`DW_FORM_indirect`, one
//! gimli does not know either) has no plan: the caller steps over that DIE
//! with gimli, so the walk is never wrong, only slower.

use gimli::{constants, Abbreviations, DwTag, Encoding};

/// How to step over one attribute, or a run of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// This many bytes (a run of fixed-size forms).
    Fixed(usize),
    /// A NUL-terminated string.
    Str,
    /// An unsigned or signed LEB128 number.
    Leb,
    /// A block whose length is a 1-, 2- or 4-byte little-endian number.
    Block(u8),
    /// A block whose length is a LEB128 number.
    BlockLeb,
}

/// The steps over one abbreviation's attributes.
#[derive(Debug)]
pub(super) struct Plan {
    pub tag: DwTag,
    pub children: bool,
    steps: Box<[Step]>,
}

/// The plans of one abbreviation table, by code (Go numbers its
/// abbreviations from 1 without gaps; codes past the first missing one
/// have no plan).
pub(super) struct Plans {
    by_code: Vec<Option<Plan>>,
}

impl Plans {
    /// Plans for `abbrevs`, read with `enc`.
    pub fn new(abbrevs: &Abbreviations, enc: Encoding) -> Plans {
        let mut by_code = vec![None];
        let mut code = 1;
        while let Some(a) = abbrevs.get(code) {
            by_code.push(plan(a, enc));
            code += 1;
        }
        Plans { by_code }
    }

    /// The plan of abbreviation `code`, if it has one.
    pub fn get(&self, code: u64) -> Option<&Plan> {
        self.by_code.get(usize::try_from(code).ok()?)?.as_ref()
    }
}

fn plan(a: &gimli::Abbreviation, enc: Encoding) -> Option<Plan> {
    let mut steps: Vec<Step> = Vec::new();
    for spec in a.attributes() {
        let step = step(spec.form(), enc)?;
        match (steps.last_mut(), step) {
            (Some(Step::Fixed(n)), Step::Fixed(m)) => *n += m,
            (_, Step::Fixed(0)) => {}
            _ => steps.push(step),
        }
    }
    Some(Plan {
        tag: a.tag(),
        children: a.has_children(),
        steps: steps.into(),
    })
}

/// The step over a value of `form` (DWARF 5 §7.5.6), `None` for a form
/// without one here.
fn step(form: constants::DwForm, enc: Encoding) -> Option<Step> {
    let word = usize::from(enc.format.word_size());
    Some(match form {
        gimli::DW_FORM_addr => Step::Fixed(usize::from(enc.address_size)),
        gimli::DW_FORM_implicit_const | gimli::DW_FORM_flag_present => Step::Fixed(0),
        gimli::DW_FORM_data1
        | gimli::DW_FORM_flag
        | gimli::DW_FORM_strx1
        | gimli::DW_FORM_ref1
        | gimli::DW_FORM_addrx1 => Step::Fixed(1),
        gimli::DW_FORM_data2
        | gimli::DW_FORM_ref2
        | gimli::DW_FORM_addrx2
        | gimli::DW_FORM_strx2 => Step::Fixed(2),
        gimli::DW_FORM_addrx3 | gimli::DW_FORM_strx3 => Step::Fixed(3),
        gimli::DW_FORM_data4
        | gimli::DW_FORM_ref_sup4
        | gimli::DW_FORM_ref4
        | gimli::DW_FORM_strx4
        | gimli::DW_FORM_addrx4 => Step::Fixed(4),
        gimli::DW_FORM_data8
        | gimli::DW_FORM_ref8
        | gimli::DW_FORM_ref_sig8
        | gimli::DW_FORM_ref_sup8 => Step::Fixed(8),
        gimli::DW_FORM_data16 => Step::Fixed(16),
        gimli::DW_FORM_sec_offset
        | gimli::DW_FORM_strp
        | gimli::DW_FORM_strp_sup
        | gimli::DW_FORM_line_strp => Step::Fixed(word),
        gimli::DW_FORM_ref_addr if enc.version == 2 => Step::Fixed(usize::from(enc.address_size)),
        gimli::DW_FORM_ref_addr => Step::Fixed(word),
        gimli::DW_FORM_string => Step::Str,
        gimli::DW_FORM_udata
        | gimli::DW_FORM_sdata
        | gimli::DW_FORM_ref_udata
        | gimli::DW_FORM_strx
        | gimli::DW_FORM_addrx
        | gimli::DW_FORM_loclistx
        | gimli::DW_FORM_rnglistx => Step::Leb,
        gimli::DW_FORM_block1 => Step::Block(1),
        gimli::DW_FORM_block2 => Step::Block(2),
        gimli::DW_FORM_block4 => Step::Block(4),
        gimli::DW_FORM_block | gimli::DW_FORM_exprloc => Step::BlockLeb,
        _ => return None,
    })
}

/// A LEB128 number at `at` in `buf`: (value, bytes), `None` when `buf`
/// ends first or it is longer than 10 bytes.
pub(super) fn leb(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.get(at..)?.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

impl Plan {
    /// Where the attributes that start at `at` in `buf` end; `None` when
    /// they run past `buf`.
    pub fn skip(&self, buf: &[u8], mut at: usize) -> Option<usize> {
        for s in self.steps.iter() {
            at = match *s {
                Step::Fixed(n) => at + n,
                Step::Str => at + memchr::memchr(0, buf.get(at..)?)? + 1,
                Step::Leb => at + leb(buf, at)?.1,
                Step::Block(w) => {
                    let w = usize::from(w);
                    let mut n = [0u8; 8];
                    n[..w].copy_from_slice(buf.get(at..at + w)?);
                    at + w + usize::try_from(u64::from_le_bytes(n)).ok()?
                }
                Step::BlockLeb => {
                    let (n, k) = leb(buf, at)?;
                    at + k + usize::try_from(n).ok()?
                }
            };
        }
        (at <= buf.len()).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_numbers() {
        assert_eq!(leb(&[0x02], 0), Some((2, 1)));
        assert_eq!(leb(&[0xe5, 0x8e, 0x26], 0), Some((624_485, 3)));
        assert_eq!(leb(&[0x80], 0), None);
        assert_eq!(leb(&[], 0), None);
    }

    #[test]
    fn fixed_forms_merge_into_one_step() {
        let enc = Encoding {
            address_size: 8,
            format: gimli::Format::Dwarf32,
            version: 4,
        };
        let st = |f| step(f, enc);
        assert_eq!(st(constants::DW_FORM_addr), Some(Step::Fixed(8)));
        assert_eq!(st(constants::DW_FORM_strp), Some(Step::Fixed(4)));
        assert_eq!(st(constants::DW_FORM_indirect), None);
        // A string, then a udata, then two data4: "ab\0", 0x81 0x01, 8 bytes.
        let p = Plan {
            tag: constants::DW_TAG_variable,
            children: false,
            steps: vec![Step::Str, Step::Leb, Step::Fixed(8)].into(),
        };
        let buf = [b'a', b'b', 0, 0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0xff];
        assert_eq!(p.skip(&buf, 0), Some(13));
        assert_eq!(p.skip(&buf[..12], 0), None);
    }
}

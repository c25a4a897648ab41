//! Which mapping of a profile is the binary, and how its addresses move.
//!
//! A profile lists the object files mapped into the process
//! (`Mapping`: `[memory_start, memory_limit)` from `file_offset`, a file
//! name, a build ID). The binary is matched with one of them:
//!
//! 1. **By build ID**, when the mapping has one: Go's `runtime/pprof`
//!    writes the file's GNU build ID in hex (`runtime/pprof/elf.go`,
//!    `elfBuildID`, unchanged from go1.10 to go1.27). Go's own linker
//!    writes that note by default from go1.24 (checked with `readelf -n`
//!    on builds of go1.19 ... go1.27.3: 1.19-1.23 have only the Go note,
//!    1.24-1.27 both), and before only with `-B` or an external link; so
//!    a go1.24+ profile names its binary, an older one usually does not.
//!    Other profilers write the Go build ID, as is or in hex. Any of these
//!    equal to the binary's is a match; a build ID that equals none is a
//!    mismatch.
//! 2. **By symbols**, when the mapping has no build ID (the usual Go
//!    profile): the profile's own function names (`runtime/pprof`
//!    symbolizes every location with the running binary's tables) must
//!    agree with ours at the same addresses for at least
//!    [`AGREE_PERCENT`] of the mapping's named locations.
//!
//! The load bias (the mapped address minus the binary's own) is the
//! mapping's start minus the address of its file offset in the binary
//! (0 for a non-PIE binary; the ASLR base for a PIE), checked by the
//! same agreement; when that fails (a fake mapping, as `runtime/pprof`
//! writes where `/proc/self/maps` is missing), page-aligned biases that
//! put a named location inside its function are tried.

use deferscope_index::GoIndex;
use deferscope_load::Image;
use deferscope_model::profile::MatchInfo;

use crate::decode::Decoded;
use crate::symbolize::Symbolizer;
use crate::ProfileError;

/// Share of named locations whose names must agree.
pub const AGREE_PERCENT: usize = 95;
/// Named locations checked at most.
const CHECK_MAX: usize = 4000;

/// The binary's mapping in one profile.
#[derive(Clone, Debug)]
pub struct Matched {
    /// Index in `Decoded::mappings` (`None`: locations without a mapping).
    pub mapping: Option<u32>,
    pub bias: u64,
    pub info: MatchInfo,
}

impl Matched {
    /// Whether location `i` of `d` is in the binary.
    pub fn holds(&self, d: &Decoded, i: usize) -> bool {
        d.loc_mapping[i] == self.mapping
    }
}

/// Find the binary's mapping in `d`.
pub fn find(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    sym: &Symbolizer<'_, '_>,
    d: &Decoded,
    force: bool,
) -> Result<Matched, ProfileError> {
    let ids = img.build_ids();
    let mut ours: Vec<String> = Vec::new();
    if let Some(g) = &ids.gnu {
        ours.push(g.clone());
    }
    if let Some(g) = &ids.go {
        ours.push(g.clone());
        ours.push(g.bytes().map(|b| format!("{b:02x}")).collect());
    }
    // Candidate mappings: those with locations, most locations first.
    let mut counts = vec![0usize; d.mappings.len()];
    let mut unmapped = 0usize;
    for m in &d.loc_mapping {
        match m {
            Some(i) => counts[*i as usize] += 1,
            None => unmapped += 1,
        }
    }
    let mut cands: Vec<Option<u32>> = (0..d.mappings.len() as u32)
        .filter(|&i| counts[i as usize] > 0)
        .map(Some)
        .collect();
    cands.sort_by_key(|m| std::cmp::Reverse(m.map_or(unmapped, |i| counts[i as usize])));
    if unmapped > 0 {
        cands.push(None);
    }
    let mut foreign_ids = Vec::new();
    let mut best: Option<Matched> = None;
    for &m in &cands {
        let mapping = m.map(|i| &d.mappings[i as usize]);
        let bid = mapping.map_or("", |mm| d.string(mm.build_id));
        let file = mapping.map_or("", |mm| d.string(mm.filename)).to_owned();
        let by_id = !bid.is_empty() && ours.iter().any(|o| o.eq_ignore_ascii_case(bid));
        if !bid.is_empty() && !by_id {
            foreign_ids.push(format!("{file} {bid}"));
            continue;
        }
        let (bias, checked, agreed) = best_bias(img, ix, sym, d, m);
        let ok = if by_id {
            true
        } else {
            checked > 0 && agreed * 100 >= checked * AGREE_PERCENT
        };
        let info = MatchInfo {
            by: if by_id {
                if ids
                    .gnu
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(bid))
                {
                    "gnu-build-id"
                } else {
                    "go-build-id"
                }
            } else if ok {
                "symbols"
            } else {
                "forced"
            },
            mapping_file: file,
            checked,
            agreed,
            bias: bias as i64,
        };
        let cand = Matched {
            mapping: m,
            bias,
            info,
        };
        if ok {
            return Ok(cand);
        }
        if best.as_ref().is_none_or(|b| agreed > b.info.agreed) {
            best = Some(cand);
        }
    }
    if force {
        if let Some(mut b) = best {
            b.info.by = "forced";
            return Ok(b);
        }
        if let Some(&m) = cands.first() {
            return Ok(Matched {
                mapping: m,
                bias: 0,
                info: MatchInfo {
                    by: "forced",
                    mapping_file: String::new(),
                    checked: 0,
                    agreed: 0,
                    bias: 0,
                },
            });
        }
    }
    let why = match (&best, foreign_ids.is_empty()) {
        (Some(b), _) if b.info.checked > 0 => format!(
            "the profile is not of this binary: {} of {} named locations of mapping {:?} \
             agree with the binary's functions{}",
            b.info.agreed,
            b.info.checked,
            b.info.mapping_file,
            if foreign_ids.is_empty() {
                String::new()
            } else {
                format!("; build IDs in the profile: {}", foreign_ids.join(", "))
            }
        ),
        (_, false) => format!(
            "the profile is not of this binary: its build IDs ({}) are not the binary's ({})",
            foreign_ids.join(", "),
            if ours.is_empty() {
                "none".to_owned()
            } else {
                ours[..ours.len().min(2)].join(", ")
            }
        ),
        _ => "the profile has no build ID and no function names to check the binary against"
            .to_owned(),
    };
    Err(ProfileError::Mismatch(
        d.path.clone(),
        format!("{why} (--force attributes it anyway)"),
    ))
}

/// The bias that makes the most named locations of mapping `m` agree,
/// with (checked, agreed).
fn best_bias(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    sym: &Symbolizer<'_, '_>,
    d: &Decoded,
    m: Option<u32>,
) -> (u64, usize, usize) {
    let named: Vec<usize> = (0..d.locations.len())
        .filter(|&i| d.loc_mapping[i] == m && !d.locations[i].line.is_empty())
        .take(CHECK_MAX)
        .collect();
    let mut biases: Vec<u64> = Vec::new();
    if let Some(mm) = m.map(|i| &d.mappings[i as usize]) {
        if let Some(a) = img.offset_to_addr(mm.file_offset) {
            biases.push(mm.memory_start.wrapping_sub(a));
        }
    }
    biases.push(0);
    let score = |bias: u64| -> usize { named.iter().filter(|&&i| agrees(sym, d, i, bias)).count() };
    let mut best = (biases[0], 0usize);
    for &b in &biases {
        let s = score(b);
        if s > best.1 {
            best = (b, s);
        }
        if s == named.len() {
            return (b, named.len(), s);
        }
    }
    // Page-aligned biases that put the first few named locations inside
    // a function of the same name.
    for &i in named.iter().take(8) {
        let loc = &d.locations[i];
        let Some(outer) = loc.line.last() else {
            continue;
        };
        let name = function_name(d, outer.function_id);
        let Some(f) = ix.find_funcs(&[name])[0] else {
            continue;
        };
        let lo = loc.address.wrapping_sub(f.end - 1) & !0xfff;
        let mut b = lo;
        for _ in 0..64 {
            let pc = loc.address.wrapping_sub(b);
            if pc < f.entry {
                break;
            }
            if pc < f.end && !biases.contains(&b) {
                biases.push(b);
                let s = score(b);
                if s > best.1 {
                    best = (b, s);
                }
            }
            b = b.wrapping_add(0x1000);
        }
    }
    (best.0, named.len(), best.1)
}

/// The name of function `id` of `d`.
pub fn function_name(d: &Decoded, id: u64) -> &str {
    // Writers number functions 1, 2, ... in order (Go's runtime does):
    // try that slot before searching.
    let slot = d
        .functions
        .get(id.wrapping_sub(1) as usize)
        .filter(|f| f.id == id);
    slot.or_else(|| d.functions.iter().find(|f| f.id == id))
        .map_or("", |f| d.string(f.name))
}

/// Whether location `i`'s innermost name is ours at its address.
fn agrees(sym: &Symbolizer<'_, '_>, d: &Decoded, i: usize, bias: u64) -> bool {
    let loc = &d.locations[i];
    let Some(first) = loc.line.first() else {
        return false;
    };
    let want = d
        .functions
        .get(first.function_id.wrapping_sub(1) as usize)
        .filter(|f| f.id == first.function_id)
        .map_or_else(|| function_name(d, first.function_id), |f| d.string(f.name));
    let pc = loc.address.wrapping_sub(bias);
    sym.innermost(pc).is_some_and(|n| n == want)
}

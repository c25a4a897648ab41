//! `deferscope profile`: what a Go program's defers cost in production,
//! from the pprof profiles it already writes.
//!
//! A consumer beside `report`, `disasm` and `trace`: it takes an indexed
//! binary and its [`Analysis`] (the scan, and the explain pass for
//! reasons and fixes), reads one or more profiles of that binary, and
//! produces a [`deferscope_model::profile::Attribution`].
//!
//! - [`pb`]: our own pprof message definitions (`prost` derive, field
//!   numbers of google/pprof's `profile.proto`) and a top-level field walk
//!   that bounds counts before allocating;
//! - [`decode`]: gzip or not, size limits, parallel sample decoding into
//!   flat arrays, every index checked;
//! - [`matching`]: the binary's mapping by build ID (GNU or Go), else by
//!   the profile's own function names, and the load bias (PIE, mapping
//!   start and offset);
//! - [`classify`]: each location named by our own tables and each frame
//!   classified once (runtime machinery by role and Go version, functions
//!   with defers by the annotator's per-instruction roles); each sample by
//!   one walk from the leaf;
//! - [`attribute`]: the sums, in parallel;
//! - [`write`]: a profile with the machinery as frames of its own.
//!
//! Errors are one line ([`ProfileError`]); nothing in a profile can make
//! this crate panic or allocate beyond a bound of its size.

pub mod attribute;
pub mod classify;
pub mod decode;
mod gunzip;
pub mod matching;
pub mod pb;
pub mod symbolize;
pub mod write;

use std::collections::HashSet;

use deferscope_index::GoIndex;
use deferscope_load::Image;
use deferscope_model::explain::Explain;
use deferscope_model::Analysis;

use classify::{DeferredIds, LocFrames, Names, Sites};
pub use decode::{read, Decoded};
use matching::Matched;
use symbolize::Symbolizer;

/// Why profiles could not be attributed. Each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}: {1}")]
    Profile(String, String),
    #[error("{0}: {1}")]
    Mismatch(String, String),
    #[error("{0}")]
    Usage(String),
}

/// What to count.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The sample type to count, by name (`cpu`, `samples`,
    /// `alloc_space`, ...) or index; default: the profile's default
    /// sample type, else its last (as `go tool pprof` chooses).
    pub sample_index: Option<String>,
    /// Attribute a profile whose build ID or names do not match.
    pub force: bool,
}

/// What is known of one profile once matched and classified.
pub struct PerProfile {
    pub matched: Matched,
    pub locs: LocFrames,
    pub deferred: DeferredIds,
}

/// Profiles of one binary, matched and classified, ready to be summed
/// ([`Attributor::attribution`]) or rewritten ([`write::pprof`]).
pub struct Attributor<'s> {
    pub sites: Sites<'s>,
    pub explain: Option<&'s Explain>,
    pub names: Names,
    pub per: Vec<PerProfile>,
    /// The sample type counted.
    pub col: usize,
    /// (objects, bytes) columns of an allocation profile.
    pub alloc_cols: Option<(usize, usize)>,
}

impl<'s> Attributor<'s> {
    /// Match and classify `profiles` of the binary `img`/`ix`, whose
    /// analysis is `a`.
    pub fn new(
        img: &Image<'_>,
        ix: &GoIndex<'_>,
        a: &'s Analysis,
        profiles: &[Decoded],
        opts: &Options,
    ) -> Result<Attributor<'s>, ProfileError> {
        let first = profiles
            .first()
            .ok_or_else(|| ProfileError::Usage("no profile given".into()))?;
        for d in &profiles[1..] {
            if d.sample_types != first.sample_types {
                return Err(ProfileError::Usage(format!(
                    "{} and {} have different sample types ({} / {}): merge profiles of one kind",
                    first.path,
                    d.path,
                    types(first),
                    types(d)
                )));
            }
        }
        let col = column(first, opts.sample_index.as_deref())?;
        let find = |t: &str| first.sample_types.iter().position(|v| v.r#type == t);
        let alloc_cols = match (find("alloc_objects"), find("alloc_space")) {
            (Some(o), Some(b)) => Some((o, b)),
            _ => find("inuse_objects").zip(find("inuse_space")),
        };
        let sym = Symbolizer::new(img, ix);
        let mut sites = Sites::new(&a.scan, a.explain.as_ref());
        let matched: Vec<Matched> = profiles
            .iter()
            .map(|d| matching::find(img, ix, &sym, d, opts.force))
            .collect::<Result<_, _>>()?;
        // The functions with defers that the profiles reach: their code
        // is annotated once.
        let mut entries: HashSet<u64> = HashSet::new();
        for (d, m) in profiles.iter().zip(&matched) {
            for (i, loc) in d.locations.iter().enumerate() {
                if !m.holds(d, i) {
                    continue;
                }
                if let Some(f) = ix.func_for_pc(loc.address.wrapping_sub(m.bias)) {
                    if sites.func_by_entry.contains_key(&f.entry) {
                        entries.insert(f.entry);
                    }
                }
            }
        }
        let mut entries: Vec<u64> = entries.into_iter().collect();
        entries.sort_unstable();
        sites.machinery = deferscope_disasm::machinery(img, ix, &a.scan, &entries);
        let minor = ix.version.map(|v| v.minor);
        let mut names = Names::default();
        let mut per = Vec::with_capacity(profiles.len());
        for (d, m) in profiles.iter().zip(matched) {
            let locs = classify::locations(&sym, d, &m, &sites, minor, &mut names);
            per.push(PerProfile {
                matched: m,
                locs,
                deferred: DeferredIds::default(),
            });
        }
        let deferred = classify::deferred_by_id(&sites, &names);
        for p in &mut per {
            p.deferred = deferred.clone();
        }
        Ok(Attributor {
            sites,
            explain: a.explain.as_ref(),
            names,
            per,
            col,
            alloc_cols,
        })
    }
}

fn types(d: &Decoded) -> String {
    d.sample_types
        .iter()
        .map(|t| t.r#type.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The column `want` names (a type or an index), or the default.
fn column(d: &Decoded, want: Option<&str>) -> Result<usize, ProfileError> {
    let n = d.sample_types.len();
    match want {
        Some(w) => {
            if let Some(i) = d.sample_types.iter().position(|t| t.r#type == w) {
                return Ok(i);
            }
            match w.parse::<usize>() {
                Ok(i) if i < n => Ok(i),
                _ => Err(ProfileError::Usage(format!(
                    "sample type {w:?} not in the profile (it has {})",
                    types(d)
                ))),
            }
        }
        None => Ok(d
            .default_sample_type
            .as_ref()
            .and_then(|t| d.sample_types.iter().position(|v| &v.r#type == t))
            .unwrap_or(n - 1)),
    }
}

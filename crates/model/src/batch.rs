//! Many binaries in one report: `deferscope scan|explain PATH...` over
//! files, directories and container images.
//!
//! A [`Batch`] holds one [`Entry`] per executable file found (a file with
//! an ELF, PE or Mach-O header) and what became of it ([`Outcome`]): its
//! analysis, a reason it was skipped (an executable that is not a Go
//! binary, or one of an architecture deferscope does not read), or why it
//! failed (unreadable, truncated, a damaged Go binary, a layer of an image
//! that is not a tar). Files that are not executables at all are only
//! counted ([`Batch::other_files`]), and so are links, which are never
//! followed ([`Batch::links`]).
//!
//! The entries are sorted by [`Entry::path`]; an entry's [`Entry::key`] is
//! its path inside the argument it came from (the directory or the image's
//! file system), which `deferscope diff DIR DIR` matches binaries by.
//! `T` is what the caller keeps per analysed binary: an
//! [`Analysis`](crate::Analysis) for the reports, a diff side for `diff`.

use std::collections::BTreeMap;

use crate::diff::{Diff, Side};
use crate::{Analysis, Counts, Kind, Origin};

/// What became of one executable file.
#[derive(Clone, Debug)]
pub enum Outcome<T> {
    /// Analysed.
    Done(T),
    /// Not analysed, and not an error: an executable that is not a Go
    /// binary, or a Go binary of an architecture deferscope does not read.
    Skipped(String),
    /// Could not be read or analysed: the message says why (one line,
    /// without the path).
    Failed(String),
}

/// One executable file of a batch (or one input that could not be read:
/// a missing argument, a layer that is not a tar).
#[derive(Clone, Debug)]
pub struct Entry<T> {
    /// What the report calls it: `DIR/sub/file`, or `IMAGE:usr/bin/file`
    /// for a file in a container image.
    pub path: String,
    /// Its path inside its argument (`sub/file`, `usr/bin/file`); the
    /// whole argument for a file given by name.
    pub key: String,
    pub outcome: Outcome<T>,
}

/// The result of a batch run: see the module docs.
#[derive(Clone, Debug)]
pub struct Batch<T = Analysis> {
    /// The arguments, as given.
    pub inputs: Vec<String>,
    /// Every executable found, analysed or not, sorted by path.
    pub entries: Vec<Entry<T>>,
    /// Files that are not executables (no ELF, PE or Mach-O header).
    pub other_files: usize,
    /// Symbolic and hard links, which are not followed.
    pub links: usize,
}

impl<T> Batch<T> {
    /// The analysed entries, in order.
    pub fn done(&self) -> impl Iterator<Item = (&Entry<T>, &T)> {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Done(t) => Some((e, t)),
            _ => None,
        })
    }

    /// The skipped entries and why.
    pub fn skipped(&self) -> impl Iterator<Item = (&Entry<T>, &str)> {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Skipped(why) => Some((e, why.as_str())),
            _ => None,
        })
    }

    /// The failed entries and why.
    pub fn failed(&self) -> impl Iterator<Item = (&Entry<T>, &str)> {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Failed(why) => Some((e, why.as_str())),
            _ => None,
        })
    }

    /// Whether any entry failed (the exit status says so).
    pub fn any_failed(&self) -> bool {
        self.failed().next().is_some()
    }

    /// The same batch with every analysed value turned into another.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Batch<U> {
        Batch {
            inputs: self.inputs,
            entries: self
                .entries
                .into_iter()
                .map(|e| Entry {
                    path: e.path,
                    key: e.key,
                    outcome: match e.outcome {
                        Outcome::Done(t) => Outcome::Done(f(t)),
                        Outcome::Skipped(s) => Outcome::Skipped(s),
                        Outcome::Failed(s) => Outcome::Failed(s),
                    },
                })
                .collect(),
            other_files: self.other_files,
            links: self.links,
        }
    }
}

/// The counts of a batch's analysed binaries, added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub binaries: usize,
    pub skipped: usize,
    pub failed: usize,
    pub sites: usize,
    /// Functions with at least one site.
    pub functions: usize,
    pub kinds: Counts,
    pub by_origin: BTreeMap<Origin, Counts>,
}

impl<T: AsRef<Analysis>> Batch<T> {
    /// Sites, functions and kinds over every analysed binary.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            skipped: self.skipped().count(),
            failed: self.failed().count(),
            ..Totals::default()
        };
        for (_, a) in self.done() {
            let scan = &a.as_ref().scan;
            t.binaries += 1;
            t.sites += scan.sites.len();
            t.functions += scan.functions.iter().filter(|f| f.sites > 0).count();
            for s in &scan.sites {
                t.kinds.add(s.kind);
                t.by_origin.entry(s.origin).or_default().add(s.kind);
            }
        }
        t
    }
}

impl AsRef<Analysis> for Analysis {
    fn as_ref(&self) -> &Analysis {
        self
    }
}

impl Totals {
    /// The counts of one origin (zero when it has no site).
    pub fn origin(&self, o: Origin) -> Counts {
        self.by_origin.get(&o).copied().unwrap_or_default()
    }

    /// The sites of one kind.
    pub fn kind(&self, k: Kind) -> usize {
        self.kinds.get(k)
    }
}

/// `deferscope diff OLD NEW` of two directories or images: binaries
/// matched by [`Entry::key`].
#[derive(Clone, Debug)]
pub struct BatchDiff {
    /// The two arguments, as given.
    pub old: String,
    pub new: String,
    /// One element per key found on either side, sorted by key.
    pub binaries: Vec<BinaryDiff>,
    /// Entries of either side that failed: (path, why).
    pub errors: Vec<(String, String)>,
}

/// One binary of a [`BatchDiff`]: on both sides, or only on one, where
/// the other side is empty (so a new binary's sites are all added).
#[derive(Clone, Debug)]
pub struct BinaryDiff {
    pub key: String,
    pub old: Option<Side>,
    pub new: Option<Side>,
    pub diff: Diff,
}

impl BinaryDiff {
    /// `changed`, `unchanged`, `added` (only in NEW) or `removed`.
    pub fn status(&self) -> &'static str {
        match (&self.old, &self.new) {
            (None, _) => "added",
            (_, None) => "removed",
            _ if self.diff.changes.is_empty() => "unchanged",
            _ => "changed",
        }
    }
}

impl BatchDiff {
    /// The kinds among `fail_on` that have more sites in NEW than in OLD
    /// in any one binary (a binary only in NEW counts from zero).
    pub fn failed(&self, fail_on: &[Kind]) -> Vec<Kind> {
        fail_on
            .iter()
            .copied()
            .filter(|&k| {
                self.binaries
                    .iter()
                    .any(|b| b.diff.new.get(k) > b.diff.old.get(k))
            })
            .collect()
    }

    /// Sites per kind over every binary of each side.
    pub fn totals(&self) -> (Counts, Counts) {
        let add = |t: &mut Counts, c: &Counts| {
            t.open_coded += c.open_coded;
            t.stack_allocated += c.stack_allocated;
            t.heap_allocated += c.heap_allocated;
        };
        let (mut o, mut n) = (Counts::default(), Counts::default());
        for b in &self.binaries {
            add(&mut o, &b.diff.old);
            add(&mut n, &b.diff.new);
        }
        (o, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, outcome: Outcome<u32>) -> Entry<u32> {
        Entry {
            path: path.into(),
            key: path.into(),
            outcome,
        }
    }

    #[test]
    fn sorts_outcomes_apart_and_maps() {
        let b = Batch {
            inputs: vec!["d".into()],
            entries: vec![
                entry("d/a", Outcome::Done(1)),
                entry("d/b", Outcome::Skipped("not a Go binary".into())),
                entry("d/c", Outcome::Failed("truncated".into())),
                entry("d/d", Outcome::Done(2)),
            ],
            other_files: 3,
            links: 1,
        };
        assert_eq!(b.done().map(|(_, &v)| v).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(b.skipped().count(), 1);
        assert!(b.any_failed());
        let m = b.map(|v| v * 10);
        assert_eq!(m.done().map(|(_, &v)| v).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(
            m.failed().next().map(|(e, w)| (e.path.as_str(), w)),
            Some(("d/c", "truncated"))
        );
    }
}

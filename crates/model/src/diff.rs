//! Two builds' defer sites, matched: what `deferscope diff` reports. The
//! matching itself is `deferscope_analyze::diff`'s; these are its data.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Counts, Kind};

/// One site as the diff sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DiffSite {
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    #[serde(skip)]
    pub pc: u64,
    /// Reason codes (explain data), empty when unknown or open-coded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// One build: where it came from and its sites per function.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub path: String,
    pub go_version: Option<String>,
    /// Function name -> (first line of the function, its sites in source
    /// order).
    pub functions: BTreeMap<String, (u32, Vec<DiffSite>)>,
}

impl Side {
    /// Sort each function's sites into source order (line, then pc).
    pub fn sort(&mut self) {
        for (_, sites) in self.functions.values_mut() {
            sites.sort_by_key(|s| (s.line, s.pc));
        }
    }

    /// Sites per kind.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (_, sites) in self.functions.values() {
            for s in sites {
                c.add(s.kind);
            }
        }
        c
    }

    /// Keep only the functions `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.functions.retain(|name, _| keep(name));
    }
}

/// What happened to one site.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Removed,
}

/// One change between the builds.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub function: String,
    pub old: Option<DiffSite>,
    pub new: Option<DiffSite>,
}

/// The result of [`diff`].
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub old: Counts,
    pub new: Counts,
    pub unchanged: usize,
    pub changes: Vec<Change>,
}

impl Diff {
    /// The kinds among `fail_on` that have more sites in the new build.
    pub fn failed(&self, fail_on: &[Kind]) -> Vec<Kind> {
        fail_on
            .iter()
            .copied()
            .filter(|&k| self.new.get(k) > self.old.get(k))
            .collect()
    }
}

//! The union file system of an image's layers, decided one layer at a
//! time from the top down, so that each member is judged as it streams
//! past and no layer is read twice.
//!
//! The rules (OCI image spec, "Whiteouts"; docker's layers follow them):
//!
//! - A member at path `p` of an upper layer replaces `p` of every lower
//!   layer; a directory merges with a lower directory, but anything else
//!   (a file, a link) also hides everything below `p/`.
//! - `d/.wh.<name>` deletes `d/<name>` (and all below it) of the lower
//!   layers; `d/.wh..wh..opq` hides every child of `d` of the lower
//!   layers, leaving `d` itself. Whiteouts apply only to lower layers,
//!   and are no files of the image themselves.
//!
//! Walking from the top, a member is visible when no layer above it
//! replaced, deleted or made opaque its path or a directory holding it.
//! What a layer says takes effect for the layers below it only, so it is
//! gathered while the layer streams and merged by [`Overlay::next_layer`].

use std::collections::HashSet;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What a layer member is, for the union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    Dir,
    /// A regular file, a link or a device: anything that hides what is
    /// below its path.
    Other,
}

/// What became of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A whiteout (recorded for the layers below).
    Whiteout,
    /// Hidden by an upper layer.
    Hidden,
    /// Part of the image, at this normalised path (`usr/bin/go`).
    Visible(String),
    /// A path with `..` in it, or empty: not part of any file system.
    Invalid,
}

/// The paths that upper layers decided.
#[derive(Default, Debug)]
struct Marks {
    /// Every member's path.
    paths: HashSet<String>,
    /// Members that hide what is below their path (not directories).
    blocking: HashSet<String>,
    /// Deleted by `.wh.<name>`.
    deleted: HashSet<String>,
    /// Directories made opaque.
    opaque: HashSet<String>,
}

impl Marks {
    fn merge(&mut self, o: Marks) {
        self.paths.extend(o.paths);
        self.blocking.extend(o.blocking);
        self.deleted.extend(o.deleted);
        self.opaque.extend(o.opaque);
    }
}

/// See the module docs.
#[derive(Default, Debug)]
pub struct Overlay {
    upper: Marks,
    this: Marks,
}

/// `./usr//bin/go`, `/usr/bin/go/` -> `usr/bin/go`; `None` with a `..`.
pub fn normalise(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `a/b/c` -> `a`, `a/b` (the strict ancestors).
fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/').map(move |(i, _)| &p[..i])
}

impl Overlay {
    /// Start the next layer down: what the layer just read said now
    /// applies.
    pub fn next_layer(&mut self) {
        let this = std::mem::take(&mut self.this);
        self.upper.merge(this);
    }

    fn hidden(&self, p: &str) -> bool {
        let u = &self.upper;
        u.paths.contains(p)
            || u.deleted.contains(p)
            || ancestors(p)
                .any(|a| u.deleted.contains(a) || u.opaque.contains(a) || u.blocking.contains(a))
    }

    /// Judge one member of the current layer (its path as the tar spells
    /// it).
    pub fn member(&mut self, raw: &str, kind: Member) -> Seen {
        let Some(p) = normalise(raw) else {
            return Seen::Invalid;
        };
        let (dir, base) = match p.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", p.as_str()),
        };
        if base == OPAQUE {
            self.this.opaque.insert(dir.to_owned());
            return Seen::Whiteout;
        }
        if let Some(name) = base.strip_prefix(WHITEOUT) {
            let gone = if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            };
            self.this.deleted.insert(gone);
            return Seen::Whiteout;
        }
        let hidden = self.hidden(&p);
        if kind == Member::Other {
            self.this.blocking.insert(p.clone());
        }
        self.this.paths.insert(p.clone());
        if hidden {
            Seen::Hidden
        } else {
            Seen::Visible(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layers given bottom first, as an image lists them; the visible
    /// regular files of the union, read top-down.
    fn union(layers: &[&[(&str, Member)]]) -> Vec<String> {
        let mut o = Overlay::default();
        let mut out = Vec::new();
        for layer in layers.iter().rev() {
            for &(p, k) in layer.iter() {
                if let Seen::Visible(v) = o.member(p, k) {
                    if k == Member::Other {
                        out.push(v);
                    }
                }
            }
            o.next_layer();
        }
        out.sort();
        out
    }

    use Member::{Dir, Other};

    #[test]
    fn normalises_paths() {
        assert_eq!(normalise("./usr//bin/go").as_deref(), Some("usr/bin/go"));
        assert_eq!(normalise("/usr/bin/").as_deref(), Some("usr/bin"));
        assert_eq!(normalise("usr/../../etc/passwd"), None);
        assert_eq!(normalise("./"), None);
    }

    #[test]
    fn whiteout_deletes_a_file_and_a_tree_below() {
        let l1: &[(&str, Member)] = &[
            ("usr/", Dir),
            ("usr/bin/a", Other),
            ("usr/bin/b", Other),
            ("opt/tool/x", Other),
            ("opt/tool/sub/y", Other),
        ];
        let l2: &[(&str, Member)] = &[("usr/bin/.wh.a", Other), ("./opt/.wh.tool", Other)];
        assert_eq!(union(&[l1, l2]), ["usr/bin/b"]);
    }

    #[test]
    fn opaque_directory_hides_lower_children_not_its_own() {
        let l1: &[(&str, Member)] = &[("app/old", Other), ("app/keep", Other), ("bin/z", Other)];
        let l2: &[(&str, Member)] = &[
            ("app/", Dir),
            ("app/.wh..wh..opq", Other),
            ("app/new", Other),
        ];
        assert_eq!(union(&[l1, l2]), ["app/new", "bin/z"]);
    }

    #[test]
    fn upper_file_replaces_lower_file_and_directory() {
        let l1: &[(&str, Member)] = &[("bin/go", Other), ("lib/", Dir), ("lib/x", Other)];
        // bin/go rewritten; the directory lib replaced by a file.
        let l2: &[(&str, Member)] = &[("bin/go", Other), ("lib", Other)];
        assert_eq!(union(&[l1, l2]), ["bin/go", "lib"]);
    }

    #[test]
    fn whiteouts_apply_to_lower_layers_only() {
        // A layer's whiteout does not hide what the same layer (or an
        // upper one) writes, and a later layer can bring a file back.
        let l1: &[(&str, Member)] = &[("a", Other), ("d/x", Other)];
        let l2: &[(&str, Member)] = &[(".wh.a", Other), ("d/.wh..wh..opq", Other), ("d/y", Other)];
        let l3: &[(&str, Member)] = &[("a", Other)];
        assert_eq!(union(&[l1, l2, l3]), ["a", "d/y"]);
    }

    #[test]
    fn upper_directory_merges() {
        let l1: &[(&str, Member)] = &[("usr/bin/a", Other)];
        let l2: &[(&str, Member)] = &[("usr/", Dir), ("usr/bin/", Dir), ("usr/bin/b", Other)];
        assert_eq!(union(&[l1, l2]), ["usr/bin/a", "usr/bin/b"]);
    }
}

//! One binary of a batch (`deferscope scan DIR`, an image): analysed, or
//! the reason it was not; and two batches matched for `diff`.
//!
//! [`analyze_bytes`] is [`crate::run`] on bytes already in memory (a
//! mapped file, a member of an image layer), with each failure sorted:
//!
//! - **skipped**, not an error: an executable that is not a Go binary (no
//!   pclntab, and none of the marks a Go linker leaves: `.gopclntab`,
//!   `.go.*`, `__go_*` sections, the `\xff Go buildinf:` header), a Go binary of an
//!   architecture deferscope does not read (32-bit, big-endian, other
//!   instruction sets), a file `object` does not take for an executable;
//! - **failed**: anything else: a truncated or damaged object file (one
//!   whose sections run past its end fails even when its headers parse,
//!   rather than giving a partial report), a Go binary whose tables do not
//!   read.
//!
//! [`diff_batches`] matches two batches' binaries by key (the path inside
//! each argument) and diffs each pair with [`crate::diff::diff`]; a binary
//! on one side only is diffed against an empty side.

use std::collections::BTreeMap;
use std::path::Path;

use deferscope_index::{GoIndex, IndexError};
use deferscope_load::{Image, LoadError};
use deferscope_model::batch::{Batch, BatchDiff, BinaryDiff, Outcome};
use deferscope_model::diff::Side;
use deferscope_model::Analysis;

use crate::{Filter, Request};

/// Whether Go's linker names a section so: `.gopclntab`, `.gosymtab`,
/// `.go.buildinfo` and the other `.go.*`, Mach-O's `__gopclntab`,
/// `__go_buildinfo`..., `.note.go.buildid` (not `.got`, `.got.plt`,
/// Mach-O's `__got`).
fn is_go_section(name: &str) -> bool {
    matches!(
        name,
        ".gopclntab" | ".gosymtab" | "__gopclntab" | "__gosymtab" | ".note.go.buildid"
    ) || name.starts_with(".go.")
        || name.starts_with("__go_")
}

/// Whether the linker that made `img` was Go's: a section it names, or
/// the build info's header.
fn looks_like_go(img: &Image<'_>) -> bool {
    img.sections().iter().any(|s| is_go_section(&s.name))
        || memchr::memmem::find(img.data(), b"\xff Go buildinf:").is_some()
}

/// `msg` without a leading `shown: `.
fn strip(shown: &str, msg: String) -> String {
    match msg.strip_prefix(shown).and_then(|m| m.strip_prefix(": ")) {
        Some(m) => m.to_owned(),
        None => msg,
    }
}

/// Analyse the binary `data` (shown as `shown`), then hand the binary and
/// its analysis to `f`; see the module docs for what is skipped.
pub fn analyze_bytes<T>(
    shown: &str,
    data: &[u8],
    filter: &Filter,
    req: Request<'_>,
    f: impl FnOnce(&Image<'_>, &GoIndex<'_>, Analysis) -> Result<T, String>,
) -> Outcome<T> {
    let img = match Image::parse(Path::new(shown), data) {
        Ok(i) => i,
        Err(e) => {
            let skip = matches!(
                e,
                LoadError::NotObject(..)
                    | LoadError::Unsupported32(..)
                    | LoadError::UnsupportedArch(..)
                    | LoadError::BigEndian(..)
            );
            let msg = strip(shown, e.to_string());
            return if skip {
                Outcome::Skipped(msg)
            } else {
                Outcome::Failed(msg)
            };
        }
    };
    if img.truncated() {
        return Outcome::Failed(format!(
            "truncated {} file: its sections run past the end of the file",
            img.format
        ));
    }
    let ix = match GoIndex::new(&img) {
        Ok(ix) => ix,
        Err(IndexError::NoPclntab) if !looks_like_go(&img) => {
            return Outcome::Skipped("not a Go binary (no Go pclntab)".into())
        }
        Err(e) => return Outcome::Failed(format!("a damaged Go binary: {e}")),
    };
    let a = match crate::run(shown, &img, &ix, filter, req) {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(strip(shown, e.to_string())),
    };
    match f(&img, &ix, a) {
        Ok(t) => Outcome::Done(t),
        Err(e) => Outcome::Failed(e),
    }
}

/// Match two batches' binaries by key and diff each pair.
pub fn diff_batches(old: Batch<Side>, new: Batch<Side>) -> BatchDiff {
    let mut errors = Vec::new();
    let mut by_key: BTreeMap<String, (Option<Side>, Option<Side>)> = BTreeMap::new();
    for (which, b) in [(0, old.entries), (1, new.entries)] {
        for e in b {
            match e.outcome {
                Outcome::Done(side) => {
                    let slot = by_key.entry(e.key).or_default();
                    if which == 0 {
                        slot.0 = Some(side);
                    } else {
                        slot.1 = Some(side);
                    }
                }
                Outcome::Failed(why) => errors.push((e.path, why)),
                Outcome::Skipped(_) => {}
            }
        }
    }
    let binaries = by_key
        .into_iter()
        .map(|(key, (o, n))| {
            let empty = Side::default();
            let diff =
                crate::diff::diff(o.as_ref().unwrap_or(&empty), n.as_ref().unwrap_or(&empty));
            BinaryDiff {
                key,
                old: o,
                new: n,
                diff,
            }
        })
        .collect();
    BatchDiff {
        old: old.inputs.join(" "),
        new: new.inputs.join(" "),
        binaries,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sections_are_not_got() {
        for n in [
            ".gopclntab",
            ".go.buildinfo",
            ".go.fipsinfo",
            "__gopclntab",
            "__go_buildinfo",
            ".note.go.buildid",
        ] {
            assert!(is_go_section(n), "{n}");
        }
        for n in [".got", ".got.plt", ".gnu.hash", ".text", "__got"] {
            assert!(!is_go_section(n), "{n}");
        }
    }

    #[test]
    fn a_non_go_executable_is_skipped_and_a_truncated_one_failed() {
        let ls = Path::new("/bin/ls");
        let Ok(data) = std::fs::read(ls) else { return };
        let out = analyze_bytes(
            "ls",
            &data,
            &Filter::default(),
            Request::default(),
            |_, _, _| Ok(()),
        );
        assert!(
            matches!(&out, Outcome::Skipped(w) if w.contains("not a Go binary")),
            "{out:?}"
        );
        for cut in [4096, data.len() / 2] {
            let out = analyze_bytes(
                "ls",
                &data[..cut],
                &Filter::default(),
                Request::default(),
                |_, _, _| Ok(()),
            );
            assert!(
                matches!(&out, Outcome::Failed(w) if w.contains("truncated")),
                "{cut}: {out:?}"
            );
        }
    }
}

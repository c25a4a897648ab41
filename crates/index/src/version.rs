//! The Go version of a binary, when its build info is missing.
//!
//! The linker stores the toolchain's version in the runtime's `buildVersion`
//! string variable in every Go binary, whether or not it writes a build info
//! block. By symbol when there is one; otherwise every `go1.N[.M]` string in
//! the file is a candidate, and the data is searched for a Go string header
//! `{ptr, len}` that points at one with its exact length.

use std::collections::HashMap;

use deferscope_load::Image;

use crate::rd_u64;

/// Where the Go version was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSource {
    /// The build info block (`runtime/debug.ReadBuildInfo`).
    BuildInfo,
    /// The runtime's `buildVersion` string variable.
    Runtime,
}

impl VersionSource {
    pub fn name(self) -> &'static str {
        match self {
            VersionSource::BuildInfo => "buildinfo",
            VersionSource::Runtime => "runtime.buildVersion",
        }
    }
}

/// The length of a Go version string at the start of `b` (`go1.22`,
/// `go1.22.10`, `go1.21rc2`), or 0.
pub fn version_len(b: &[u8]) -> usize {
    if !b.starts_with(b"go1.") {
        return 0;
    }
    let digits = |n: usize| {
        b[n.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let d = digits(4);
    if d == 0 || d > 3 {
        return 0;
    }
    let mut n = 4 + d;
    let rest = &b[n..];
    if rest.first() == Some(&b'.') && digits(n + 1) > 0 {
        n += 1 + digits(n + 1);
    } else {
        for tag in [&b"rc"[..], b"beta"] {
            if rest.starts_with(tag) && digits(n + tag.len()) > 0 {
                n += tag.len() + digits(n + tag.len());
                break;
            }
        }
    }
    n
}

/// The runtime's `buildVersion` string, if it can be found.
pub fn runtime_version(img: &Image<'_>) -> Option<String> {
    let header = |at: u64| -> Option<String> {
        let ptr = img.read_u64(at)?;
        let len = img.read_u64(at + 8)?;
        if !(6..=16).contains(&len) {
            return None;
        }
        let b = img.read(ptr, len)?;
        (version_len(b) == len as usize).then(|| String::from_utf8_lossy(b).into_owned())
    };
    if let Some(a) = img.symbol("runtime.buildVersion") {
        if let Some(v) = header(a) {
            return Some(v);
        }
    }
    let chunks = img.mapped_chunks();
    // Candidate strings: address -> length. Bounded, whatever the input.
    let mut cands: HashMap<u64, u64> = HashMap::new();
    for (base, bytes) in &chunks {
        for off in memchr::memmem::find_iter(bytes, b"go1.") {
            let n = version_len(&bytes[off..]);
            if n > 0 && cands.len() < 100_000 {
                cands.insert(base + off as u64, n as u64);
            }
        }
    }
    if cands.is_empty() {
        return None;
    }
    for (base, bytes) in &chunks {
        let skip = ((8 - base % 8) % 8) as usize;
        let Some(aligned) = bytes.get(skip..) else {
            continue;
        };
        for (i, w) in aligned.chunks_exact(8).enumerate() {
            let ptr = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let Some(&len) = cands.get(&ptr) else {
                continue;
            };
            if rd_u64(bytes, skip + 8 * i + 8) == Some(len) {
                return img
                    .read(ptr, len)
                    .map(|b| String::from_utf8_lossy(b).into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings() {
        assert_eq!(version_len(b"go1.22.10\x00"), 9);
        assert_eq!(version_len(b"go1.21rc2 "), 9);
        assert_eq!(version_len(b"go1.22"), 6);
        assert_eq!(version_len(b"go1."), 0);
        assert_eq!(version_len(b"go1.x"), 0);
        assert_eq!(version_len(b"go2.0"), 0);
    }
}

//! The build information block (`runtime/debug.BuildInfo`), found by its
//! magic `\xff Go buildinf:` and parsed without running anything.
//!
//! Header (32 bytes): the 14-byte magic, pointer size, flags. With flag bit
//! 2 set (Go 1.18+) the version and module strings follow inline, each a
//! uvarint length and bytes; otherwise two pointers to Go string headers
//! follow at offset 16. The module string is wrapped in 16-byte sentinels.

use deferscope_load::Image;

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// What the binary says about how it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// e.g. `go1.22.10`.
    pub go_version: String,
    /// The main package path (`path` line).
    pub path: Option<String>,
    /// The main module path and version (`mod` line).
    pub main_module: Option<(String, String)>,
    /// Dependency modules (path, version).
    pub deps: Vec<(String, String)>,
    /// Replaced dependencies (`=>` lines): the index in `deps`, and the
    /// replacement's path and version (a directory has version `(devel)`
    /// or none).
    pub replacements: Vec<(usize, String, String)>,
    /// `build` settings in order: `-gcflags`, `CGO_ENABLED`, `GOARCH`, ...
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The value of build setting `key`.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn uvarint(p: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in p.iter().enumerate().take(10) {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Find and parse the build info, by section name first, else by scanning
/// the file for the magic.
pub fn find(img: &Image<'_>) -> Option<BuildInfo> {
    for name in [".go.buildinfo", "__go_buildinfo"] {
        if let Some(s) = img.section(name) {
            if let Some(d) = img.section_data(s) {
                if let Some(b) = parse_at(img, d) {
                    return Some(b);
                }
            }
        }
    }
    let data = img.data();
    let finder = memchr::memmem::Finder::new(MAGIC);
    for off in finder.find_iter(data) {
        if let Some(b) = parse_at(img, &data[off..]) {
            return Some(b);
        }
    }
    None
}

fn parse_at(img: &Image<'_>, d: &[u8]) -> Option<BuildInfo> {
    if d.len() < 32 || &d[..14] != MAGIC {
        return None;
    }
    let ptrsize = d[14] as usize;
    let flags = d[15];
    let (vers, module) = if flags & 2 != 0 {
        let mut p = &d[32..];
        let mut take = || -> Option<Vec<u8>> {
            let (n, k) = uvarint(p)?;
            let n = usize::try_from(n).ok()?;
            let s = p.get(k..k.checked_add(n)?)?.to_vec();
            p = &p[k + n..];
            Some(s)
        };
        (take()?, take()?)
    } else {
        if ptrsize != 8 || flags & 1 != 0 {
            // Only 64-bit little-endian binaries reach this stage.
            return None;
        }
        let read_str = |at: usize| -> Option<Vec<u8>> {
            let hdr = u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?);
            let ptr = img.read_u64(hdr)?;
            let len = img.read_u64(hdr + 8)?;
            if len > 1 << 24 {
                return None;
            }
            Some(img.read(ptr, len)?.to_vec())
        };
        (read_str(16)?, read_str(24).unwrap_or_default())
    };
    let go_version = String::from_utf8(vers).ok()?;
    if !go_version.starts_with("go") && !go_version.starts_with("devel") {
        return None;
    }
    let mut module = module;
    if module.len() >= 33 && module[module.len() - 17] == b'\n' {
        module = module[16..module.len() - 16].to_vec();
    }
    let mut bi = BuildInfo {
        go_version,
        ..Default::default()
    };
    for line in String::from_utf8_lossy(&module).lines() {
        let mut parts = line.splitn(2, '\t');
        let (Some(kind), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "path" => bi.path = Some(rest.to_owned()),
            "mod" | "dep" => {
                let mut f = rest.split('\t');
                let p = f.next().unwrap_or_default().to_owned();
                let v = f.next().unwrap_or_default().to_owned();
                if kind == "mod" {
                    bi.main_module = Some((p, v));
                } else {
                    bi.deps.push((p, v));
                }
            }
            "=>" if !bi.deps.is_empty() => {
                let mut f = rest.split('\t');
                let p = f.next().unwrap_or_default().to_owned();
                let v = f.next().unwrap_or_default().to_owned();
                bi.replacements.push((bi.deps.len() - 1, p, v));
            }
            "build" => {
                if let Some((k, v)) = split_setting(rest) {
                    bi.settings.push((k, v));
                }
            }
            _ => {}
        }
    }
    Some(bi)
}

/// Split `key=value`, where either side may be a Go-quoted string.
fn split_setting(s: &str) -> Option<(String, String)> {
    let (key, rest) = if s.starts_with('"') {
        let (k, n) = unquote(s)?;
        (k, s.get(n..)?.strip_prefix('=')?)
    } else {
        let (k, v) = s.split_once('=')?;
        (k.to_owned(), v)
    };
    let value = if rest.starts_with('"') {
        unquote(rest)
            .map(|(v, _)| v)
            .unwrap_or_else(|| rest.to_owned())
    } else {
        rest.to_owned()
    };
    Some((key, value))
}

/// Unquote a leading Go double-quoted string; returns it and the bytes used.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_with_quotes() {
        assert_eq!(
            split_setting(r#"-gcflags="all=-N -l""#),
            Some(("-gcflags".into(), "all=-N -l".into()))
        );
        assert_eq!(
            split_setting("CGO_ENABLED=0"),
            Some(("CGO_ENABLED".into(), "0".into()))
        );
        assert_eq!(
            split_setting(r#"-ldflags="-s -w""#),
            Some(("-ldflags".into(), "-s -w".into()))
        );
    }
}

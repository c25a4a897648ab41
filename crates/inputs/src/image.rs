//! Container image tarballs, read in place.
//!
//! Two layouts are read, told apart by their files:
//!
//! - **`docker save`**: `manifest.json` lists each image's `Layers`, tar
//!   files inside the archive (`<id>/layer.tar`; `blobs/sha256/<hex>` from
//!   docker 25), bottom layer first.
//! - **OCI image layout** (`skopeo copy oci-archive:`, `docker save` 25+
//!   also writes it): `index.json` points at image manifests (through
//!   nested indexes, as for a multi-platform image) in `blobs/<alg>/<hex>`,
//!   whose `layers` are blobs too. Attestation manifests (platform
//!   `unknown/unknown`) are left out.
//!
//! The archive is indexed once (member name -> byte range), seeking over
//! the members' data. Each image's layers are then read from the top down
//! through [`Overlay`], so a file deleted or replaced by an upper layer is
//! never analysed. A layer is a tar, plain or gzip-compressed (told by its
//! first bytes, whatever its media type says): a plain layer is read
//! seeking over its members' data, and an executable member goes to a
//! worker as a byte range of the archive, mapped there; a gzip layer is
//! decompressed as it streams, and only an executable member is read into
//! memory. Zstd layers are reported as not supported. A layer that cannot
//! be read is one failed entry, and the layers below it are read all the
//! same (without its whiteouts).
//!
//! An entry's path is `IMAGE:usr/bin/tool` (`IMAGE@PLATFORM:...` when the
//! archive holds several images); its key, which `diff` matches, is the
//! path inside the image.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tar::EntryType;

use crate::overlay::{normalise, Member, Overlay, Seen};
use crate::{is_executable, read_head, Sink};

/// Whether `head` (the first 512 bytes of a file) is a tar header:
/// POSIX `ustar\0` or GNU `ustar ` at offset 257, as every image tool
/// writes.
pub fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// `len` bytes of `file` from `start`, as a reader: a layer inside the
/// archive (or the whole archive).
struct Window<'f> {
    file: &'f File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'f> Window<'f> {
    fn new(file: &'f File, start: u64, len: u64) -> Window<'f> {
        Window {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let mut f = self.file;
        f.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = f.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

/// The archive's members: name -> (offset, size), and links name -> target.
#[derive(Default)]
struct Members {
    files: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl Members {
    fn read(file: &File, len: u64) -> io::Result<Members> {
        let mut m = Members::default();
        let mut ar = tar::Archive::new(BufReader::new(Window::new(file, 0, len)));
        for e in ar.entries_with_seek()? {
            let e = e?;
            let Some(name) = normalise(&String::from_utf8_lossy(&e.path_bytes())) else {
                continue;
            };
            let ty = e.header().entry_type();
            if ty.is_file() {
                m.files.insert(name, (e.raw_file_position(), e.size()));
            } else if ty.is_symlink() || ty.is_hard_link() {
                if let Some(t) = e.link_name_bytes() {
                    let t = String::from_utf8_lossy(&t).into_owned();
                    // A symbolic link is relative to its directory, a hard
                    // link to the archive's root.
                    let full = match name.rsplit_once('/') {
                        Some((d, _)) if ty.is_symlink() && !t.starts_with('/') => {
                            format!("{d}/{t}")
                        }
                        _ => t,
                    };
                    if let Some(n) = resolve_dots(&full) {
                        m.links.insert(name, n);
                    }
                }
            }
        }
        Ok(m)
    }

    /// A member's byte range, through up to 8 links.
    fn get(&self, name: &str) -> Option<(u64, u64)> {
        let mut n = normalise(name)?;
        for _ in 0..8 {
            if let Some(&r) = self.files.get(&n) {
                return Some(r);
            }
            n = self.links.get(&n)?.clone();
        }
        None
    }

    fn json(&self, file: &File, name: &str) -> Result<Value, String> {
        let (off, size) = self.get(name).ok_or_else(|| format!("{name} is missing"))?;
        if size > 64 << 20 {
            return Err(format!("{name} is too large for a manifest"));
        }
        let mut buf = Vec::new();
        Window::new(file, off, size)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        serde_json::from_slice(&buf).map_err(|e| format!("{name}: {e}"))
    }
}

/// `a/b/../c` -> `a/c` (link targets may climb).
fn resolve_dots(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

/// One image of the archive: a label when there are several, its layers'
/// member names, bottom first.
struct Image {
    label: String,
    layers: Vec<String>,
}

fn blob_path(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    Some(format!("blobs/{alg}/{hex}"))
}

fn docker_images(v: &Value) -> Result<Vec<Image>, String> {
    let list = v.as_array().ok_or("manifest.json is not a list")?;
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let layers = m
            .get("Layers")
            .and_then(Value::as_array)
            .ok_or("manifest.json: an image without Layers")?;
        let label = m
            .get("RepoTags")
            .and_then(|t| t.get(0))
            .and_then(Value::as_str)
            .map_or_else(|| format!("image{i}"), str::to_owned);
        out.push(Image {
            label,
            layers: layers
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect(),
        });
    }
    Ok(out)
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The image manifests an OCI index leads to (depth-first, in order).
fn oci_images(
    m: &Members,
    file: &File,
    index: &Value,
    depth: usize,
    out: &mut Vec<Image>,
) -> Result<(), String> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("index.json: no manifests")?;
    for d in manifests {
        let platform = d.get("platform");
        let os = platform.and_then(|p| p.get("os")).and_then(Value::as_str);
        if os == Some("unknown") {
            continue; // an attestation manifest
        }
        let digest = d.get("digest").and_then(Value::as_str).unwrap_or("");
        let path = blob_path(digest).ok_or_else(|| format!("bad digest {digest:?}"))?;
        let blob = m.json(file, &path)?;
        let media = d
            .get("mediaType")
            .or_else(|| blob.get("mediaType"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if INDEX_TYPES.contains(&media)
            || (blob.get("manifests").is_some() && blob.get("layers").is_none())
        {
            if depth < 4 {
                oci_images(m, file, &blob, depth + 1, out)?;
            }
            continue;
        }
        let layers = blob
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{path}: a manifest without layers"))?;
        let label = match (
            os,
            platform
                .and_then(|p| p.get("architecture"))
                .and_then(Value::as_str),
        ) {
            (Some(os), Some(arch)) => {
                let v = platform
                    .and_then(|p| p.get("variant"))
                    .and_then(Value::as_str);
                v.map_or_else(|| format!("{os}/{arch}"), |v| format!("{os}/{arch}/{v}"))
            }
            _ => digest.get(7..19).unwrap_or(digest).to_owned(),
        };
        out.push(Image {
            label,
            layers: layers
                .iter()
                .filter_map(|l| blob_path(l.get("digest")?.as_str()?))
                .collect(),
        });
    }
    Ok(())
}

/// Read the image tarball `arg` (shown as `shown`): see the module docs.
pub fn read(arg: &Path, shown: &str, sink: &mut Sink) {
    let file = match File::open(arg).and_then(|f| Ok((f.metadata()?.len(), f))) {
        Ok((len, f)) => (len, Arc::new(f)),
        Err(e) => {
            sink.failed(shown.to_owned(), shown.to_owned(), e);
            return;
        }
    };
    let (len, file) = file;
    let fail = |sink: &mut Sink, why: String| {
        sink.failed(shown.to_owned(), shown.to_owned(), why);
    };
    let members = match Members::read(&file, len) {
        Ok(m) => m,
        Err(e) => return fail(sink, format!("not a readable tar archive: {e}")),
    };
    let images = if members.get("manifest.json").is_some() {
        members
            .json(&file, "manifest.json")
            .and_then(|v| docker_images(&v))
    } else if members.get("index.json").is_some() {
        let mut out = Vec::new();
        members
            .json(&file, "index.json")
            .and_then(|v| oci_images(&members, &file, &v, 0, &mut out))
            .map(|()| out)
    } else {
        Err(
            "a tar archive, but not a container image: no manifest.json (docker save) or \
             index.json (OCI image layout)"
                .into(),
        )
    };
    let images = match images {
        Ok(i) => i,
        Err(e) => return fail(sink, e),
    };
    let several = images.len() > 1;
    for img in &images {
        let prefix = if several {
            format!("{shown}@{}", img.label)
        } else {
            shown.to_owned()
        };
        let keyp = if several {
            format!("{}:", img.label)
        } else {
            String::new()
        };
        let mut overlay = Overlay::default();
        for (i, layer) in img.layers.iter().enumerate().rev() {
            sink.set_layer(i);
            let at = Layer {
                file: &file,
                prefix: &prefix,
                keyp: &keyp,
            };
            match members.get(layer) {
                Some((off, size)) => {
                    if let Err(e) = at.read(off, size, &mut overlay, sink) {
                        sink.failed(format!("{prefix}:{layer}"), format!("{keyp}{layer}"), e);
                    }
                }
                None => {
                    sink.failed(
                        format!("{prefix}:{layer}"),
                        format!("{keyp}{layer}"),
                        "layer missing from the archive",
                    );
                }
            }
            overlay.next_layer();
        }
    }
}

/// One layer being read.
struct Layer<'a> {
    file: &'a Arc<File>,
    /// The image's name in entry paths.
    prefix: &'a str,
    /// The image's label in keys (empty for a lone image).
    keyp: &'a str,
}

impl Layer<'_> {
    fn read(&self, off: u64, size: u64, overlay: &mut Overlay, sink: &mut Sink) -> io::Result<()> {
        let mut head = [0u8; 4];
        let n = read_head(&mut Window::new(self.file, off, size), &mut head)?;
        let head = &head[..n];
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(io::Error::other("zstd-compressed layer: not supported"));
        }
        let win = BufReader::with_capacity(64 << 10, Window::new(self.file, off, size));
        if head.starts_with(&[0x1f, 0x8b]) {
            let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(win));
            let entries = ar.entries().map_err(not_tar)?;
            for e in entries {
                let mut e = e.map_err(not_tar)?;
                if let Some(p) = self.visible_file(&e, overlay, sink) {
                    let mut h = [0u8; 8];
                    let k = read_head(&mut e, &mut h)?;
                    if is_executable(&h[..k]) {
                        let size = e.size();
                        let (path, key) = self.names(&p);
                        sink.read(path, key, &h[..k], &mut e, size)?;
                    } else {
                        sink.other_file();
                    }
                }
            }
        } else {
            let mut ar = tar::Archive::new(win);
            let entries = ar.entries_with_seek().map_err(not_tar)?;
            for e in entries {
                let e = e.map_err(not_tar)?;
                if let Some(p) = self.visible_file(&e, overlay, sink) {
                    let at = off + e.raw_file_position();
                    let len = e.size();
                    let (path, key) = self.names(&p);
                    if e.raw_file_position().saturating_add(len) > size {
                        sink.failed(path, key, "truncated: the layer ends inside the file");
                        continue;
                    }
                    let mut h = [0u8; 8];
                    let k = read_head(&mut Window::new(self.file, at, len), &mut h)?;
                    if is_executable(&h[..k]) {
                        sink.range(path, key, self.file, at, len);
                    } else {
                        sink.other_file();
                    }
                }
            }
        }
        Ok(())
    }

    /// Judge a member: the path of a visible regular file, else `None`
    /// (links and other visible members counted).
    fn visible_file<R: Read>(
        &self,
        e: &tar::Entry<'_, R>,
        overlay: &mut Overlay,
        sink: &mut Sink,
    ) -> Option<String> {
        let ty = e.header().entry_type();
        let kind = if ty == EntryType::Directory {
            Member::Dir
        } else {
            Member::Other
        };
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        match overlay.member(&raw, kind) {
            Seen::Visible(p) if ty.is_file() => Some(p),
            Seen::Visible(_) if ty.is_symlink() || ty.is_hard_link() => {
                sink.link();
                None
            }
            Seen::Visible(_) if kind == Member::Other => {
                sink.other_file();
                None
            }
            _ => None,
        }
    }

    fn names(&self, p: &str) -> (String, String) {
        (format!("{}:{p}", self.prefix), format!("{}{p}", self.keyp))
    }
}

/// A layer's read error, in words: the tar reader quotes the bytes it
/// could not read, and those of a layer that is not a tar are binary, so
/// its message is cut at the first character that is not printable.
fn not_tar(e: io::Error) -> io::Error {
    let text = e.to_string();
    let end = text
        .find(|c: char| !(c.is_ascii_graphic() || c == ' '))
        .unwrap_or(text.len());
    let words = text[..end].trim_end_matches([' ', ':']);
    io::Error::new(e.kind(), format!("not a tar layer ({words})"))
}

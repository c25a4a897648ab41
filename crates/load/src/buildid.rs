//! Build IDs: what identifies one build of a binary, as profilers record
//! it.
//!
//! - **GNU build ID**: the `NT_GNU_BUILD_ID` note (type 3, name `GNU`)
//!   of an ELF file, in `.note.gnu.build-id` (or any `SHT_NOTE` section).
//!   This is what Go's `runtime/pprof` writes as a mapping's `build_id`,
//!   in hex (`runtime/pprof/elf.go`, `elfBuildID`: section notes only).
//!   Go's own linker writes it only when asked (`-ldflags=-B=...` or
//!   `-B gobuildid`); an external link (cgo) usually gets one from the
//!   system linker.
//! - **Go build ID**: written by every `go build`: in ELF the
//!   `.note.go.buildid` note (type 4, name `Go`), and in every format the
//!   string `\xff Go build ID: "<id>"\n \xff` at the start of the text
//!   (`cmd/internal/buildid`, which reads the first 32 KiB).
//!
//! Notes are read bounds-checked from the section bytes: a damaged note
//! gives no ID, never a panic.

use crate::{Format, Image};

/// The build IDs a binary carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildIds {
    /// The GNU build ID, in lower-case hex.
    pub gnu: Option<String>,
    /// The Go build ID (`actionID/contentID`, or more parts).
    pub go: Option<String>,
}

/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;
/// `ELF_NOTE_GOBUILDID_TAG` (cmd/link).
const NT_GO_BUILD_ID: u32 = 4;
/// How much of the text `cmd/internal/buildid` searches.
const GO_ID_WINDOW: usize = 32 << 10;

/// The notes of an ELF note section: (name, type, desc).
fn notes(b: &[u8]) -> Vec<(&[u8], u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let rd = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let pad = |n: usize| n.checked_add(3).map(|x| x & !3);
    while let (Some(namesz), Some(descsz), Some(ty)) = (rd(at), rd(at + 4), rd(at + 8)) {
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        let name_at = at + 12;
        let Some(desc_at) = pad(namesz).and_then(|n| name_at.checked_add(n)) else {
            break;
        };
        let Some(next) = pad(descsz).and_then(|n| desc_at.checked_add(n)) else {
            break;
        };
        let (Some(name), Some(desc)) = (
            b.get(name_at..name_at + namesz),
            b.get(desc_at..desc_at + descsz),
        ) else {
            break;
        };
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        out.push((name, ty, desc));
        at = next;
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The Go build ID string at the start of `b`'s first 32 KiB, if any.
fn go_id_in(b: &[u8]) -> Option<String> {
    const START: &[u8] = b"\xff Go build ID: \"";
    const END: &[u8] = b"\"\n \xff";
    let w = &b[..b.len().min(GO_ID_WINDOW)];
    let i = memchr::memmem::find(w, START)? + START.len();
    let n = memchr::memmem::find(&w[i..], END)?;
    String::from_utf8(w[i..i + n].to_vec()).ok()
}

impl Image<'_> {
    /// The binary's build IDs.
    pub fn build_ids(&self) -> BuildIds {
        let mut ids = BuildIds::default();
        if self.format == Format::Elf {
            for s in self.sections() {
                if !s.name.starts_with(".note") {
                    continue;
                }
                let Some(d) = self.section_data(s) else {
                    continue;
                };
                for (name, ty, desc) in notes(d) {
                    match (name, ty) {
                        (b"GNU", NT_GNU_BUILD_ID) if ids.gnu.is_none() && !desc.is_empty() => {
                            ids.gnu = Some(hex(desc));
                        }
                        (b"Go", NT_GO_BUILD_ID) if ids.go.is_none() => {
                            ids.go = String::from_utf8(desc.to_vec()).ok();
                        }
                        _ => {}
                    }
                }
            }
        }
        if ids.go.is_none() {
            let text = match self.format {
                Format::Elf | Format::Pe => ".text",
                Format::MachO => "__text",
            };
            ids.go = self
                .section(text)
                .and_then(|s| self.section_data(s))
                .and_then(go_id_in)
                .or_else(|| go_id_in(self.data()));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_parsing() {
        let mut b = Vec::new();
        for (name, ty, desc) in [
            (&b"GNU\0"[..], 3u32, &[0xab, 0xcd, 0x01][..]),
            (b"Go\0\0", 4, b"a/b"),
        ] {
            b.extend((name.len() as u32).to_le_bytes());
            b.extend((desc.len() as u32).to_le_bytes());
            b.extend(ty.to_le_bytes());
            b.extend(name);
            b.extend(desc);
            while b.len() % 4 != 0 {
                b.push(0);
            }
        }
        let n = notes(&b);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0], (&b"GNU"[..], 3, &[0xab, 0xcd, 0x01][..]));
        assert_eq!(hex(n[0].2), "abcd01");
        assert_eq!(n[1].2, b"a/b");
        // Damaged: sizes past the end end the walk.
        for k in 0..b.len() {
            let _ = notes(&b[..k]);
        }
        let mut bad = b.clone();
        bad[0] = 0xff;
        bad[1] = 0xff;
        bad[2] = 0xff;
        bad[3] = 0xff;
        assert!(notes(&bad).is_empty());
    }

    #[test]
    fn go_id_string() {
        let t = b"\x00\x00\xff Go build ID: \"abc/def\"\n \xff\xcc";
        assert_eq!(go_id_in(t).as_deref(), Some("abc/def"));
        assert_eq!(go_id_in(b"\xff Go build ID: \"abc"), None);
    }
}

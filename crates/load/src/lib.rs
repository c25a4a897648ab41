//! Stage 1 of the deferscope pipeline: **load**.
//!
//! This crate maps a file into memory, identifies its object format (ELF, PE,
//! Mach-O) and architecture (amd64, arm64), and offers one service to the later
//! stages: reading bytes by *virtual address*, zero-copy, from the mapping.
//!
//! Design:
//! - [`Mapped`] owns the memory map; [`Image`] is a parsed view that borrows
//!   from it, so every slice handed out is a sub-slice of the file.
//! - Nothing here knows about Go. Sections and symbols are exposed by name so
//!   the index stage can look for `.gopclntab`, `runtime.pclntab` and friends.
//! - Every read is bounds-checked against the file; a read that falls into
//!   zero-fill memory (`.bss`) or outside any segment returns `None`.
//! - Errors are small typed values ([`LoadError`]) that print as one line.

pub mod buildid;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

pub use buildid::BuildIds;

/// Why a file could not be loaded. Each variant prints as one line, the
/// whole reason: none has a `source()`, so a printer of the error chain
/// (anyhow's `{:#}`) does not repeat the operating system's message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        /// The reason, printed in the message (not a `source()`).
        error: std::io::Error,
    },
    #[error("{0}: is a directory")]
    Directory(PathBuf),
    #[error("{0}: empty file")]
    Empty(PathBuf),
    #[error("{0}: not an ELF, PE or Mach-O executable ({1})")]
    NotObject(PathBuf, String),
    #[error("{0}: truncated or damaged {1} file ({2})")]
    Damaged(PathBuf, Format, String),
    #[error("{0}: {1}-bit {2} binaries are not supported (only 64-bit amd64 and arm64)")]
    Unsupported32(PathBuf, u8, String),
    #[error("{0}: unsupported architecture {1} (only amd64 and arm64)")]
    UnsupportedArch(PathBuf, String),
    #[error("{0}: big-endian binaries are not supported")]
    BigEndian(PathBuf),
}

/// Object file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Elf,
    Pe,
    MachO,
}

impl Format {
    /// Lower-case name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Elf => "elf",
            Format::Pe => "pe",
            Format::MachO => "macho",
        }
    }

    /// The GOOS a Go binary in this format most likely targets, when the
    /// build settings do not say.
    pub fn default_goos(self) -> &'static str {
        match self {
            Format::Elf => "linux",
            Format::Pe => "windows",
            Format::MachO => "darwin",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Elf => "ELF",
            Format::Pe => "PE",
            Format::MachO => "Mach-O",
        })
    }
}

/// Instruction set. Only 64-bit little-endian targets are supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The GOARCH spelling.
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// The format a file claims by its magic bytes, whether or not it parses.
fn sniff(data: &[u8]) -> Option<Format> {
    match data.get(..4)? {
        [0x7f, b'E', b'L', b'F'] => Some(Format::Elf),
        [b'M', b'Z', ..] => Some(Format::Pe),
        [0xcf, 0xfa, 0xed, 0xfe]
        | [0xce, 0xfa, 0xed, 0xfe]
        | [0xfe, 0xed, 0xfa, 0xcf]
        | [0xca, 0xfe, 0xba, 0xbe] => Some(Format::MachO),
        _ => None,
    }
}

/// Bytes a caller must read from the start of a file for [`sniff_executable`].
pub const SNIFF_LEN: usize = 8;

/// The object format `head` (the first [`SNIFF_LEN`] bytes of a file, or
/// fewer when the file is shorter) announces, for callers that sort many
/// files before mapping any (`deferscope scan DIR`): ELF, PE (`MZ`) and
/// Mach-O, thin or fat. `0xcafebabe` also starts Java class files; as
/// `file(1)` does, it is taken for a fat Mach-O only when the next
/// big-endian word, the number of architectures, is under 20 (a class
/// file's version there is 45 or more).
pub fn sniff_executable(head: &[u8]) -> Option<Format> {
    let f = sniff(head)?;
    if head.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) {
        let n = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
        if n >= 20 {
            return None;
        }
    }
    Some(f)
}

/// A section of the file, by name, with its virtual address range and, when
/// it occupies file bytes, its file range.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// (offset, size) in the file; `None` for zero-fill sections.
    pub file_range: Option<(u64, u64)>,
}

/// A loadable region: `vsize` bytes at `vaddr`, of which the first `fsize`
/// come from the file at `foff`.
#[derive(Clone, Copy, Debug)]
struct Region {
    vaddr: u64,
    vsize: u64,
    foff: u64,
    fsize: u64,
}

/// An opened, memory-mapped file. Create an [`Image`] from it with
/// [`Mapped::image`].
pub struct Mapped {
    path: PathBuf,
    map: memmap2::Mmap,
}

impl Mapped {
    /// Open and map `path`. Directories, missing and empty files are errors.
    pub fn open(path: &Path) -> Result<Mapped, LoadError> {
        let io = |error| LoadError::Io {
            path: path.to_owned(),
            error,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            return Err(LoadError::Directory(path.to_owned()));
        }
        if meta.len() == 0 {
            return Err(LoadError::Empty(path.to_owned()));
        }
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. Its
        // contract is that the file is not truncated or rewritten while the
        // map lives; a concurrent truncation could fault (SIGBUS), which is
        // the accepted risk of every mmap-based binary tool (objdump, gdb).
        // All reads go through bounds-checked slices of the map.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(Mapped {
            path: path.to_owned(),
            map,
        })
    }

    /// Map `len` bytes of the open `file` from `offset` (any offset: the
    /// mapping is page-aligned underneath): a member of an uncompressed
    /// archive, read in place. `path` names it in messages.
    pub fn open_range(
        file: &File,
        offset: u64,
        len: usize,
        path: &Path,
    ) -> Result<Mapped, LoadError> {
        if len == 0 {
            return Err(LoadError::Empty(path.to_owned()));
        }
        // SAFETY: as in `open`: a read-only private map, all reads through
        // bounds-checked slices; a concurrent truncation of the archive
        // could fault, the accepted risk of mmap-based tools.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .map(file)
        }
        .map_err(|error| LoadError::Io {
            path: path.to_owned(),
            error,
        })?;
        Ok(Mapped {
            path: path.to_owned(),
            map,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parse the object headers.
    pub fn image(&self) -> Result<Image<'_>, LoadError> {
        Image::parse(&self.path, &self.map)
    }
}

/// A parsed executable: format, architecture, sections, symbols and the
/// virtual-address map, all borrowing from the file bytes.
pub struct Image<'data> {
    data: &'data [u8],
    /// The parsed object file; `None` for a synthetic image.
    file: Option<object::File<'data>>,
    pub format: Format,
    pub arch: Arch,
    sections: Vec<Section>,
    regions: Vec<Region>,
    /// True when the file has a symbol table with entries.
    pub has_symbols: bool,
    /// True for position-independent executables (ELF `ET_DYN`, PE with a
    /// dynamic base, Mach-O `MH_PIE`).
    pub pie: bool,
}

impl<'data> Image<'data> {
    /// Parse `data` (the bytes of the file at `path`, used in messages).
    pub fn parse(path: &Path, data: &'data [u8]) -> Result<Image<'data>, LoadError> {
        let file = object::File::parse(data).map_err(|e| match sniff(data) {
            Some(f) => LoadError::Damaged(path.to_owned(), f, e.to_string()),
            None => LoadError::NotObject(path.to_owned(), e.to_string()),
        })?;
        let format = match file.format() {
            object::BinaryFormat::Elf => Format::Elf,
            object::BinaryFormat::Pe => Format::Pe,
            object::BinaryFormat::MachO => Format::MachO,
            other => {
                return Err(LoadError::NotObject(
                    path.to_owned(),
                    format!("{other:?} files are not supported"),
                ))
            }
        };
        let arch = match file.architecture() {
            object::Architecture::X86_64 if file.is_64() => Arch::Amd64,
            object::Architecture::Aarch64 if file.is_64() => Arch::Arm64,
            object::Architecture::I386 => {
                return Err(LoadError::Unsupported32(path.to_owned(), 32, "386".into()))
            }
            object::Architecture::Arm => {
                return Err(LoadError::Unsupported32(path.to_owned(), 32, "arm".into()))
            }
            object::Architecture::X86_64_X32 | object::Architecture::Aarch64_Ilp32 => {
                return Err(LoadError::Unsupported32(
                    path.to_owned(),
                    32,
                    format!("{:?}", file.architecture()),
                ))
            }
            other => {
                return Err(LoadError::UnsupportedArch(
                    path.to_owned(),
                    format!("{other:?}"),
                ))
            }
        };
        if !file.is_little_endian() {
            return Err(LoadError::BigEndian(path.to_owned()));
        }
        let len = data.len() as u64;
        let sections = file
            .sections()
            .filter_map(|s| {
                let name = s.name().ok()?.to_owned();
                let file_range = s
                    .file_range()
                    .filter(|&(off, size)| off.checked_add(size).is_some_and(|end| end <= len));
                Some(Section {
                    name,
                    addr: s.address(),
                    size: s.size(),
                    file_range,
                })
            })
            .collect::<Vec<_>>();
        let mut regions: Vec<Region> = file
            .segments()
            .map(|seg| {
                let (foff, fsize) = seg.file_range();
                let fsize = fsize.min(len.saturating_sub(foff));
                Region {
                    vaddr: seg.address(),
                    vsize: seg.size(),
                    foff,
                    fsize: fsize.min(seg.size()),
                }
            })
            .filter(|r| r.vsize > 0)
            .collect();
        // Sections are a finer map than segments and exist where segments
        // are coarse (PE has no segments in `object`); add them too.
        for s in &sections {
            if let Some((foff, fsize)) = s.file_range {
                if s.addr != 0 && s.size > 0 {
                    regions.push(Region {
                        vaddr: s.addr,
                        vsize: s.size,
                        foff,
                        fsize: fsize.min(s.size),
                    });
                }
            }
        }
        regions.sort_by_key(|r| (r.vaddr, std::cmp::Reverse(r.vsize)));
        let has_symbols = file.symbols().next().is_some();
        let pie = match &file {
            object::File::Elf64(elf) => {
                use object::read::elf::FileHeader;
                let e = elf.elf_header().e_type(elf.endian());
                e == object::elf::ET_DYN
            }
            object::File::MachO64(m) => {
                use object::read::macho::MachHeader;
                (m.macho_header().flags(m.endian()) & object::macho::MH_PIE)
                    != object::macho::FileFlags(0)
            }
            object::File::Pe64(pe) => {
                pe.nt_headers()
                    .optional_header
                    .dll_characteristics
                    .get(object::LittleEndian)
                    & object::pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE
                    != object::pe::DllFlags(0)
            }
            _ => false,
        };
        Ok(Image {
            data,
            file: Some(file),
            format,
            arch,
            sections,
            regions,
            has_symbols,
            pie,
        })
    }

    /// A synthetic image: `data` mapped whole at `vaddr`, with no object
    /// headers, sections or symbols. For tests and fuzzing of the later
    /// stages on small inputs.
    pub fn from_raw(data: &'data [u8], vaddr: u64, format: Format, arch: Arch) -> Image<'data> {
        Image {
            data,
            file: None,
            format,
            arch,
            sections: Vec::new(),
            regions: vec![Region {
                vaddr,
                vsize: data.len() as u64,
                foff: 0,
                fsize: data.len() as u64,
            }],
            has_symbols: false,
            pie: false,
        }
    }

    /// Whether the file ends before the bytes its headers place in it: a
    /// section or segment whose file range passes the end (a truncated
    /// download or copy). Zero-fill sections have no file range.
    pub fn truncated(&self) -> bool {
        let len = self.data.len() as u64;
        let past = |(off, size): (u64, u64)| off.checked_add(size).is_none_or(|end| end > len);
        self.file.as_ref().is_some_and(|f| {
            f.sections().any(|s| s.file_range().is_some_and(past))
                || f.segments().any(|s| past(s.file_range()))
        })
    }

    /// The whole file.
    pub fn data(&self) -> &'data [u8] {
        self.data
    }

    /// All sections with a name.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The file bytes of a section, if it has any.
    pub fn section_data(&self, s: &Section) -> Option<&'data [u8]> {
        let (off, size) = s.file_range?;
        self.data.get(off as usize..(off + size) as usize)
    }

    /// Address of the symbol called `name`, from the symbol table (absent in
    /// stripped binaries).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        // Mach-O symbols carry a leading underscore only for C symbols; Go's
        // own symbols are written as-is, but accept both.
        self.file
            .as_ref()?
            .symbols()
            .find(|s| {
                s.name_bytes().is_ok_and(|n| {
                    n == name.as_bytes() || n.strip_prefix(b"_") == Some(name.as_bytes())
                })
            })
            .map(|s| s.address())
    }

    /// Every symbol with a name, as (address, size, name). Empty when stripped.
    pub fn symbols(&self) -> impl Iterator<Item = (u64, u64, &'data str)> + '_ {
        self.file.iter().flat_map(|f| f.symbols()).filter_map(|s| {
            let name = s.name().ok()?;
            if name.is_empty() {
                return None;
            }
            Some((s.address(), s.size(), name))
        })
    }

    /// `len` bytes at virtual address `addr`, or `None` if any part is not
    /// backed by the file.
    pub fn read(&self, addr: u64, len: u64) -> Option<&'data [u8]> {
        let end = addr.checked_add(len)?;
        // Regions may overlap (segments and sections); any one that holds
        // the whole range will do. There are a few dozen regions at most.
        let idx = self.regions.partition_point(|r| r.vaddr <= addr);
        for r in self.regions[..idx].iter().rev() {
            if addr >= r.vaddr && end <= r.vaddr + r.fsize {
                let off = r.foff + (addr - r.vaddr);
                return self.data.get(off as usize..(off + len) as usize);
            }
        }
        None
    }

    /// All bytes from `addr` to the end of the file-backed region holding it.
    pub fn read_to_end(&self, addr: u64) -> Option<&'data [u8]> {
        let idx = self.regions.partition_point(|r| r.vaddr <= addr);
        self.regions[..idx]
            .iter()
            .rev()
            .filter(|r| addr < r.vaddr + r.fsize)
            .map(|r| {
                let off = (r.foff + (addr - r.vaddr)) as usize;
                let end = (r.foff + r.fsize) as usize;
                self.data.get(off..end).unwrap_or(&[])
            })
            .max_by_key(|s| s.len())
    }

    /// Little-endian u64 at `addr`.
    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        let b = self.read(addr, 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// Little-endian u32 at `addr`.
    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let b = self.read(addr, 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    /// Map a file offset back to a virtual address, if a region covers it.
    pub fn offset_to_addr(&self, off: u64) -> Option<u64> {
        self.regions
            .iter()
            .find(|r| off >= r.foff && off < r.foff + r.fsize)
            .map(|r| r.vaddr + (off - r.foff))
    }

    /// Byte ranges of the file that are mapped, read-only data or text,
    /// used by the index stage to scan for tables in stripped binaries.
    /// Returned as (virtual address, bytes).
    pub fn mapped_chunks(&self) -> Vec<(u64, &'data [u8])> {
        let mut out: Vec<(u64, &'data [u8])> = Vec::new();
        for r in &self.regions {
            if r.fsize == 0 {
                continue;
            }
            if out
                .iter()
                .any(|(a, b)| r.vaddr >= *a && r.vaddr + r.fsize <= *a + b.len() as u64)
            {
                continue;
            }
            if let Some(b) = self.data.get(r.foff as usize..(r.foff + r.fsize) as usize) {
                out.push((r.vaddr, b));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        let data = vec![0x42u8; 4096];
        let err = Image::parse(Path::new("junk"), &data).err().unwrap();
        assert!(matches!(err, LoadError::NotObject(..)), "{err}");
    }

    #[test]
    fn sniffs_executables_not_class_files() {
        assert_eq!(
            sniff_executable(b"\x7fELF\x02\x01\x01\0"),
            Some(Format::Elf)
        );
        assert_eq!(sniff_executable(b"MZ\x90\0"), Some(Format::Pe));
        assert_eq!(
            sniff_executable(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]),
            Some(Format::MachO)
        );
        // A fat Mach-O with 2 architectures, and a Java 8 class file
        // (major version 52).
        assert_eq!(
            sniff_executable(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]),
            Some(Format::MachO)
        );
        assert_eq!(
            sniff_executable(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
            None
        );
        assert_eq!(sniff_executable(b"#!/bin/sh"), None);
        assert_eq!(sniff_executable(b"\x7fEL"), None);
    }

    #[test]
    fn a_cut_executable_is_truncated() {
        let Ok(data) = std::fs::read("/bin/ls") else {
            return;
        };
        let whole = Image::parse(Path::new("ls"), &data).unwrap();
        assert!(!whole.truncated());
        // Past the headers, before the end of the code.
        let cut = Image::parse(Path::new("ls"), &data[..data.len() / 2]);
        assert!(cut.is_err() || cut.unwrap().truncated());
    }

    #[test]
    fn maps_a_range_of_a_file() {
        let dir = std::env::temp_dir().join(format!("dsload-range-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let m = Mapped::open_range(&f, 4097, 9000, Path::new("f")).unwrap();
        assert_eq!(m.bytes(), &data[4097..4097 + 9000]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_missing_and_empty_and_directory() {
        let dir = std::env::temp_dir().join(format!("dsload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(Mapped::open(&dir), Err(LoadError::Directory(_))));
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(Mapped::open(&empty), Err(LoadError::Empty(_))));
        assert!(matches!(
            Mapped::open(&dir.join("missing")),
            Err(LoadError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

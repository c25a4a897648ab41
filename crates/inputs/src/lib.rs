//! Where the binaries come from when there are many: `deferscope
//! scan|explain PATH...` over files, directories and container images.
//!
//! [`run`] takes the command line's paths and hands every executable it
//! finds to a worker function, in parallel, and gathers what the workers
//! return into one [`Batch`]. It knows nothing about Go: the worker
//! (`deferscope_analyze::batch`) decides what an executable is worth.
//!
//! Design:
//!
//! - **Discovery** runs on one thread, the *producer*: a regular file is
//!   taken by its first bytes ([`deferscope_load::sniff_executable`]); a
//!   directory is walked recursively in name order, and links (symbolic or
//!   hard) are counted, never followed, so the walk stays inside the tree
//!   ([`walk`]); a tar file named on the command line is a container image
//!   ([`image`]): a `docker save` archive (`manifest.json`, `<id>/layer.tar`)
//!   or an OCI image layout (`index.json`, `oci-layout`, `blobs/sha256/`),
//!   whose layers are read in place, never extracted to disk, with their
//!   whiteouts honoured ([`overlay`]).
//! - **Zero copy where the bytes allow it.** A file on disk is mapped by the
//!   worker that analyses it; so is a member of an uncompressed layer (a
//!   map of its byte range of the image tar). Only a member of a gzip layer
//!   is read into memory, and only once its first bytes are an ELF, PE or
//!   Mach-O header: other members are skipped by the decompressor.
//! - **Bounded memory.** The producer sends work through a bounded channel
//!   to a rayon pool of [`Options::workers`] threads, and takes a share of
//!   a byte budget ([`Options::memory`]) for each binary before sending it;
//!   the worker gives it back when done. So the binaries in memory (mapped
//!   or read) never pass the budget, except one binary larger than the
//!   whole budget, which then runs alone.
//! - **Nothing stops the rest.** An unreadable file, a truncated tar, a
//!   layer that is not a tar each become one failed [`Entry`]; the walk
//!   goes on. Entries come back sorted by path.

pub mod image;
pub mod overlay;
pub mod walk;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex};

use deferscope_load::{sniff_executable, Mapped, SNIFF_LEN};
use deferscope_model::batch::{Batch, Entry, Outcome};
use rayon::iter::{ParallelBridge, ParallelIterator};

/// How to run a batch.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Worker threads (analyses at once).
    pub workers: usize,
    /// Bytes of binaries in memory at once: see the module docs.
    pub memory: u64,
}

/// The default budget per worker: with the largest binary in flight and
/// the analysis' own memory, a worker stays near "its binary + 64 MiB".
pub const MEMORY_PER_WORKER: u64 = 64 << 20;

impl Default for Options {
    fn default() -> Options {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options::with_workers(workers)
    }
}

impl Options {
    /// `workers` threads and [`MEMORY_PER_WORKER`] each.
    pub fn with_workers(workers: usize) -> Options {
        let workers = workers.max(1);
        Options {
            workers,
            memory: MEMORY_PER_WORKER * workers as u64,
        }
    }
}

/// The name of something found: what the report calls it, and its path
/// inside the argument it came from (see [`Entry`]).
#[derive(Clone, Debug)]
pub struct Name {
    pub path: String,
    pub key: String,
    /// (argument, layer from the bottom, order found): of two entries with
    /// the same path, the higher wins (a file written twice in one layer).
    rank: (usize, usize, u64),
}

/// Where an executable's bytes are.
enum Data {
    /// A file on disk, mapped by the worker.
    File(PathBuf),
    /// `len` bytes at `offset` of an uncompressed archive, mapped by the
    /// worker.
    Range {
        file: Arc<File>,
        offset: u64,
        len: usize,
    },
    /// Read out of a compressed layer.
    Bytes(Vec<u8>),
}

/// An executable on its way to a worker, with its share of the budget.
struct Job {
    name: Name,
    data: Data,
    _permit: Permit,
}

/// The byte budget shared by the producer and the workers.
struct Budget {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// A share of the budget, given back when dropped.
struct Permit {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Budget {
    /// Wait until `bytes` fit (or nothing else is in flight), and take them.
    fn acquire(self: &Arc<Budget>, bytes: u64) -> Permit {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Permit {
            budget: Arc::clone(self),
            bytes,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// What the producer found besides the executables it sent.
#[derive(Default)]
struct Found {
    entries: Vec<(Name, Outcome<()>)>,
    other_files: usize,
    links: usize,
}

/// The producer's side: numbering, the budget and the channel.
pub struct Sink {
    input: usize,
    layer: usize,
    seq: u64,
    budget: Arc<Budget>,
    tx: std::sync::mpsc::SyncSender<Job>,
    found: Found,
}

impl Sink {
    fn name(&mut self, path: String, key: String) -> Name {
        self.seq += 1;
        Name {
            path,
            key,
            rank: (self.input, self.layer, self.seq),
        }
    }

    /// Something that could not be read: one failed entry.
    pub fn failed(&mut self, path: String, key: String, why: impl ToString) -> Name {
        let name = self.name(path, key);
        let why = one_line(&name.path, &why.to_string());
        self.found
            .entries
            .push((name.clone(), Outcome::Failed(why)));
        name
    }

    /// A file named on the command line that is no executable.
    fn skipped(&mut self, path: String, key: String, why: &str) {
        let name = self.name(path, key);
        self.found
            .entries
            .push((name, Outcome::Skipped(why.to_owned())));
    }

    /// A file that is not an executable.
    pub fn other_file(&mut self) {
        self.found.other_files += 1;
    }

    /// A link, not followed.
    pub fn link(&mut self) {
        self.found.links += 1;
    }

    /// Set the layer number (from the bottom) of the entries that follow.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer;
    }

    /// Wait for `bytes` of the budget; then `load` the bytes (called only
    /// with the budget held) and send them to a worker.
    fn send(
        &mut self,
        path: String,
        key: String,
        bytes: u64,
        load: impl FnOnce() -> io::Result<Data>,
    ) -> io::Result<()> {
        let name = self.name(path, key);
        let permit = self.budget.acquire(bytes);
        let data = load()?;
        let job = Job {
            name,
            data,
            _permit: permit,
        };
        // The workers only stop receiving when they are all gone.
        self.tx
            .send(job)
            .map_err(|_| io::Error::other("the workers stopped"))
    }

    /// An executable file on disk.
    pub fn file(&mut self, path: String, key: String, file: PathBuf, size: u64) {
        let _ = self.send(path, key, size, || Ok(Data::File(file)));
    }

    /// An executable member of an uncompressed archive.
    pub fn range(&mut self, path: String, key: String, file: &Arc<File>, offset: u64, len: u64) {
        let _ = self.send(path, key, len, || {
            Ok(Data::Range {
                file: Arc::clone(file),
                offset,
                len: usize::try_from(len).map_err(io::Error::other)?,
            })
        });
    }

    /// An executable member of a compressed archive: `head` is what was
    /// read of it already, the rest comes from `rest` (`size` bytes in all).
    pub fn read(
        &mut self,
        path: String,
        key: String,
        head: &[u8],
        rest: &mut dyn Read,
        size: u64,
    ) -> io::Result<()> {
        self.send(path, key, size, || {
            let mut v = Vec::with_capacity(usize::try_from(size).map_err(io::Error::other)?);
            v.extend_from_slice(head);
            rest.read_to_end(&mut v)?;
            Ok(Data::Bytes(v))
        })
    }
}

/// `why` without a leading `path: ` (the entry names its path already).
fn one_line(path: &str, why: &str) -> String {
    let why = why
        .strip_prefix(path)
        .and_then(|w| w.strip_prefix(": "))
        .unwrap_or(why);
    why.replace('\n', " ")
}

/// Read the first bytes of `r` (fewer at its end).
pub(crate) fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether `head` starts an executable.
pub(crate) fn is_executable(head: &[u8]) -> bool {
    sniff_executable(&head[..head.len().min(SNIFF_LEN)]).is_some()
}

/// One command-line argument: a directory, an image tarball or a file.
fn discover(arg: &Path, sink: &mut Sink) {
    let shown = arg.display().to_string();
    let meta = match std::fs::metadata(arg) {
        Ok(m) => m,
        Err(e) => {
            sink.failed(shown.clone(), shown, e);
            return;
        }
    };
    if meta.is_dir() {
        walk::walk(arg, sink);
        return;
    }
    if !meta.is_file() {
        sink.skipped(shown.clone(), shown, "not a regular file");
        return;
    }
    let mut head = [0u8; 512];
    let n = match File::open(arg).and_then(|mut f| read_head(&mut f, &mut head)) {
        Ok(n) => n,
        Err(e) => {
            sink.failed(shown.clone(), shown, e);
            return;
        }
    };
    if image::is_tar(&head[..n]) {
        image::read(arg, &shown, sink);
    } else if is_executable(&head[..n]) {
        sink.file(shown.clone(), shown, arg.to_owned(), meta.len());
    } else if head[..n].starts_with(&[0x1f, 0x8b]) {
        sink.failed(
            shown.clone(),
            shown,
            "a gzip-compressed file: decompress a compressed image tarball first",
        );
    } else {
        sink.skipped(
            shown.clone(),
            shown,
            "not an executable (no ELF, PE or Mach-O header)",
        );
    }
}

/// Whether `path` is read as a batch even alone: a directory, or a tar
/// file (a container image). A single regular file that is neither keeps
/// the one-binary reports.
pub fn is_batch_input(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => true,
        Ok(m) if m.is_file() => {
            let mut head = [0u8; 512];
            File::open(path)
                .and_then(|mut f| read_head(&mut f, &mut head))
                .is_ok_and(|n| image::is_tar(&head[..n]))
        }
        _ => false,
    }
}

/// The bytes of a job, mapped or read, and the worker's call on them.
fn work_on<T>(job: &Job, work: &(dyn Fn(&Name, &[u8]) -> Outcome<T> + Sync)) -> Outcome<T> {
    let shown = Path::new(&job.name.path);
    let mapped = match &job.data {
        Data::File(p) => Mapped::open(p).map(Some),
        Data::Range { file, offset, len } => {
            Mapped::open_range(file, *offset, *len, shown).map(Some)
        }
        Data::Bytes(_) => Ok(None),
    };
    match (&mapped, &job.data) {
        (Err(e), _) => Outcome::Failed(one_line(&job.name.path, &e.to_string())),
        (Ok(Some(m)), _) => work(&job.name, m.bytes()),
        (Ok(None), Data::Bytes(v)) => work(&job.name, v),
        (Ok(None), _) => Outcome::Failed("internal error: no bytes".into()),
    }
}

/// Find every executable under `paths` and run `work` on each, on
/// `opts.workers` threads; `started` is called (from a worker) as each
/// one starts. See the module docs.
pub fn run<T: Send>(
    paths: &[PathBuf],
    opts: &Options,
    started: &(dyn Fn(&str) + Sync),
    work: &(dyn Fn(&Name, &[u8]) -> Outcome<T> + Sync),
) -> Batch<T> {
    let budget = Arc::new(Budget {
        limit: opts.memory.max(1),
        used: Mutex::new(0),
        freed: Condvar::new(),
    });
    let (tx, rx) = sync_channel::<Job>(opts.workers);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.workers.max(1))
        .thread_name(|i| format!("deferscope-worker-{i}"))
        .build();
    let (found, mut done) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut sink = Sink {
                input: 0,
                layer: 0,
                seq: 0,
                budget,
                tx,
                found: Found::default(),
            };
            for (i, p) in paths.iter().enumerate() {
                sink.input = i;
                sink.layer = 0;
                discover(p, &mut sink);
            }
            sink.found
        });
        let consume = || -> Vec<(Name, Outcome<T>)> {
            rx.into_iter()
                .par_bridge()
                .map(|job| {
                    started(&job.name.path);
                    let out = work_on(&job, work);
                    (job.name, out)
                })
                .collect()
        };
        let done = match &pool {
            Ok(pool) => pool.install(consume),
            Err(_) => consume(),
        };
        let found = producer.join().unwrap_or_default();
        (found, done)
    });
    done.extend(found.entries.into_iter().map(|(n, o)| {
        let o = match o {
            Outcome::Skipped(s) => Outcome::Skipped(s),
            Outcome::Failed(s) => Outcome::Failed(s),
            Outcome::Done(()) => Outcome::Failed("internal error".into()),
        };
        (n, o)
    }));
    // Sorted by path; of two entries with one path, the later written wins.
    done.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path).then(b.rank.cmp(&a.rank)));
    done.dedup_by(|later, first| later.0.path == first.0.path);
    Batch {
        inputs: paths.iter().map(|p| p.display().to_string()).collect(),
        entries: done
            .into_iter()
            .map(|(n, outcome)| Entry {
                path: n.path,
                key: n.key,
                outcome,
            })
            .collect(),
        other_files: found.other_files,
        links: found.links,
    }
}

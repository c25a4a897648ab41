//! A directory, walked: every regular file under it, in name order.
//!
//! Links are counted and never followed: a symbolic link could lead out
//! of the tree (or into a loop), and a link inside it names a file the
//! walk reaches under its own path anyway. Each regular file is opened
//! once for its first bytes; only executables go on to a worker (which
//! maps the file). A file or directory that cannot be read is one failed
//! entry, and the walk goes on.

use std::fs::File;
use std::path::Path;

use crate::{is_executable, read_head, Sink};

/// Walk `root` (a directory named on the command line).
pub fn walk(root: &Path, sink: &mut Sink) {
    dir(root, root, sink);
}

fn key_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn dir(root: &Path, d: &Path, sink: &mut Sink) {
    let read = match std::fs::read_dir(d) {
        Ok(r) => r,
        Err(e) => {
            sink.failed(d.display().to_string(), key_of(root, d), e);
            return;
        }
    };
    let mut children = Vec::new();
    for ent in read {
        match ent {
            Ok(ent) => children.push(ent),
            Err(e) => {
                sink.failed(d.display().to_string(), key_of(root, d), e);
            }
        }
    }
    children.sort_by_key(|e| e.file_name());
    for ent in children {
        let p = ent.path();
        let shown = p.display().to_string();
        // file_type does not follow a symbolic link.
        let ty = match ent.file_type() {
            Ok(t) => t,
            Err(e) => {
                sink.failed(shown, key_of(root, &p), e);
                continue;
            }
        };
        if ty.is_symlink() {
            sink.link();
        } else if ty.is_dir() {
            dir(root, &p, sink);
        } else if ty.is_file() {
            file(root, &p, shown, sink);
        } else {
            // Sockets, pipes, devices: nothing to read.
            sink.other_file();
        }
    }
}

fn file(root: &Path, p: &Path, shown: String, sink: &mut Sink) {
    let mut head = [0u8; 8];
    let got = File::open(p).and_then(|mut f| {
        let n = read_head(&mut f, &mut head)?;
        Ok((n, f.metadata()?.len()))
    });
    match got {
        Err(e) => {
            sink.failed(shown, key_of(root, p), e);
        }
        Ok((n, size)) if is_executable(&head[..n]) => {
            sink.file(shown, key_of(root, p), p.to_owned(), size);
        }
        Ok(_) => sink.other_file(),
    }
}

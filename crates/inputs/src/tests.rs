//! The driver on small made-up inputs: directories, both image layouts,
//! whiteouts, bad layers and the memory budget. An "executable" here is
//! any file that starts with an ELF header; what the worker gets must be
//! exactly the file's bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use deferscope_model::batch::{Batch, Outcome};
use flate2::write::GzEncoder;

use crate::{run, Options};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsinputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fake executable: an ELF header and `tag`.
fn exe(tag: &str) -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\x00".to_vec();
    v.extend_from_slice(tag.as_bytes());
    v.extend(std::iter::repeat_n(0u8, 3000));
    v
}

/// Run with a worker that returns the bytes it got.
fn collect(paths: &[PathBuf], opts: &Options) -> Batch<Vec<u8>> {
    run(paths, opts, &|_| {}, &|_, b| Outcome::Done(b.to_vec()))
}

fn done(b: &Batch<Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    b.done().map(|(e, v)| (e.path.clone(), v.clone())).collect()
}

/// A tar of (path, contents); a path ending in `/` is a directory, and
/// `-> target` after a path makes a symbolic link.
fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        if let Some((name, target)) = p.split_once(" -> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        } else if p.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, p, &[][..]).unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha_name(data: &[u8], n: usize) -> String {
    // Not a real digest: the layout only needs names that match.
    format!("{:064x}", data.len() * 1000 + n)
}

/// An OCI image layout tarball holding `layers` (bottom first).
fn oci(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let h = sha_name(l, i);
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{h}"), "size": l.len()}));
        members.push((format!("blobs/sha256/{h}"), l.clone()));
    }
    let manifest =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "layers": descs})).unwrap();
    let mh = sha_name(&manifest, 99);
    members.push((format!("blobs/sha256/{mh}"), manifest.clone()));
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mh}"), "size": manifest.len()}]});
    members.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    members.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    tar_of(&refs)
}

/// A `docker save` tarball holding `layers` (bottom first).
fn docker(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{}/layer.tar", sha_name(l, i));
        names.push(n.clone());
        members.push((n, l.clone()));
    }
    let m = serde_json::json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": names}]);
    members.push(("manifest.json".into(), serde_json::to_vec(&m).unwrap()));
    members.push(("c.json".into(), b"{}".to_vec()));
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    tar_of(&refs)
}

/// Two layers: the lower with four executables, a script and a link; the
/// upper deletes one, makes `opt/app` opaque, replaces one, adds one.
fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let lower = tar_of(&[
        ("usr/", b""),
        ("usr/bin/", b""),
        ("usr/bin/keep", &exe("keep")),
        ("usr/bin/gone", &exe("gone")),
        ("usr/bin/script", b"#!/bin/sh\necho\n"),
        ("usr/bin/link -> keep", b""),
        ("opt/app/old", &exe("old")),
        ("./bin/tool", &exe("tool v1")),
    ]);
    let upper = tar_of(&[
        ("usr/bin/.wh.gone", b""),
        ("opt/app/", b""),
        ("opt/app/.wh..wh..opq", b""),
        ("opt/app/new", &exe("new")),
        ("bin/tool", &exe("tool v2")),
    ]);
    (lower, upper)
}

fn check_two_layers(b: &Batch<Vec<u8>>, img: &str) {
    let got = done(b);
    let want: BTreeMap<String, Vec<u8>> = [
        ("bin/tool", exe("tool v2")),
        ("opt/app/new", exe("new")),
        ("usr/bin/keep", exe("keep")),
    ]
    .into_iter()
    .map(|(p, v)| (format!("{img}:{p}"), v))
    .collect();
    assert_eq!(got, want);
    let keys: Vec<&str> = b.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["bin/tool", "opt/app/new", "usr/bin/keep"]);
    assert_eq!((b.other_files, b.links), (1, 1));
    assert!(!b.any_failed());
}

#[test]
fn oci_layout_with_gzip_layers_and_whiteouts() {
    let d = tmp("oci");
    let (lower, upper) = two_layers();
    let img = d.join("img.tar");
    std::fs::write(&img, oci(&[gz(&lower), gz(&upper)])).unwrap();
    let b = collect(std::slice::from_ref(&img), &Options::with_workers(2));
    check_two_layers(&b, &img.display().to_string());
}

#[test]
fn docker_save_with_plain_layers_read_in_place() {
    let d = tmp("docker");
    let (lower, upper) = two_layers();
    let img = d.join("img.tar");
    std::fs::write(&img, docker(&[lower, upper])).unwrap();
    let b = collect(std::slice::from_ref(&img), &Options::with_workers(2));
    check_two_layers(&b, &img.display().to_string());
}

#[test]
fn a_bad_layer_is_one_failed_entry_and_the_rest_is_read() {
    let d = tmp("badlayer");
    let good = tar_of(&[("bin/a", &exe("a"))]);
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let truncated_gz = {
        let g = gz(&tar_of(&[("bin/b", &exe("b"))]));
        g[..g.len() / 2].to_vec()
    };
    let img = d.join("img.tar");
    std::fs::write(&img, oci(&[good, junk, truncated_gz])).unwrap();
    let b = collect(std::slice::from_ref(&img), &Options::with_workers(2));
    let shown = img.display().to_string();
    assert_eq!(
        done(&b).into_keys().collect::<Vec<_>>(),
        [format!("{shown}:bin/a")]
    );
    let failed: Vec<(&str, &str)> = b.failed().map(|(e, w)| (e.path.as_str(), w)).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(p, w)| p.starts_with(&format!("{shown}:blobs/sha256/"))
                && w.starts_with("not a tar layer")
                && w.chars().all(|c| c.is_ascii_graphic() || c == ' ')),
        "{failed:?}"
    );
}

#[test]
fn a_tar_that_is_no_image_fails_alone() {
    let d = tmp("plain-tar");
    let t = d.join("x.tar");
    std::fs::write(&t, tar_of(&[("bin/a", &exe("a"))])).unwrap();
    let bin = d.join("bin");
    std::fs::write(&bin, exe("bin")).unwrap();
    let b = collect(&[t.clone(), bin.clone()], &Options::with_workers(1));
    assert_eq!(
        done(&b).into_keys().collect::<Vec<_>>(),
        [bin.display().to_string()]
    );
    let (e, why) = b.failed().next().unwrap();
    assert_eq!(e.path, t.display().to_string());
    assert!(why.contains("not a container image"), "{why}");
}

#[test]
fn directory_walk_follows_no_link_and_counts_the_rest() {
    let d = tmp("walk");
    let outside = d.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x"), exe("outside")).unwrap();
    let root = d.join("root");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/b/deep"), exe("deep")).unwrap();
    std::fs::write(root.join("top"), exe("top")).unwrap();
    std::fs::write(root.join("notes.txt"), b"hello").unwrap();
    std::fs::write(root.join("tiny"), b"\x7fE").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    std::os::unix::fs::symlink("top", root.join("top-link")).unwrap();
    let b = collect(std::slice::from_ref(&root), &Options::with_workers(2));
    let got = done(&b);
    let r = root.display().to_string();
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        [format!("{r}/a/b/deep"), format!("{r}/top")]
    );
    assert_eq!(got[&format!("{r}/a/b/deep")], exe("deep"));
    let keys: Vec<&str> = b.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a/b/deep", "top"]);
    assert_eq!((b.other_files, b.links), (2, 2));
}

#[test]
fn missing_argument_fails_and_the_others_run() {
    let d = tmp("missing");
    let f = d.join("f");
    std::fs::write(&f, exe("f")).unwrap();
    let b = collect(&[d.join("nope"), f.clone()], &Options::with_workers(2));
    assert_eq!(done(&b).len(), 1);
    let (e, why) = b.failed().next().unwrap();
    assert!(
        e.path.ends_with("nope") && why.contains("No such file"),
        "{why}"
    );
}

#[test]
fn the_budget_bounds_binaries_in_flight() {
    let d = tmp("budget");
    for i in 0..12 {
        std::fs::write(d.join(format!("b{i:02}")), exe(&i.to_string())).unwrap();
    }
    let gzl = gz(&tar_of(&[
        ("x1", &exe("x1")),
        ("x2", &exe("x2")),
        ("x3", &exe("x3")),
    ]));
    let img = d.join("img.tar");
    std::fs::write(&img, oci(&[gzl])).unwrap();
    // Each binary is about 3 KB: a budget of 4 KB lets one in at a time,
    // whatever the number of workers; 1 MB lets all four workers work.
    for (memory, want_max) in [(4096u64, 1usize), (1 << 20, 4)] {
        let now = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let opts = Options { workers: 4, memory };
        let b = run(
            std::slice::from_ref(&d.to_path_buf()),
            &opts,
            &|_| {},
            &|_, _| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(30));
                now.fetch_sub(1, Ordering::SeqCst);
                Outcome::Done(())
            },
        );
        assert_eq!(b.done().count(), 12);
        let got = max.load(Ordering::SeqCst);
        if want_max == 1 {
            assert_eq!(got, 1);
        } else {
            assert!(got > 1, "workers never overlapped");
        }
        let b = run(std::slice::from_ref(&img), &opts, &|_| {}, &|_, _| {
            Outcome::Done(())
        });
        assert_eq!(b.done().count(), 3);
    }
}

//! Many binaries in one command: `scan|explain DIR`, image tarballs
//! (OCI layout and `docker save`, built here with whiteouts and bad
//! entries), and `diff DIR DIR`.
//!
//! The oracle of each binary's section is the one-binary report of the
//! same file (itself checked against the compiler by `oracle::*`): the
//! batch must say exactly that, in every format, whatever the order the
//! workers finish in; the image's whiteouts decide which files exist
//! (OCI image spec); bad entries are each reported, and the rest runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deferscope-batch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The committed fixture binaries: (fixture name, path).
fn fixtures() -> Vec<(String, PathBuf)> {
    entries(&committed_root())
        .into_iter()
        .map(|e| (e.name(), e.bin()))
        .collect()
}

/// Run deferscope: (exit status, stdout, stderr).
fn run(args: &[&str]) -> Result<(i32, String, String), Failed> {
    let out = deferscope().args(args).output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn ok_stdout(args: &[&str]) -> Result<String, Failed> {
    let (code, out, err) = run(args)?;
    if code != 0 {
        return Err(format!("{args:?}: exit {code}: {err}").into());
    }
    Ok(out)
}

/// A directory of the fixtures (in a subdirectory too), a text file, a
/// non-Go ELF, a truncated Go binary and a link out of the tree.
fn mixed_dir() -> Result<(PathBuf, Vec<(String, PathBuf)>), Failed> {
    let d = tmpdir("mixed");
    let root = d.join("root");
    std::fs::create_dir_all(root.join("sub"))?;
    let mut bins = Vec::new();
    for (i, (name, p)) in fixtures().iter().enumerate() {
        let dst = if i % 2 == 0 {
            root.join(name)
        } else {
            root.join("sub").join(name)
        };
        std::fs::copy(p, &dst)?;
        bins.push((name.clone(), dst));
    }
    std::fs::write(root.join("README"), "not a binary\n")?;
    let first = std::fs::read(&bins[0].1)?;
    std::fs::write(root.join("truncated"), &first[..first.len() / 3])?;
    if Path::new("/bin/ls").exists() {
        std::fs::copy("/bin/ls", root.join("ls"))?;
    }
    std::fs::create_dir_all(d.join("outside"))?;
    std::fs::copy(&bins[0].1, d.join("outside/hidden-binary"))?;
    std::os::unix::fs::symlink(d.join("outside"), root.join("out-link"))?;
    bins.sort_by(|a, b| a.1.cmp(&b.1));
    Ok((root, bins))
}

/// `v` with `binary.path` set to `p`.
fn at_path(mut v: Value, p: &str) -> Value {
    v["binary"]["path"] = Value::String(p.to_owned());
    v
}

fn json(text: &str) -> Result<Value, Failed> {
    Ok(serde_json::from_str(text)?)
}

/// The batch JSON's documents equal each binary's own, in path order.
fn same_docs(batch: &Value, singles: &[(String, Value)]) -> Result<(), Failed> {
    let got = batch["binaries"].as_array().ok_or("no binaries list")?;
    if got.len() != singles.len() {
        return Err(format!("{} binaries, want {}", got.len(), singles.len()).into());
    }
    for (g, (path, want)) in got.iter().zip(singles) {
        if *g != at_path(want.clone(), path) {
            return Err(
                format!("{path}: the batch's document differs from the single scan's").into(),
            );
        }
    }
    Ok(())
}

fn paths_of(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect()
}

fn directory_scan() -> Result<(), Failed> {
    let (root, bins) = mixed_dir()?;
    let r = root.display().to_string();
    let (code, out, err) = run(&["scan", "--format", "json", "-j", "2", &r])?;
    // stderr is a pipe: no progress, only the count of failed entries.
    if code != 2 || err.lines().count() != 1 || !err.starts_with("deferscope: 1 of ") {
        return Err(format!("exit {code} (want 2: one entry failed); stderr {err}").into());
    }
    let v = json(&out)?;
    let mut singles = Vec::new();
    for (_, p) in &bins {
        let s = p.display().to_string();
        singles.push((
            s.clone(),
            json(&ok_stdout(&["scan", "--format", "json", &s])?)?,
        ));
    }
    same_docs(&v, &singles)?;
    let failed = paths_of(&v, "failed");
    if failed != [format!("{r}/truncated")] {
        return Err(format!("failed {failed:?}").into());
    }
    let skipped = paths_of(&v, "skipped");
    let want_skipped: Vec<String> = if Path::new("/bin/ls").exists() {
        vec![format!("{r}/ls")]
    } else {
        vec![]
    };
    if skipped != want_skipped {
        return Err(format!("skipped {skipped:?}").into());
    }
    let s = &v["summary"];
    if s["other_files"] != 1 || s["links"] != 1 || s["binaries"] != bins.len() {
        return Err(format!("summary {s}").into());
    }
    // The same report whatever the number of workers.
    let (_, one, _) = run(&["scan", "--format", "json", "-j", "1", &r])?;
    if one != out {
        return Err("-j 1 and -j 2 reports differ".into());
    }
    Ok(())
}

/// Text: each binary's section is its own report, byte for byte.
fn text_sections(cmd: &str) -> Result<(), Failed> {
    let d = tmpdir(&format!("text-{cmd}"));
    let mut paths = Vec::new();
    for (name, p) in fixtures().iter().take(3) {
        let dst = d.join(name);
        std::fs::copy(p, &dst)?;
        paths.push(dst.display().to_string());
    }
    paths.sort();
    let mut args = vec![cmd];
    args.extend(paths.iter().map(String::as_str));
    let out = ok_stdout(&args)?;
    let mut want = String::new();
    for p in &paths {
        want.push_str(&format!("==> {p} <==\n"));
        want.push_str(&ok_stdout(&[cmd, p])?);
        want.push('\n');
    }
    if !out.starts_with(&want) {
        return Err("the sections differ from the one-binary reports".into());
    }
    let summary = &out[want.len()..];
    if !summary.starts_with("==> summary <==\n3 Go binaries, 0 skipped, 0 failed") {
        return Err(format!("summary: {summary}").into());
    }
    Ok(())
}

/// A tar of (path, bytes); `path -> target` is a symbolic link, a path
/// ending in `/` a directory.
fn tar_of(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>, Failed> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        if let Some((name, target)) = p.split_once(" -> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target)?;
        } else if p.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, p, &[][..])?;
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, data.as_slice())?;
        }
    }
    Ok(b.into_inner()?)
}

fn gz(data: &[u8]) -> Result<Vec<u8>, Failed> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// Three layers: the fixtures under usr/bin and two decoys; whiteouts of
/// the decoys, a truncated binary, a non-Go ELF and a link; 64 KiB that
/// are not a tar.
fn image_layers(bins: &[(String, PathBuf)]) -> Result<Vec<Vec<u8>>, Failed> {
    let first = std::fs::read(&bins[0].1)?;
    let mut l1 = vec![("usr/".to_owned(), vec![]), ("usr/bin/".to_owned(), vec![])];
    for (name, p) in bins {
        l1.push((format!("usr/bin/{name}"), std::fs::read(p)?));
    }
    l1.push(("opt/decoy/deleted".into(), first.clone()));
    l1.push(("opt/old/hidden".into(), first.clone()));
    l1.push(("etc/motd".into(), b"hello\n".to_vec()));
    let mut l2 = vec![
        ("opt/decoy/.wh.deleted".to_owned(), vec![]),
        ("opt/old/".into(), vec![]),
        ("opt/old/.wh..wh..opq".into(), vec![]),
        (
            "opt/bad/truncated".into(),
            first[..first.len() / 3].to_vec(),
        ),
        ("usr/bin/link -> ../../opt/decoy/deleted".into(), vec![]),
    ];
    if let Ok(ls) = std::fs::read("/bin/ls") {
        l2.push(("opt/bad/not-go".into(), ls));
    }
    let junk: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    Ok(vec![tar_of(&l1)?, tar_of(&l2)?, junk])
}

fn hex_name(i: usize, data: &[u8]) -> String {
    format!("{:056x}{:08x}", data.len(), i)
}

/// The OCI layout (gzip layers but the last) or `docker save` tarball.
fn image(layers: &[Vec<u8>], oci: bool) -> Result<(Vec<u8>, Vec<String>), Failed> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut names = Vec::new();
    let mut descs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let blob = if oci && i + 1 < layers.len() {
            gz(l)?
        } else {
            l.clone()
        };
        let h = hex_name(i, &blob);
        let name = if oci {
            format!("blobs/sha256/{h}")
        } else {
            format!("{h}/layer.tar")
        };
        descs.push(
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{h}"), "size": blob.len()}),
        );
        names.push(name.clone());
        members.push((name, blob));
    }
    if oci {
        let m = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "layers": descs}))?;
        let mh = hex_name(99, &m);
        members.push((format!("blobs/sha256/{mh}"), m.clone()));
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{mh}"), "size": m.len()}]});
        members.push(("index.json".into(), serde_json::to_vec(&index)?));
        members.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
    } else {
        let m = serde_json::json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": names}]);
        members.push(("manifest.json".into(), serde_json::to_vec(&m)?));
        members.push(("c.json".into(), b"{}".to_vec()));
    }
    Ok((tar_of(&members)?, names))
}

fn image_scan(oci: bool) -> Result<(), Failed> {
    let bins = fixtures();
    let d = tmpdir(if oci { "oci" } else { "docker" });
    let (tar, layer_names) = image(&image_layers(&bins)?, oci)?;
    let img = d.join("image.tar");
    std::fs::write(&img, tar)?;
    let shown = img.display().to_string();
    let (code, out, err) = run(&["scan", "--format", "json", &shown])?;
    if code != 2 {
        return Err(format!("exit {code}, want 2; {err}").into());
    }
    let v = json(&out)?;
    let mut sorted = bins.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut singles = Vec::new();
    for (name, p) in &sorted {
        let s = json(&ok_stdout(&[
            "scan",
            "--format",
            "json",
            &p.display().to_string(),
        ])?)?;
        singles.push((format!("{shown}:usr/bin/{name}"), s));
    }
    // The decoys are gone (whiteout, opaque directory), the link is not
    // followed: only the fixtures remain.
    same_docs(&v, &singles)?;
    let mut want_failed = vec![
        format!("{shown}:{}", layer_names[2]),
        format!("{shown}:opt/bad/truncated"),
    ];
    want_failed.sort();
    let failed = paths_of(&v, "failed");
    if failed != want_failed {
        return Err(format!("failed {failed:?}, want {want_failed:?}").into());
    }
    let skipped = paths_of(&v, "skipped");
    if Path::new("/bin/ls").exists() && skipped != [format!("{shown}:opt/bad/not-go")] {
        return Err(format!("skipped {skipped:?}").into());
    }
    if v["summary"]["links"] != 1 || v["summary"]["other_files"] != 1 {
        return Err(format!("summary {}", v["summary"]).into());
    }
    Ok(())
}

/// explain in JSON and SARIF: each binary's part is its own report; the
/// HTML page holds each binary's own page body in a template.
fn explain_formats() -> Result<(), Failed> {
    let d = tmpdir("formats");
    let mut paths = Vec::new();
    for (name, p) in fixtures().iter().take(3) {
        let dst = d.join(name);
        std::fs::copy(p, &dst)?;
        paths.push(dst.display().to_string());
    }
    paths.sort();
    let dir = d.display().to_string();
    let v = json(&ok_stdout(&["explain", "--format", "json", &dir])?)?;
    let singles: Vec<(String, Value)> = paths
        .iter()
        .map(|p| {
            Ok((
                p.clone(),
                json(&ok_stdout(&["explain", "--format", "json", p])?)?,
            ))
        })
        .collect::<Result<_, Failed>>()?;
    same_docs(&v, &singles)?;

    let s = json(&ok_stdout(&["explain", "--format", "sarif", &dir])?)?;
    let runs = s["runs"].as_array().ok_or("no runs")?;
    if runs.len() != paths.len() {
        return Err(format!("{} SARIF runs, want {}", runs.len(), paths.len()).into());
    }
    for (run, p) in runs.iter().zip(&paths) {
        let one = json(&ok_stdout(&["explain", "--format", "sarif", p])?)?;
        let mut run = run.clone();
        let id = run
            .as_object_mut()
            .and_then(|o| o.remove("automationDetails"))
            .ok_or("no automationDetails")?;
        let key = Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if id["id"] != format!("deferscope/{key}/") || run != one["runs"][0] {
            return Err(format!("{p}: the SARIF run differs from the single report's").into());
        }
    }

    let page = ok_stdout(&["explain", "--format", "html", &dir])?;
    for (i, p) in paths.iter().enumerate() {
        let one = ok_stdout(&["explain", "--format", "html", p])?;
        let body_start = one.find("<body>\n").ok_or("no body")? + "<body>\n".len();
        let body_end = one.rfind("<script>").ok_or("no script")?;
        let open = format!("<template id=\"b-{i}\">");
        let at = page.find(&open).ok_or(format!("no template {i}"))? + open.len();
        let end = page[at..].find("</template>").ok_or("unclosed template")? + at;
        if page[at..end] != one[body_start..body_end] {
            return Err(format!("{p}: the template differs from the page's body").into());
        }
        let script = &one[body_end + "<script>".len()..one.rfind("</script>").ok_or("no end")?];
        if !page.contains(&format!(
            "<script type=\"text/plain\" id=\"report-js\">{script}</script>"
        )) {
            return Err("the page's script is not carried once as report-js".into());
        }
        if !page.contains(&format!("<option value=\"{i}\">")) {
            return Err(format!("no selector option {i}").into());
        }
    }
    if page.matches("<template ").count() != paths.len() {
        return Err("one template per binary expected".into());
    }
    Ok(())
}

/// A file the user cannot read is one failed entry (run as `nobody` when
/// root, whom file modes do not stop).
fn unreadable_file() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let d = tmpdir("unreadable");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    let (name, p) = &fixtures()[0];
    std::fs::copy(p, d.join(name))?;
    std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(0o644))?;
    std::fs::copy(p, d.join("secret"))?;
    std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o000))?;
    let exe = env!("CARGO_BIN_EXE_deferscope");
    let mut c = if is_root() {
        if !Path::new("/usr/bin/setpriv").exists() {
            return Err("running as root without setpriv: cannot make an unreadable file".into());
        }
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe]);
        c
    } else {
        Command::new(exe)
    };
    let out = c.args(["scan", "--format", "json"]).arg(&d).output()?;
    let v = json(&String::from_utf8(out.stdout)?)?;
    let failed: Vec<(String, String)> = v["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["path"].as_str().unwrap_or("").into(),
                e["error"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let want = d.join("secret").display().to_string();
    if out.status.code() != Some(2)
        || failed.len() != 1
        || failed[0].0 != want
        || !failed[0].1.contains("Permission denied")
    {
        return Err(format!(
            "exit {:?}, failed {failed:?}; stderr {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if v["summary"]["binaries"] != 1 {
        return Err("the readable binary was not analysed".into());
    }
    Ok(())
}

/// Whether this process runs as root (from /proc, no libc call).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// diff of two directories: binaries matched by path inside each; every
/// pair's changes are the one-binary diff's.
fn diff_directories() -> Result<(), Failed> {
    let f = fixtures();
    let d = tmpdir("diff");
    let (old, new) = (d.join("old"), d.join("new"));
    std::fs::create_dir_all(old.join("bin"))?;
    std::fs::create_dir_all(new.join("bin"))?;
    // same: unchanged; swapped: another build under the same name;
    // only-old, only-new: removed and added.
    std::fs::copy(&f[0].1, old.join("bin/same"))?;
    std::fs::copy(&f[0].1, new.join("bin/same"))?;
    std::fs::copy(&f[1].1, old.join("bin/swapped"))?;
    std::fs::copy(&f[2].1, new.join("bin/swapped"))?;
    std::fs::copy(&f[3].1, old.join("only-old"))?;
    std::fs::copy(&f[4].1, new.join("only-new"))?;
    let (o, n) = (old.display().to_string(), new.display().to_string());
    let (code, out, err) = run(&[
        "diff",
        "--format",
        "json",
        "--fail-on",
        "heap-allocated",
        &o,
        &n,
    ])?;
    let v = json(&out)?;
    let bins = v["binaries"].as_array().ok_or("no binaries")?;
    let status: Vec<(String, String)> = bins
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap_or("").into(),
                b["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("bin/same", "unchanged"),
        ("bin/swapped", "changed"),
        ("only-new", "added"),
        ("only-old", "removed"),
    ]
    .into_iter()
    .map(|(a, b)| (a.into(), b.into()))
    .collect();
    if status != want {
        return Err(format!("{status:?}").into());
    }
    let (os, ns) = (old.join("bin/swapped"), new.join("bin/swapped"));
    let one = json(&ok_stdout_or_1(&[
        "diff",
        "--format",
        "json",
        &os.display().to_string(),
        &ns.display().to_string(),
    ])?)?;
    if bins[1]["changes"] != one["changes"] || bins[1]["unchanged"] != one["unchanged"] {
        return Err("bin/swapped: changes differ from the one-binary diff".into());
    }
    // --fail-on trips when any one binary has more heap-allocated sites
    // (a binary only in NEW counts from zero).
    let heap = |b: &Value, side: &str| b[side]["kinds"]["heap-allocated"].as_u64().unwrap_or(0);
    let more = bins.iter().any(|b| heap(b, "new") > heap(b, "old"));
    let want_failed = if more {
        serde_json::json!(["heap-allocated"])
    } else {
        serde_json::json!([])
    };
    if v["failed"] != want_failed || code != i32::from(more) {
        return Err(format!(
            "exit {code}, failed {}; want {want_failed}; {err}",
            v["failed"]
        )
        .into());
    }
    let (code, _, err) = run(&["diff", &o, &f[0].1.display().to_string()])?;
    if code != 2 || !err.contains("is a directory or image and") {
        return Err(format!("directory vs binary: exit {code}: {err}").into());
    }
    Ok(())
}

fn ok_stdout_or_1(args: &[&str]) -> Result<String, Failed> {
    let (code, out, err) = run(args)?;
    if code > 1 {
        return Err(format!("{args:?}: exit {code}: {err}").into());
    }
    Ok(out)
}

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("batch::directory_scan", directory_scan),
        Trial::test("batch::text_sections_scan", || text_sections("scan")),
        Trial::test("batch::text_sections_explain", || text_sections("explain")),
        Trial::test("batch::image_oci", || image_scan(true)),
        Trial::test("batch::image_docker_save", || image_scan(false)),
        Trial::test("batch::explain_json_sarif_html", explain_formats),
        Trial::test("batch::unreadable_file", unreadable_file),
        Trial::test("batch::diff_directories", diff_directories),
    ]
}

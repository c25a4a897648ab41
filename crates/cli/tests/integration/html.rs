//! `--format html`, without a browser (tests/html/run.sh drives Chromium):
//! the page is self-contained (no URL, no external resource, a CSP that
//! forbids requests), its embedded data holds exactly the sites of
//! `scan --format json` on the same binary, the data cannot close its
//! `<script>` element, and the listing of every stack- or heap-allocated
//! site's function shows the `CALL runtime.deferproc*` at the site's pc
//! (the registering instruction, docs/json.md).

use std::path::Path;

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries};

fn run(bin: &Path, args: &[&str]) -> Result<Vec<u8>, Failed> {
    let out = deferscope().args(args).arg(bin).output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(out.stdout)
}

const DATA_OPEN: &str = r#"<script type="application/json" id="data">"#;

fn check(bin: &Path, command: &str) -> Result<(), Failed> {
    let page = String::from_utf8(run(bin, &[command, "--format", "html"])?)?;
    let json: Value = serde_json::from_slice(&run(bin, &["scan", "--format", "json"])?)?;
    if !page.starts_with("<!DOCTYPE html>") || !page.trim_end().ends_with("</html>") {
        return Err("not a whole HTML document".into());
    }
    if !page.contains("content=\"default-src 'none';") {
        return Err("no Content-Security-Policy forbidding requests".into());
    }
    for bad in [
        "http://", "https://", "src=", "<link", "url(", "@import", "<iframe", "<img",
    ] {
        if page.contains(bad) {
            return Err(format!("page contains {bad:?}").into());
        }
    }
    if page.matches("<script").count() != 2 || page.matches("</script>").count() != 2 {
        return Err("expected exactly two script elements (data, code)".into());
    }
    let start = page.find(DATA_OPEN).ok_or("no data element")? + DATA_OPEN.len();
    let end = start + page[start..].find("</script>").ok_or("data not closed")?;
    let data: Value = serde_json::from_str(&page[start..end])?;
    let kinds = ["open-coded", "stack-allocated", "heap-allocated"];
    let funcs = data["funcs"].as_array().ok_or("no funcs")?;
    let files = data["files"].as_array().ok_or("no files")?;
    let mut got: Vec<String> = Vec::new();
    for s in data["sites"].as_array().ok_or("no sites")? {
        let f = &funcs[s[0].as_u64().ok_or("site function")? as usize];
        got.push(format!(
            "{}|{}:{}|{}",
            f["n"].as_str().unwrap_or(""),
            files[s[1].as_u64().ok_or("site file")? as usize]
                .as_str()
                .unwrap_or(""),
            s[2],
            kinds[s[3].as_u64().ok_or("site kind")? as usize]
        ));
    }
    let mut want: Vec<String> = json["sites"]
        .as_array()
        .ok_or("no JSON sites")?
        .iter()
        .map(|s| {
            format!(
                "{}|{}:{}|{}",
                s["function"].as_str().unwrap_or(""),
                s["file"].as_str().unwrap_or(""),
                s["line"],
                s["kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "page has {} sites, JSON {}; first difference: {:?}",
            got.len(),
            want.len(),
            got.iter().zip(&want).find(|(a, b)| a != b)
        )
        .into());
    }
    // Every stack- or heap-allocated site: its function's listing has the
    // site's pc, and the instruction there calls runtime.deferproc*.
    for s in json["sites"].as_array().unwrap() {
        if s["kind"] == "open-coded" {
            continue;
        }
        let pc = s["pc"].as_u64().ok_or("pc")?;
        let f = funcs
            .iter()
            .find(|f| {
                f["n"] == s["function"]
                    && f["e"]
                        .as_u64()
                        .is_some_and(|e| pc >= e && pc < e + f["z"].as_u64().unwrap_or(0))
            })
            .ok_or_else(|| format!("no panel for {}", s["function"]))?;
        let entry = f["e"].as_u64().unwrap();
        let listing = f["d"]
            .as_str()
            .ok_or_else(|| format!("no listing for {}", s["function"]))?;
        let off = format!("{:x}", pc - entry);
        let row = listing
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(off.as_str()))
            .ok_or_else(|| format!("{}: no row at pc {pc:#x}", s["function"]))?;
        if !row.contains("CALL runtime.deferproc") {
            return Err(format!("{}: row at {pc:#x} is {row:?}", s["function"]).into());
        }
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let mut out = Vec::new();
    for e in entries(&committed_root()) {
        let bin = e.bin();
        let name = e.name();
        for command in ["scan", "explain"] {
            let bin = bin.clone();
            out.push(Trial::test(format!("html::{command}::{name}"), move || {
                check(&bin, command)
            }));
        }
    }
    out
}

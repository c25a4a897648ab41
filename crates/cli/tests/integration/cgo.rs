//! `cgo::*`: deferred calls into C (issue 14 item 8) on the `cgo` fixture.
//!
//! The oracle is the fixture's source, `fixtures/go/cgo/main.go`: a site
//! whose defer statement's line reads `defer C.name(...)` crosses into C
//! (through its `_Cfunc_name` wrapper and `runtime.cgocall`). Every site at
//! such a line must be marked `crosses_cgo` with `c_function` `C.name`, and
//! every other site of main.go not; with the published table
//! (`--published-costs`), a marked site's `est_ns` is its kind's figure
//! (the heap + closure one when it has a heap closure) plus
//! `cost_table.cgo_call_ns`, and an unmarked site's is the figure alone.

use std::collections::HashMap;
use std::process::Command;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, repo_root, Entry};

/// main.go line -> the C function its defer statement calls.
fn c_defers() -> Result<HashMap<u64, String>, String> {
    let src = std::fs::read_to_string(repo_root().join("fixtures/go/cgo/main.go"))
        .map_err(|e| e.to_string())?;
    Ok(src
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.trim().strip_prefix("defer C.")?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            Some((i as u64 + 1, format!("C.{name}")))
        })
        .collect())
}

fn check(e: &Entry) -> Result<(), String> {
    let want = c_defers()?;
    let out = Command::new(env!("CARGO_BIN_EXE_deferscope"))
        .args(["explain", "--published-costs", "--format", "json"])
        .arg(e.bin())
        .output()
        .map_err(|e| e.to_string())?;
    let x: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("explain json: {e}"))?;
    let t = &x["cost_table"];
    let cgo = t["cgo_call_ns"]
        .as_f64()
        .ok_or("no cgo_call_ns in cost_table")?;
    let (mut marked, mut plain) = (0, 0);
    for s in x["sites"].as_array().ok_or("no sites")? {
        if !s["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/main.go") || f == "main.go")
        {
            continue;
        }
        let line = s["line"].as_u64().unwrap_or(0);
        let c = want.get(&line);
        let got = s["crosses_cgo"].as_bool();
        if got != Some(c.is_some()) || s["c_function"].as_str() != c.map(String::as_str) {
            return Err(format!(
                "main.go:{line}: crosses_cgo {}, c_function {}; the source defers {}",
                s["crosses_cgo"],
                s["c_function"],
                c.map_or("a Go call", String::as_str)
            ));
        }
        let kind_ns = match s["kind"].as_str() {
            Some("open-coded") => t["open_coded_ns"].as_f64(),
            Some("stack-allocated") => t["stack_allocated_ns"].as_f64(),
            _ if !s["heap_closure_bytes"].is_null() && !t["heap_closure_ns"].is_null() => {
                t["heap_closure_ns"].as_f64()
            }
            _ => t["heap_allocated_ns"].as_f64(),
        }
        .ok_or("no figure for the kind")?;
        let expect = kind_ns + if c.is_some() { cgo } else { 0.0 };
        let est = s["est_ns"].as_f64().unwrap_or(-1.0);
        if (est - expect).abs() > 1e-9 {
            return Err(format!("main.go:{line}: est_ns {est}, expected {expect}"));
        }
        if c.is_some() {
            marked += 1;
        } else {
            plain += 1;
        }
    }
    if marked != want.len() || plain == 0 {
        return Err(format!(
            "{marked} sites marked for {} C defers in main.go ({plain} Go defers)",
            want.len()
        ));
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let mut roots = vec![committed_root()];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push(m.into());
        }
    }
    let mut out = Vec::new();
    for root in roots {
        for e in entries(&root) {
            if e.meta.program == "cgo" {
                out.push(Trial::test(format!("cgo::{}", e.name()), move || {
                    check(&e).map_err(Failed::from)
                }));
            }
        }
    }
    out
}

//! The rough edges a new user hits (issue 15, items 2-13), one or more
//! tests per item (item 1, many binaries, is batch.rs):
//!
//! - item 2: `explain_loops::go<V>::{amd64,arm64}` (explain_loops.rs:
//!   fixtures/go/loops, every installed toolchain)
//! - item 3: `trace::out_not_a_file` (trace_counters.rs)
//! - item 4: `names::escaped_package_paths`, `names::funcs_filter_real_path`
//! - item 5: `names::gopath_build_own_code`
//! - item 6: `names::relative_paths`, `names::module_cache_paths` (and
//!   `names::gopath_build_own_code` for a GOPATH build's paths)
//! - item 7: `everyday::disasm_nothing_matched`,
//!   `everyday::disasm_source_missing_says_why`
//! - item 8: `badinput::missing_path`, `badinput::dash_path`,
//!   `badinput::error_text_once` (badinput.rs)
//! - item 9: tests/html/report.test.mjs, `layout: columns, chart labels,
//!   line breaks, chips` (tests/html/run.sh, in Chromium)
//! - item 10: `everyday::cost_source_said_once`,
//!   `everyday::exit_code_bytes_single_return`,
//!   `everyday::sarif_rule_names`, `everyday::sarif_costs_from_the_table`,
//!   `everyday::explain_calls_in_line_order` (and in tests/html/run.sh:
//!   an unresolved callee reads `unresolved` in the table too)
//! - item 11: `everyday::intel_syntax_on_arm64_says_so`
//! - item 12: `installs::readme_lists_every_install` (installs.rs)
//! - item 13: `progress::disasm_terminal`, `progress::disasm_piped`,
//!   `progress::disasm_same_terminal`, `progress::trace_attach_terminal`,
//!   `progress::trace_attach_piped`, `progress::trace_attach_shared_terminal`,
//!   `progress::trace_launch_shared_terminal` (progress.rs)

use std::path::{Path, PathBuf};
use std::process::Output;

use libtest_mimic::{Failed, Trial};

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries, Entry};

/// The committed unstripped linux/amd64 `defers` fixture.
fn fixture() -> Result<Entry, Failed> {
    entries(&committed_root())
        .into_iter()
        .find(|e| {
            e.meta.goos == "linux"
                && e.meta.goarch == "amd64"
                && e.meta.program == "defers"
                && e.meta.variant == "default"
                && !e.meta.stripped
        })
        .ok_or_else(|| "no committed linux/amd64 defers fixture".into())
}

/// The committed unstripped fixture of `goarch`.
fn fixture_of(goarch: &str) -> Result<Entry, Failed> {
    entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goarch == goarch && e.meta.program == "defers" && !e.meta.stripped)
        .ok_or_else(|| format!("no committed {goarch} defers fixture").into())
}

/// A scratch directory of this test process.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deferscope-everyday-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run(args: &[&str], bin: &Path) -> Result<Output, Failed> {
    Ok(deferscope()
        .arg(args[0])
        .arg(bin)
        .args(&args[1..])
        .output()?)
}

/// `run` with the cost table of `cache` (an empty directory: the
/// published figures), stdout as text.
fn run_costs(args: &[&str], bin: &Path, cache: &Path) -> Result<String, Failed> {
    std::fs::create_dir_all(cache)?;
    let out = deferscope()
        .arg(args[0])
        .arg(bin)
        .args(&args[1..])
        .env("DEFERSCOPE_CACHE", cache)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The unstripped committed fixtures of the `defers` program.
fn defers_fixtures() -> Vec<Entry> {
    entries(&committed_root())
        .into_iter()
        .filter(|e| e.meta.program == "defers" && !e.meta.stripped)
        .collect()
}

/// The instructions of `go tool objdump -s RE`: (text, byte count), or
/// `None` without the fixture's toolchain.
fn objdump_function(e: &Entry, re: &str) -> Option<Vec<(String, u64)>> {
    let go = e.meta.goroot.join("bin/go");
    if !go.exists() {
        return None;
    }
    let out = std::process::Command::new(&go)
        .args(["tool", "objdump", "-s", re])
        .arg(e.bin())
        .env("GOROOT", &e.meta.goroot)
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim().split('\t').filter(|c| !c.is_empty()).collect();
                (cells.len() >= 4 && cells[1].starts_with("0x"))
                    .then(|| (cells[3].to_owned(), cells[2].len() as u64 / 2))
            })
            .collect(),
    )
}

/// A copy of `bin` whose recorded source directory `dir` is renamed, in
/// place and at the same length, to a directory that does not exist.
fn with_moved_sources(bin: &Path, dir: &str, name: &str) -> Result<PathBuf, Failed> {
    let mut data = std::fs::read(bin)?;
    let gone: String = dir
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 || c == '/' { c } else { 'q' })
        .collect();
    let mut n = 0;
    let mut at = 0;
    while at + dir.len() <= data.len() {
        if &data[at..at + dir.len()] == dir.as_bytes() {
            data[at..at + dir.len()].copy_from_slice(gone.as_bytes());
            at += dir.len();
            n += 1;
        } else {
            at += 1;
        }
    }
    if n == 0 || Path::new(&gone).exists() {
        return Err(format!("cannot move {dir} in {}", bin.display()).into());
    }
    let p = tmp(name);
    std::fs::write(&p, data)?;
    Ok(p)
}

pub fn trials() -> Vec<Trial> {
    vec![
        // Item 7: a listing that selects nothing says so and exits 1.
        Trial::test("everyday::disasm_nothing_matched", || {
            let bin = fixture()?.bin();
            for sel in [
                &["--pc", "0x1"][..],
                &["--line", "nosuch.go:1"],
                &["--funcs", "zzzz"],
            ] {
                let mut args = vec!["disasm"];
                args.extend_from_slice(sel);
                let out = run(&args, &bin)?;
                let err = String::from_utf8_lossy(&out.stderr);
                if out.status.code() != Some(1)
                    || !out.stdout.is_empty()
                    || err.lines().count() != 1
                    || !err.contains("no function matched")
                    || !err.contains(sel[1])
                {
                    return Err(
                        format!("{sel:?}: exit {:?}, stderr {err:?}", out.status.code()).into(),
                    );
                }
            }
            // What matches still exits 0 with nothing on stderr.
            let out = run(&["disasm", "--funcs", "^main\\.main$"], &bin)?;
            if !out.status.success() || !out.stderr.is_empty() || out.stdout.is_empty() {
                return Err(format!("main.main: exit {:?}", out.status.code()).into());
            }
            Ok(())
        }),
        // Item 7: --source without the sources says why and what to do.
        Trial::test("everyday::disasm_source_missing_says_why", || {
            let e = fixture()?;
            let dir = e.meta.build_dir.to_string_lossy().into_owned();
            let moved = with_moved_sources(&e.bin(), &dir, "moved-sources")?;
            let out = run(&["disasm", "--funcs", "^main\\.main$", "--source"], &moved)?;
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success()
                || err.lines().count() != 1
                || !err.contains("source files not found")
                || !err.contains("--source-root")
            {
                return Err(format!("exit {:?}, stderr {err:?}", out.status.code()).into());
            }
            Ok(())
        }),
        // Item 11: --syntax intel on arm64 says once that it prints ARM's
        // syntax; on amd64 it says nothing.
        Trial::test("everyday::intel_syntax_on_arm64_says_so", || {
            let args = ["disasm", "--syntax", "intel", "--funcs", "^main\\."];
            let arm = run(&args, &fixture_of("arm64")?.bin())?;
            let err = String::from_utf8_lossy(&arm.stderr);
            if !arm.status.success()
                || arm.stdout.is_empty()
                || err.lines().count() != 1
                || !err.contains("arm64")
                || !err.contains("--syntax intel")
            {
                return Err(format!("arm64: exit {:?}, stderr {err:?}", arm.status.code()).into());
            }
            let amd = run(&args, &fixture()?.bin())?;
            if !amd.status.success() || !amd.stderr.is_empty() {
                return Err(
                    format!("amd64: stderr {:?}", String::from_utf8_lossy(&amd.stderr)).into(),
                );
            }
            Ok(())
        }),
        // Item 10: where the costs come from is said once ("published
        // table: published figures: ..." in HTML, "published cost table:
        // published figures: ..." in trace).
        Trial::test("everyday::cost_source_said_once", || {
            let bin = fixture()?.bin();
            let cache = tmp("empty-cache");
            let html = run_costs(&["scan", "--format", "html"], &bin, &cache)?;
            let mut texts = vec![("html", html)];
            if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
                let out = deferscope()
                    .args(["trace", "--"])
                    .arg(&bin)
                    .env("DEFERSCOPE_CACHE", &cache)
                    .output()?;
                texts.push(("trace", String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            let repeated =
                regex::Regex::new(r"published (cost )?table: published figures").unwrap();
            for (what, t) in texts {
                if !t.contains("published figures: Go 1.14") || repeated.is_match(&t) {
                    return Err(format!(
                        "{what}: {:?}",
                        t.lines().find(|l| l.contains("published")).unwrap_or("")
                    )
                    .into());
                }
            }
            Ok(())
        }),
        // Item 10: a function with one return has the exit sequence
        // objdump shows (the cleared deferBits store through the deferred
        // call, design.md §3.1), not "about 0 B of exit code".
        Trial::test("everyday::exit_code_bytes_single_return", || {
            let cache = tmp("empty-cache");
            for e in defers_fixtures() {
                let json = run_costs(
                    &[
                        "explain",
                        "--format",
                        "json",
                        "--funcs",
                        "^main\\.mutexUnlock$",
                    ],
                    &e.bin(),
                    &cache,
                )?;
                let v: serde_json::Value = serde_json::from_str(&json)?;
                if v["functions"][0]["open_coded_defers"].is_null() {
                    continue; // -N: not open-coded
                }
                let got = v["functions"][0]["exit_code_bytes"].as_u64().unwrap_or(0);
                let Some(code) = objdump_function(&e, "^main\\.mutexUnlock$") else {
                    if got == 0 {
                        return Err(format!("{}: exit_code_bytes 0", e.name()).into());
                    }
                    continue;
                };
                // The one indirect call (CALL CX, CALL (R1)) runs the defer;
                // the exit starts at the byte store before it.
                let call = code
                    .iter()
                    .position(|(t, _)| t.starts_with("CALL ") && !t.ends_with("(SB)"))
                    .ok_or(format!("{}: no indirect call", e.name()))?;
                let store = code[..call]
                    .iter()
                    .rposition(|(t, _)| t.starts_with("MOVB "))
                    .ok_or(format!("{}: no byte store", e.name()))?;
                let want: u64 = code[store..=call].iter().map(|c| c.1).sum();
                if got != want {
                    return Err(
                        format!("{}: {got} B of exit code, objdump {want}", e.name()).into(),
                    );
                }
            }
            Ok(())
        }),
        // Item 10: SARIF rule names are upper camel case (GitHub shows
        // them): "Heap-allocated defer" -> HeapAllocatedDefer.
        Trial::test("everyday::sarif_rule_names", || {
            let json = run_costs(
                &["explain", "--format", "sarif"],
                &fixture()?.bin(),
                &tmp("c"),
            )?;
            let v: serde_json::Value = serde_json::from_str(&json)?;
            let rules = v["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .ok_or("no rules")?;
            let mut heap = false;
            for r in rules {
                let name = r["name"].as_str().unwrap_or("");
                let short = r["shortDescription"]["text"].as_str().unwrap_or("");
                let want: String = short
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                    .collect();
                if name != want {
                    return Err(format!("rule {short:?} named {name:?}, want {want:?}").into());
                }
                heap |= name == "HeapAllocatedDefer";
            }
            if !heap {
                return Err("no HeapAllocatedDefer rule".into());
            }
            Ok(())
        }),
        // Item 10: SARIF's rule texts give the cost table's figures (they
        // said "about one" ns for an open-coded defer, explain 5.6 ns).
        Trial::test("everyday::sarif_costs_from_the_table", || {
            let bin = fixture()?.bin();
            let cache = tmp("measured-cache");
            std::fs::create_dir_all(&cache)?;
            let table = serde_json::json!({
                "origin": "measured", "source": "a table of this test",
                "direct_call_ns": 1.5, "open_coded_ns": 7.7,
                "stack_allocated_ns": 41.0, "heap_allocated_ns": 63.0
            });
            std::fs::write(cache.join("cost-table.json"), table.to_string())?;
            for cmd in ["explain", "scan"] {
                let (cache, open, heap, stack) = if cmd == "explain" {
                    (cache.clone(), "7.7 ns", "63 ns", "41 ns")
                } else {
                    // scan has no explain pass: the published figures.
                    (tmp("empty-cache"), "5.6 ns", "52 ns", "35 ns")
                };
                let json = run_costs(&[cmd, "--format", "sarif"], &bin, &cache)?;
                let v: serde_json::Value = serde_json::from_str(&json)?;
                let rules = v["runs"][0]["tool"]["driver"]["rules"]
                    .as_array()
                    .ok_or("no rules")?;
                for r in rules.iter().filter(|r| r["id"] != "deferscope/open-coded") {
                    let full = r["fullDescription"]["text"].as_str().unwrap_or("");
                    let id = r["id"].as_str().unwrap_or("");
                    let own = match id {
                        "deferscope/heap-allocated" => heap,
                        "deferscope/stack-allocated" => stack,
                        _ => continue,
                    };
                    if !full.contains(open) || !full.contains(own) {
                        return Err(format!("{cmd} {id}: {full:?} lacks {open} or {own}").into());
                    }
                }
            }
            Ok(())
        }),
        // Item 10: a function's calls are listed in line order (the code
        // of fmt.(*pp).handleMethods has them 650, 666, 648, ...).
        Trial::test("everyday::explain_calls_in_line_order", || {
            let re = regex::Regex::new(r"^  (calls |      ) (\S+):(\d+) -> ").unwrap();
            let mut checked = 0;
            for e in defers_fixtures() {
                let text = run_costs(&["explain"], &e.bin(), &tmp("empty-cache"))?;
                let mut last: Option<(String, u32)> = None;
                for l in text.lines() {
                    let Some(c) = re.captures(l) else {
                        last = None;
                        continue;
                    };
                    let (file, line) = (c[2].to_owned(), c[3].parse::<u32>()?);
                    if &c[1] == "calls " {
                        last = None;
                    }
                    if let Some((f, n)) = &last {
                        if *f == file && line < *n {
                            return Err(format!("{}: {l:?} after line {n}", e.name()).into());
                        }
                        checked += 1;
                    }
                    last = Some((file, line));
                }
            }
            if checked == 0 {
                return Err("no function with two calls".into());
            }
            Ok(())
        }),
    ]
}

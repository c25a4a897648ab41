//! `explain_loops::go<V>::{amd64,arm64}` (issue 15 item 2): defers in
//! loops that return from inside, where no backward branch around the
//! defer is left in the machine code, and the `unknown` explanation.
//!
//! `fixtures/go/loops` is built here with every installed toolchain, for
//! linux/amd64 and linux/arm64 (cross-compiled; the analysis is static),
//! with `-gcflags=-d=defer`. The oracles:
//!
//! - the compiler's `./main.go:L:C: <kind> defer` lines;
//! - the source: each defer line ends in `// loop` (in a for or range
//!   body), `// goto` (after a label that a later goto jumps back to) or
//!   `// top` (outside any loop). The trial first checks that the compiler
//!   agrees (loop and goto: heap-allocated; top: stack-allocated).
//!
//! Then, on deferscope's explanation of the binary:
//!
//! 1. every site at a line the compiler calls heap-allocated gets
//!    `in-loop`, and its function is not `unknown`
//!    (`for { select { case v := <-ch: defer mu.Unlock(); return v } }`,
//!    the shape of caddy's certmagic.(*RingBufferRateLimiter).permit, was
//!    `unknown` with "no defer in a loop");
//! 2. no explanation of a function whose source has a `// loop` or
//!    `// goto` defer says it has no defer in a loop (`deadLoopDefer`: SSA
//!    deletes the defer in the loop, the binary keeps only the top one);
//! 3. no `// top` site is claimed `in-loop`;
//! 4. loop lines, when given, hold the site's line and lie within its
//!    function's source lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deferscope_analyze::explain::{Explain, Reason};
use deferscope_analyze::{Kind, Scan};
use libtest_mimic::{Failed, Trial};

use crate::fixtures::{go_cmd, repo_root, toolchains};

const ARCHES: [&str; 2] = ["amd64", "arm64"];

pub fn trials() -> Vec<Trial> {
    let tcs = toolchains();
    if tcs.is_empty() {
        return vec![Trial::test("explain_loops::toolchains", || {
            Err("no Go toolchain under the cache (scripts/install-toolchains.sh)".into())
        })];
    }
    let mut v = Vec::new();
    for (ver, goroot) in tcs {
        for arch in ARCHES {
            let (ver, goroot) = (ver.clone(), goroot.clone());
            v.push(Trial::test(
                format!("explain_loops::go{ver}::{arch}"),
                move || check(&ver, &goroot, arch),
            ));
        }
    }
    v
}

fn src_dir() -> PathBuf {
    repo_root().join("fixtures/go/loops")
}

/// Build the fixture; return the binary and the compiler's `-d=defer`
/// lines for main.go as line -> kind.
fn build(ver: &str, goroot: &Path, arch: &str) -> Result<(PathBuf, BTreeMap<u32, String>), Failed> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("explain-loops")
        .join(format!("go{ver}-{arch}"));
    std::fs::create_dir_all(&out)?;
    let bin = out.join("loops");
    let o = go_cmd(goroot, ver, "loops", &src_dir())
        .args(["build", "-gcflags=-d=defer", "-o"])
        .arg(&bin)
        .arg(".")
        .env("GOFLAGS", "-mod=mod")
        .env("GOOS", "linux")
        .env("GOARCH", arch)
        .output()?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        return Err(format!("go{ver} {arch}: go build failed: {stderr}").into());
    }
    let mut lines = BTreeMap::new();
    for l in stderr.lines() {
        let Some(rest) = l.strip_prefix("./main.go:") else {
            continue;
        };
        let mut it = rest.splitn(3, ':');
        let (Some(line), Some(_col), Some(kind)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let (Ok(line), Some(kind)) = (line.parse(), kind.trim().strip_suffix(" defer")) {
            lines.insert(line, kind.to_owned());
        }
    }
    Ok((bin, lines))
}

/// The source's facts: each defer line's place (`loop`, `goto`, `top`),
/// and each function's line range (from its `func` line to the next).
struct Source {
    places: BTreeMap<u32, String>,
    funcs: Vec<(String, u32, u32)>,
}

fn source() -> Result<Source, Failed> {
    let text = std::fs::read_to_string(src_dir().join("main.go"))?;
    let mut places = BTreeMap::new();
    let mut funcs: Vec<(String, u32, u32)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i as u32 + 1;
        if let Some(rest) = l.strip_prefix("func ") {
            if let Some(last) = funcs.last_mut() {
                last.2 = n - 1;
            }
            let name = rest.split('(').next().unwrap_or_default().trim().to_owned();
            funcs.push((name, n, u32::MAX));
        }
        let t = l.trim_start();
        if t.starts_with("defer ") {
            let place = t.rsplit("// ").next().unwrap_or_default().trim();
            if !["loop", "goto", "top"].contains(&place) {
                return Err(format!("main.go:{n}: defer line without a place comment").into());
            }
            places.insert(n, place.to_owned());
        }
    }
    if places.is_empty() {
        return Err("main.go: no defer lines".into());
    }
    Ok(Source { places, funcs })
}

fn explain(bin: &Path) -> Result<(Scan, Explain), Failed> {
    let m = deferscope_load::Mapped::open(bin).map_err(|x| x.to_string())?;
    let img = m.image().map_err(|x| x.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|x| x.to_string())?;
    let r = deferscope_analyze::scan(&bin.display().to_string(), &img, &ix)
        .map_err(|x| x.to_string())?;
    let x = deferscope_analyze::explain::explain(
        &img,
        &ix,
        &r,
        &deferscope_analyze::cost::CostTable::published(),
    );
    Ok((r, x))
}

fn check(ver: &str, goroot: &Path, arch: &str) -> Result<(), Failed> {
    let src = source()?;
    let (bin, compiler) = build(ver, goroot, arch)?;
    // The fixture's premise: the compiler agrees with the source comments.
    for (line, place) in &src.places {
        let want = if place == "top" {
            "stack-allocated"
        } else {
            "heap-allocated"
        };
        match compiler.get(line) {
            Some(k) if k == want => {}
            got => {
                return Err(format!(
                    "go{ver} {arch}: main.go:{line} ({place}): the compiler says {got:?}, the \
                     fixture expects {want}"
                )
                .into())
            }
        }
    }
    let (r, x) = explain(&bin)?;
    let func_of = |name: &str| {
        let short = name.strip_prefix("main.")?;
        src.funcs.iter().find(|f| f.0 == short)
    };
    let mut failures = Vec::new();
    let mut heap_checked = 0;
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        if s.package != "main" || !s.file.ends_with("/main.go") {
            continue;
        }
        let at = format!("{} main.go:{}", s.function, s.line);
        let fi = r.functions.iter().position(|f| f.name == s.function);
        let fx = fi.map(|i| &x.functions[i]);
        // 1. heap per the compiler: in-loop, and the function is not unknown.
        if compiler.get(&s.line).map(String::as_str) == Some("heap-allocated") {
            heap_checked += 1;
            if s.kind != Kind::HeapAllocated {
                failures.push(format!("{at}: scanned as {}", s.kind.as_str()));
            }
            if !sx.reasons.contains(&Reason::InLoop) {
                failures.push(format!(
                    "{at}: heap-allocated in a loop (compiler, source), reasons {:?}",
                    sx.reasons
                ));
            }
            if let Some(fx) = fx {
                if fx.reasons.contains(&Reason::Unknown) {
                    failures.push(format!("{at}: function explained as unknown"));
                }
            }
        }
        // 3. a top-level defer is never claimed in a loop.
        if src.places.get(&s.line).map(String::as_str) == Some("top")
            && sx.reasons.contains(&Reason::InLoop)
        {
            failures.push(format!("{at}: outside any loop, claimed in-loop"));
        }
        // 4. loop lines within the function, holding the site.
        if let (Some(ll), Some(f)) = (&sx.loop_lines, func_of(&s.function)) {
            if ll.first_line > s.line
                || ll.last_line < s.line
                || ll.first_line < f.1
                || ll.last_line > f.2
            {
                failures.push(format!(
                    "{at}: loop lines {}-{} outside {}'s lines {}-{} or not holding the site",
                    ll.first_line, ll.last_line, f.0, f.1, f.2
                ));
            }
        }
    }
    // 2. no denial of a loop the source has.
    let mut denial_checked = 0;
    for (fi, fx) in r.functions.iter().zip(&x.functions) {
        let Some(f) = func_of(&fi.name) else {
            continue;
        };
        let loops_in_source = src
            .places
            .range(f.1..=f.2)
            .any(|(_, p)| p == "loop" || p == "goto");
        if !loops_in_source {
            continue;
        }
        denial_checked += 1;
        for d in &fx.reason_details {
            if d.detail.contains("no defer in a loop") {
                failures.push(format!(
                    "{}: has a defer in a loop (source lines {}-{}), explained: {}",
                    fi.name, f.1, f.2, d.detail
                ));
            }
        }
    }
    if heap_checked == 0 || denial_checked == 0 {
        return Err(format!(
            "go{ver} {arch}: nothing checked ({heap_checked} heap sites, {denial_checked} \
             functions with loops)"
        )
        .into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("go{ver} {arch}:\n  {}", failures.join("\n  ")).into())
    }
}

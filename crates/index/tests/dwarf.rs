//! `Dwarf::closure_captures` and `Dwarf::results` against the compiler:
//! tests/dwarfcap/main.go is built with each installed toolchain of
//! `VERSIONS` for each of `TARGETS`, with `-gcflags=-m=2`, whose lines
//! `F capturing by value|ref: x (addr=.. assign=.. width=N)` are the oracle
//! (design.md §6.4). Toolchains are looked up in
//! ~/.cache/deferscope/toolchains/go<V>/go; a missing one is skipped with a
//! note. Each capture DWARF reports must agree with the oracle in name,
//! mode and width; captures the optimizer dropped from the DWARF are
//! counted, not failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use deferscope_index::{Dwarf, GoIndex};
use deferscope_load::Mapped;

const VERSIONS: [&str; 4] = ["1.19", "1.22.10", "1.23.9", "1.27.3"];
const TARGETS: [(&str, &str); 4] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("windows", "amd64"),
    ("darwin", "arm64"),
];

/// The closures of the program and the variables each captures.
const CLOSURES: [(&str, &[&str]); 7] = [
    ("main.mixed.func1", &["i", "s", "ok", "t", "big"]),
    ("main.results.func1", &["r", "x", "err"]),
    ("main.arr.func1", &["a3", "b"]),
    ("main.nested.func1", &["p", "q"]),
    ("main.nested.func1.1", &["p", "q"]),
    ("main.arrays.func1", &["a5", "k"]),
    ("main.arrays.func2", &["k", "c5"]),
];

/// The versions to check: `VERSIONS`, or those listed, comma-separated, in
/// DEFERSCOPE_DWARF_VERSIONS (e.g. `1.21.13,1.24.11`).
fn versions() -> Vec<String> {
    match std::env::var("DEFERSCOPE_DWARF_VERSIONS") {
        Ok(list) => list.split(',').map(|v| v.trim().to_string()).collect(),
        Err(_) => VERSIONS.iter().map(|v| v.to_string()).collect(),
    }
}

fn toolchain(v: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let root = Path::new(&home).join(format!(".cache/deferscope/toolchains/go{v}/go"));
    root.join("bin/go").exists().then_some(root)
}

/// Build the program; return the binary and the oracle: name -> (by_ref,
/// width) from the `capturing` lines.
fn build(
    root: &Path,
    v: &str,
    goos: &str,
    goarch: &str,
) -> (PathBuf, BTreeMap<String, (bool, u64)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dwarfcap");
    let (bin, text) = go_build(root, v, goos, goarch, &src, "dwarfcap", &[]);
    let re = regex::Regex::new(r"capturing by (value|ref): (\S+) \(.*width=(\d+)\)").unwrap();
    let mut oracle = BTreeMap::new();
    for c in re.captures_iter(&text) {
        let by_ref = &c[1] == "ref";
        let width: u64 = c[3].parse().unwrap();
        // By reference the closure holds a pointer; width= is the variable's.
        oracle.insert(c[2].to_string(), (by_ref, if by_ref { 8 } else { width }));
    }
    (bin, oracle)
}

/// `go build -gcflags=-m=2 EXTRA` of `src` into a directory named by
/// `tag`, the version and the target; the binary and the compiler's output.
fn go_build(
    root: &Path,
    v: &str,
    goos: &str,
    goarch: &str,
    src: &Path,
    tag: &str,
    extra: &[&str],
) -> (PathBuf, String) {
    let top = std::env::temp_dir().join("deferscope-dwarfcap");
    let out = top.join(format!("{tag}-go{v}-{goos}-{goarch}"));
    std::fs::create_dir_all(&out).unwrap();
    let bin = out.join("bin");
    let o = Command::new(root.join("bin/go"))
        .args(["build", "-gcflags=-m=2"])
        .args(extra)
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(src)
        .env("GOROOT", root)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", top.join("cache-go").join(v))
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .env("GOOS", goos)
        .env("GOARCH", goarch)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "go{v} {goos}/{goarch} build failed:\n{text}"
    );
    (bin, text)
}

#[test]
fn closure_captures_match_the_compiler() {
    let mut ran = 0;
    let mut summary = Vec::new();
    for v in versions() {
        let v = v.as_str();
        let Some(root) = toolchain(v) else {
            eprintln!("note: go{v} not installed, skipped");
            continue;
        };
        for (goos, goarch) in TARGETS {
            let (bin, oracle) = build(&root, v, goos, goarch);
            assert!(oracle.len() >= 14, "go{v}: oracle lines: {oracle:?}");
            let m = Mapped::open(&bin).unwrap();
            let img = m.image().unwrap();
            let idx = GoIndex::new(&img).unwrap();
            let dwarf = Dwarf::load(&img).expect("unstripped binary has DWARF");
            let names: Vec<&str> = CLOSURES.iter().map(|c| c.0).collect();
            let funcs = idx.find_funcs(&names);
            let (mut expected, mut matched, mut guessed, mut wrong) = (0, 0, 0, Vec::new());
            for ((clo, vars), f) in CLOSURES.iter().zip(funcs) {
                let f = f.unwrap_or_else(|| panic!("go{v}: {clo} not in pclntab"));
                let caps = dwarf
                    .closure_captures(f.entry)
                    .unwrap_or_else(|| panic!("go{v} {goos}/{goarch}: {clo}: no subprogram"));
                expected += vars.len();
                if *clo == "main.mixed.func1" {
                    // The string captured by value, kept in every build.
                    let s = caps.iter().find(|c| c.name == "s");
                    assert!(
                        s.is_some_and(|s| !s.by_ref && s.bytes == 16),
                        "go{v} {goos}/{goarch}: {clo}: s by value, 16 bytes: {caps:?}"
                    );
                }
                for c in &caps {
                    let ok = vars.contains(&c.name.as_str())
                        && oracle.get(&c.name) == Some(&(c.by_ref, c.bytes));
                    guessed += usize::from(ok && !c.certain);
                    if ok {
                        matched += 1;
                    } else {
                        wrong.push(format!("{clo}: {c:?} oracle {:?}", oracle.get(&c.name)));
                    }
                }
                let mut offs: Vec<u64> = caps.iter().filter_map(|c| c.offset).collect();
                let minor = deferscope_index::GoVersion::parse(&format!("go{v}")).map(|g| g.minor);
                if minor >= Some(23) && !caps.is_empty() {
                    assert_eq!(offs.len(), caps.len(), "go{v}: {clo}: offsets {caps:?}");
                }
                offs.dedup();
                assert_eq!(
                    offs.len(),
                    caps.iter().filter(|c| c.offset.is_some()).count()
                );
            }
            assert!(wrong.is_empty(), "go{v} {goos}/{goarch}: {wrong:#?}");
            let r = idx.find_funcs(&["main.results"])[0].unwrap();
            assert_eq!(
                dwarf.results(r.entry),
                Some(vec!["r".to_string(), "err".to_string()]),
                "go{v} {goos}/{goarch}: results of main.results"
            );
            assert!(matched > 0, "go{v} {goos}/{goarch}: nothing matched");
            summary.push(format!(
                "go{v} {goos}/{goarch}: {matched} of {expected} captures found and agree ({guessed} of them by the by-value guess)"
            ));
            ran += 1;
        }
    }
    for s in &summary {
        eprintln!("{s}");
    }
    if ran == 0 {
        eprintln!("note: no Go toolchain installed; nothing checked");
    }
}

/// Any program (DEFERSCOPE_DWARF_PROGRAM, a package directory; the
/// dwarfcap program by default): every capture of every `main.*.funcN`
/// closure must agree with a `-m=2` line of its outermost function for that
/// name. Prints, per version and target, how many `-m=2` lines a capture
/// agreed with.
#[test]
fn closure_captures_agree_with_m2_on_any_program() {
    let src = std::env::var_os("DEFERSCOPE_DWARF_PROGRAM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dwarfcap"));
    let line = regex::Regex::new(
        r"(?m)^(\S+?):(\d+):(\d+): (\S+) capturing by (value|ref): (\S+) \(.*width=(\d+)\)",
    )
    .unwrap();
    let closure = regex::Regex::new(r"^main\.(.+?)\.func\d+(\.\d+)*$").unwrap();
    for v in versions() {
        let v = v.as_str();
        let Some(root) = toolchain(v) else {
            eprintln!("note: go{v} not installed, skipped");
            continue;
        };
        for (goos, goarch) in TARGETS {
            let (bin, text) = go_build(&root, v, goos, goarch, &src, "any", &[]);
            // (outer function, variable) -> the (by_ref, bytes) the lines give.
            let mut oracle: BTreeMap<(String, String), Vec<(bool, u64)>> = BTreeMap::new();
            let mut lines = 0;
            for c in line.captures_iter(&text) {
                let by_ref = &c[5] == "ref";
                let w: u64 = c[7].parse().unwrap();
                oracle
                    .entry((c[4].to_string(), c[6].to_string()))
                    .or_default()
                    .push((by_ref, if by_ref { 8 } else { w }));
                lines += 1;
            }
            let m = Mapped::open(&bin).unwrap();
            let img = m.image().unwrap();
            let idx = GoIndex::new(&img).unwrap();
            let dwarf = Dwarf::load(&img).expect("unstripped binary has DWARF");
            let (mut agreed, mut guessed, mut caps_total, mut wrong) = (0, 0, 0, Vec::new());
            let mut agreed_keys = std::collections::BTreeSet::new();
            for f in idx.funcs() {
                let name = idx.name(&f);
                let Some(c) = closure.captures(name) else {
                    continue;
                };
                let outer = c[1].to_string();
                let Some(caps) = dwarf.closure_captures(f.entry) else {
                    continue;
                };
                for cap in caps {
                    caps_total += 1;
                    let key = (outer.clone(), cap.name.clone());
                    match oracle.get(&key) {
                        Some(modes) if modes.contains(&(cap.by_ref, cap.bytes)) => {
                            agreed += 1;
                            guessed += usize::from(!cap.certain);
                            agreed_keys.insert(key);
                        }
                        _ => wrong.push(format!("{name}: {cap:?}: -m=2 {:?}", oracle.get(&key))),
                    }
                }
            }
            let covered: usize = agreed_keys.iter().map(|k| oracle[k].len()).sum();
            eprintln!(
                "go{v} {goos}/{goarch}: {} -m=2 capture lines, {covered} with a DWARF capture agreeing in name, mode and width; {agreed} of {caps_total} DWARF captures agree ({guessed} by the by-value guess)",
                lines
            );
            assert!(wrong.is_empty(), "go{v} {goos}/{goarch}: {wrong:#?}");
        }
    }
}

/// Damaged DWARF gives fewer answers, never a panic: an uncompressed
/// go1.22 linux/amd64 build with bytes of .debug_info overwritten.
#[test]
fn damaged_dwarf_does_not_panic() {
    let Some(root) = toolchain("1.22.10") else {
        eprintln!("note: go1.22.10 not installed, skipped");
        return;
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dwarfcap");
    let (bin, _) = go_build(
        &root,
        "1.22.10",
        "linux",
        "amd64",
        &src,
        "plain",
        &["-ldflags=-compressdwarf=false"],
    );
    let bytes = std::fs::read(&bin).unwrap();
    let img = deferscope_load::Image::parse(&bin, &bytes).unwrap();
    let (off, size) = img.section(".debug_info").unwrap().file_range.unwrap();
    let entries: Vec<u64> = GoIndex::new(&img)
        .unwrap()
        .funcs()
        .map(|f| f.entry)
        .collect();
    let mut answered = 0;
    // A simple LCG: deterministic damage patterns.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..24 {
        let mut bad = bytes.clone();
        for _ in 0..(1 << (round % 12)) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = off as usize + (seed >> 16) as usize % size as usize;
            bad[at] = (seed >> 56) as u8;
        }
        let img = deferscope_load::Image::parse(&bin, &bad).unwrap();
        let Some(d) = Dwarf::load(&img) else { continue };
        for &e in entries.iter().step_by(7) {
            answered += usize::from(d.closure_captures(e).is_some());
            let _ = d.results(e);
        }
    }
    eprintln!("damaged DWARF: {answered} answers over 24 damaged copies, no panic");
}

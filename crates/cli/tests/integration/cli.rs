//! The `scan` command's output contracts, on a committed fixture.

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries, Entry};
use crate::oracle::Compiler;

fn fixture() -> Option<Entry> {
    entries(&committed_root()).into_iter().find(|e| {
        e.meta.goos == "linux"
            && e.meta.goarch == "amd64"
            && e.meta.program == "defers"
            && !e.meta.stripped
    })
}

fn run_json(args: &[&str]) -> Result<Value, Failed> {
    let e = fixture().ok_or("no committed linux/amd64 fixture")?;
    let out = deferscope()
        .arg("scan")
        .arg(e.bin())
        .args(args)
        .arg("--format=json")
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("cli::json_contract", || {
            let v = run_json(&[])?;
            let b = &v["binary"];
            for k in [
                "path",
                "format",
                "goos",
                "goarch",
                "go_version",
                "stripped",
                "build_settings",
            ] {
                if b.get(k).is_none() {
                    return Err(format!("binary.{k} missing").into());
                }
            }
            let e = fixture().unwrap();
            if b["goos"] != e.meta.goos.as_str() || b["goarch"] != e.meta.goarch.as_str() {
                return Err("goos/goarch differ from the build".into());
            }
            if b["go_version"] != format!("go{}", e.meta.go_version).as_str() {
                return Err(
                    format!("go_version {} != go{}", b["go_version"], e.meta.go_version).into(),
                );
            }
            let sites = v["sites"].as_array().ok_or("sites not an array")?;
            if sites.is_empty() {
                return Err("no sites".into());
            }
            for s in sites {
                if !s["function"].is_string()
                    || !s["file"].is_string()
                    || !s["line"].is_u64()
                    || !s["pc"].is_u64()
                {
                    return Err(format!("bad site {s}").into());
                }
                let k = s["kind"].as_str().unwrap_or("");
                if !["open-coded", "stack-allocated", "heap-allocated"].contains(&k) {
                    return Err(format!("bad kind {k}").into());
                }
            }
            Ok(())
        }),
        Trial::test("cli::no_std_keeps_only_main_module", || {
            let v = run_json(&["--no-std"])?;
            let sites = v["sites"].as_array().ok_or("sites")?;
            // The fixture's main-module defers, as the compiler lists them
            // under our fixture directory.
            let e = fixture().unwrap();
            let text = std::fs::read_to_string(e.dir.join("defer.txt"))?;
            let comp = Compiler::parse(&text, &e.meta.build_dir, &e.meta.goroot, None);
            let main_lines = comp
                .lines
                .keys()
                .filter(|(f, _)| f.starts_with(e.meta.build_dir.to_str().unwrap()))
                .count();
            if sites.is_empty() || main_lines == 0 {
                return Err("no main-module sites".into());
            }
            for s in sites {
                if s["origin"] != "main" {
                    return Err(format!("--no-std kept {s}").into());
                }
            }
            Ok(())
        }),
        Trial::test("cli::funcs_regex_filters", || {
            let v = run_json(&["--funcs", r"^sync\."])?;
            let sites = v["sites"].as_array().ok_or("sites")?;
            if sites.is_empty() {
                return Err("no sync sites".into());
            }
            if let Some(s) = sites
                .iter()
                .find(|s| !s["function"].as_str().unwrap_or("").starts_with("sync."))
            {
                return Err(format!("--funcs kept {s}").into());
            }
            Ok(())
        }),
        Trial::test("cli::text_lines_are_compiler_style", || {
            let e = fixture().ok_or("no fixture")?;
            let out = deferscope().arg("scan").arg(e.bin()).output()?;
            let text = String::from_utf8(out.stdout)?;
            let re = regex::Regex::new(
                r"^\S+:\d+: (open-coded|stack-allocated|heap-allocated) defer in \S+",
            )
            .unwrap();
            let n = text.lines().filter(|l| re.is_match(l)).count();
            let json = run_json(&[])?;
            let want = json["sites"].as_array().map_or(0, |a| a.len());
            if n != want {
                return Err(format!("{n} site lines in text, {want} sites in JSON").into());
            }
            Ok(())
        }),
        Trial::test("cli::go_version_without_buildinfo", || {
            // With the build info's magic zeroed, the version must come from
            // the runtime's buildVersion string: it names the toolchain that
            // built the fixture (meta.json).
            for e in entries(&committed_root()) {
                let mut data = std::fs::read(e.bin())?;
                let magic = b"\xff Go buildinf:";
                let at = data
                    .windows(magic.len())
                    .position(|w| w == magic)
                    .ok_or("no build info in fixture")?;
                data[at..at + magic.len()].fill(0);
                let p =
                    std::env::temp_dir().join(format!("deferscope-nobi-{}", std::process::id()));
                std::fs::write(&p, &data)?;
                let out = deferscope()
                    .arg("scan")
                    .arg(&p)
                    .arg("--format=json")
                    .output()?;
                let _ = std::fs::remove_file(&p);
                let v: Value = serde_json::from_slice(&out.stdout)?;
                let got = v["binary"]["go_version"].as_str().unwrap_or("");
                let want = format!("go{}", e.meta.go_version);
                if !got.starts_with(&want)
                    || v["binary"]["go_version_source"] != "runtime.buildVersion"
                {
                    return Err(format!(
                        "{}: got {got:?} from {}, want {want}",
                        e.name(),
                        v["binary"]["go_version_source"]
                    )
                    .into());
                }
            }
            Ok(())
        }),
        Trial::test("cli::bad_regex_is_usage_error", || {
            let e = fixture().ok_or("no fixture")?;
            let out = deferscope()
                .arg("scan")
                .arg(e.bin())
                .args(["--funcs", "("])
                .output()?;
            if out.status.code() != Some(2)
                || String::from_utf8_lossy(&out.stderr).lines().count() != 1
            {
                return Err("want one-line error and status 2".into());
            }
            Ok(())
        }),
    ]
}

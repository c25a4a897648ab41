//! The Go source as the oracle of deferred targets (issue 14: "the targets
//! line never says `unresolved` on the fixtures or on cmd/go"): for every
//! site of a fixture program's or cmd/go's binary, the statement at the
//! site's file:line (in `fixtures/go/<program>` or the toolchain's GOROOT)
//! is a `defer`, and a named target is what it calls.
//!
//! The callee of `defer EXPR(ARGS)` is the expression before the last
//! opening parenthesis at depth 0 (`f().Close` in `defer f().Close()`);
//! its last identifier must be the target's last name component (generic
//! brackets and a method value's `-fm` left out): `defer mu.Unlock()` ->
//! `sync.(*Mutex).Unlock`. Besides:
//!
//! - `defer func(...) {...}(...)` calls a function literal: `F.funcN`;
//! - `defer fn()` of a local `fn := func...` (or `fn = func...`) of the
//!   same file calls that literal: a `.funcN` target; of a local method
//!   value `f := t.ValM`, that method (`main.T.ValM`);
//! - a literal's call is never indirect;
//! - `defer C.f(...)` calls cgo's `_Cfunc_f`;
//! - `println("x")` compiles like `print("x\n")` (walk/builtin.go
//!   `walkPrint` folds the newline into a constant last argument), so
//!   `print/println` names either builtin.
//!
//! Indirect, elided and intrinsic sites have no name to check (the
//! intrinsic is checked by `targets::callee`).

use std::collections::HashMap;
use std::path::PathBuf;

use deferscope_analyze::explain::Explain;
use deferscope_analyze::Scan;

use crate::fixtures::{repo_root, Entry};

/// What a `defer` statement calls.
#[derive(Debug, PartialEq)]
pub enum Callee {
    Literal,
    /// The callee expression and its last identifier.
    Named(String, String),
}

/// The callee of the `defer` statement on `line`, if it holds one.
pub fn defer_callee(line: &str) -> Option<Callee> {
    let code = line.split("//").next().unwrap_or("");
    let at = code
        .match_indices("defer ")
        .find(|&(i, _)| i == 0 || !is_ident(code.as_bytes()[i - 1]))?
        .0;
    let stmt = code[at + "defer ".len()..].trim();
    if stmt.starts_with("func(") || stmt.starts_with("func (") {
        return Some(Callee::Literal);
    }
    let mut depth = 0i32;
    let mut last_open = None;
    for (i, c) in stmt.char_indices() {
        match c {
            '(' | '[' | '{' => {
                if c == '(' && depth == 0 {
                    last_open = Some(i);
                }
                depth += 1;
            }
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    let expr = strip_type_args(stmt[..last_open?].trim());
    let last: String = expr
        .bytes()
        .rev()
        .take_while(|&b| is_ident(b))
        .map(char::from)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!last.is_empty()).then(|| Callee::Named(expr.to_owned(), last))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `F[T]` -> `F`.
fn strip_type_args(e: &str) -> &str {
    if !e.ends_with(']') {
        return e;
    }
    let mut depth = 0;
    for (i, c) in e.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' => {
                depth -= 1;
                if depth == 0 {
                    return &e[..i];
                }
            }
            _ => {}
        }
    }
    e
}

/// A target's last name component: `sync.(*Mutex).Unlock` -> `Unlock`,
/// `main.Apply[go.shape.int]` -> `Apply`, `main.T.ValM-fm` -> `ValM`.
pub fn last_component(target: &str) -> &str {
    let mut t = target;
    if let Some(i) = t.find('[') {
        t = &t[..i];
    }
    let t = t.strip_suffix("-fm").unwrap_or(t);
    t.rsplit('.').next().unwrap_or(t)
}

/// The right-hand sides `src` assigns to `name` (`name := v`, `name = v`).
fn assigned<'s>(src: &'s [String], name: &str) -> Vec<&'s str> {
    let mut out = Vec::new();
    for l in src {
        for (i, _) in l.match_indices(name) {
            if i > 0 && is_ident(l.as_bytes()[i - 1]) {
                continue;
            }
            let rest = l[i + name.len()..].trim_start();
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            if let Some(v) = rest.strip_prefix('=').filter(|v| !v.starts_with('=')) {
                out.push(v.trim());
            }
        }
    }
    out
}

/// Whether the local `name` holds what calls `target`: a function literal
/// assigned to it (`fn := func() {...}`: a `.funcN`), or a method value
/// (`f := t.ValM`: `main.T.ValM`).
fn local_holds(src: &[String], name: &str, target: &str) -> bool {
    assigned(src, name).iter().any(|v| {
        if v.starts_with("func") {
            return target.contains(".func");
        }
        let chain = v.bytes().all(|b| is_ident(b) || b == b'.');
        chain && v.contains('.') && v.rsplit('.').next() == Some(last_component(target))
    })
}

/// The source file a site's recorded path names: under the toolchain's
/// GOROOT (absolute, or `-trimpath`'s `runtime/...`), or the fixture's
/// directory (its build directory, or `-trimpath`'s module path).
fn source_file(e: &Entry, file: &str) -> Option<PathBuf> {
    let src = e.meta.goroot.join("src");
    let fixture = repo_root().join("fixtures/go").join(&e.meta.program);
    let module = std::fs::read_to_string(fixture.join("go.mod"))
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("module ").map(|s| s.trim().to_owned()))
        });
    let build_dir = e.meta.build_dir.to_string_lossy().into_owned();
    let goroot = e.meta.goroot.to_string_lossy().into_owned();
    let mut cands = Vec::new();
    if let Some(rest) = file.strip_prefix(&format!("{goroot}/")) {
        cands.push(e.meta.goroot.join(rest));
    }
    if let Some(rest) = file.strip_prefix(&format!("{build_dir}/")) {
        cands.push(fixture.join(rest));
    }
    if let Some(rest) = module.and_then(|m| file.strip_prefix(&format!("{m}/")).map(str::to_owned))
    {
        cands.push(fixture.join(rest));
    }
    cands.push(src.join(file));
    if let Some(i) = file.rfind("/src/") {
        cands.push(src.join(&file[i + 5..]));
    }
    cands.into_iter().find(|p| p.is_file())
}

/// Every site has a target, an indirect call or an elided wrapper, and
/// every named target is what its source line's `defer` calls.
pub fn check_all(e: &Entry, r: &Scan, x: &Explain) -> Result<(), String> {
    let mut files: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut errs = Vec::new();
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        let at = format!("{} {}:{}", s.function, s.file, s.line);
        let target = sx.deferred_target.as_deref();
        if target.is_none() && !sx.deferred_indirect && !sx.deferred_elided {
            errs.push(format!("{at}: unresolved (via {:?})", sx.deferred_via));
            continue;
        }
        let Some(path) = source_file(e, &s.file) else {
            errs.push(format!("{at}: no source file"));
            continue;
        };
        let src = files.entry(path).or_insert_with_key(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        });
        let line = src
            .get(s.line as usize - 1)
            .map(String::as_str)
            .unwrap_or("");
        let Some(callee) = defer_callee(line) else {
            errs.push(format!("{at}: no defer statement on the line: {line:?}"));
            continue;
        };
        // A function literal's call is never through an unknown value.
        if callee == Callee::Literal && sx.deferred_indirect {
            errs.push(format!(
                "{at}: `{}` calls a literal, reported indirect",
                line.trim()
            ));
            continue;
        }
        let Some(t) = target.filter(|_| !sx.deferred_intrinsic) else {
            continue;
        };
        let ok = match &callee {
            Callee::Literal => t.contains(".func"),
            Callee::Named(expr, name) => {
                let last = last_component(t);
                last == name
                    || (t == "print/println" && (name == "print" || name == "println"))
                    || (*expr == format!("C.{name}") && last == format!("_Cfunc_{name}"))
                    || local_holds(src, name, t)
            }
        };
        if !ok {
            errs.push(format!(
                "{at}: `{}` calls {callee:?}, target {t}",
                line.trim()
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bad sites:\n{}", errs.len(), errs.join("\n")))
    }
}

/// The parser on statements of the fixtures and GOROOT.
pub fn self_test() -> Result<(), String> {
    let named = |e: &str, n: &str| Some(Callee::Named(e.into(), n.into()));
    let cases = [
        ("\tdefer mu.Unlock()", named("mu.Unlock", "Unlock")),
        (
            "defer f().Close() // ignore error (can't fail)",
            named("f().Close", "Close"),
        ),
        ("defer Apply[int](x, y)", named("Apply", "Apply")),
        ("defer func() {", Some(Callee::Literal)),
        ("defer func(info commentInfo) {", Some(Callee::Literal)),
        ("x := 1 // deferred", None),
    ];
    for (line, want) in cases {
        let got = defer_callee(line);
        if got != want {
            return Err(format!("{line:?}: {got:?}, want {want:?}"));
        }
    }
    for (t, want) in [
        ("sync.(*Mutex).Unlock", "Unlock"),
        ("main.Apply[go.shape.int]", "Apply"),
        ("main.T.ValM-fm", "ValM"),
    ] {
        if last_component(t) != want {
            return Err(format!("{t}: {}", last_component(t)));
        }
    }
    let src = [
        "\tfn := func() { g(x * 2) }".to_owned(),
        "\tf := t.ValM".to_owned(),
        "\tif n == 1 {".to_owned(),
    ];
    let holds = [
        local_holds(&src, "fn", "main.closureCapture.func2"),
        local_holds(&src, "f", "main.T.ValM"),
        local_holds(&src, "f", "main.T.PtrM"),
        local_holds(&src, "n", "main.g"),
    ];
    if holds != [true, true, false, false] {
        return Err(format!("local_holds: {holds:?}"));
    }
    Ok(())
}

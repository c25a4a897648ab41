//! SARIF 2.1.0 output (`--format sarif`) for code scanning tools such as
//! GitHub code scanning.
//!
//! Design:
//! - **Findings** are the defers that are not open-coded: one result per
//!   stack-allocated or heap-allocated site. Open-coded defers cost almost
//!   nothing and are not reported (they are counted in `run.properties`).
//! - **Rules**: `deferscope/heap-allocated` (level `warning`) and
//!   `deferscope/stack-allocated` (level `note`); with explain data, one
//!   rule per reason code, `deferscope/reason/<code>` (e.g.
//!   `deferscope/reason/in-loop`), and a site with reasons is reported
//!   under its first reason's rule (the kind is in the message and in
//!   `properties.kind`). With explain data, a site of any kind whose
//!   deferred call rewrites its function's results is also reported, once,
//!   under `deferscope/writes-results` (level `note`). Every rule the
//!   results use is listed in `tool.driver.rules`, each result carries
//!   `ruleIndex`.
//! - **Locations**: the physical location is the site's `file:line`; the
//!   function is a logical location (`kind: "function"`); the loop of an
//!   in-loop defer is a related location. Files under the
//!   Go root are `src/...` relative to the base id `GOROOT`; with
//!   `-trimpath`, main-module files are relative to `%SRCROOT%` (the module
//!   root, normally the repository root) and other modules' files to
//!   `GOMODCACHE`; anything else is an absolute `file://` URI.
//! - **Fingerprints**: `partialFingerprints["deferscope/v1"]` hashes the
//!   function name, the kind and the site's ordinal among that function's
//!   sites of that kind, so an alert survives unrelated line shifts (the
//!   same matching as `deferscope diff`).
//! - **GitHub limits**: at most 25,000 results per run are uploaded; past
//!   that the rest are dropped (heap-allocated first are kept) and a
//!   `toolExecutionNotifications` entry says how many.

use std::collections::BTreeMap;
use std::io::{self, Write};

use deferscope_model::cost::CostTable;
use deferscope_model::explain::{Explain, FuncExplain, Reason, SiteExplain};
use deferscope_model::{Kind, Origin, Scan, Site};
use serde_json::{json, Map, Value};

/// GitHub code scanning accepts at most this many results per run.
pub const MAX_RESULTS: usize = 25_000;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule id of a kind (`deferscope/heap-allocated`).
pub fn kind_rule_id(k: Kind) -> String {
    format!("deferscope/{}", k.as_str())
}

/// The rule id of a reason code (`deferscope/reason/in-loop`).
pub fn reason_rule_id(r: Reason) -> String {
    format!("deferscope/reason/{}", r.as_str())
}

fn kind_level(k: Kind) -> &'static str {
    match k {
        Kind::HeapAllocated => "warning",
        Kind::StackAllocated => "note",
        Kind::OpenCoded => "none",
    }
}

/// A rule's `name`: its short description in upper camel case, letters
/// and digits only (`Heap-allocated defer` -> `HeapAllocatedDefer`).
fn rule_name(short: &str) -> String {
    short
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The rule of a kind; its costs per execution (defer and call) come
/// from the cost table `explain` uses, `t`.
fn kind_rule(k: Kind, t: &CostTable) -> Value {
    let ns = |v: f64| {
        if v >= 10.0 {
            format!("{v:.0} ns")
        } else {
            format!("{v:.1} ns")
        }
    };
    let (short, full) = match k {
        Kind::HeapAllocated => (
            "Heap-allocated defer",
            format!(
                "This defer is not open-coded and its _defer record is allocated on the heap \
                 (runtime.deferproc): every execution allocates and costs about {} with the \
                 call, against about {} for an open-coded defer.",
                ns(t.heap_allocated_ns),
                ns(t.open_coded_ns)
            ),
        ),
        Kind::StackAllocated => (
            "Stack-allocated defer",
            format!(
                "This defer is not open-coded: its _defer record lives in the frame \
                 (runtime.deferprocStack) and is linked and run by the runtime: about {} per \
                 execution with the call, against about {} for an open-coded defer.",
                ns(t.stack_allocated_ns),
                ns(t.open_coded_ns)
            ),
        ),
        Kind::OpenCoded => ("Open-coded defer", "An open-coded defer.".to_owned()),
    };
    json!({
        "id": kind_rule_id(k),
        "name": rule_name(short),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": {
            "text": format!(
                "{full} Costs: {}. Run `deferscope explain` on the binary for the reason and a fix.",
                t.source
            ),
        },
        "defaultConfiguration": { "level": kind_level(k) },
        "properties": { "tags": ["performance", "defer"] },
    })
}

fn reason_words(r: Reason) -> (&'static str, &'static str) {
    match r {
        Reason::InLoop => (
            "Defer in a loop",
            "The compiler never open-codes a defer that can run more than once per call: \
             a defer inside a loop gets a heap-allocated _defer record per iteration.",
        ),
        Reason::TooManyDefers => (
            "Too many defers in one function",
            "A function with more than 8 defer statements cannot use open-coded defers.",
        ),
        Reason::TooManyReturns => (
            "Too many returns times defers",
            "When return statements times defer statements exceeds 15, the compiler does not \
             open-code the function's defers.",
        ),
        Reason::BuildFlags => (
            "Open-coding disabled by build flags",
            "Builds with -race, -N (optimisations off) or -d=noopendefer do not open-code defers.",
        ),
        Reason::RangeFunc => (
            "Defer in a range-over-func loop body",
            "A defer in the body of a range-over-func loop runs at the end of the enclosing \
             function and goes through runtime.deferrangefunc: never open-coded.",
        ),
        Reason::ResultEscapes => (
            "Named result escapes",
            "A function whose named results escape to the heap cannot open-code its defers.",
        ),
        Reason::Unknown => (
            "Not open-coded, reason unknown",
            "deferscope could not tell why the compiler did not open-code this defer; rebuild \
             with -gcflags=-d=defer to see the compiler's decision.",
        ),
    }
}

fn reason_rule(r: Reason) -> Value {
    let (short, full) = reason_words(r);
    json!({
        "id": reason_rule_id(r),
        "name": rule_name(short),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": format!("{full} Run `deferscope explain` on the binary for the fix.") },
        "defaultConfiguration": { "level": "warning" },
        "properties": { "tags": ["performance", "defer"] },
    })
}

/// Percent-encode a path for use in a URI (RFC 3986 path characters are
/// kept).
fn uri_escape(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => s.push(b as char),
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

/// An absolute path as a `file://` URI (Unix `/a/b`, Windows `C:/a/b`).
fn file_uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    if p.starts_with('/') {
        format!("file://{}", uri_escape(&p))
    } else {
        format!("file:///{}", uri_escape(&p))
    }
}

fn is_absolute(p: &str) -> bool {
    p.starts_with('/')
        || p.starts_with('\\')
        || (p.len() > 2 && p.as_bytes()[0].is_ascii_alphabetic() && p.as_bytes()[1] == b':')
}

/// How file names of one binary become SARIF artifact locations.
struct Paths {
    /// The Go root the standard library was compiled from (absolute, no
    /// trailing slash), when a standard-library site shows it.
    goroot: Option<String>,
    trimpath: bool,
    main_module: Option<String>,
}

impl Paths {
    fn new(r: &Scan) -> Paths {
        // A std file is GOROOT/src/<package>/<file>.
        let goroot = r
            .sites
            .iter()
            .map(|s| (s.origin, s.package.as_str(), s.file.as_str()))
            .chain(
                r.functions
                    .iter()
                    .map(|f| (f.origin, f.package.as_str(), f.file.as_str())),
            )
            .filter(|(o, _, f)| *o == Origin::Std && is_absolute(f))
            .find_map(|(_, pkg, file)| {
                let dir = file.rsplit_once('/')?.0;
                dir.strip_suffix(&format!("/src/{pkg}"))
                    .map(|g| g.to_owned())
            });
        Paths {
            goroot,
            trimpath: r
                .binary
                .build_settings
                .get("-trimpath")
                .is_some_and(|v| v == "true"),
            // A GOPATH build's main package stood for the main module
            // before it was told apart; the URIs stay as they were.
            main_module: r.binary.main_module.clone().or_else(|| {
                r.binary
                    .gopath_build
                    .as_ref()
                    .map(|g| g.main_package.clone())
            }),
        }
    }

    /// `(uri, uriBaseId)` for a file as the pclntab spells it.
    fn location(&self, file: &str, origin: Origin) -> (String, Option<&'static str>) {
        if let Some(g) = &self.goroot {
            if let Some(rest) = file.strip_prefix(g.as_str()) {
                if let Some(rel) = rest.strip_prefix("/src/") {
                    return (format!("src/{}", uri_escape(rel)), Some("GOROOT"));
                }
            }
        }
        if is_absolute(file) {
            return (file_uri(file), None);
        }
        // A -trimpath spelling: module path + path in the module, or a
        // standard-library path relative to GOROOT/src.
        if let Some(m) = &self.main_module {
            if let Some(rel) = file
                .strip_prefix(m.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return (uri_escape(rel), Some("%SRCROOT%"));
            }
        }
        let first = file.split('/').next().unwrap_or("");
        if origin == Origin::Std || (self.trimpath && !first.contains('.')) {
            return (format!("src/{}", uri_escape(file)), Some("GOROOT"));
        }
        (uri_escape(file), Some("GOMODCACHE"))
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (not for security).
fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The ordinal of each site among the sites of the same function and kind,
/// in source order (line, then pc): the position `diff` matches on.
pub fn ordinals(sites: &[Site]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..sites.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (&sites[a], &sites[b]);
        (&x.function, x.kind, x.line, x.pc).cmp(&(&y.function, y.kind, y.line, y.pc))
    });
    let mut out = vec![0; sites.len()];
    let mut prev: Option<(&str, Kind)> = None;
    let mut n = 0;
    for i in idx {
        let key = (sites[i].function.as_str(), sites[i].kind);
        n = if prev == Some(key) { n + 1 } else { 0 };
        prev = Some(key);
        out[i] = n;
    }
    out
}

/// Print the report (with explain data when given) as a SARIF 2.1.0 log.
pub fn sarif(r: &Scan, x: Option<&Explain>, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &sarif_value(r, x))?;
    writeln!(w)
}

/// The SARIF log as a JSON value.
pub fn sarif_value(r: &Scan, x: Option<&Explain>) -> Value {
    // The figures explain used; a scan alone has the published ones.
    let costs = x.map_or_else(CostTable::published, |x| x.cost_table.clone());
    let paths = Paths::new(r);
    let ord = ordinals(&r.sites);
    let func_index: BTreeMap<&str, usize> = r
        .functions
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();

    let mut order: Vec<usize> = (0..r.sites.len())
        .filter(|&i| r.sites[i].kind != Kind::OpenCoded)
        .collect();
    // Heap first (kept under the result limit), then by position.
    order.sort_by(|&a, &b| {
        let (p, q) = (&r.sites[a], &r.sites[b]);
        (q.kind, &p.file, p.line, p.pc).cmp(&(p.kind, &q.file, q.line, q.pc))
    });
    let dropped = order.len().saturating_sub(MAX_RESULTS);
    order.truncate(MAX_RESULTS);

    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut rule_for = |id: String, make: &dyn Fn() -> Value| -> (String, usize) {
        let n = rule_index.len();
        let i = *rule_index.entry(id.clone()).or_insert_with(|| {
            rules.push(make());
            n
        });
        (id, i)
    };
    // The kind rules always come first, so their indexes are stable.
    for k in [Kind::HeapAllocated, Kind::StackAllocated] {
        rule_for(kind_rule_id(k), &|| kind_rule(k, &costs));
    }

    let mut results = Vec::new();
    for i in order {
        let s = &r.sites[i];
        let sx = x.and_then(|x| x.sites.get(i));
        let reasons: Vec<Reason> = sx.map(|e| e.reasons.clone()).unwrap_or_default();
        let (rule_id, ridx) = match reasons.first() {
            Some(&rc) => rule_for(reason_rule_id(rc), &|| reason_rule(rc)),
            None => rule_for(kind_rule_id(s.kind), &|| kind_rule(s.kind, &costs)),
        };
        let fx = x.and_then(|x| {
            func_index
                .get(s.function.as_str())
                .and_then(|&fi| x.functions.get(fi))
        });
        let msg = result_message(s, sx, fx, &reasons);
        let art = artifact(&paths, &s.file, s.origin);
        let mut props = json!({
            "kind": s.kind.as_str(),
            "function": s.function,
            "package": s.package,
            "origin": s.origin,
            "pc": s.pc,
        });
        if !reasons.is_empty() {
            props["reasons"] = json!(reasons);
        }
        let fp = fnv64(&format!("{}\u{0}{}\u{0}{}", s.function, s.kind, ord[i]));
        // The loop holding an in-loop defer, as a related location.
        let related: Vec<Value> = sx
            .and_then(|e| e.loop_lines.as_ref())
            .map(|l| {
                json!({
                    "id": 1,
                    "physicalLocation": {
                        "artifactLocation": artifact(&paths, &l.file, s.origin),
                        "region": {
                            "startLine": l.first_line.max(1),
                            "endLine": l.last_line.max(l.first_line).max(1),
                        },
                    },
                    "message": { "text": "the loop holding the defer" },
                })
            })
            .into_iter()
            .collect();
        results.push(json!({
            "ruleId": rule_id,
            "ruleIndex": ridx,
            "level": kind_level(s.kind),
            "message": { "text": msg },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": art,
                    "region": { "startLine": s.line.max(1) },
                },
                "logicalLocations": [{
                    "name": short_func(&s.function),
                    "fullyQualifiedName": s.function,
                    "kind": "function",
                }],
            }],
            "partialFingerprints": { "deferscope/v1": format!("{fp:016x}") },
            "properties": props,
        }));
        if !related.is_empty() {
            if let Some(last) = results.last_mut() {
                last["relatedLocations"] = Value::Array(related);
            }
        }
    }

    if let Some(x) = x {
        let (id, ridx) = rule_for(WRITES_RESULTS_RULE.to_string(), &writes_results_rule);
        results.extend(writes_results_results(r, x, &paths, &ord, (&id, ridx)));
    }
    if rules.last().and_then(|r| r["id"].as_str()) == Some(WRITES_RESULTS_RULE)
        && !results
            .iter()
            .any(|r| r["ruleId"].as_str() == Some(WRITES_RESULTS_RULE))
    {
        rules.pop();
    }

    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [run_value(r, &paths, rules, results, dropped)],
    })
}

/// The rule of a deferred call that rewrites its function's results.
const WRITES_RESULTS_RULE: &str = "deferscope/writes-results";

fn writes_results_rule() -> Value {
    let short = "Deferred call rewrites the function's results";
    let full = "A deferred closure writes a result parameter of its function after the \
                return statement has set it (a named result captured by reference), so the \
                caller gets the value the deferred call leaves, not the returned expression.";
    json!({
        "id": WRITES_RESULTS_RULE,
        "name": rule_name(short),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": format!("{full} Run `deferscope explain` on the binary to see which result.") },
        "defaultConfiguration": { "level": "note" },
        "properties": { "tags": ["correctness", "defer"] },
    })
}

/// One note per site whose deferred call rewrites results (every kind,
/// open-coded included: the behaviour does not depend on the kind).
fn writes_results_results(
    r: &Scan,
    x: &Explain,
    paths: &Paths,
    ord: &[usize],
    (rule_id, ridx): (&str, usize),
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (s, sx)) in r.sites.iter().zip(&x.sites).enumerate() {
        if sx.writes_results.is_empty() {
            continue;
        }
        let fp = fnv64(&format!(
            "{}\u{0}{}\u{0}{}\u{0}writes",
            s.function, s.kind, ord[i]
        ));
        out.push(json!({
            "ruleId": rule_id,
            "ruleIndex": ridx,
            "level": "note",
            "message": { "text": format!(
                "The deferred call at {}:{} rewrites {} of {} after the return statement set it.",
                s.file.rsplit('/').next().unwrap_or(&s.file),
                s.line,
                sx.writes_results.join(", "),
                s.function
            ) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": artifact(paths, &s.file, s.origin),
                    "region": { "startLine": s.line.max(1) },
                },
                "logicalLocations": [{
                    "name": short_func(&s.function),
                    "fullyQualifiedName": s.function,
                    "kind": "function",
                }],
            }],
            "partialFingerprints": { "deferscope/v1": format!("{fp:016x}") },
            "properties": {
                "kind": s.kind.as_str(),
                "function": s.function,
                "writes_results": sx.writes_results,
            },
        }));
    }
    out
}

/// The run: the tool and its rules, the results, the binary's properties
/// and the GOROOT base the standard library's locations are relative to.
fn run_value(
    r: &Scan,
    paths: &Paths,
    rules: Vec<Value>,
    results: Vec<Value>,
    dropped: usize,
) -> Value {
    let mut bases = Map::new();
    if let Some(g) = &paths.goroot {
        bases.insert(
            "GOROOT".into(),
            json!({ "uri": format!("{}/", file_uri(g)), "description": { "text": "The Go root the standard library was compiled from." } }),
        );
    }
    let (all, _) = r.counts();
    let mut invocation = json!({ "executionSuccessful": true });
    if dropped > 0 {
        invocation["toolExecutionNotifications"] = json!([{
            "level": "warning",
            "message": { "text": format!(
                "{dropped} stack-allocated sites left out: code scanning accepts at most {MAX_RESULTS} results per run"
            ) },
        }]);
    }
    let mut run = json!({
        "tool": { "driver": {
            "name": "deferscope",
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://example.invalid/deferscope",
            "rules": rules,
        }},
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {
            "binary": r.binary.path,
            "go_version": r.binary.go_version,
            "goos": r.binary.goos,
            "goarch": r.binary.goarch,
            "sites": all,
        },
    });
    if !bases.is_empty() {
        run["originalUriBaseIds"] = Value::Object(bases);
    }
    run
}

/// A result's message: the kind, the reasons, the loop, the target, the
/// closure, the cost, and the first reason's fix.
fn result_message(
    s: &Site,
    sx: Option<&SiteExplain>,
    fx: Option<&FuncExplain>,
    reasons: &[Reason],
) -> String {
    let mut msg = format!(
        "{} defer in {}",
        capitalise(s.kind.as_str()),
        text_escape(&s.function)
    );
    if !reasons.is_empty() {
        let words: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        msg.push_str(&format!(" (not open-coded: {})", words.join(", ")));
    }
    if let Some(e) = sx {
        if let Some(l) = &e.loop_lines {
            msg.push_str(&format!(
                "; in the [loop](1) at lines {}-{}",
                l.first_line, l.last_line
            ));
        }
        if let Some(t) = &e.deferred_target {
            msg.push_str(&format!("; defers {}", text_escape(t)));
        }
        if let Some(b) = e.heap_closure_bytes {
            msg.push_str(&format!("; allocates a {b}-byte closure"));
        }
        msg.push_str(&format!("; about {:.0} ns per execution", e.est_ns));
    }
    msg.push('.');
    if let Some(f) = fx {
        if let Some(d) = f.reason_details.first() {
            msg.push_str(&format!(" Fix: {}.", d.fix.trim_end_matches('.')));
        }
    }
    msg
}

/// An artifact location: the path relative to a base (`GOROOT`) where it
/// has one, else the file's own URI.
fn artifact(paths: &Paths, file: &str, origin: Origin) -> Value {
    let (uri, base) = paths.location(file, origin);
    let mut art = Map::new();
    art.insert("uri".into(), Value::String(uri));
    if let Some(b) = base {
        art.insert("uriBaseId".into(), Value::String(b.into()));
    }
    Value::Object(art)
}

/// Escape the brackets of a name for SARIF message text, where `[text](n)`
/// is an embedded link (`main.Gen[go.shape.int]` must stay literal).
fn text_escape(s: &str) -> String {
    s.replace('[', "\\[").replace(']', "\\]")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The function's name without its package path (`(*T).Close`).
fn short_func(name: &str) -> &str {
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    // Generic brackets may hold dots; find the package dot before them.
    let end = name[after_slash..]
        .find('[')
        .map_or(name.len(), |i| after_slash + i);
    match name[after_slash..end].find('.') {
        Some(i) => &name[after_slash + i + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(file_uri("/a b/c.go"), "file:///a%20b/c.go");
        assert_eq!(file_uri("C:/x/y.go"), "file:///C:/x/y.go");
        assert_eq!(short_func("example.com/m/lib.(*T).Close"), "(*T).Close");
        assert_eq!(short_func("main.Gen[go.shape.int]"), "Gen[go.shape.int]");
        assert_eq!(
            text_escape("main.Gen[go.shape.int]"),
            "main.Gen\\[go.shape.int\\]"
        );
    }

    fn site(function: &str, line: u32, kind: Kind, pc: u64) -> Site {
        Site {
            function: function.into(),
            file: "/m/a.go".into(),
            line,
            kind,
            pc,
            package: "main".into(),
            origin: Origin::Main,
            index: None,
        }
    }

    #[test]
    fn ordinals_per_function_and_kind() {
        let s = vec![
            site("main.f", 20, Kind::StackAllocated, 3),
            site("main.f", 10, Kind::StackAllocated, 9),
            site("main.f", 15, Kind::HeapAllocated, 5),
            site("main.g", 5, Kind::StackAllocated, 1),
        ];
        assert_eq!(ordinals(&s), vec![1, 0, 0, 0]);
    }
}

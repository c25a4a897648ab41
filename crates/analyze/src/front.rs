//! The front end every command shares: map a file, index it, analyse it.
//!
//! [`with_binary`] maps the file and indexes its Go tables (both borrow
//! the mapping, hence the callback); [`run`] scans the indexed binary,
//! compares the scan with the compiler's lines when asked (before
//! filtering, so a function the filter leaves out still counts), keeps
//! the functions the [`Filter`] selects, explains them when asked, and
//! spells file paths as a `-trimpath` build would unless asked not to.
//! Its [`Analysis`] is what every printer takes.

use std::path::Path;

use deferscope_index::runtime::Runtime;
use deferscope_index::{Dwarf, GoIndex};
use deferscope_load::Image;
use deferscope_model::cost::CostTable;
use deferscope_model::{Analysis, Origin};

use crate::verify::CompilerLines;
use crate::AnalyzeError;

/// Which functions a command keeps (`--funcs`, `--no-std`).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only functions whose name matches.
    pub funcs: Option<regex::Regex>,
    /// Leave out the standard library.
    pub no_std: bool,
    /// Keep the file paths the binary records (else they are shown as
    /// [`crate::paths::PathMap`] spells them).
    pub full_paths: bool,
}

impl Filter {
    /// Whether the function `name`, from a package of `origin`, is kept.
    pub fn keeps(&self, name: &str, origin: Origin) -> bool {
        !(self.no_std && origin == Origin::Std)
            && self.funcs.as_ref().is_none_or(|re| re.is_match(name))
    }
}

/// What to work out beyond the scan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// Explain every kept function and site, pricing defers with this
    /// table.
    pub explain: Option<&'a CostTable>,
    /// Compare the whole scan with the compiler's `-d=defer` lines.
    pub verify: Option<&'a CompilerLines>,
}

/// Map `path` and index its Go tables, and hand both to `f`.
pub fn with_binary<T, E: From<AnalyzeError>>(
    path: &Path,
    f: impl FnOnce(&Image<'_>, &GoIndex<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let mapped = deferscope_load::Mapped::open(path).map_err(AnalyzeError::from)?;
    let img = mapped.image().map_err(AnalyzeError::from)?;
    let ix = GoIndex::new(&img).map_err(|source| AnalyzeError::Index {
        path: path.display().to_string(),
        source,
    })?;
    f(&img, &ix)
}

/// Analyse an indexed binary: scan, verify, filter, explain. `path` is
/// only shown (the report's `binary.path`).
pub fn run(
    path: &str,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    filter: &Filter,
    req: Request<'_>,
) -> Result<Analysis, AnalyzeError> {
    // The DWARF explain names captures with is decompressed on other
    // threads while the binary is scanned.
    let dwarf = req.explain.and_then(|_| Dwarf::load(img));
    std::thread::scope(|s| {
        crate::explain::warm_dwarf(s, dwarf.as_ref());
        let rt = Runtime::find(ix);
        let mut scan = crate::scan_with(path, img, ix, &rt)?;
        let verification = req
            .verify
            .map(|lines| crate::verify::verify(lines, &scan, img, ix));
        scan.retain(|name, origin| filter.keeps(name, origin));
        let explain = req
            .explain
            .map(|cost| crate::explain::explain_using(img, ix, &rt, &scan, cost, dwarf.as_ref()));
        let mut a = Analysis {
            scan,
            explain,
            verification,
            profile: None,
        };
        // Last: every step above matches the recorded paths with the tables'.
        if !filter.full_paths {
            crate::paths::PathMap::new(ix).apply(&mut a);
        }
        Ok(a)
    })
}

//! Stage 5 of the deferscope pipeline: **report**. Printers only.
//!
//! Every printer takes data from `deferscope-model` (one [`Analysis`],
//! and the rows of annotated disassembly where a format shows code) and
//! writes to any `&mut impl Write`, so the CLI, tests and benchmarks share
//! them. The crate reads no binary: it depends on no stage of the
//! pipeline (`cargo tree -p deferscope-report`).
//!
//! One entry point per format, [`write`], picks the printer:
//!
//! - [`scan`] and [`explain`]: compiler-style text (`file:line: kind defer
//!   in func`) and the JSON contract of `docs/json.md`, without and with
//!   the explain pass;
//! - [`sarif`]: SARIF 2.1.0 for code scanning;
//! - [`html`]: one self-contained page with a chart, a table of sites and
//!   a panel per function (reasons and annotated disassembly);
//!
//! and beside them, [`diff`] (site changes between two builds),
//! [`verify`] (the compiler's `-d=defer` lines compared with a scan) and
//! [`batch`] (many binaries in one report, and their diff).
//!
//! When the analysis has a profile (`deferscope profile`), text and JSON
//! are [`profile`]'s report instead, and the HTML page gains its section
//! of shares per function and site.

pub mod batch;
pub mod diff;
pub mod explain;
pub mod html;
pub mod profile;
pub mod sarif;
pub mod scan;
pub mod verify;

use std::io::{self, Write};

use deferscope_model::{Analysis, Scan};

/// The report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For people: compiler-style lines, or explain's paragraphs.
    Text,
    /// The contract of `docs/json.md`.
    Json,
    /// SARIF 2.1.0: stack- and heap-allocated sites as results.
    Sarif,
    /// One self-contained page; needs the explain pass and the listings.
    Html,
}

/// Print `a` in `format`. The HTML page shows the `listings` (see
/// [`html::Listings`]) and needs the explain pass; the other formats print
/// the explain pass when `a` has one.
pub fn write(
    a: &Analysis,
    format: Format,
    listings: Option<&html::Listings>,
    w: &mut impl Write,
) -> io::Result<()> {
    if let Some(p) = &a.profile {
        match format {
            Format::Text => return profile::text(&a.scan, p, w),
            Format::Json => return profile::json(&a.scan, p, w),
            Format::Sarif | Format::Html => {}
        }
    }
    match (format, &a.explain) {
        (Format::Text, None) => scan::text(&a.scan, w),
        (Format::Text, Some(x)) => explain::text(&a.scan, x, w),
        (Format::Json, None) => scan::json(&a.scan, w),
        (Format::Json, Some(x)) => explain::json(&a.scan, x, w),
        (Format::Sarif, x) => sarif::sarif(&a.scan, x.as_ref(), w),
        (Format::Html, Some(x)) => html::write_page(&a.scan, x, listings, a.profile.as_ref(), w),
        (Format::Html, None) => Err(io::Error::other("the HTML report needs the explain pass")),
    }
}

/// Version of the JSON contract; bumped only on incompatible changes.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The one-line description of the binary: version, platform, format.
pub fn headline(r: &Scan) -> String {
    let b = &r.binary;
    let mut s = format!(
        "{}: {} {}/{} {}{}, {}",
        b.path,
        b.go_version.as_deref().unwrap_or("go version unknown"),
        b.goos,
        b.goarch,
        match b.format {
            "elf" => "ELF",
            "pe" => "PE",
            _ => "Mach-O",
        },
        if b.pie { " PIE" } else { "" },
        if b.stripped {
            "stripped"
        } else {
            "not stripped"
        },
    );
    if let Some(m) = &b.main_module {
        s.push_str(", main module ");
        s.push_str(m);
    }
    if let Some(g) = &b.gopath_build {
        s.push_str(&gopath_words(g));
    }
    s
}

/// The words for `o` in the report on `b`: a GOPATH build has no main
/// module, its "main" origin is the main package's repository, "own code".
pub(crate) fn origin_label(
    o: deferscope_model::Origin,
    b: &deferscope_model::BinaryInfo,
) -> &'static str {
    if o == deferscope_model::Origin::Main && b.gopath_build.is_some() {
        "own code"
    } else {
        o.label()
    }
}

/// `, GOPATH build (no main module) of ...`: how the report counts a
/// build without a main module.
pub(crate) fn gopath_words(g: &deferscope_model::GopathBuild) -> String {
    format!(
        ", GOPATH build (no main module) of {}, own code {}/...",
        g.main_package, g.own_code
    )
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

//! The compiler's `-d=defer` account of a build compared with a scan of
//! the binary it built (`deferscope check --verify`): the verdict's data.
//! The comparison is `deferscope_analyze::verify`'s.

use serde::Serialize;

use crate::Kind;

/// One disagreement between deferscope and the compiler.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum Disagreement {
    /// The compiler printed a defer where the binary has its code, and we
    /// found none.
    Missed { file: String, line: u32, kind: Kind },
    /// We report a kind the compiler did not print at that line.
    WrongKind {
        file: String,
        line: u32,
        ours: Kind,
        compiler: Vec<Kind>,
        function: String,
    },
    /// We report a site where the compiler printed nothing.
    Extra {
        file: String,
        line: u32,
        kind: Kind,
        function: String,
    },
    /// One function holds more sites at a line than the compiler printed
    /// distinct columns there.
    Count {
        file: String,
        line: u32,
        kind: Kind,
        function: String,
        ours: usize,
        compiler: usize,
    },
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disagreement::Missed { file, line, kind } => write!(
                f,
                "{file}:{line}: the compiler says {kind} defer; deferscope found none"
            ),
            Disagreement::WrongKind {
                file,
                line,
                ours,
                compiler,
                function,
            } => {
                let c: Vec<&str> = compiler.iter().map(|k| k.as_str()).collect();
                write!(
                    f,
                    "{file}:{line}: deferscope says {ours} defer in {function}; the compiler says {}",
                    c.join(" and ")
                )
            }
            Disagreement::Extra {
                file,
                line,
                kind,
                function,
            } => write!(
                f,
                "{file}:{line}: deferscope says {kind} defer in {function}; the compiler printed nothing there"
            ),
            Disagreement::Count {
                file,
                line,
                kind,
                function,
                ours,
                compiler,
            } => write!(
                f,
                "{file}:{line}: deferscope finds {ours} {kind} defers in {function}; the compiler printed {compiler}"
            ),
        }
    }
}

/// The outcome of [`compare`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// (position, kind) pairs the compiler printed.
    pub compiler_lines: usize,
    /// Of those, found by deferscope.
    pub matched: usize,
    /// Of those, without code in the binary (dead or dropped).
    pub excused: usize,
    pub disagreements: Vec<Disagreement>,
}

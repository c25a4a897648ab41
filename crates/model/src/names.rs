//! Go symbol names: package paths and where a package comes from.

use serde::Serialize;

/// The package path of a function symbol: `sync.(*Mutex).Unlock` is in
/// `sync`, `example.com/m/lib.F[go.shape.int]` in `example.com/m/lib`.
/// Type arguments are cut first, then the path runs to the first dot after
/// the last slash (the rule debug/gosym uses; a module path with a dot in
/// its last element, like `gopkg.in/yaml.v3`, is ambiguous by design).
pub fn package_of(name: &str) -> &str {
    let base = &name[..name.find('[').unwrap_or(name.len())];
    let slash = base.rfind('/').map_or(0, |i| i + 1);
    match base[slash..].find('.') {
        Some(dot) => &name[..slash + dot],
        None => base,
    }
}

/// Where a package comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Origin {
    /// The main module (or package `main`).
    #[serde(rename = "main")]
    Main,
    /// The standard library, including `vendor/` and `internal/` packages.
    #[serde(rename = "std")]
    Std,
    /// Any other module.
    #[serde(rename = "dep")]
    Dependency,
}

impl Origin {
    /// Classify `package` given the main module path.
    pub fn of(package: &str, main_module: Option<&str>) -> Origin {
        if package == "main" {
            return Origin::Main;
        }
        if let Some(m) = main_module {
            if package == m || package.strip_prefix(m).is_some_and(|r| r.starts_with('/')) {
                return Origin::Main;
            }
        }
        let first = package.split('/').next().unwrap_or(package);
        if first.contains('.') {
            Origin::Dependency
        } else {
            Origin::Std
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Main => "main module",
            Origin::Std => "standard library",
            Origin::Dependency => "dependencies",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages() {
        assert_eq!(package_of("sync.(*Mutex).Unlock"), "sync");
        assert_eq!(package_of("main.main.func1"), "main");
        assert_eq!(
            package_of("example.com/defers/lib.(*T).Close"),
            "example.com/defers/lib"
        );
        assert_eq!(package_of("main.Gen[go.shape.string]"), "main");
        assert_eq!(
            package_of("example.com/m/lib.G[go.shape.struct { example.com/x.A int }]"),
            "example.com/m/lib"
        );
        assert_eq!(package_of("internal/poll.(*FD).Close"), "internal/poll");
        assert_eq!(
            package_of("cmd/go/internal/work.(*Builder).Do.func2"),
            "cmd/go/internal/work"
        );
    }

    #[test]
    fn origins() {
        assert_eq!(Origin::of("main", None), Origin::Main);
        assert_eq!(Origin::of("net/http", Some("example.com/m")), Origin::Std);
        assert_eq!(
            Origin::of("example.com/m/lib", Some("example.com/m")),
            Origin::Main
        );
        assert_eq!(
            Origin::of("example.com/mx", Some("example.com/m")),
            Origin::Dependency
        );
        assert_eq!(
            Origin::of("cmd/go/internal/work", Some("cmd")),
            Origin::Main
        );
        assert_eq!(
            Origin::of("vendor/golang.org/x/net/http2", None),
            Origin::Std
        );
    }
}

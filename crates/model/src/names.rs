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

/// Hosts whose repositories are `host/owner/repo` (cmd/go's vcs table
/// names github.com and bitbucket.org; the others follow the same scheme;
/// golang.org/x/NAME is one repository per NAME).
const THREE_ELEMENT_HOSTS: [&str; 6] = [
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "git.sr.ht",
    "golang.org",
];

/// The root of the repository that holds package `main_package`, for a
/// build without a main module (GOPATH mode), where nothing else says
/// which packages are the program's own:
///
/// - on a host of [`THREE_ELEMENT_HOSTS`], the first three path elements,
///   and a fourth when it is a major version suffix `vN`
///   (`github.com/caddyserver/caddy/v2/cmd/caddy` ->
///   `github.com/caddyserver/caddy/v2`);
/// - elsewhere, the path before its first `cmd` element after the first
///   (`example.org/tool/cmd/tool` -> `example.org/tool`);
/// - else the main package's own path.
pub fn repository_root(main_package: &str) -> &str {
    let elems: Vec<&str> = main_package.split('/').collect();
    let upto = |n: usize| -> &str {
        let len = elems[..n].iter().map(|e| e.len()).sum::<usize>() + n - 1;
        &main_package[..len]
    };
    if THREE_ELEMENT_HOSTS.contains(&elems[0]) && elems.len() >= 3 {
        let major = elems.get(3).is_some_and(|e| {
            e.len() > 1 && e.starts_with('v') && e[1..].bytes().all(|b| b.is_ascii_digit())
        });
        return upto(if major { 4 } else { 3 });
    }
    match elems.iter().skip(1).position(|&e| e == "cmd") {
        Some(i) => upto(i + 1),
        None => main_package,
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
    fn repository_roots() {
        assert_eq!(
            repository_root("github.com/caddyserver/caddy/v2/cmd/caddy"),
            "github.com/caddyserver/caddy/v2"
        );
        assert_eq!(
            repository_root("github.com/zyedidia/micro/v2/cmd/micro"),
            "github.com/zyedidia/micro/v2"
        );
        assert_eq!(
            repository_root("github.com/acme/tool/cmd/tool"),
            "github.com/acme/tool"
        );
        assert_eq!(
            repository_root("github.com/acme/tool"),
            "github.com/acme/tool"
        );
        assert_eq!(repository_root("github.com/acme"), "github.com/acme");
        assert_eq!(
            repository_root("github.com/acme/tool/vx/cmd"),
            "github.com/acme/tool"
        );
        assert_eq!(
            repository_root("golang.org/x/tools/cmd/stringer"),
            "golang.org/x/tools"
        );
        assert_eq!(
            repository_root("example.org/tool/cmd/tool"),
            "example.org/tool"
        );
        assert_eq!(repository_root("example.org/a/b"), "example.org/a/b");
        assert_eq!(repository_root("cmd/go"), "cmd/go");
        assert_eq!(repository_root("tool"), "tool");
    }

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

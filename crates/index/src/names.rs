//! Function names as people write them: the package path of a symbol
//! unescaped.
//!
//! The compiler writes a package's path into its symbols escaped
//! (cmd/internal/objabi.PathToPrefix): a control byte, space, `%`, `"` or
//! a byte >= 0x7f anywhere becomes `%xx`, and so does a `.` in the path's
//! last element, so that the first `.` after the last `/` always ends the
//! package part. `gopkg.in/yaml.v3`'s `(*parser).init` is the symbol
//! `gopkg.in/yaml%2ev3.(*parser).init` (docs/design.md §4.9).

use std::borrow::Cow;

/// The length of the package part of the symbol `name`: up to the first
/// `.` after the last `/` (type arguments cut first, as they may hold
/// slashes).
fn package_len(name: &str) -> usize {
    let base = &name[..name.find('[').unwrap_or(name.len())];
    let slash = base.rfind('/').map_or(0, |i| i + 1);
    base[slash..].find('.').map_or(base.len(), |d| slash + d)
}

/// `%xx` sequences of `s` decoded; `None` when one is malformed or the
/// result is not UTF-8 (then the escaped form is the best name there is).
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The symbol `name` with its package path unescaped:
/// `gopkg.in/yaml%2ev3.(*parser).init` -> `gopkg.in/yaml.v3.(*parser).init`.
/// Only the package part changes; a name without `%` there is returned as
/// it is.
pub fn display_name(name: &str) -> Cow<'_, str> {
    let n = package_len(name);
    if !name[..n].contains('%') {
        return Cow::Borrowed(name);
    }
    match unescape(&name[..n]) {
        Some(pkg) => Cow::Owned(pkg + &name[n..]),
        None => Cow::Borrowed(name),
    }
}

/// The package path of the symbol `name`, unescaped:
/// `gopkg.in/yaml%2ev3.(*parser).init` -> `gopkg.in/yaml.v3`. (The package
/// of a name already unescaped cannot be told: `gopkg.in/yaml.v3.F` reads
/// as package `gopkg.in/yaml`.)
pub fn display_package(name: &str) -> Cow<'_, str> {
    let p = &name[..package_len(name)];
    match p.contains('%').then(|| unescape(p)).flatten() {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values follow PathToPrefix's rule (module comment), applied
    // by hand.
    #[test]
    fn dotted_last_element() {
        assert_eq!(
            display_name("gopkg.in/yaml%2ev3.(*parser).init"),
            "gopkg.in/yaml.v3.(*parser).init"
        );
        assert_eq!(
            display_package("gopkg.in/yaml%2ev3.(*parser).init"),
            "gopkg.in/yaml.v3"
        );
        assert_eq!(
            display_package("gopkg.in/square/go-jose%2ev2.(*JSONWebKey).Valid"),
            "gopkg.in/square/go-jose.v2"
        );
        // A dot in an earlier element is not escaped.
        assert_eq!(
            display_package("gopkg.in/square/go-jose.v2/json.Marshal"),
            "gopkg.in/square/go-jose.v2/json"
        );
    }

    #[test]
    fn other_escapes_and_rest_untouched() {
        assert_eq!(display_name("a%20b/c%25d.F"), "a b/c%d.F");
        assert_eq!(display_name("ex.com/caf%c3%a9.F"), "ex.com/café.F");
        // Only the package part: a `%` in type arguments stays.
        assert_eq!(
            display_name("main.G[go.shape.struct { x%2ey int }]"),
            "main.G[go.shape.struct { x%2ey int }]"
        );
        assert_eq!(
            display_name("ex.com/a%2eb.G[go.shape.struct { ex.com/c%2ed.T }]"),
            "ex.com/a.b.G[go.shape.struct { ex.com/c%2ed.T }]"
        );
        assert_eq!(display_name("sync.(*Mutex).Unlock"), "sync.(*Mutex).Unlock");
        // Malformed or not UTF-8: kept.
        assert_eq!(display_name("ex.com/a%2.F"), "ex.com/a%2.F");
        assert_eq!(display_name("ex.com/a%ff.F"), "ex.com/a%ff.F");
    }
}

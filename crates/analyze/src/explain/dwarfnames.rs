//! DWARF names for captures and rewritten results (design.md §5.6, §6.4),
//! applied after every function was explained: meanwhile another thread
//! decompresses and indexes the DWARF ([`deferscope_index::Dwarf`]), so
//! an unstripped binary's names cost little over the explain pass itself.

use deferscope_index::{Dwarf, DwarfCapture, GoIndex, LocatedCapture};
use deferscope_load::Image;
use deferscope_model::explain::{Capture, CaptureMode, SiteExplain};

use super::{dwarfloads, dwarfstores};

/// A site whose closure (code at `code`, in the function at `entry`) may
/// get names.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unnamed {
    pub site: usize,
    pub code: u64,
    pub entry: u64,
}

/// Name what DWARF names.
pub(super) fn apply(
    d: &Dwarf<'_>,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    sites: &mut [SiteExplain],
    todo: &[Unnamed],
) {
    for u in todo {
        let sx = &mut sites[u.site];
        if let Some(caps) = sx.captures.take() {
            sx.captures = Some(if caps.is_empty() {
                caps
            } else if let Some(lc) = d.closure_capture_locations(u.code) {
                before_123(img, ix, u.code, caps, &lc)
            } else {
                match d.closure_captures(u.code) {
                    Some(mut dc) if !dc.is_empty() => {
                        settle_modes(d, img, ix, u.code, &mut dc);
                        with_dwarf(caps, &dc)
                    }
                    _ => caps,
                }
            });
        }
        if let Some(caps) = sx.captures.take() {
            let open = caps.iter().any(|c| c.name.is_none() && c.pc.is_some());
            let caps = if open {
                with_stores(d, img, ix, u.entry, caps)
            } else {
                caps
            };
            // A heap object DWARF shows captured by value (`text :=
            // new(T)`) was no variable moved to the heap: it is an object
            // the closure keeps alive (the same memory per execution).
            for c in caps.iter().filter(|c| c.mode == CaptureMode::Value) {
                for a in &mut sx.allocations {
                    if Some(a.pc) == c.points_to && a.what == "variable" {
                        a.what = "object".into();
                    }
                }
            }
            sx.captures = Some(caps);
        }
        if sx.writes_results.iter().any(|w| w.starts_with(WORD)) {
            if let Some(rs) = d.result_sizes(u.entry) {
                for w in &mut sx.writes_results {
                    let n = w.strip_prefix(WORD).and_then(|n| n.parse::<usize>().ok());
                    if let Some(name) = n.and_then(|n| result_at_word(&rs, n.checked_sub(1)?)) {
                        *w = name;
                    }
                }
            }
        }
    }
}

/// From go1.23: settle the mode of each `&x` capture by what the closure's
/// body does with it ([`dwarfloads::modes`]): DWARF's types alone misjudge
/// some (go1.27.3 cmd/go `(*tracer).Close.func1` addresses its 32-byte
/// by-value `f` in place, `LEAQ 0x10(DX), BX`, though its type is
/// SSA-able).
fn settle_modes(
    d: &Dwarf<'_>,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    code: u64,
    dc: &mut [DwarfCapture],
) {
    if !dc.iter().any(|c| c.by_ref || !c.certain) {
        return;
    }
    let Some(lc) = d.closure_ref_locations(code) else {
        return;
    };
    let Some(f) = ix.func_for_pc(code) else {
        return;
    };
    let Some(body) = f
        .end
        .checked_sub(f.entry)
        .and_then(|n| img.read(f.entry, n))
    else {
        return;
    };
    for (off, by_ref, bytes) in dwarfloads::modes(img.arch, body, f.entry, &lc) {
        if let Some(c) = dc
            .iter_mut()
            .find(|c| c.offset == Some(off) && (c.by_ref || !c.certain))
        {
            c.by_ref = by_ref;
            c.certain = true;
            c.bytes = bytes;
            // Proven by the loads: nothing weaker settles it again.
            c.pointee_bytes = None;
        }
    }
}

/// Before go1.23: the closure offsets the closure's body proves
/// ([`dwarfloads`]), or else the order rules of [`with_dwarf`], whichever
/// names more.
fn before_123(
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    code: u64,
    caps: Vec<Capture>,
    lc: &[LocatedCapture],
) -> Vec<Capture> {
    let dc: Vec<DwarfCapture> = lc
        .iter()
        .filter(|l| !l.candidate)
        .map(|l| l.capture.clone())
        .collect();
    let placed = ix.func_for_pc(code).and_then(|f| {
        let body = img.read(f.entry, f.end.checked_sub(f.entry)?)?;
        Some(dwarfloads::placed(img.arch, body, f.entry, &caps, lc))
    });
    let dc = &dc[..];
    let named = |c: &[Capture]| c.iter().filter(|c| c.name.is_some()).count();
    let by_order = with_dwarf(caps.clone(), dc);
    match placed {
        Some(p) if !p.is_empty() => {
            let by_loads = with_dwarf(caps, &p);
            if named(&by_loads) >= named(&by_order) {
                by_loads
            } else {
                by_order
            }
        }
        _ => by_order,
    }
}

/// Name the fields still unnamed from the stores that build the closure
/// in the function at `entry` ([`dwarfstores`]).
fn with_stores(
    d: &Dwarf<'_>,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    entry: u64,
    caps: Vec<Capture>,
) -> Vec<Capture> {
    let placed = ix.func_for_pc(entry).and_then(|f| {
        let body = img.read(f.entry, f.end.checked_sub(f.entry)?)?;
        Some(dwarfstores::stored(img.arch, body, f.entry, &caps, |pcs| {
            d.vars_in_registers_at(f.entry, pcs)
        }))
    });
    match placed {
        Some(p) if !p.is_empty() => with_dwarf(caps, &p),
        _ => caps,
    }
}

/// How an unnamed rewritten result is called (`result word 1`).
pub(super) const WORD: &str = "result word ";

/// The name of the result whose first word is integer result word `w`
/// (from 0), given the results' names and sizes (a result of up to 8
/// bytes takes one word, a string two, ...).
fn result_at_word(results: &[(String, Option<u64>)], w: usize) -> Option<String> {
    let mut at = 0;
    for (name, size) in results {
        if at == w {
            return Some(name.clone());
        }
        at += size.map_or(1, |s| s.div_ceil(8) as usize);
        if at > w {
            return None;
        }
    }
    None
}

/// The last `&x` of a closure has no next offset to tell a pointer from
/// a value kept in place (design.md §6.4); the code may: the word stored
/// at its offset is no address of a local, and the stored words from there
/// end exactly `size(x)` bytes further, where the closure ends. (DWARF
/// drops captures the optimizer dropped, so the words after a pointer may
/// be another variable's: then they rarely end exactly there.)
fn last_in_place(c: &DwarfCapture, dc: &[DwarfCapture], caps: &[Capture]) -> DwarfCapture {
    let mut c = c.clone();
    let (Some(at), Some(size)) = (c.offset, c.pointee_bytes) else {
        return c;
    };
    let last = dc.iter().all(|d| d.offset.is_some_and(|o| o <= at));
    let from: Vec<&Capture> = caps.iter().filter(|g| g.offset >= at).collect();
    let contiguous = from
        .first()
        .is_some_and(|g| g.offset == at && g.mode == CaptureMode::Value)
        && from
            .windows(2)
            .all(|w| w[0].offset + w[0].bytes == w[1].offset)
        && from.last().is_some_and(|g| g.offset + g.bytes == at + size);
    if last && size > 8 && size <= 128 && from.len() > 1 && contiguous {
        c.by_ref = false;
        c.certain = true;
        c.bytes = size;
    }
    c
}

/// Name the captures from the closure's DWARF captures `dc`: by offset
/// (go1.23+), else in order when that cannot go wrong. A by-value capture
/// spanning several stored words makes them one; DWARF's certain mode
/// wins. Captures DWARF does not account for keep what the code showed.
fn with_dwarf(caps: Vec<Capture>, dc: &[DwarfCapture]) -> Vec<Capture> {
    let name = |f: &mut Capture, c: &DwarfCapture, bytes: u64| {
        f.name = Some(c.name.clone());
        if c.certain {
            f.mode = if c.by_ref {
                CaptureMode::Ref
            } else {
                CaptureMode::Value
            };
        } else if bytes > 8 {
            f.mode = CaptureMode::Value;
        }
        if f.mode == CaptureMode::Value {
            f.moved_to_heap = false;
        }
        f.bytes = bytes;
        f.exact = true;
    };
    if dc.iter().all(|c| c.offset.is_some()) {
        let all = caps.clone();
        let mut out: Vec<Capture> = Vec::with_capacity(caps.len());
        let mut it = caps.into_iter().peekable();
        while let Some(mut f) = it.next() {
            if let Some(c) = dc.iter().find(|c| c.offset == Some(f.offset)) {
                let c = &last_in_place(c, dc, &all);
                let end = f.offset + c.bytes;
                while it.peek().is_some_and(|g| g.offset < end && !c.by_ref) {
                    it.next();
                }
                let bytes = if c.by_ref { 8 } else { c.bytes.max(f.bytes) };
                name(&mut f, c, bytes);
            }
            out.push(f);
        }
        return out;
    }
    // Without offsets (before go1.23) DWARF's order need not be the
    // fields': a name is given only when that cannot matter, one capture
    // for the whole closure, or typed fields (a heap closure's, exact)
    // that differ in mode or size and match DWARF's one to one, in order.
    let sig = |c: &DwarfCapture| (c.by_ref && c.certain, c.bytes);
    let single = dc.len() == 1;
    let typed = caps.len() == dc.len()
        && caps.iter().zip(dc).all(|(f, c)| {
            f.exact
                && f.bytes == if sig(c).0 { 8 } else { c.bytes }
                && (!sig(c).0 || f.mode == CaptureMode::Ref)
        })
        && !dc
            .iter()
            .enumerate()
            .any(|(i, c)| dc[..i].iter().any(|d| sig(d) == sig(c)));
    if !single && !typed {
        return caps;
    }
    let mut out: Vec<Capture> = Vec::with_capacity(dc.len());
    let mut i = 0;
    for c in dc {
        let Some(mut f) = caps.get(i).cloned() else {
            return caps;
        };
        let want = if c.by_ref && c.certain { 8 } else { c.bytes };
        let mut sum = caps[i].bytes;
        i += 1;
        while sum < want && i < caps.len() && !caps[i - 1].exact {
            sum += caps[i].bytes;
            i += 1;
        }
        if sum != want {
            return caps;
        }
        name(&mut f, c, want);
        out.push(f);
    }
    if i == caps.len() {
        out
    } else {
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_words() {
        let r = |v: &[(&str, Option<u64>)]| -> Vec<(String, Option<u64>)> {
            v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        // (val reflect.Value, err error): err starts at word 3.
        let rs = r(&[("val", Some(24)), ("err", Some(16))]);
        assert_eq!(result_at_word(&rs, 3).as_deref(), Some("err"));
        assert_eq!(result_at_word(&rs, 0).as_deref(), Some("val"));
        assert_eq!(result_at_word(&rs, 1), None);
    }
}

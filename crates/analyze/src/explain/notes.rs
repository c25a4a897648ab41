//! Trailing comments for the annotated listing from the explain pass:
//! which store fills which field of a deferred closure, which allocation a
//! defer costs, and which load after the deferred calls picks up a result
//! they rewrote (design.md §5.6). The disassembler adds them to its own
//! notes on the defer machinery.

use std::collections::HashMap;

use deferscope_model::explain::{AllocPer, CaptureMode, Explain};
use deferscope_model::Scan;

/// pc -> note, for every site of `r` that `x` explains.
pub fn listing_notes(r: &Scan, x: &Explain) -> HashMap<u64, String> {
    let mut out: HashMap<u64, String> = HashMap::new();
    let mut add = |pc: u64, note: String| {
        out.entry(pc)
            .and_modify(|n| {
                n.push_str("; ");
                n.push_str(&note);
            })
            .or_insert(note);
    };
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        let at = format!(
            "{}:{}",
            s.file.rsplit('/').next().unwrap_or(&s.file),
            s.line
        );
        let arg = sx.deferred_via.is_some();
        for (i, c) in sx.captures.iter().flatten().enumerate() {
            let Some(pc) = c.pc else { continue };
            let field = if arg {
                format!("arg {}", i + 1)
            } else {
                format!("closure field {}", i + 1)
            };
            let note = match (c.mode, &c.name) {
                (CaptureMode::Ref, Some(n)) => format!("{field} = &{n} (by reference)"),
                (CaptureMode::Ref, None) => {
                    format!("{field} = a variable's address (by reference)")
                }
                (CaptureMode::Value, Some(n)) => format!("{field} = {n} (copied at defer)"),
                (CaptureMode::Value, None) => format!("{field}, {} B (copied at defer)", c.bytes),
            };
            add(pc, note);
        }
        for a in &sx.allocations {
            let when = match a.per {
                AllocPer::Exec => format!("allocated each time the defer at {at} runs"),
                AllocPer::Call => format!("allocated once per call, for the defer at {at}"),
            };
            let what = match a.what.as_str() {
                "closure" => "the deferred closure".to_string(),
                "variable" => "moved to heap: a variable the deferred closure captures".into(),
                w => format!("{w} the deferred closure keeps"),
            };
            add(a.pc, format!("{what}, {} B, {when}", a.bytes));
        }
        for &pc in &sx.result_reloads {
            add(
                pc,
                format!(
                    "{}, as the deferred call at {at} left it",
                    sx.writes_results.join(", ")
                ),
            );
        }
    }
    out
}

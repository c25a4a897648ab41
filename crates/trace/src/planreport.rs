//! The counters mode's patch plan as a document (`deferscope trace
//! --plan-only`): how many points get a counter, how many keep a
//! breakpoint and why, without running the program.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::plan::{Plan, Probe};
use crate::rewrite::{Count, Fallback, Rewrite};

/// The plan of one binary.
#[derive(Clone, Debug, Serialize)]
pub struct PlanReport {
    pub program: String,
    pub go_version: Option<String>,
    /// Milliseconds spent planning the patches (after the scan).
    pub plan_ms: f64,
    /// Bytes of code decoded to plan them.
    pub decoded_bytes: u64,
    /// Launch mode: points that count, patched, and kept on breakpoints.
    pub launch: Tally,
    /// Attach mode: the same, where a patch that replaces more than one
    /// instruction outside the runtime is refused (threads' pcs, checked
    /// only when attaching, can refuse more).
    pub attach: Tally,
    /// Per kind of point (launch mode).
    pub by_probe: Vec<ProbeTally>,
    /// Every point that keeps a breakpoint in launch mode.
    pub fallbacks: Vec<FallbackPoint>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    pub points: usize,
    pub patched: usize,
    pub breakpoints: usize,
    /// Patched fraction, percent.
    pub patched_pct: f64,
    /// Breakpoints by reason (`flags-live`: 2).
    pub reasons: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn add(&mut self, r: Result<(), Fallback>) {
        self.points += 1;
        match r {
            Ok(()) => self.patched += 1,
            Err(f) => {
                self.breakpoints += 1;
                *self.reasons.entry(f.as_str()).or_default() += 1;
            }
        }
        self.patched_pct = 100.0 * self.patched as f64 / self.points as f64;
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ProbeTally {
    /// `open-coded`, `stack-allocated`, `heap-allocated`, `gopanic`,
    /// `gorecover`, `recovery`, `gopanic-call`, `gorecover-call`.
    pub probe: &'static str,
    #[serde(flatten)]
    pub tally: Tally,
    /// Patches that replace more than one instruction.
    pub multi_instruction: usize,
    /// Patches whose trampoline saves the flags around the increment.
    pub saved_flags: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct FallbackPoint {
    pub probe: &'static str,
    pub function: String,
    pub pc: u64,
    pub reason: &'static str,
}

/// A name for the kind of point.
pub fn probe_name(plan: &Plan, p: Probe) -> &'static str {
    match p {
        Probe::Site(i) => plan.sites[i].kind.as_str(),
        Probe::Panic => "gopanic",
        Probe::Recover => "gorecover",
        Probe::Recovered => "recovery",
        Probe::PanicCall => "gopanic-call",
        Probe::RecoverCall => "gorecover-call",
        Probe::Exec => "exec-hook",
        Probe::Pending => "deferreturn-call",
    }
}

impl PlanReport {
    /// Summarise a plan made with `counters` on.
    pub fn new(plan: &Plan, program: String) -> PlanReport {
        let mut launch = Tally::default();
        let mut attach = Tally::default();
        let mut by: BTreeMap<&'static str, ProbeTally> = BTreeMap::new();
        let mut fallbacks = Vec::new();
        for (p, m) in plan.points.iter().zip(&plan.patches) {
            if !p.probe.counts() {
                continue;
            }
            let name = probe_name(plan, p.probe);
            let r = m.as_ref().map(|_| ()).map_err(|f| *f);
            launch.add(r);
            let ra = match m {
                Ok(patch) if patch.multi() && !patch.no_async_preempt => {
                    Err(Fallback::AttachMultiInstruction)
                }
                _ => r,
            };
            attach.add(ra);
            let e = by.entry(name).or_insert_with(|| ProbeTally {
                probe: name,
                tally: Tally::default(),
                multi_instruction: 0,
                saved_flags: 0,
            });
            e.tally.add(r);
            if m.as_ref().is_ok_and(|p| p.multi()) {
                e.multi_instruction += 1;
            }
            if m.as_ref().is_ok_and(|p| {
                matches!(
                    p.rewrite,
                    Rewrite::Relocate {
                        count: Count::SaveFlags,
                        ..
                    }
                )
            }) {
                e.saved_flags += 1;
            }
            if let Err(f) = m {
                fallbacks.push(FallbackPoint {
                    probe: name,
                    function: plan.func_at(p.pc).unwrap_or("?").to_owned(),
                    pc: p.pc,
                    reason: f.as_str(),
                });
            }
        }
        PlanReport {
            program,
            go_version: plan.binary.go_version.clone(),
            plan_ms: plan.patch_plan_time.as_secs_f64() * 1e3,
            decoded_bytes: plan.patch_plan_bytes,
            launch,
            attach,
            by_probe: by.into_values().collect(),
            fallbacks,
        }
    }

    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        writeln!(w)
    }

    pub fn write_text(&self, w: &mut impl Write) -> io::Result<()> {
        let go = self.go_version.as_deref().unwrap_or("go?");
        writeln!(
            w,
            "plan: {} ({go}), {:.1} ms, {} KiB decoded",
            self.program,
            self.plan_ms,
            self.decoded_bytes / 1024
        )?;
        for (mode, t) in [("launch", &self.launch), ("attach", &self.attach)] {
            let reasons: Vec<String> = t.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(
                w,
                "  {mode}: {} of {} points patched ({:.2}%), {} on breakpoints{}",
                t.patched,
                t.points,
                t.patched_pct,
                t.breakpoints,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            )?;
        }
        for p in &self.by_probe {
            writeln!(
                w,
                "    {:<16} {:>6} points, {:>6} patched, {:>5} multi-instruction, {:>3} saving flags",
                p.probe, p.tally.points, p.tally.patched, p.multi_instruction, p.saved_flags
            )?;
        }
        for f in &self.fallbacks {
            writeln!(
                w,
                "  breakpoint: {:#x} {} ({}): {}",
                f.pc, f.function, f.probe, f.reason
            )?;
        }
        Ok(())
    }
}

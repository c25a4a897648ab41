//! Counts per plan point, made into the report and into running totals.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::{Plan, Probe};
use crate::report::{
    ByFunction, End, Patching, PendingMax, ReasonCount, SiteCount, Totals, TraceReport,
};
use crate::{signal_name, Method, Outcome, Running};

/// Defers per site, and the runtime probes' counts.
struct Sums {
    totals: Totals,
    sites: Vec<u64>,
    panics: u64,
    recovers: u64,
    recovered: u64,
}

fn sums(plan: &Plan, counts: &[u64]) -> Sums {
    let mut s = Sums {
        totals: Totals {
            sites: plan.sites.len(),
            ..Totals::default()
        },
        sites: vec![0; plan.sites.len()],
        panics: 0,
        recovers: 0,
        recovered: 0,
    };
    for (p, &n) in plan.points.iter().zip(counts) {
        match p.probe {
            Probe::Site(i) => s.sites[i] += n,
            Probe::Panic => s.panics += n,
            Probe::Recover => s.recovers += n,
            Probe::Recovered => s.recovered += n,
            Probe::PanicCall | Probe::RecoverCall | Probe::Exec | Probe::Pending => {}
        }
    }
    for (site, &n) in plan.sites.iter().zip(&s.sites) {
        s.totals.add(site.kind, n);
        if n > 0 {
            s.totals.sites_run += 1;
        }
    }
    s
}

/// Running totals from counts per plan point.
pub(crate) fn running(plan: &Plan, counts: &[u64], elapsed: Duration) -> Running {
    let s = sums(plan, counts);
    Running {
        elapsed_s: elapsed.as_secs_f64(),
        totals: s.totals,
        panics: s.panics,
        recovers: s.recovers,
        recovered: s.recovered,
    }
}

/// `panics` or `recovers` by calling function. Breakpoints mode: from
/// the return addresses the entry breakpoints saw. Counters mode: from
/// the counts of each `CALL runtime.gopanic` / `gorecover`, whatever the
/// entry probe counted beyond them (a call the scan could not see) going
/// to `?`.
fn by_caller(plan: &Plan, out: &Outcome, entry: Probe, total: u64) -> Vec<ByFunction> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    if plan.counters {
        let call = if entry == Probe::Panic {
            Probe::PanicCall
        } else {
            Probe::RecoverCall
        };
        let mut seen = 0;
        for (p, &n) in plan.points.iter().zip(&out.hits) {
            if p.probe == call && n > 0 {
                *m.entry(plan.func_at(p.pc).unwrap_or("?").to_owned())
                    .or_default() += n;
                seen += n;
            }
        }
        if total > seen {
            *m.entry("?".to_owned()).or_default() += total - seen;
        }
    } else {
        for &(point, ret, n) in &out.callers {
            if plan.points[point].probe == entry {
                // The call may be a function's last instruction (gopanic
                // does not return): name the function of the CALL.
                let f = plan.func_at(ret.wrapping_sub(1)).unwrap_or("?");
                *m.entry(f.to_owned()).or_default() += n;
            }
        }
    }
    let mut v: Vec<ByFunction> = m
        .into_iter()
        .map(|(function, count)| ByFunction { function, count })
        .collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.function.cmp(&b.function))
    });
    v
}

/// Counters mode: per function, the largest slot of its patched
/// `CALL deferreturn` points; `None` for a function whose sites ran but
/// none of whose calls was patched. Functions whose maximum is 0 are left
/// out.
fn pending_by_function(plan: &Plan, out: &Outcome, site_counts: &[u64]) -> Vec<PendingMax> {
    let Some(c) = out.counting.as_ref() else {
        return Vec::new();
    };
    let mut m: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    for ((p, how), &n) in plan.points.iter().zip(&c.counter).zip(&out.hits) {
        if p.probe != Probe::Pending {
            continue;
        }
        let f = plan.func_at(p.pc).unwrap_or("?");
        let e = m.entry(f).or_insert(None);
        if how.is_ok() {
            *e = Some(e.unwrap_or(0).max(n));
        }
    }
    let ran: std::collections::BTreeSet<&str> = plan
        .sites
        .iter()
        .zip(site_counts)
        .filter(|(_, &n)| n > 0)
        .map(|(s, _)| s.function.as_str())
        .collect();
    let mut v: Vec<PendingMax> = m
        .into_iter()
        .filter(|(f, max)| match max {
            Some(n) => *n > 0,
            None => ran.contains(f),
        })
        .map(|(f, max_pending)| PendingMax {
            function: f.to_owned(),
            max_pending,
        })
        .collect();
    v.sort_by(|a, b| {
        b.max_pending
            .cmp(&a.max_pending)
            .then_with(|| a.function.cmp(&b.function))
    });
    v
}

/// The counters mode's summary: points patched, breakpoints and why.
fn patching(plan: &Plan, out: &Outcome) -> Option<Patching> {
    let c = out.counting.as_ref()?;
    let mut p = Patching {
        plan_ms: plan.patch_plan_time.as_secs_f64() * 1e3,
        patch_ms: c.patch_time.as_secs_f64() * 1e3,
        error: c.error.clone(),
        block_addr: c.block.map(|b| b.0),
        block_bytes: c.block.map(|b| b.1),
        ..Patching::default()
    };
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    for ((pt, how), &n) in plan.points.iter().zip(&c.counter).zip(&out.hits) {
        if !pt.probe.counts() {
            continue;
        }
        p.points += 1;
        match how {
            Ok(()) => {
                p.patched += 1;
                p.counted += n;
            }
            Err(f) => {
                p.breakpoints += 1;
                *reasons.entry(f.as_str()).or_default() += 1;
            }
        }
    }
    p.fallbacks = reasons
        .into_iter()
        .map(|(reason, count)| ReasonCount { reason, count })
        .collect();
    p.fallbacks
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(b.reason)));
    Some(p)
}

/// Turn counts per plan point into the report.
pub fn build_report(
    plan: &Plan,
    out: &Outcome,
    mode: &'static str,
    program: String,
) -> TraceReport {
    let s = sums(plan, &out.hits);
    let mut totals = Totals {
        emulated: out.emulated,
        single_stepped: out.stepped,
        ..s.totals
    };
    // How each site was counted.
    let mut site_via: Vec<(&'static str, Option<&'static str>)> =
        vec![("breakpoint", None); plan.sites.len()];
    for (i, (p, &n)) in plan.points.iter().zip(&out.hits).enumerate() {
        let how = out.counting.as_ref().map(|c| c.counter[i]);
        if !matches!(how, Some(Ok(()))) {
            totals.breakpoint_hits += n;
        }
        if let Probe::Site(k) = p.probe {
            site_via[k] = match how {
                Some(Ok(())) => ("counter", None),
                Some(Err(f)) => ("breakpoint", Some(f.as_str())),
                None => ("breakpoint", None),
            };
        }
    }
    let mut sites: Vec<SiteCount> = plan
        .sites
        .iter()
        .zip(&s.sites)
        .zip(&site_via)
        .map(|((st, &count), &(method, fallback))| SiteCount {
            function: st.function.clone(),
            file: st.file.clone(),
            line: st.line,
            kind: st.kind,
            pc: st.pc,
            count,
            method,
            fallback,
        })
        .collect();
    sites.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
            .then(a.pc.cmp(&b.pc))
    });
    let (exit_code, signal, detached) = match out.end {
        End::Exited(c) => (Some(c), None, false),
        End::Signaled(s) => (None, Some(s), false),
        End::Detached => (None, None, true),
    };
    let method = if plan.counters {
        Method::Counters
    } else {
        Method::Breakpoints
    };
    TraceReport {
        program,
        pid: out.pid,
        mode,
        method: method.as_str(),
        go_version: plan.binary.go_version.clone(),
        elapsed_s: out.elapsed.as_secs_f64(),
        exit_code,
        signal,
        signal_name: signal.and_then(signal_name),
        detached,
        totals,
        panics: s.panics,
        recovers: s.recovers,
        recovered: s.recovered,
        panics_by_function: by_caller(plan, out, Probe::Panic, s.panics),
        recovers_by_function: by_caller(plan, out, Probe::Recover, s.recovers),
        pending_by_function: pending_by_function(plan, out, &s.sites),
        patching: patching(plan, out),
        sites,
        est_defer_ns: None,
        cost_table: None,
    }
}

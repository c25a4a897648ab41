//! Trailing comments for the defer machinery.
//!
//! Inputs are exact, not guessed from the code: the classifier's sites
//! ([`deferscope_model::Scan`]) give each registration's pc and kind,
//! and `FUNCDATA_OpenCodedDeferInfo` gives the deferBits byte and the
//! closure slots as offsets below the frame's `varp`, turned into SP
//! offsets per instruction with the pcsp table
//! ([`deferscope_analyze::slot_sp_offset`]). The instruction facts
//! ([`deferscope_decode::facts`]) then say which instruction stores, loads, tests or
//! clears them, and which call runs what.
//!
//! Labelled: deferBits zeroed / set / loaded / tested / cleared, closure
//! slot stores, the stores into a stack-allocated `_defer` record (the
//! record passed to `deferprocStack`), each named by field, calls to `deferproc`, `deferprocStack`, `deferprocat`,
//! `deferreturn`, `deferrangefunc`, the heap closure allocation right
//! before a `deferproc`, the deferred call at each exit, `gopanic` and
//! `gorecover`.

use std::collections::HashMap;

use deferscope_analyze::{Kind, Scan};
use deferscope_index::deferrec::DeferLayout;
use deferscope_index::runtime::{Runtime, RuntimeFn};
use deferscope_index::{GoIndex, OpenDeferInfo, PcTable};
use deferscope_load::Image;

use deferscope_decode::facts::{Call, Facts, ImmOp, MemOp, RegId, SpMem, Value};

/// What a runtime function is, for the defer machinery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Deferproc,
    DeferprocStack,
    Deferprocat,
    Deferrangefunc,
    Deferreturn,
    Alloc,
    Gopanic,
    Gorecover,
}

/// One decoded instruction, as the annotator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Insn {
    pub pc: u64,
    pub len: usize,
    pub facts: Facts,
}

struct OpenFunc {
    info: OpenDeferInfo,
    sp: PcTable,
}

/// Annotates functions of one binary.
pub struct Annotator {
    /// arm64 (`ORR $v, ZR, Rd` is a constant load there).
    arm64: bool,
    roles: HashMap<u64, Role>,
    /// Sites by pc: (kind, index within its function, open-coded bit).
    sites: HashMap<u64, (Kind, usize, Option<u8>)>,
    open: HashMap<u64, OpenFunc>,
    /// The `_defer` record of the binary's release.
    layout: DeferLayout,
}

fn role_of(f: RuntimeFn) -> Option<Role> {
    Some(match f {
        RuntimeFn::Deferproc => Role::Deferproc,
        RuntimeFn::DeferprocStack => Role::DeferprocStack,
        RuntimeFn::Deferprocat => Role::Deferprocat,
        RuntimeFn::Deferrangefunc => Role::Deferrangefunc,
        RuntimeFn::Deferreturn => Role::Deferreturn,
        f if f.is_alloc() => Role::Alloc,
        RuntimeFn::Gopanic => Role::Gopanic,
        RuntimeFn::Gorecover => Role::Gorecover,
        _ => return None,
    })
}

impl Annotator {
    pub fn new(img: &Image<'_>, ix: &GoIndex<'_>, report: &Scan) -> Annotator {
        let rt = Runtime::find(ix);
        let mut roles = HashMap::new();
        for f in ix.funcs() {
            if let Some(r) = rt.role_at(f.entry).and_then(role_of) {
                roles.entry(f.entry).or_insert(r);
            }
        }
        let layout = ix.open_defer_layout(&rt);
        let mut sites = HashMap::new();
        let mut per_func: HashMap<&str, usize> = HashMap::new();
        for s in &report.sites {
            let n = per_func.entry(&s.function).or_default();
            *n += 1;
            sites.insert(s.pc, (s.kind, *n, s.index));
        }
        let mut open = HashMap::new();
        for fi in report
            .functions
            .iter()
            .filter(|f| f.open_coded_defers.is_some())
        {
            let Some(f) = ix.func_for_pc(fi.entry) else {
                continue;
            };
            if let Some(info) = ix.open_defer_info(img, &f, layout) {
                open.insert(
                    fi.entry,
                    OpenFunc {
                        info,
                        sp: ix.spdelta(&f),
                    },
                );
            }
        }
        Annotator {
            arm64: img.arch == deferscope_load::Arch::Arm64,
            roles,
            sites,
            open,
            layout: DeferLayout::of_binary(ix, &rt),
        }
    }

    /// Whether any instruction calls a runtime function we label
    /// (functions without defers still panic and recover).
    pub fn has_runtime_calls(&self, insns: &[Insn]) -> bool {
        insns.iter().any(|i| {
            matches!(i.facts.call, Some(Call::Direct(t)) if matches!(self.roles.get(&t), Some(Role::Gopanic | Role::Gorecover)))
        })
    }

    /// One optional comment per instruction of the function at `entry`.
    pub fn annotate(&self, entry: u64, insns: &[Insn]) -> Vec<Option<String>> {
        let open = self.open.get(&entry);
        // The bits of this function's sites (the defers that have code).
        let site_bits = insns
            .iter()
            .fold(0u8, |acc, i| match self.sites.get(&i.pc) {
                Some(&(Kind::OpenCoded, _, Some(b))) if b < 8 => acc | 1 << b,
                _ => acc,
            });
        let mut walk = Walk {
            open,
            site_bits,
            ..Walk::default()
        };
        let mut notes: Vec<Option<String>> = (0..insns.len())
            .map(|k| walk.step(self, insns, k))
            .collect();
        self.mark_defer_record_stores(insns, &mut notes);
        notes
    }

    /// The label of a call, by the role of its target, else the deferred
    /// call of an open-coded exit under way.
    fn call_note(
        &self,
        c: Call,
        site: Option<&(Kind, usize, Option<u8>)>,
        insns: &[Insn],
        k: usize,
        walk: &Walk,
    ) -> Option<String> {
        let open = walk.open;
        let role = match c {
            Call::Direct(t) => self.roles.get(&t).copied(),
            Call::Indirect => None,
        };
        match (role, site) {
            (Some(Role::DeferprocStack), _) => {
                Some(format!("register stack-allocated defer{}", site_no(site)))
            }
            (Some(Role::Deferproc), _) => {
                Some(format!("register heap-allocated defer{}", site_no(site)))
            }
            (Some(Role::Deferprocat), _) => Some(format!(
                "register heap-allocated defer{} (range-over-func body)",
                site_no(site)
            )),
            (Some(Role::Deferrangefunc), _) => {
                Some("defer frame for the range-over-func loop's defers".into())
            }
            (Some(Role::Deferreturn), _) => Some(if open.is_some() {
                "run pending defers (resumed here after recover)".into()
            } else {
                "run pending defers at return".into()
            }),
            (Some(Role::Gopanic), _) => Some("panic: runs deferred calls".into()),
            (Some(Role::Gorecover), _) => Some("recover()".into()),
            (Some(Role::Alloc), _) if heap_closure_before_deferproc(insns, k, self) => {
                Some("heap closure for the deferred call".into())
            }
            _ => match walk.pending_run.filter(|_| open.is_some()) {
                Some(Some(i)) => Some(format!("run deferred call #{i} (open-coded exit)")),
                Some(None) => Some("run deferred call (open-coded exit)".into()),
                None => None,
            },
        }
    }

    /// Stores into a stack-allocated `_defer` record: for each `CALL
    /// deferprocStack`, the record address loaded into a register before it
    /// (`LEAQ d(SP), AX` / `ADD $d, RSP, R0`), then every store since the
    /// previous call that writes bytes of `[d, d + size)`, named by the
    /// fields of the binary's release (design.md §3.4,
    /// [`deferscope_index::deferrec`]).
    fn mark_defer_record_stores(&self, insns: &[Insn], notes: &mut [Option<String>]) {
        let mut after_call = 0;
        for (k, Insn { facts: f, .. }) in insns.iter().enumerate() {
            let Some(c) = f.call else {
                continue;
            };
            let from = std::mem::replace(&mut after_call, k + 1);
            if !matches!(c, Call::Direct(t) if self.roles.get(&t) == Some(&Role::DeferprocStack)) {
                continue;
            }
            let lo = from.max(k.saturating_sub(64));
            let window = &insns[lo..k];
            let Some(rec) = record_address(window) else {
                continue;
            };
            let len = record_len(&self.layout, rec, window);
            for (j, x) in window.iter().enumerate() {
                let Some(SpMem {
                    off,
                    size,
                    op: MemOp::Store(v),
                }) = x.facts.sp
                else {
                    continue;
                };
                if notes[lo + j].is_none() {
                    notes[lo + j] = record_note(&self.layout, off - rec, size, len, v);
                }
            }
        }
    }
}

/// The SP offset last loaded into a register in `window`: `LEAQ d(SP), R`,
/// `ADD $d, RSP, R`, or (arm64 frames over 4 KiB) `ADD $(1<<12), RSP, R;
/// ADD $d, R, R`.
fn record_address(window: &[Insn]) -> Option<i64> {
    let mut regs: Vec<(RegId, i64)> = Vec::new();
    let mut last = None;
    for x in window {
        let set = match (x.facts.lea_sp, x.facts.add_imm) {
            (Some((d, off)), _) => Some((d, off)),
            (None, Some((d, s, v))) => regs.iter().find(|r| r.0 == s).map(|r| (d, r.1 + v)),
            _ => None,
        };
        if let Some(d) = x.facts.dest.or(set.map(|s| s.0)) {
            regs.retain(|r| r.0 != d);
        }
        if let Some((d, off)) = set {
            regs.push((d, off));
            last = Some(off);
        }
    }
    last
}

/// Bytes of the record at `rec`: the header, plus (go1.13–go1.17) the
/// argument bytes `siz` says when a constant is stored to it in `window`.
fn record_len(l: &DeferLayout, rec: i64, window: &[Insn]) -> i64 {
    let args = match l.field("siz") {
        Some(siz) if l.args_follow => window
            .iter()
            .rev()
            .find_map(|x| match x.facts.sp {
                Some(SpMem {
                    off,
                    size: 4,
                    op: MemOp::Store(Value::Imm(v)),
                }) if off == rec + siz.off as i64 => Some(v as i64),
                _ => None,
            })
            .unwrap_or(0),
        _ => 0,
    };
    l.header_bytes as i64 + args
}

/// The comment of a store of `size` bytes at `rel` from a record of `len`
/// bytes: the fields it writes (`_defer.fn = closure`, `_defer.sp,
/// _defer.pc = 0`), or the argument area; none outside the record or in
/// padding only.
fn record_note(l: &DeferLayout, rel: i64, size: u8, len: i64, v: Value) -> Option<String> {
    let (lo, hi) = (rel.max(0), (rel + i64::from(size)).min(len));
    if lo >= hi {
        return None;
    }
    let header = l.header_bytes as i64;
    if lo >= header {
        return Some(format!(
            "_defer argument area +{:#x} (stack-allocated record)",
            lo - header
        ));
    }
    let fields = l.fields_in(lo as u64, (hi.min(header) - lo) as u64);
    let names: Vec<String> = fields
        .iter()
        .map(|f| format!("_defer.{}", f.name))
        .collect();
    let value = match (v, fields.as_slice()) {
        (Value::Reg(_), [f]) if f.name == "fn" => " = closure".to_string(),
        (Value::Imm(x), _) if x != u64::MAX => format!(" = {x}"),
        _ => " stored".to_string(),
    };
    let args = if hi > header {
        " and the argument area"
    } else {
        ""
    };
    (!names.is_empty())
        .then(|| format!("{}{args}{value} (stack-allocated record)", names.join(", ")))
}

/// What an annotated instruction does for the defer machinery: the
/// structured twin of its comment, for consumers that count rather than
/// print (`deferscope profile`). [`Machinery::of_note`] maps every
/// comment [`Annotator::annotate`] writes (the test below lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Machinery {
    /// Open-coded bookkeeping: deferBits stores, loads and tests, closure
    /// slot stores and loads. `run` for the exit side (loads, tests,
    /// clears, slot loads), else registration or the prologue's zeroing;
    /// `bit` when the comment names one defer.
    Open { run: bool, bit: Option<u8> },
    /// The deferred call at an open-coded exit (`bit` when known).
    OpenCall { bit: Option<u8> },
    /// A stack or heap defer's registration: the `_defer.fn` store, the
    /// `CALL deferproc*`, the `CALL deferrangefunc`.
    Register,
    /// The call that allocates the heap closure of a deferred call.
    HeapClosure,
    /// `CALL runtime.deferreturn`.
    Deferreturn,
    /// `CALL runtime.gopanic` / `runtime.gorecover`.
    Panic,
}

impl Machinery {
    /// The role of an instruction annotated with `note`.
    pub fn of_note(note: &str) -> Option<Machinery> {
        let bit = one_bit(note);
        Some(if note.starts_with("run deferred call") {
            Machinery::OpenCall { bit }
        } else if note.starts_with("run pending defers") {
            Machinery::Deferreturn
        } else if note.starts_with("register ")
            || note.starts_with("_defer")
            || note.starts_with("defer frame for")
        {
            Machinery::Register
        } else if note.starts_with("heap closure") {
            Machinery::HeapClosure
        } else if note.starts_with("panic:") || note == "recover()" {
            Machinery::Panic
        } else if note.contains("registered")
            || note == "deferBits = 0"
            || note.starts_with("clear defer slot")
            || note.starts_with("open-coded defer #")
            || note.starts_with("closure -> defer slot")
        {
            Machinery::Open { run: false, bit }
        } else if note.contains("deferBits")
            || note.starts_with("is defer")
            || note.starts_with("load defer #")
        {
            Machinery::Open { run: true, bit }
        } else {
            return None;
        })
    }
}

/// The one defer (`#i`) a comment names, if exactly one.
fn one_bit(note: &str) -> Option<u8> {
    let mut it = note.match_indices('#');
    let (i, _) = it.next()?;
    if it.next().is_some() {
        return None;
    }
    let digits: String = note[i + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the annotator follows through one function's instructions.
#[derive(Default)]
struct Walk<'a> {
    /// The function's open-coded defer record, if it has one.
    open: Option<&'a OpenFunc>,
    /// The bits of this function's sites (the defers that have code).
    site_bits: u8,
    /// Register that holds a copy of deferBits, if known.
    bits_reg: Option<RegId>,
    /// An exit is under way (deferBits was just cleared): the next call
    /// is the deferred call, of the given defer when known.
    pending_run: Option<Option<u8>>,
    /// Sites registered (closure saved) since the last deferBits store:
    /// a store that sets one of them registers; any other store of a
    /// known value after the prologue's zeroing clears a bit at an exit.
    registered: u8,
    zeroed: bool,
    /// arm64 constants (`ORR $v, ZR, Rd`), which Go uses to build a
    /// deferBits value before the byte store: (register, value, index).
    consts: Vec<(RegId, u64, usize)>,
}

impl Walk<'_> {
    /// The label of instruction `k`, and what it changes in the walk.
    fn step(&mut self, a: &Annotator, insns: &[Insn], k: usize) -> Option<String> {
        let Insn { pc, facts: f, .. } = &insns[k];
        let site = a.sites.get(pc);
        if let Some(&(Kind::OpenCoded, _, Some(b))) = site {
            if b < 8 {
                self.registered |= 1 << b;
            }
        }
        let mut note = match (self.open, f.sp) {
            (Some(o), Some(m)) => self.slot_note(o, *pc, m, site),
            _ => None,
        };
        let const_load = match f.imm_op {
            Some((ImmOp::Or(v), d, ARM64_ZR)) if a.arm64 => Some((d, v)),
            _ => None,
        };
        if note.is_none() && const_load.is_none() {
            if let Some((op, d, s)) = f.imm_op {
                note = self.imm_note(a, insns, k, (op, d, s));
            }
        }
        if let Some(c) = f.call {
            note = a.call_note(c, site, insns, k, self);
            self.pending_run = None;
            self.bits_reg = None;
            self.consts.clear();
        } else if let Some(d) = f.dest {
            self.consts.retain(|c| c.0 != d);
            if let Some((d, v)) = const_load {
                self.consts.push((d, v, k));
            }
            if self.bits_reg == Some(d)
                && !matches!(f.imm_op, Some((ImmOp::Or(_) | ImmOp::And(_), _, _)))
                && !matches!(f.sp, Some(m) if matches!(m.op, MemOp::Load(_)) && note.is_some())
            {
                self.bits_reg = None;
            }
        }
        if let Some((d, s)) = f.copy {
            if self.bits_reg == Some(s) {
                self.bits_reg = Some(d);
            }
        }
        note
    }

    /// An access to the deferBits slot or a closure slot of `o`.
    fn slot_note(
        &mut self,
        o: &OpenFunc,
        pc: u64,
        m: SpMem,
        site: Option<&(Kind, usize, Option<u8>)>,
    ) -> Option<String> {
        let delta = o.sp.at(pc).unwrap_or(0);
        let bits = deferscope_analyze::slot_sp_offset(delta, o.info.deferbits_offset);
        if m.off == bits && m.size == 1 {
            return Some(self.deferbits_note(m.op));
        }
        let i = o
            .info
            .closure_offsets
            .iter()
            .position(|&off| deferscope_analyze::slot_sp_offset(delta, off) == m.off)?;
        match m.op {
            MemOp::Store(Value::Imm(0)) => Some(format!("clear defer slot #{i}")),
            MemOp::Store(_) if site.is_some() => {
                Some(format!("open-coded defer #{i}: save closure in slot #{i}"))
            }
            MemOp::Store(_) => Some(format!("closure -> defer slot #{i}")),
            MemOp::Load(_) => {
                // Slots are read only at exits (docs/design.md §2.1): the next call
                // runs this defer.
                self.pending_run = Some(u8::try_from(i).ok());
                Some(format!("load defer #{i}'s closure"))
            }
            _ => None,
        }
    }

    /// A store, load or test of the deferBits byte.
    fn deferbits_note(&mut self, op: MemOp) -> String {
        match op {
            MemOp::Store(val) => self.deferbits_store(val),
            MemOp::Load(r) => {
                self.bits_reg = Some(r);
                "load deferBits".to_string()
            }
            MemOp::Test(v) => format!("is defer {} pending?", bit_names(v)),
            MemOp::Other => "deferBits".to_string(),
        }
    }

    /// A store to deferBits: the prologue's zeroing, a registration (the
    /// value sets a bit of a site registered since), an exit (any other
    /// known value), or an unknown value.
    fn deferbits_store(&mut self, val: Value) -> String {
        let known = match val {
            Value::Imm(v) => Some((v, None)),
            Value::Reg(r) => self
                .consts
                .iter()
                .find(|c| c.0 == r)
                .map(|c| (c.1, Some(c.2))),
        };
        let first = !self.zeroed;
        self.zeroed = true;
        let new = std::mem::take(&mut self.registered);
        match known {
            Some((0, _)) if first => {
                self.bits_reg = None;
                "deferBits = 0".to_string()
            }
            Some((v, _)) if v & u64::from(new) != 0 => {
                self.bits_reg = None;
                format!(
                    "deferBits = {v:#x}: defer {} registered",
                    bit_names(v & u64::from(new))
                )
            }
            Some((v, _)) if self.pending_run.is_none() => {
                self.bits_reg = None;
                let j = exit_bit(v, self.site_bits);
                self.pending_run = Some(j);
                match j {
                    Some(j) => format!("deferBits = {v:#x}: defer #{j} about to run"),
                    None => format!("deferBits = {v:#x}: exit"),
                }
            }
            Some((v, _)) => {
                self.bits_reg = None;
                format!("deferBits = {v:#x}")
            }
            None => {
                if let Value::Reg(r) = val {
                    self.bits_reg = Some(r);
                }
                "store deferBits".to_string()
            }
        }
    }

    /// A register-with-constant operation on deferBits (in a register
    /// holding it, or about to be stored to it).
    fn imm_note(
        &mut self,
        a: &Annotator,
        insns: &[Insn],
        k: usize,
        (op, d, s): (ImmOp, RegId, RegId),
    ) -> Option<String> {
        let open = self.open;
        let on_bits = self.bits_reg == Some(s) || self.bits_reg == Some(d);
        let feeds_store = open.is_some() && stores_bits_soon(insns, k, d, open, a);
        match op {
            ImmOp::Or(v) if feeds_store || on_bits && open.is_some() => {
                self.bits_reg = Some(d);
                Some(format!(
                    "deferBits |= {v:#x}: defer {} registered",
                    bit_names(v)
                ))
            }
            ImmOp::And(v) if feeds_store || on_bits && open.is_some() => {
                self.bits_reg = Some(d);
                let cleared = !v & 0xff;
                self.pending_run = Some(lowest_bit(cleared));
                Some(format!(
                    "deferBits &^= {cleared:#x}: defer {} about to run",
                    bit_names(cleared)
                ))
            }
            ImmOp::Test(v) if on_bits => Some(format!("is defer {} pending?", bit_names(v))),
            ImmOp::BitZero(b) | ImmOp::BitNonZero(b) if on_bits => {
                Some(format!("is defer #{b} pending?"))
            }
            _ => None,
        }
    }
}

fn site_no(site: Option<&(Kind, usize, Option<u8>)>) -> String {
    site.map(|s| format!(" #{}", s.1)).unwrap_or_default()
}

fn lowest_bit(v: u64) -> Option<u8> {
    (v != 0).then(|| v.trailing_zeros() as u8)
}

fn bit_names(v: u64) -> String {
    let bits: Vec<String> = (0..8)
        .filter(|b| v >> b & 1 == 1)
        .map(|b| format!("#{b}"))
        .collect();
    if bits.is_empty() {
        format!("{v:#x}")
    } else {
        bits.join(",")
    }
}

/// The defer an exit runs after storing deferBits = `v` without an AND
/// (the compiler knew the value): exits run the defers from the highest
/// bit down and clear each bit before its call, so the stored value holds
/// only lower bits; the defer run is the lowest site bit above them.
fn exit_bit(v: u64, site_bits: u8) -> Option<u8> {
    let above = if v == 0 {
        0xff
    } else {
        let msb = 63 - v.leading_zeros();
        if msb >= 7 {
            return None;
        }
        0xffu8 << (msb + 1)
    };
    lowest_bit(u64::from(site_bits & above))
}

/// Register number of arm64's zero register in [`Facts`].
const ARM64_ZR: RegId = 31;

/// The register `d` is stored into the deferBits slot within the next few
/// instructions.
fn stores_bits_soon(
    insns: &[Insn],
    k: usize,
    d: RegId,
    open: Option<&OpenFunc>,
    _a: &Annotator,
) -> bool {
    let Some(o) = open else { return false };
    insns.iter().skip(k + 1).take(4).any(|i| {
        i.facts.sp.is_some_and(|m| {
            let delta = o.sp.at(i.pc).unwrap_or(0);
            m.size == 1
                && m.off == deferscope_analyze::slot_sp_offset(delta, o.info.deferbits_offset)
                && m.op == MemOp::Store(Value::Reg(d))
        })
    })
}

/// The call at `k` allocates, and the next call is a `deferproc*`.
fn heap_closure_before_deferproc(insns: &[Insn], k: usize, a: &Annotator) -> bool {
    insns
        .iter()
        .skip(k + 1)
        .find_map(|x| x.facts.call)
        .is_some_and(|c| {
            matches!(c, Call::Direct(t) if matches!(a.roles.get(&t), Some(Role::Deferproc | Role::Deferprocat)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_names_list_set_bits() {
        assert_eq!(bit_names(0b101), "#0,#2");
        assert_eq!(bit_names(0), "0x0");
        assert_eq!(lowest_bit(0b100), Some(2));
        assert_eq!(lowest_bit(0), None);
    }

    #[test]
    fn every_note_has_a_role() {
        use Machinery::*;
        let cases: [(&str, Machinery); 22] = [
            (
                "deferBits = 0",
                Open {
                    run: false,
                    bit: None,
                },
            ),
            (
                "deferBits = 0x2: defer #1 registered",
                Open {
                    run: false,
                    bit: Some(1),
                },
            ),
            (
                "deferBits = 0x1: defer #1 about to run",
                Open {
                    run: true,
                    bit: Some(1),
                },
            ),
            (
                "deferBits = 0x0: exit",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "deferBits = 0x3",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "store deferBits",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "load deferBits",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "is defer #0,#1 pending?",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "is defer #2 pending?",
                Open {
                    run: true,
                    bit: Some(2),
                },
            ),
            (
                "deferBits",
                Open {
                    run: true,
                    bit: None,
                },
            ),
            (
                "clear defer slot #0",
                Open {
                    run: false,
                    bit: Some(0),
                },
            ),
            (
                "open-coded defer #1: save closure in slot #1",
                Open {
                    run: false,
                    bit: None,
                },
            ),
            (
                "closure -> defer slot #3",
                Open {
                    run: false,
                    bit: Some(3),
                },
            ),
            (
                "load defer #0's closure",
                Open {
                    run: true,
                    bit: Some(0),
                },
            ),
            (
                "deferBits |= 0x4: defer #2 registered",
                Open {
                    run: false,
                    bit: Some(2),
                },
            ),
            (
                "deferBits &^= 0x4: defer #2 about to run",
                Open {
                    run: true,
                    bit: Some(2),
                },
            ),
            ("register stack-allocated defer #1", Register),
            ("_defer.fn = closure (stack-allocated record)", Register),
            (
                "defer frame for the range-over-func loop's defers",
                Register,
            ),
            ("run pending defers at return", Deferreturn),
            ("heap closure for the deferred call", HeapClosure),
            (
                "run deferred call #1 (open-coded exit)",
                OpenCall { bit: Some(1) },
            ),
        ];
        for (note, want) in cases {
            assert_eq!(Machinery::of_note(note), Some(want), "{note}");
        }
        assert_eq!(
            Machinery::of_note("panic: runs deferred calls"),
            Some(Panic)
        );
        assert_eq!(Machinery::of_note("recover()"), Some(Panic));
        for note in [
            "_defer.sp, _defer.pc = 0 (stack-allocated record)",
            "_defer.siz = 16 (stack-allocated record)",
            "_defer argument area +0x8 (stack-allocated record)",
        ] {
            assert_eq!(Machinery::of_note(note), Some(Register), "{note}");
        }
        assert_eq!(
            Machinery::of_note("run pending defers (resumed here after recover)"),
            Some(Deferreturn)
        );
        assert_eq!(Machinery::of_note("something else"), None);
    }

    #[test]
    fn record_notes_name_fields() {
        let l = DeferLayout::for_minor(22);
        let n = |rel, size, v| record_note(&l, rel, size, 48, v);
        assert_eq!(
            n(24, 8, Value::Reg(1)).as_deref(),
            Some("_defer.fn = closure (stack-allocated record)")
        );
        assert_eq!(
            n(8, 16, Value::Imm(0)).as_deref(),
            Some("_defer.sp, _defer.pc = 0 (stack-allocated record)")
        );
        assert_eq!(n(48, 8, Value::Imm(0)), None);
        assert_eq!(n(2, 4, Value::Imm(0)), None);
        let old = DeferLayout::for_minor(14);
        assert_eq!(
            record_note(&old, 72, 8, 88, Value::Reg(0)).as_deref(),
            Some("_defer argument area +0x0 (stack-allocated record)")
        );
        assert_eq!(
            record_note(&old, 0, 4, 88, Value::Imm(16)).as_deref(),
            Some("_defer.siz = 16 (stack-allocated record)")
        );
    }

    #[test]
    fn exit_bits() {
        // Spec §2.1: exits run i = N-1 ... 0, clearing bit i before the
        // call. With defers #0 and #1: deferBits = 1 runs #1, then 0 runs #0.
        assert_eq!(exit_bit(0b1, 0b11), Some(1));
        assert_eq!(exit_bit(0, 0b11), Some(0));
        // Only #1 has code (#0 was deleted as dead): 0 runs #1.
        assert_eq!(exit_bit(0, 0b10), Some(1));
        assert_eq!(exit_bit(0b10, 0b11), None);
        assert_eq!(exit_bit(0x80, 0xff), None);
    }
}

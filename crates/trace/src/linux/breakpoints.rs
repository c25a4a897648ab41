//! Breakpoints: planting them, and stepping a hit over the original
//! instruction (emulated, or single-stepped with every other thread
//! stopped).

use std::fs::File;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::mem::ProcMem;
use super::sys::{errno, os, regs_from, regs_into};
use super::{Engine, Via};
use crate::emulate::{self, Memory, Op};
use crate::plan::Probe;
use crate::TraceError;

pub(super) const INT3: u8 = 0xcc;

/// One planted breakpoint.
pub(super) struct Bp {
    /// Index into `plan.points`.
    pub(super) point: usize,
    pub(super) addr: u64,
    /// The byte the `int3` replaced.
    pub(super) orig: u8,
    pub(super) op: Option<Op>,
    pub(super) len: u8,
    pub(super) installed: bool,
    /// Count hits per caller too.
    pub(super) by_caller: bool,
}

impl Engine<'_> {
    // -- breakpoints -------------------------------------------------------

    /// Open the process's memory, find the load bias and plant every
    /// breakpoint. `tid` is a thread in a ptrace-stop.
    pub(super) fn install(&mut self, tid: i32) -> Result<(), TraceError> {
        let path = format!("/proc/{}/mem", self.main);
        let f = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| os(format!("cannot open {path}"), e))?;
        self.mem = Some(ProcMem {
            pid: Pid::from_raw(self.main),
            file: f,
        });
        let bias = self.load_bias()?;
        self.bias = bias;
        self.bps.clear();
        self.by_addr.clear();
        self.via = vec![Via::Breakpoint(None); self.plan.points.len()];
        if self.plan.counters {
            self.install_counters(tid)?;
        }
        for (i, p) in self.plan.points.iter().enumerate() {
            // A pending-records slot that could not be patched is left
            // out (its function's maximum is then unknown): a breakpoint
            // could only count calls.
            if matches!(self.via[i], Via::Counter(_)) || p.probe == Probe::Pending {
                continue;
            }
            let addr = p.pc.wrapping_add(bias);
            let mut cur = vec![0u8; p.code.len()];
            self.mem()?
                .read_code(addr, &mut cur)
                .map_err(|e| os(format!("cannot read the program's code at {addr:#x}"), e))?;
            if cur != p.code {
                return Err(TraceError::Other(format!(
                    "the code at {addr:#x} differs from the file{}",
                    if cur[0] == INT3 {
                        " (a breakpoint is already there: another debugger?)"
                    } else {
                        ""
                    }
                )));
            }
            let d = emulate::decode(&p.code, addr);
            if d.len == 0 {
                return Err(TraceError::Other(format!(
                    "no instruction at {:#x} to put a breakpoint on",
                    p.pc
                )));
            }
            self.by_addr.insert(addr, self.bps.len());
            self.bps.push(Bp {
                point: i,
                addr,
                orig: p.code[0],
                op: d.op,
                len: d.len,
                installed: false,
                // These points sit before the frame is built: the return
                // address is at SP. (Counters mode counts the call sites.)
                by_caller: !self.plan.counters && matches!(p.probe, Probe::Panic | Probe::Recover),
            });
        }
        for i in 0..self.bps.len() {
            self.poke(tid, self.bps[i].addr, INT3)?;
            self.bps[i].installed = true;
        }
        self.started.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Write one byte of code. `/proc/PID/mem` writes to read-only text for
    /// a tracer on most kernels; where it is refused, PTRACE_POKEDATA on
    /// the stopped thread `tid` does it.
    pub(super) fn poke(&mut self, tid: i32, addr: u64, byte: u8) -> Result<(), TraceError> {
        if self.mem()?.write_code(addr, &[byte]).is_ok() {
            return Ok(());
        }
        let word_addr = addr & !7;
        let shift = 8 * (addr - word_addr) as u32;
        let a = word_addr as ptrace::AddressType;
        let word = ptrace::read(Pid::from_raw(tid), a)
            .map_err(|e| os(format!("cannot read code at {word_addr:#x}"), errno(e)))?
            as u64;
        let new = (word & !(0xffu64 << shift)) | ((byte as u64) << shift);
        ptrace::write(Pid::from_raw(tid), a, new as libc::c_long)
            .map_err(|e| os(format!("cannot write code at {word_addr:#x}"), errno(e)))
    }

    /// Put back every original byte.
    pub(super) fn uninstall(&mut self, tid: i32) -> Result<(), TraceError> {
        let mut first_err = None;
        for i in 0..self.bps.len() {
            if !self.bps[i].installed {
                continue;
            }
            match self.poke(tid, self.bps[i].addr, self.bps[i].orig) {
                Ok(()) => self.bps[i].installed = false,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runtime address minus link-time address: `AT_ENTRY - e_entry`.
    pub(super) fn load_bias(&self) -> Result<u64, TraceError> {
        let path = format!("/proc/{}/auxv", self.main);
        let auxv = std::fs::read(&path).map_err(|e| os(format!("cannot read {path}"), e))?;
        for kv in auxv.chunks_exact(16) {
            let k = u64::from_ne_bytes(kv[..8].try_into().unwrap());
            let v = u64::from_ne_bytes(kv[8..].try_into().unwrap());
            if k == libc::AT_ENTRY {
                return Ok(v.wrapping_sub(self.plan.elf_entry));
            }
        }
        Err(TraceError::Other(format!("no AT_ENTRY in {path}")))
    }

    /// The breakpoint `tid` trapped on, in a SIGTRAP stop at `rip`: one
    /// planted at `rip - 1`. After a one-byte instruction (PUSHQ BP) that
    /// address is also where an emulated hit resumes, so there the trap
    /// must also be the kernel's (`SI_KERNEL`, an `int3`), not a SIGTRAP
    /// that someone sent.
    pub(super) fn trapped_at(&self, tid: i32, rip: u64) -> Option<usize> {
        let i = *self.by_addr.get(&rip.wrapping_sub(1))?;
        let b = &self.bps[i];
        if !b.installed {
            return None;
        }
        if b.len == 1 {
            let info = ptrace::getsiginfo(Pid::from_raw(tid)).ok()?;
            if info.si_code != libc::SI_KERNEL {
                return None;
            }
        }
        Some(i)
    }

    /// A hit on breakpoint `i`. If it fails before the original
    /// instruction has run, the thread is put back at the breakpoint's
    /// address, so that it runs that instruction once the breakpoint is out
    /// (left at the trap's pc + 1 it would resume mid-instruction).
    pub(super) fn on_breakpoint(
        &mut self,
        tid: i32,
        i: usize,
        uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        self.ran = false;
        let res = self.hit(tid, i, uregs);
        if res.is_err() && !self.ran {
            let mut back = uregs;
            back.rip = self.bps[i].addr;
            let _ = ptrace::setregs(Pid::from_raw(tid), back);
        }
        res
    }

    pub(super) fn hit(
        &mut self,
        tid: i32,
        i: usize,
        mut uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        if self.plan.points[self.bps[i].point].probe == Probe::Exec {
            // The program is about to execve: its counters go with the
            // old image.
            self.read_counters();
        }
        if let Some(n) = self.fail_after.filter(|_| !self.plan.counters) {
            if self.emulated + self.stepped >= n {
                return Err(TraceError::Other(format!(
                    "failing on purpose after {n} breakpoint hits (--fail-after-hits)"
                )));
            }
        }
        self.hits[self.bps[i].point] += 1;
        if self.bps[i].by_caller {
            let mut ret = [0u8; 8];
            if self.mem()?.read(uregs.rsp, &mut ret).is_ok() {
                let ret = u64::from_le_bytes(ret).wrapping_sub(self.bias);
                *self.callers.entry((self.bps[i].point, ret)).or_default() += 1;
            }
        }
        let (addr, len) = (self.bps[i].addr, self.bps[i].len);
        if let Some(op) = self.bps[i].op.filter(|_| !self.single_step) {
            let mut r = regs_from(&uregs);
            r.rip = addr;
            let res = emulate::execute(&op, addr + len as u64, &mut r, self.mem()?);
            if res.is_ok() {
                regs_into(&r, &mut uregs);
                match ptrace::setregs(Pid::from_raw(tid), uregs) {
                    Ok(()) => self.ran = true,
                    Err(Errno::ESRCH) => return Ok(()),
                    Err(e) => return Err(os("PTRACE_SETREGS", errno(e))),
                }
                self.emulated += 1;
                return self.resume(tid);
            }
            // Memory the instruction touches is not accessible: let the
            // CPU run it and fault as it would have.
        }
        self.stepped += 1;
        self.step_over(tid, i, uregs)
    }

    /// Run the original instruction at breakpoint `i` on `tid` with every
    /// other thread stopped, then plant the breakpoint again.
    pub(super) fn step_over(
        &mut self,
        tid: i32,
        i: usize,
        mut uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        self.stop_all()?;
        if !self.threads.contains_key(&tid) {
            // It died while the others stopped (the process was killed).
            self.release()?;
            return Ok(());
        }
        let addr = self.bps[i].addr;
        self.poke(tid, addr, self.bps[i].orig)?;
        uregs.rip = addr;
        let stepped = match ptrace::setregs(Pid::from_raw(tid), uregs) {
            Ok(()) => self.single_step(tid)?,
            Err(Errno::ESRCH) => false,
            Err(e) => return Err(os("PTRACE_SETREGS", errno(e))),
        };
        self.ran = stepped;
        self.poke(tid, addr, INT3)?;
        if stepped {
            self.resume(tid)?;
        }
        self.release()
    }
}

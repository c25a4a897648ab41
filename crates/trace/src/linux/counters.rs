//! The counters mode in the process: the trampoline block mapped with an
//! injected `mmap`, the text patched with every thread stopped, the
//! counters read from `/proc/PID/mem`, and everything taken out again.
//!
//! The block goes in a free gap of `/proc/PID/maps` within ±2 GiB of the
//! whole text (so that every rel32 reaches), above the image when
//! possible (a CPU profile then files a sample taken inside a trampoline
//! under `runtime._ExternalCode`: sigprof, runtime/proc.go, go1.19 to
//! go1.27, accounts a pc it cannot unwind that is above `etext` there),
//! 512 MiB clear of its neighbours where it fits (a cgo program's `brk`
//! heap grows there), else 64 MiB or 1 MiB.
//! It is mapped read-write with `MAP_FIXED_NOREPLACE`, the code is written
//! through `/proc/PID/mem`, and the code pages are then made read and
//! execute only (`mprotect`): no page of the program is ever writable and
//! executable.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::sys::{errno, os};
use super::{Engine, Mode, St, Via};
use crate::emulate::Memory;
use crate::plan::Probe;
use crate::rewrite::{Fallback, Patch};
use crate::tramp::{self, Layout, Placed, COUNTER_STRIDE};
use crate::TraceError;

/// The reach of a rel32, less a margin.
const REACH: u64 = (1 << 31) - (16 << 20);
/// Space left between the block and the mappings around it, tried in
/// turn: 512 MiB leaves a cgo program's `brk` heap, which starts up to
/// 32 MiB after the image, room to grow.
const PADS: [u64; 3] = [512 << 20, 64 << 20, 1 << 20];
/// Bytes of each thread's stack searched for a pc saved in a signal
/// frame (Go's signal stacks are 32 KiB).
const STACK_SCAN: u64 = 64 << 10;

/// The block and the patches in one process image.
pub(super) struct Counting {
    pub(super) layout: Layout,
    /// Still mapped.
    pub(super) mapped: bool,
    /// Every patch.
    pub(super) placed: Vec<Placed>,
    /// The original text around the patches: (run-time address, bytes).
    /// Written back at the end.
    pub(super) spans: Vec<(u64, Vec<u8>)>,
    /// The plan point of each counter.
    pub(super) points: Vec<usize>,
    /// The counters as last read.
    pub(super) last: Vec<u64>,
}

impl Counting {
    fn code_range(&self) -> (u64, u64) {
        (
            self.layout.code(),
            self.layout.code() + self.layout.code_len,
        )
    }
}

impl Engine<'_> {
    /// Map the block, write the trampolines and patch the text, with every
    /// thread stopped (`tid` is one of them). Points that cannot be
    /// patched keep their breakpoint (`self.via` says which and why).
    pub(super) fn install_counters(&mut self, tid: i32) -> Result<(), TraceError> {
        let t0 = Instant::now();
        let plan = self.plan;
        // System calls are injected in a thread with no event pending.
        let tid = if self.threads.get(&tid).is_some_and(|t| t.st == St::Held) {
            tid
        } else {
            match self.threads.iter().find(|(_, t)| t.st == St::Held) {
                Some((&t, _)) => t,
                None => return Err(TraceError::Other("no stopped thread to patch with".into())),
            }
        };
        let bias = self.bias;
        let (pcs, words) = self.thread_pcs()?;
        let mut cands: Vec<(usize, &Patch)> = Vec::new();
        for (i, m) in plan.patches.iter().enumerate() {
            if !plan.points[i].probe.patched() {
                continue;
            }
            let p = match m {
                Ok(p) => p,
                Err(f) => {
                    self.via[i] = Via::Breakpoint(Some(*f));
                    continue;
                }
            };
            if self.mode == Mode::Attach && p.multi() && !p.no_async_preempt {
                self.via[i] = Via::Breakpoint(Some(Fallback::AttachMultiInstruction));
                continue;
            }
            let (a, end) = (
                p.pc.wrapping_add(bias),
                p.pc.wrapping_add(bias) + p.orig.len() as u64,
            );
            let inside = pcs.iter().any(|&pc| pc > a && pc < end)
                || p.interior_starts()
                    .iter()
                    .any(|s| words.binary_search(&s.wrapping_add(bias)).is_ok());
            if inside {
                self.via[i] = Via::Breakpoint(Some(Fallback::ThreadInside));
                continue;
            }
            cands.push((i, p));
        }
        if cands.is_empty() {
            return Ok(());
        }
        let mut spans = self.read_spans(&cands)?;
        let sized = Layout::new(0, cands.len(), cands.iter().map(|c| c.1));
        let base = match self.map_block(tid, sized.len()) {
            Ok(b) => b,
            Err(why) => {
                eprintln!(
                    "deferscope: counters unavailable ({why}); every point keeps a breakpoint"
                );
                for &(i, _) in &cands {
                    self.via[i] = Via::Breakpoint(Some(Fallback::NoBlock));
                }
                self.counters_error = Some(why);
                return Ok(());
            }
        };
        let layout = sized.at(base);
        self.last_block = Some((base, layout.len()));
        let numbered: Vec<(usize, &Patch)> =
            cands.iter().enumerate().map(|(k, c)| (k, c.1)).collect();
        let enc = tramp::encode(&layout, bias, &numbered);
        for &(k, f) in &enc.failed {
            self.via[cands[k].0] = Via::Breakpoint(Some(f));
        }
        self.counting = Some(Counting {
            layout,
            mapped: true,
            placed: Vec::new(),
            spans: Vec::new(),
            points: cands.iter().map(|c| c.0).collect(),
            last: vec![0; cands.len()],
        });
        self.mem()?
            .write_code(layout.code(), &enc.code)
            .map_err(|e| {
                os(
                    format!("cannot write the trampolines at {:#x}", layout.code()),
                    e,
                )
            })?;
        let r = self.inject_syscall(
            tid,
            libc::SYS_mprotect,
            [
                layout.code(),
                layout.code_len,
                (libc::PROT_READ | libc::PROT_EXEC) as u64,
                0,
                0,
                0,
            ],
        )?;
        if r != 0 {
            return Err(os(
                "mprotect in the program",
                errno(Errno::from_raw(-r as i32)),
            ));
        }
        // Each span of text once: the original bytes kept to put back,
        // the patches applied, written in one go.
        let orig = spans.clone();
        for pl in &enc.placed {
            let sp = spans
                .iter_mut()
                .find(|sp| {
                    sp.0 <= pl.addr && pl.addr + pl.new.len() as u64 <= sp.0 + sp.1.len() as u64
                })
                .ok_or_else(|| TraceError::Other(format!("no text span for {:#x}", pl.addr)))?;
            let off = (pl.addr - sp.0) as usize;
            sp.1[off..off + pl.new.len()].copy_from_slice(&pl.new);
            self.via[cands[pl.index].0] = Via::Counter(pl.index);
        }
        let c = self.counting.as_mut().unwrap();
        c.placed = enc.placed;
        c.spans = orig;
        for (addr, bytes) in &spans {
            self.write_text(tid, *addr, bytes)?;
        }
        self.patch_time += t0.elapsed();
        Ok(())
    }

    /// The process's text around the patches, as spans (run-time
    /// address, bytes) that each cover the patches starting in one page;
    /// the text must still be the file's where it is patched.
    fn read_spans(&mut self, cands: &[(usize, &Patch)]) -> Result<Vec<(u64, Vec<u8>)>, TraceError> {
        let bias = self.bias;
        let mut ranges: Vec<(u64, u64)> = cands
            .iter()
            .map(|(_, p)| {
                let a = p.pc.wrapping_add(bias);
                (a, a + p.orig.len() as u64)
            })
            .collect();
        ranges.sort_unstable();
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for (a, b) in ranges {
            match spans.last_mut() {
                Some(s) if a >> 12 <= (s.1 - 1) >> 12 => s.1 = s.1.max(b),
                _ => spans.push((a, b)),
            }
        }
        let mut out = Vec::with_capacity(spans.len());
        for (a, b) in spans {
            let mut buf = vec![0u8; (b - a) as usize];
            self.mem()?
                .read_code(a, &mut buf)
                .map_err(|e| os(format!("cannot read the program's code at {a:#x}"), e))?;
            out.push((a, buf));
        }
        for (_, p) in cands {
            let a = p.pc.wrapping_add(bias);
            let sp = out
                .iter()
                .find(|s| s.0 <= a && a < s.0 + s.1.len() as u64)
                .expect("every patch is in a span");
            let off = (a - sp.0) as usize;
            if sp.1.get(off..off + p.orig.len()) != Some(&p.orig[..]) {
                return Err(TraceError::Other(format!(
                    "the code at {a:#x} differs from the file{}",
                    if sp.1.get(off) == Some(&0xcc) {
                        " (a breakpoint is already there: another debugger?)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(out)
    }

    /// Every stopped thread's pc, and (attach mode) the 8-byte words on
    /// its stack, sorted: a pc that a signal frame saved is among them.
    fn thread_pcs(&mut self) -> Result<(Vec<u64>, Vec<u64>), TraceError> {
        let held: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| matches!(t.st, St::Held | St::Queued))
            .map(|(&t, _)| t)
            .collect();
        let (mut pcs, mut words) = (Vec::new(), Vec::new());
        for tid in held {
            let Ok(r) = ptrace::getregs(Pid::from_raw(tid)) else {
                continue;
            };
            pcs.push(r.rip);
            if self.mode == Mode::Attach {
                self.stack_words(r.rsp, &mut words);
            }
        }
        words.sort_unstable();
        words.dedup();
        Ok((pcs, words))
    }

    /// The words from `sp` up, page by page, until one cannot be read.
    fn stack_words(&mut self, sp: u64, out: &mut Vec<u64>) {
        let Some(mem) = self.mem.as_mut() else {
            return;
        };
        let mut at = sp & !7;
        let end = sp.saturating_add(STACK_SCAN);
        let mut buf = vec![0u8; 4096];
        while at < end {
            let n = (4096 - (at & 4095)).min(end - at) as usize;
            if mem.read(at, &mut buf[..n]).is_err() {
                break;
            }
            out.extend(
                buf[..n]
                    .chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap())),
            );
            at += n as u64;
        }
    }

    /// Map `len` bytes read-write near the text; its address, or why not.
    fn map_block(&mut self, tid: i32, len: u64) -> Result<u64, String> {
        let path = format!("/proc/{}/maps", self.main);
        let maps = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let mut used: Vec<(u64, u64)> = maps
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_whitespace().next()?.split_once('-')?;
                Some((
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                ))
            })
            .collect();
        used.sort_unstable();
        let (lo, hi) = (
            self.plan.text.0.wrapping_add(self.bias),
            self.plan.text.1.wrapping_add(self.bias),
        );
        let cands = block_candidates(&used, lo, hi, len);
        let mut last = String::from("no free gap within reach of the text");
        for at in cands.into_iter().take(6) {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
            let args = [
                at,
                len,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                flags as u64,
                u64::MAX,
                0,
            ];
            let r = self
                .inject_syscall(tid, libc::SYS_mmap, args)
                .map_err(|e| e.to_string())?;
            if r as u64 == at {
                return Ok(at);
            }
            if r >= 0 {
                // An old kernel took MAP_FIXED_NOREPLACE for a hint.
                let _ = self.inject_syscall(tid, libc::SYS_munmap, [r as u64, len, 0, 0, 0, 0]);
                last = format!("mmap gave {r:#x}, not {at:#x}");
            } else {
                last = format!("mmap at {at:#x}: {}", Errno::from_raw(-r as i32).desc());
            }
        }
        Err(last)
    }

    /// Write code bytes: through `/proc/PID/mem`, else word by word with
    /// `PTRACE_POKEDATA` on the stopped thread `tid`.
    pub(super) fn write_text(
        &mut self,
        tid: i32,
        addr: u64,
        data: &[u8],
    ) -> Result<(), TraceError> {
        if self.mem()?.write_code(addr, data).is_ok() {
            return Ok(());
        }
        for (k, &b) in data.iter().enumerate() {
            self.poke(tid, addr + k as u64, b)?;
        }
        Ok(())
    }

    /// Read the counters (the process may be running); false if they
    /// cannot be read (the process is gone).
    pub(super) fn read_counters(&mut self) -> bool {
        let (Some(c), Some(mem)) = (self.counting.as_mut(), self.mem.as_ref()) else {
            return false;
        };
        let mut buf = vec![0u8; c.points.len() * COUNTER_STRIDE as usize];
        if mem.read_code(c.layout.base, &mut buf).is_err() {
            return false;
        }
        for (k, v) in c.last.iter_mut().enumerate() {
            let at = k * COUNTER_STRIDE as usize;
            let n = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
            *v = (*v).max(n);
        }
        true
    }

    /// Counts of every plan point: breakpoint hits, counters, and what
    /// earlier images of the program counted.
    pub(super) fn counts(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .hits
            .iter()
            .zip(&self.base)
            .map(|(a, b)| a + b)
            .collect();
        if let Some(c) = &self.counting {
            for (k, &i) in c.points.iter().enumerate() {
                v[i] = self.merge(i, v[i], c.last[k]);
            }
        }
        v
    }

    /// What earlier images and the current one counted at point `i`
    /// together: a sum, or for a [`Probe::Pending`] slot (a maximum) the
    /// larger.
    fn merge(&self, i: usize, before: u64, now: u64) -> u64 {
        if self.plan.points[i].probe == Probe::Pending {
            before.max(now)
        } else {
            before + now
        }
    }

    /// The process image is going (`execve`): keep what it counted.
    pub(super) fn retire_counters(&mut self) {
        if let Some(c) = self.counting.take() {
            for (k, &i) in c.points.iter().enumerate() {
                self.base[i] = self.merge(i, self.base[i], c.last[k]);
            }
        }
    }

    /// A thread reports its exit. When the whole process exits, the
    /// thread that called `exit_group` (or took the fatal signal) stops
    /// here while the kernel kills the others (a thread killed so runs no
    /// more user code once it enters the kernel: the kill interrupts one
    /// running on another CPU at once); once none of them runs, the
    /// counters are final. Waits at most 2 ms.
    pub(super) fn on_exit_event(&mut self, tid: i32) {
        if self.counting.is_none() {
            return;
        }
        let end = Instant::now() + Duration::from_millis(2);
        while Instant::now() < end && self.others_running(tid) {
            std::thread::sleep(Duration::from_micros(100));
        }
        self.read_counters();
    }

    /// Whether a thread of the process other than `tid` is running.
    fn others_running(&self, tid: i32) -> bool {
        let dir = format!("/proc/{}/task", self.main);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return false;
        };
        rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&t| t != tid)
            .any(|t| {
                std::fs::read_to_string(format!("{dir}/{t}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('R')))
                    .unwrap_or(false)
            })
    }

    /// With every thread stopped: step each thread whose pc is in a
    /// trampoline out of it, then say whether a pc saved in a signal
    /// frame still points into one (the caller lets the program run a
    /// moment and tries again).
    pub(super) fn trampolines_busy(&mut self) -> Result<bool, TraceError> {
        let Some((lo, hi)) = self.counting.as_ref().map(Counting::code_range) else {
            return Ok(false);
        };
        let held: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| t.st == St::Held)
            .map(|(&t, _)| t)
            .collect();
        let mut words = Vec::new();
        for tid in held {
            for _ in 0..64 {
                match ptrace::getregs(Pid::from_raw(tid)) {
                    Ok(r) if (lo..hi).contains(&r.rip) => {
                        if !self.single_step(tid)? {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            if let Ok(r) = ptrace::getregs(Pid::from_raw(tid)) {
                if (lo..hi).contains(&r.rip) {
                    return Ok(true);
                }
                self.stack_words(r.rsp, &mut words);
            }
        }
        Ok(words.iter().any(|w| (lo..hi).contains(w)))
    }

    /// With every thread stopped and none in a trampoline: read the
    /// counters a last time, put every original byte back and unmap the
    /// block (unless `keep_block`: a signal frame may still return into
    /// it; the trampolines stay valid code there).
    pub(super) fn remove_counters(&mut self, tid: i32, keep_block: bool) -> Result<(), TraceError> {
        if self.counting.is_none() {
            return Ok(());
        }
        self.read_counters();
        let spans = std::mem::take(&mut self.counting.as_mut().unwrap().spans);
        let mut first_err = None;
        for (addr, bytes) in &spans {
            if let Err(e) = self.write_text(tid, *addr, bytes) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            self.counting.as_mut().unwrap().spans = spans;
            return Err(e);
        }
        let c = self.counting.as_mut().unwrap();
        let (base, len) = (c.layout.base, c.layout.len());
        if c.mapped && !keep_block {
            match self.inject_syscall(tid, libc::SYS_munmap, [base, len, 0, 0, 0, 0]) {
                Ok(0) => self.counting.as_mut().unwrap().mapped = false,
                Ok(r) => eprintln!(
                    "deferscope: munmap of the trampoline block failed: {}",
                    Errno::from_raw(-r as i32).desc()
                ),
                Err(e) => eprintln!("deferscope: munmap of the trampoline block failed: {e}"),
            }
        } else if keep_block {
            eprintln!(
                "deferscope: a signal handler may still return into the trampolines: \
                 the block at {base:#x} stays mapped (the text is restored)"
            );
        }
        Ok(())
    }

    /// Last resort after an error: put the original bytes back through
    /// `/proc/PID/mem`, which needs no stopped thread.
    pub(super) fn restore_text_anyhow(&mut self) {
        let Some(c) = self.counting.as_mut() else {
            return;
        };
        let spans = std::mem::take(&mut c.spans);
        if let Some(m) = self.mem.as_mut() {
            for (addr, bytes) in &spans {
                let _ = m.write_code(*addr, bytes);
            }
        }
    }
}

/// Addresses to try for a block of `len` bytes, best first: in the free
/// gaps between the mappings `used` (sorted), within rel32 reach of the
/// whole text `[lo, hi)`; above the text first, nearest first.
pub(super) fn block_candidates(used: &[(u64, u64)], lo: u64, hi: u64, len: u64) -> Vec<u64> {
    const ALIGN: u64 = 1 << 16;
    let min_start = hi.saturating_sub(REACH).max(1 << 20);
    let max_end = lo.saturating_add(REACH);
    let mut gaps = Vec::new();
    let mut prev = 0u64;
    for &(a, b) in used.iter().chain([(u64::MAX, u64::MAX)].iter()) {
        if a > prev {
            gaps.push((prev, a));
        }
        prev = prev.max(b);
    }
    // Above the text before below it; with the wide pad before the
    // narrow one; nearest first.
    let (mut above, mut below) = (Vec::new(), Vec::new());
    for pad in PADS {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for &(g0, g1) in &gaps {
            let (s0, s1) = (g0.max(min_start), g1.min(max_end));
            if g0 >= hi {
                let Some(at) = s0
                    .checked_add(pad)
                    .and_then(|a| a.checked_next_multiple_of(ALIGN))
                else {
                    continue;
                };
                if at.checked_add(len + pad).is_some_and(|e| e <= s1) {
                    up.push(at);
                }
            } else if g1 <= lo {
                let Some(at) = s1.checked_sub(len + pad).map(|a| a / ALIGN * ALIGN) else {
                    continue;
                };
                if at >= s0 + pad {
                    down.push(at);
                }
            }
        }
        up.sort_unstable();
        down.sort_unstable_by(|a, b| b.cmp(a));
        above.extend(up);
        below.extend(down);
    }
    let mut out: Vec<u64> = above.into_iter().chain(below).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_goes_above_the_image_within_reach() {
        // A static binary: text 0x401000-0x800000, data up to 0x1200000,
        // the Go heap far away, the stack at the top.
        let used = [
            (0x400000, 0x800000),
            (0x800000, 0x1200000),
            (0xc000000000, 0xc004000000),
            (0x7ffff7ff0000, 0x7ffffffff000),
        ];
        let c = block_candidates(&used, 0x401000, 0x800000, 0x20000);
        assert_eq!(c[0], 0x1200000 + (512 << 20));
        for &at in &c {
            assert!((at + 0x20000).abs_diff(0x401000) < 1 << 31, "{at:#x}");
            assert!(at.abs_diff(0x800000) < 1 << 31, "{at:#x}");
            assert!(used.iter().all(|&(a, b)| at + 0x20000 <= a || at >= b));
        }
        // The gap after the last mapping (vsyscall) ends at the top of the
        // address space: no candidate wraps around it.
        let used = [
            (0x5500_0000_0000, 0x5500_0100_0000),
            (0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000),
        ];
        let c = block_candidates(&used, 0x5500_0000_1000, 0x5500_0080_0000, 0x20000);
        assert!(
            c.iter().all(|&a| a.abs_diff(0x5500_0000_0000) < 1 << 31),
            "{c:#x?}"
        );
        assert_eq!(c[0], 0x5500_0100_0000 + (512 << 20));
        // No room above (a mapping right after the image, then out of
        // reach): below the text.
        let used = [(0x1000_0000, 0x9000_0000)];
        let c = block_candidates(&used, 0x1000_0000, 0x1100_0000, 0x20000);
        assert!(!c.is_empty() && c.iter().all(|&a| a + 0x20000 <= 0x1000_0000));
    }
}

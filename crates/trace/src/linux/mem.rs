//! The traced process's memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use nix::sys::uio;
use nix::unistd::Pid;

use super::sys::{errno, retry};
use crate::emulate::Memory;

/// The traced process's memory. As [`Memory`] (what emulated instructions
/// touch) it goes through `process_vm_readv` / `process_vm_writev`, which
/// honour page protections as the instruction would: a refused access
/// makes the tracer single-step the instruction instead, so that it faults
/// for real. Code is read and patched through `/proc/PID/mem`, which a
/// tracer may write even where the text is read-only.
pub(super) struct ProcMem {
    pub(super) pid: Pid,
    pub(super) file: File,
}

impl ProcMem {
    pub(super) fn read_code(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        retry(|| self.file.read_exact_at(buf, addr))
    }
    pub(super) fn write_code(&self, addr: u64, data: &[u8]) -> io::Result<()> {
        retry(|| self.file.write_all_at(data, addr))
    }
}

impl Memory for ProcMem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len();
        let remote = [uio::RemoteIoVec {
            base: addr as usize,
            len,
        }];
        match uio::process_vm_readv(self.pid, &mut [io::IoSliceMut::new(buf)], &remote) {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => Err(errno(e)),
        }
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> io::Result<()> {
        let remote = [uio::RemoteIoVec {
            base: addr as usize,
            len: data.len(),
        }];
        match uio::process_vm_writev(self.pid, &[io::IoSlice::new(data)], &remote) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(io::ErrorKind::WriteZero.into()),
            Err(e) => Err(errno(e)),
        }
    }
}

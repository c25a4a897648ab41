//! The per-architecture decoders.
#![no_main]
use deferscope_decode::{call_candidates, scan, Arch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arch in [Arch::Amd64, Arch::Arm64] {
        let mut n = 0usize;
        scan(arch, data, 0x401000, |_| n += 1);
        let _ = call_candidates(arch, data, 0x401000, &[0x401000, 0x401010]);
    }
});

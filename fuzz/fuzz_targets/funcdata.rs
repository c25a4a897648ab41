//! The open-coded defer funcdata, in its three encodings.
#![no_main]
use deferscope_analyze::{OpenDeferFormat, OpenDeferInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for f in [OpenDeferFormat::A, OpenDeferFormat::B, OpenDeferFormat::C] {
        if let Some(i) = OpenDeferInfo::parse(data, f) {
            assert!(!i.closure_offsets.is_empty() && i.closure_offsets.len() <= 8);
        }
    }
});

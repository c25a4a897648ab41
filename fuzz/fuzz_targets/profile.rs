//! The pprof decoder: gzip or raw protobuf bytes, decoded, validated and
//! read back (every sample's stack and values), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = deferscope_profile::decode::decode("fuzz", data) {
        let mut n = 0i64;
        for i in 0..d.len() {
            for &l in d.stack(i) {
                let loc = &d.locations[l as usize];
                n = n.wrapping_add(loc.address as i64);
                if let Some(line) = loc.line.first() {
                    let _ = deferscope_profile::matching::function_name(&d, line.function_id);
                }
            }
            for c in 0..d.sample_types.len() {
                n = n.wrapping_add(d.value(i, c));
            }
        }
        std::hint::black_box(n);
    }
});

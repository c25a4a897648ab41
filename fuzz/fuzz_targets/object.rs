//! Object loading: ELF/PE/Mach-O header parsing and address reads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = deferscope_load::Image::parse(Path::new("fuzz"), data) {
        for (addr, bytes) in img.mapped_chunks() {
            let _ = img.read(addr, bytes.len() as u64);
            let _ = img.read_u64(addr.wrapping_add(8));
            let _ = img.read_to_end(addr);
        }
        let _ = img.symbol("runtime.main");
        let _ = deferscope_index::buildinfo::find(&img);
        let _ = deferscope_index::find_pclntab(&img);
    }
});

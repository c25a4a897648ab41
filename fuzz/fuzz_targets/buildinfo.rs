//! The build info block, found by its magic in raw bytes.
#![no_main]
use deferscope_load::{Arch, Format, Image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let img = Image::from_raw(data, 0x10000, Format::Elf, Arch::Amd64);
    if let Some(b) = deferscope_index::buildinfo::find(&img) {
        let _ = deferscope_index::GoVersion::parse(&b.go_version);
    }
});

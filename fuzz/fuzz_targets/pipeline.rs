//! The whole pipeline (index, decode, classify) on a synthetic image: the
//! input is mapped at `synth::BASE`, so a seed built by
//! `deferscope_index::synth::image()` reaches every stage.
#![no_main]
use deferscope_index::synth;
use deferscope_load::{Arch, Format, Image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arch in [Arch::Amd64, Arch::Arm64] {
        let img = Image::from_raw(data, synth::BASE, Format::Elf, arch);
        if let Ok(ix) = deferscope_index::GoIndex::new(&img) {
            let _ = deferscope_analyze::scan("fuzz", &img, &ix);
        }
    }
});

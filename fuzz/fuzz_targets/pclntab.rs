//! The pclntab header, function table, names, files and pc-value tables.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = deferscope_index::Pclntab::parse(0x10000, data) else { return };
    for i in 0..t.nfunc.min(4096) {
        let Some(f) = t.func(i, 0x400000) else { continue };
        let _ = t.name(&f);
        for k in 0..f.nfuncdata {
            let _ = t.funcdata(&f, k);
        }
        for off in [f.pcsp, f.pcfile, f.pcln] {
            for (_, _, v) in t.pcvalue(off, f.entry).take(4096) {
                let _ = t.file(&f, v);
            }
        }
    }
});

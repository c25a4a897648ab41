//! A builder of tiny synthetic Go images, for tests and fuzzing.
//!
//! It lays out, by the rules of docs/design.md §4.5 (go1.20 pclntab layout)
//! and `runtime/symtab.go`'s `moduledata`, a header, function table, names,
//! a file table, pc-value tables, funcdata, a moduledata record and amd64
//! code for four functions:
//!
//! | function | code | expected |
//! |---|---|---|
//! | `runtime.deferprocStack` | `RET` | — |
//! | `runtime.deferproc` | `RET` | — |
//! | `main.f` | `CALL deferprocStack` (line 10), `CALL deferproc` (line 11), `RET` | a stack- and a heap-allocated site |
//! | `main.g` | `MOVQ AX, 0x8(SP)` at SP delta 0x18, `RET` (line 20), with format-B open-coded funcdata `[9 1 8]` | an open-coded site |
//!
//! The whole image is meant to be mapped at [`BASE`] with
//! `Image::from_raw`. It is small (under 1 KiB), so a fuzzer can mutate it
//! at full speed and still reach every stage of the pipeline.

/// The virtual address the image is built for.
pub const BASE: u64 = 0x10000;
/// Offset of the text in the image.
pub const TEXT_OFF: u64 = 0x400;

/// What a correct analysis finds in [`image`]: (pc, line, kind word).
pub const EXPECTED_SITES: [(u64, u32, &str); 3] = [
    (BASE + TEXT_OFF + 32, 10, "stack-allocated"),
    (BASE + TEXT_OFF + 37, 11, "heap-allocated"),
    (BASE + TEXT_OFF + 48, 20, "open-coded"),
];
/// The file every function is in.
pub const FILE: &str = "/src/synth/main.go";

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Zig-zag encode a pc-value delta as the runtime reads it.
fn zz(delta: i32) -> u8 {
    let v = if delta < 0 {
        ((!delta) << 1) | 1
    } else {
        delta << 1
    };
    assert!((0..0x80).contains(&v));
    v as u8
}

/// A one-run-or-more pc-value table: (value, length) pairs.
fn pcvalue(runs: &[(i32, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = -1;
    for &(v, n) in runs {
        out.push(zz(v - prev));
        out.push(n);
        prev = v;
    }
    out.push(0);
    out
}

/// Build the image (see the module docs).
pub fn image() -> Vec<u8> {
    let mut b = vec![0u8; 0x480];
    // Sub-table offsets, relative to the header at 0.
    let (funcname, cu, filetab, pctab, pcln) =
        (0x48usize, 0xa0usize, 0xa8usize, 0xc0usize, 0x120usize);
    let names: [&str; 4] = [
        "runtime.deferprocStack",
        "runtime.deferproc",
        "main.f",
        "main.g",
    ];
    // Header.
    b[0..4].copy_from_slice(&0xffff_fff1u32.to_le_bytes());
    b[6] = 1; // pc quantum (amd64)
    b[7] = 8; // pointer size
    put_u64(&mut b, 8, names.len() as u64);
    put_u64(&mut b, 16, 1); // nfiles
    put_u64(&mut b, 24, BASE + TEXT_OFF);
    for (i, off) in [funcname, cu, filetab, pctab, pcln].into_iter().enumerate() {
        put_u64(&mut b, 32 + 8 * i, off as u64);
    }
    // Names.
    let mut name_offs = Vec::new();
    let mut p = funcname;
    for n in names {
        name_offs.push((p - funcname) as u32);
        b[p..p + n.len()].copy_from_slice(n.as_bytes());
        p += n.len() + 1;
    }
    assert!(p <= cu);
    // cutab: file 0 of compilation unit 0 is at filetab offset 0.
    put_u32(&mut b, cu, 0);
    b[filetab..filetab + FILE.len()].copy_from_slice(FILE.as_bytes());
    // pc-value tables (offset 0 of pctab means "none").
    let mut pct = vec![0u8];
    let mut table = |t: Vec<u8>| {
        let off = pct.len() as u32;
        pct.extend(t);
        off
    };
    let entries: [(u32, u8); 4] = [(0, 16), (16, 16), (32, 11), (48, 6)];
    let file0: Vec<u32> = entries
        .iter()
        .map(|&(_, n)| table(pcvalue(&[(0, n)])))
        .collect();
    let sp0: Vec<u32> = entries
        .iter()
        .map(|&(_, n)| table(pcvalue(&[(0, n)])))
        .collect();
    let ln = [
        table(pcvalue(&[(1, 16)])),
        table(pcvalue(&[(2, 16)])),
        table(pcvalue(&[(10, 5), (11, 6)])),
        table(pcvalue(&[(20, 6)])),
    ];
    let sp_g = table(pcvalue(&[(0x18, 6)]));
    b[pctab..pctab + pct.len()].copy_from_slice(&pct);
    assert!(pctab + pct.len() <= pcln);
    // Function table then _func records, in pclntable.
    let nfunc = entries.len();
    let ftab_size = (nfunc + 1) * 8;
    let mut funcoff = ftab_size;
    for (i, &(entry, _)) in entries.iter().enumerate() {
        let rec = pcln + funcoff;
        put_u32(&mut b, pcln + 8 * i, entry);
        put_u32(&mut b, pcln + 8 * i + 4, funcoff as u32);
        put_u32(&mut b, rec, entry);
        put_u32(&mut b, rec + 4, name_offs[i]);
        let deferreturn = match i {
            2 => 10,
            3 => 5,
            _ => 0,
        };
        put_u32(&mut b, rec + 12, deferreturn);
        put_u32(&mut b, rec + 16, if i == 3 { sp_g } else { sp0[i] });
        put_u32(&mut b, rec + 20, file0[i]);
        put_u32(&mut b, rec + 24, ln[i]);
        put_u32(&mut b, rec + 28, 0); // npcdata
        put_u32(&mut b, rec + 32, 0); // cu offset
        let nfuncdata = if i == 3 { 5 } else { 0 };
        b[rec + 43] = nfuncdata;
        for k in 0..nfuncdata as usize {
            // FUNCDATA_OpenCodedDeferInfo (4) at gofunc+0; the rest absent.
            put_u32(&mut b, rec + 44 + 4 * k, if k == 4 { 0 } else { u32::MAX });
        }
        funcoff += 44 + 4 * nfuncdata as usize;
    }
    put_u32(&mut b, pcln + 8 * nfunc, 64); // end of text
    let pcln_end = pcln + funcoff;
    // gofunc: the open-coded funcdata, format B: deferBits 9, 1 defer,
    // closure slot 8 below varp.
    let gofunc = 0x220usize;
    assert!(pcln_end <= gofunc);
    b[gofunc..gofunc + 3].copy_from_slice(&[9, 1, 8]);
    // moduledata (go1.20-1.26 field order).
    let md = 0x260usize;
    let w = |b: &mut [u8], i: usize, v: u64| put_u64(b, md + 8 * i, v);
    let addr = |off: usize| BASE + off as u64;
    w(&mut b, 0, BASE);
    for (i, (off, len)) in [
        (funcname, cu - funcname),
        (cu, 4),
        (filetab, FILE.len() + 1),
        (pctab, pct.len()),
        (pcln, pcln_end - pcln),
        (pcln, nfunc + 1),
    ]
    .into_iter()
    .enumerate()
    {
        w(&mut b, 1 + 3 * i, addr(off));
        w(&mut b, 2 + 3 * i, len as u64);
        w(&mut b, 3 + 3 * i, len as u64);
    }
    let text = BASE + TEXT_OFF;
    w(&mut b, 20, text);
    w(&mut b, 21, text + 64);
    w(&mut b, 22, text);
    w(&mut b, 23, text + 64);
    w(&mut b, 40, addr(gofunc));
    // Text.
    let t = TEXT_OFF as usize;
    b[t..t + 64].fill(0xcc);
    b[t] = 0xc3;
    b[t + 16] = 0xc3;
    let call = |b: &mut [u8], at: usize, target: usize| {
        b[t + at] = 0xe8;
        let rel = target as i32 - (at as i32 + 5);
        b[t + at + 1..t + at + 5].copy_from_slice(&rel.to_le_bytes());
    };
    call(&mut b, 32, 0);
    call(&mut b, 37, 16);
    b[t + 42] = 0xc3;
    b[t + 48..t + 54].copy_from_slice(&[0x48, 0x89, 0x44, 0x24, 0x08, 0xc3]);
    b
}

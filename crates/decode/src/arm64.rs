//! arm64: direct calls and SP-relative stores, from the instruction words.
//!
//! Encodings (Arm ARM, C6.2): BL `100101 imm26`; STR (imm, unsigned offset)
//! 64-bit `0xF9000000`, 8-bit `0x39000000`; STUR 64-bit `0xF8000000`, 8-bit
//! `0x38000000`; STP 64-bit signed offset `0xA9000000`. Register 31 is SP as
//! a base and XZR as a source.

use crate::Event;

fn sext(v: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v as i64) << shift) >> shift
}

/// Decode one word at `pc`; report its events.
fn word(w: u32, pc: u64, sink: &mut impl FnMut(Event)) {
    if w >> 26 == 0b100101 {
        let off = sext(w & 0x03ff_ffff, 26) * 4;
        sink(Event::Call {
            pc,
            target: pc.wrapping_add(off as u64),
        });
        return;
    }
    let rt = w & 31;
    let rn = (w >> 5) & 31;
    if rn != 31 {
        return;
    }
    let store = |offset: i64, size: u8, reg: u32| Event::StackStore {
        pc,
        offset,
        size,
        zero: reg == 31,
    };
    match w & 0xffc0_0000 {
        0xf900_0000 => return sink(store((((w >> 10) & 0xfff) * 8) as i64, 8, rt)),
        0x3900_0000 => return sink(store(((w >> 10) & 0xfff) as i64, 1, rt)),
        0xa900_0000 => {
            let off = sext((w >> 15) & 0x7f, 7) * 8;
            sink(store(off, 8, rt));
            sink(store(off + 8, 8, (w >> 10) & 31));
            return;
        }
        _ => {}
    }
    match w & 0xffe0_0c00 {
        0xf800_0000 => sink(store(sext((w >> 12) & 0x1ff, 9), 8, rt)),
        0x3800_0000 => sink(store(sext((w >> 12) & 0x1ff, 9), 1, rt)),
        _ => {}
    }
}

pub fn scan(code: &[u8], entry: u64, mut sink: impl FnMut(Event)) {
    for (i, c) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        word(w, entry + 4 * i as u64, &mut sink);
    }
}

/// [`scan`] plus the flow events (see [`crate::scan_flow`]). `ADRP` pages
/// are remembered per register so that the `ADD` completing the pair gives
/// one [`Event::AddrLoad`].
pub fn scan_flow(code: &[u8], entry: u64, mut sink: impl FnMut(Event)) {
    let mut page: [Option<u64>; 32] = [None; 32];
    for (i, c) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let pc = entry + 4 * i as u64;
        word(w, pc, &mut sink);
        flow_word(w, pc, &mut page, &mut sink);
    }
}

/// Flow facts of one word (Arm ARM C4.1 encoding groups).
fn flow_word(w: u32, pc: u64, page: &mut [Option<u64>; 32], sink: &mut impl FnMut(Event)) {
    let next = pc + 4;
    let rd = (w & 31) as u8;
    let rn = ((w >> 5) & 31) as u8;
    let jump = |target: Option<u64>, cond: bool| Event::Jump {
        pc,
        next,
        target,
        cond,
    };
    // B imm26
    if w >> 26 == 0b000101 {
        let off = sext(w & 0x03ff_ffff, 26) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), false));
    }
    // B.cond, CBZ/CBNZ (imm19), TBZ/TBNZ (imm14)
    if w & 0xff00_0010 == 0x5400_0000 || w & 0x7e00_0000 == 0x3400_0000 {
        let off = sext((w >> 5) & 0x7ffff, 19) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), true));
    }
    if w & 0x7e00_0000 == 0x3600_0000 {
        let off = sext((w >> 5) & 0x3fff, 14) * 4;
        return sink(jump(Some(pc.wrapping_add(off as u64)), true));
    }
    match w & 0xffff_fc1f {
        0xd61f_0000 => return sink(jump(None, false)),
        0xd65f_0000 => return sink(Event::Ret { pc, next }),
        0xd63f_0000 => return sink(Event::CallIndirect { pc }),
        _ => {}
    }
    // BRK, UDF
    if w & 0xffe0_001f == 0xd420_0000 || w >> 16 == 0 {
        return sink(Event::Halt { pc, next });
    }
    // BL: handled by `word`; it clobbers every register (the caller's job).
    if w >> 26 == 0b100101 {
        return;
    }
    // ADRP
    if w & 0x9f00_0000 == 0x9000_0000 {
        let imm = (((w >> 5) & 0x7ffff) << 2) | ((w >> 29) & 3);
        let p = (pc & !0xfff).wrapping_add((sext(imm, 21) << 12) as u64);
        page[rd as usize] = Some(p);
        return sink(Event::Clobber { pc, reg: rd });
    }
    // ADD (immediate), 64-bit, no flags
    if w & 0xff80_0000 == 0x9100_0000 {
        let mut imm = ((w >> 10) & 0xfff) as u64;
        if w & (1 << 22) != 0 {
            imm <<= 12;
        }
        let ev = if rn == 31 {
            Event::SpAddr {
                pc,
                reg: rd,
                offset: imm as i64,
            }
        } else if let Some(p) = page[rn as usize] {
            Event::AddrLoad {
                pc,
                reg: rd,
                addr: p + imm,
            }
        } else {
            Event::Clobber { pc, reg: rd }
        };
        if rd != 31 {
            page[rd as usize] = None;
            sink(ev);
        }
        return;
    }
    // MOV Xd, Xm (ORR Xd, XZR, Xm)
    if w & 0xffe0_ffe0 == 0xaa00_03e0 {
        let rm = ((w >> 16) & 31) as u8;
        page[rd as usize] = None;
        return sink(if rm == 31 {
            Event::Clobber { pc, reg: rd }
        } else {
            Event::Move {
                pc,
                dst: rd,
                src: rm,
            }
        });
    }
    let base = if rn == 31 { crate::SP } else { rn };
    // STR Xt, [Xn, #imm] (unsigned offset) / LDR Xt, [Xn, #imm]
    match w & 0xffc0_0000 {
        0xf900_0000 => {
            return sink(Event::Store {
                pc,
                base,
                offset: (((w >> 10) & 0xfff) * 8) as i64,
                src: (rd != 31).then_some(rd),
                size: 8,
            })
        }
        0xf940_0000 => {
            page[rd as usize] = None;
            return sink(Event::Load {
                pc,
                dst: rd,
                base,
                offset: (((w >> 10) & 0xfff) * 8) as i64,
            });
        }
        0xa900_0000 => {
            let off = sext((w >> 15) & 0x7f, 7) * 8;
            let rt2 = ((w >> 10) & 31) as u8;
            sink(Event::Store {
                pc,
                base,
                offset: off,
                src: (rd != 31).then_some(rd),
                size: 8,
            });
            return sink(Event::Store {
                pc,
                base,
                offset: off + 8,
                src: (rt2 != 31).then_some(rt2),
                size: 8,
            });
        }
        _ => {}
    }
    // STUR / LDUR 64-bit
    match w & 0xffe0_0c00 {
        0xf800_0000 => {
            return sink(Event::Store {
                pc,
                base,
                offset: sext((w >> 12) & 0x1ff, 9),
                src: (rd != 31).then_some(rd),
                size: 8,
            })
        }
        0xf840_0000 => {
            page[rd as usize] = None;
            return sink(Event::Load {
                pc,
                dst: rd,
                base,
                offset: sext((w >> 12) & 0x1ff, 9),
            });
        }
        _ => {}
    }
    // Other data processing (immediate: op0 = 100x; register: x101) and
    // loads (bit 22 set in the load/store group x1x0) write Rd/Rt.
    let op0 = (w >> 25) & 0xf;
    let writes = op0 & 0b1110 == 0b1000
        || op0 & 0b0111 == 0b0101
        || (op0 & 0b0101 == 0b0100 && w & (1 << 22) != 0);
    if writes && rd != 31 {
        page[rd as usize] = None;
        sink(Event::Clobber { pc, reg: rd });
    }
}

pub fn call_candidates(text: &[u8], base: u64, targets: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, c) in text.chunks_exact(4).enumerate() {
        if c[3] >> 2 != 0b100101 {
            continue;
        }
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let pc = base + 4 * i as u64;
        let t = pc.wrapping_add((sext(w & 0x03ff_ffff, 26) * 4) as u64);
        if targets.contains(&t) {
            out.push(pc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(w: u32, pc: u64) -> Vec<Event> {
        let mut v = Vec::new();
        word(w, pc, &mut |e| v.push(e));
        v
    }

    // Encodings below are from the Arm ARM's field layouts, checked with
    // `go tool objdump` spellings quoted in the defer spec (§3.1).
    #[test]
    fn decodes_bl() {
        // bl +8
        assert_eq!(
            events(0x9400_0002, 0x1000),
            vec![Event::Call {
                pc: 0x1000,
                target: 0x1008
            }]
        );
        // bl -4
        assert_eq!(
            events(0x97ff_ffff, 0x1000),
            vec![Event::Call {
                pc: 0x1000,
                target: 0xffc
            }]
        );
    }

    fn flow(ws: &[u32], pc: u64) -> Vec<Event> {
        let code: Vec<u8> = ws.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut v = Vec::new();
        scan_flow(&code, pc, |e| v.push(e));
        v
    }

    #[test]
    fn flow_events_arm64() {
        // adrp x1, +1 page ; add x1, x1, #0x10 ; add x0, sp, #40 ; ret
        let v = flow(
            &[0xb000_0001, 0x9100_4021, 0x9100_a3e0, 0xd65f_03c0],
            0x1000,
        );
        assert_eq!(
            v,
            vec![
                Event::Clobber { pc: 0x1000, reg: 1 },
                Event::AddrLoad {
                    pc: 0x1004,
                    reg: 1,
                    addr: 0x2010
                },
                Event::SpAddr {
                    pc: 0x1008,
                    reg: 0,
                    offset: 40
                },
                Event::Ret {
                    pc: 0x100c,
                    next: 0x1010
                },
            ]
        );
        // cbnz x0, -4 ; b +8 ; str x1, [x0]
        let v = flow(&[0xb5ff_ffe0, 0x1400_0002, 0xf900_0001], 0x1000);
        assert_eq!(
            v,
            vec![
                Event::Jump {
                    pc: 0x1000,
                    next: 0x1004,
                    target: Some(0xffc),
                    cond: true
                },
                Event::Jump {
                    pc: 0x1004,
                    next: 0x1008,
                    target: Some(0x100c),
                    cond: false
                },
                Event::Store {
                    pc: 0x1008,
                    base: 0,
                    offset: 0,
                    src: Some(1),
                    size: 8
                },
            ]
        );
    }

    #[test]
    fn decodes_stores() {
        // strb wzr, [sp, #15]  (39003fff in the spec)
        assert_eq!(
            events(0x3900_3fff, 0),
            vec![Event::StackStore {
                pc: 0,
                offset: 15,
                size: 1,
                zero: true
            }]
        );
        // str x0, [sp, #16]
        assert_eq!(
            events(0xf900_0be0, 0),
            vec![Event::StackStore {
                pc: 0,
                offset: 16,
                size: 8,
                zero: false
            }]
        );
        // stp xzr, xzr, [sp, #32]
        assert_eq!(
            events(0xa902_7fff, 0),
            vec![
                Event::StackStore {
                    pc: 0,
                    offset: 32,
                    size: 8,
                    zero: true
                },
                Event::StackStore {
                    pc: 0,
                    offset: 40,
                    size: 8,
                    zero: true
                }
            ]
        );
        // str x0, [x1, #16]: not SP-based, no event.
        assert!(events(0xf900_0820, 0).is_empty());
    }
}

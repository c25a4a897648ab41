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

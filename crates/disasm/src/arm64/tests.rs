use crate::x86::Lookup;
use crate::Dialect;

use super::*;

struct NoSyms;
impl Lookup for NoSyms {
    fn lookup(&self, _: u64) -> Option<(&str, u64)> {
        None
    }
}

fn go(word: u32) -> String {
    let a = Arm64::new(Dialect::for_version(Some(27)));
    let mut s = String::new();
    a.decode(&word.to_le_bytes(), 0x11000, &NoSyms, true, &mut s);
    s
}

// Expected strings: `go tool objdump` (go1.27.3, linux/arm64) on the
// same words.
#[test]
fn objdump_spellings() {
    for (w, want) in [
        (0xf9400b90, "MOVD 16(R28), R16"),
        (0xeb3063ff, "CMP R16, RSP"),
        (0x540005c9, "BLS 46(PC)"),
        (0xf81e0ffe, "MOVD.W R30, -32(RSP)"),
        (0xf81f83fd, "MOVD R29, -8(RSP)"),
        (0xd10023fd, "SUB $8, RSP, R29"),
        (0xd29c71e6, "MOVD $58255, R6"),
        (0xf2b1c706, "MOVK $(36408<<16), R6"),
        (0xcb80fcc6, "SUB R0->63, R6, R6"),
        (0x8b060cc7, "ADD R6<<3, R6, R7"),
        (0x9343fcc6, "ASR $3, R6, R6"),
        (0x360000e6, "TBZ $0, R6, 7(PC)"),
        (0x92400d04, "AND $15, R8, R4"),
        (0xf24000ff, "TST $1, R7"),
        (0x9a9f07e1, "CSET NE, R1"),
        (0x14000004, "JMP 4(PC)"),
        (0xaa1f03e1, "MOVD ZR, R1"),
        (0xb5000108, "CBNZ R8, 8(PC)"),
        (0xb24003e0, "ORR $1, ZR, R0"),
        (0xd503201f, "NOOP"),
        (0xd65f03c0, "RET"),
        // go1.26.6, darwin/arm64 runtime.
        (0xd51b42bf, "MSR ZR, S3_3_C4_C2_5"),
        (0x4e081c3e, "VMOV R1, V30.D[0]"),
        (0xd50b7420, "DC ZVA, R0"),
        // go1.24.11-1.27.3, linux/arm64 cmd/go (math/bits, p256).
        (0xda1f03e3, "NGC ZR, R3"),
        (0xfa1903e5, "NGCS R25, R5"),
        // go1.19 / go1.21.13, linux/arm64 runtime (mgcpacer, os_linux):
        // the extension shows unless Rn or Rd is RSP.
        (0x8b3b60fb, "ADD R27.UXTX, R7, R27"),
        (0x8b3b603b, "ADD R27.UXTX, R1, R27"),
        (0x8b3b63ff, "ADD R27, RSP, RSP"),
        // go1.21.13 / go1.27.3, linux/arm64 math.Exp (exp_arm64.s).
        (0x1e63bc83, "FCSELD LT, F4, F3, F3"),
    ] {
        assert_eq!(go(w), want, "{w:08x}");
    }
}

struct Data;
impl Lookup for Data {
    fn lookup(&self, a: u64) -> Option<(&str, u64)> {
        (0x1d5000..0x1d5100)
            .contains(&a)
            .then_some(("main.counter", 0x1d5000))
    }
}

/// ADRP pairs (our rule, see the module doc). The words are the
/// linker's (go1.22.10 linux/arm64 `defers`, where objdump prints
/// `ADRP 1232896(PC), R27` for the first); the addresses are hand
/// computed: ADRP at page 0xa8000 + 0x12d000 = 0x1d5000.
#[test]
fn adrp_pairs_name_their_data() {
    let a = Arm64::new(Dialect::for_version(Some(22)));
    let mut s = String::new();
    let adrp: u32 = 0xb000097b;
    a.decode(&adrp.to_le_bytes(), 0xa8000, &Data, true, &mut s);
    assert_eq!(s, "ADRP 1232896(PC), R27");
    // f9431f61: LDR X1, [X27, #1592] -> 0x1d5000 + 0x638 is past the
    // symbol's 0x100 bytes: printed as objdump prints it.
    a.decode(&0xf9431f61u32.to_le_bytes(), 0xa8004, &Data, true, &mut s);
    assert_eq!(s, "MOVD 1592(R27), R1");
    // f9401f61: LDR X1, [X27, #56] -> main.counter+56.
    a.decode(&adrp.to_le_bytes(), 0xa8008, &Data, true, &mut s);
    a.decode(&0xf9401f61u32.to_le_bytes(), 0xa800c, &Data, true, &mut s);
    assert_eq!(s, "MOVD main.counter+56(SB), R1");
    // f9001f61: STR X1, [X27, #56].
    a.decode(&adrp.to_le_bytes(), 0xa8010, &Data, true, &mut s);
    a.decode(&0xf9001f61u32.to_le_bytes(), 0xa8014, &Data, true, &mut s);
    assert_eq!(s, "MOVD R1, main.counter+56(SB)");
    // 91000361: ADD X1, X27, #0 -> the address itself.
    a.decode(&adrp.to_le_bytes(), 0xa8018, &Data, true, &mut s);
    a.decode(&0x91000361u32.to_le_bytes(), 0xa801c, &Data, true, &mut s);
    assert_eq!(s, "MOVD $main.counter(SB), R1");
    // Not right after the ADRP: plain.
    a.decode(&adrp.to_le_bytes(), 0xa8020, &Data, true, &mut s);
    a.decode(&0xd503201fu32.to_le_bytes(), 0xa8024, &Data, true, &mut s);
    a.decode(&0xf9401f61u32.to_le_bytes(), 0xa8028, &Data, true, &mut s);
    assert_eq!(s, "MOVD 56(R27), R1");
}

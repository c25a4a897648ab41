//! amd64 emulation of the instructions that breakpoints replace.
//!
//! A breakpoint is an `int3` written over the first byte of an instruction.
//! When a thread traps on it, the tracer does what the instruction would
//! have done — to the thread's registers and memory — and resumes the thread
//! after it. The `int3` never leaves memory, so no other thread can run the
//! original instruction unseen while one thread is being stepped over it.
//!
//! The instructions at defer sites and at runtime entry points are few:
//!
//! - `CALL rel32` to `runtime.deferproc*` (stack- and heap-allocated sites);
//! - `MOVQ reg, off(SP)` storing an open-coded defer's closure to its slot;
//! - function prologues: `LEAQ -n(SP), R12`, `CMPQ SP, 0x10(R14)`,
//!   `MOVQ 0x20(R14), CX`, `PUSHQ BP`, `SUBQ $n, SP`.
//!
//! [`decode`] turns the original bytes into an [`Op`] once, when the
//! breakpoint is planted; [`execute`] applies it at each hit. The set covers
//! `CALL rel`, `MOV`, `LEA`, `PUSH`, `NOP`, and `ADD`/`SUB`/`CMP`/`AND`/`OR`/
//! `XOR`/`TEST` with exact flags, on general registers, immediates and
//! memory addressed by base + index * scale + displacement or RIP. Anything
//! else (vector registers, `FS`/`GS` segments, `LOCK`, high-byte registers,
//! other mnemonics) decodes to `None`, and the tracer single-steps the
//! original instruction instead, with every other thread stopped.

use std::io;

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// The registers emulation reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8 ... R15, in encoding order.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
}

/// Encoding numbers of the registers emulation refers to by name.
pub const RSP: usize = 4;

/// The traced thread's memory.
pub trait Memory {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write(&mut self, addr: u64, data: &[u8]) -> io::Result<()>;
}

/// A general register operand: encoding number and width in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub n: u8,
    pub size: u8,
}

/// A memory operand's address: `base + index * scale + disp`. A
/// RIP-relative operand has its absolute address in `disp` and no base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    pub base: Option<u8>,
    pub index: Option<u8>,
    pub scale: u8,
    pub disp: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Reg(Reg),
    Mem(Mem),
    /// Sign-extended to 64 bits as the encoding specifies; masked to the
    /// operation's width when used.
    Imm(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    Cmp,
    And,
    Or,
    Xor,
    Test,
}

/// One decoded instruction that [`execute`] can perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `CALL rel32`: push the return address, jump.
    Call {
        target: u64,
    },
    /// `MOV dst, src` of `size` bytes (a 32-bit register write clears the
    /// upper half, 8- and 16-bit writes keep it).
    Mov {
        dst: Operand,
        src: Operand,
        size: u8,
    },
    /// `LEA dst, mem`.
    Lea {
        dst: Reg,
        mem: Mem,
    },
    /// `PUSH src` (64-bit).
    Push {
        src: Operand,
    },
    /// Arithmetic or logic with flags; `Cmp` and `Test` write only flags.
    Alu {
        op: AluOp,
        dst: Operand,
        src: Operand,
        size: u8,
    },
    Nop,
}

/// The original instruction at a breakpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// What to do at a hit; `None` means single-step the original.
    pub op: Option<Op>,
    /// Length in bytes (0 if the bytes are not an instruction).
    pub len: u8,
    /// The instruction in Intel syntax, for diagnostics.
    pub text: String,
}

/// Decode the instruction at the start of `code`, which sits at address
/// `ip` in the traced process.
pub fn decode(code: &[u8], ip: u64) -> Decoded {
    let mut dec = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let ins = dec.decode();
    if ins.is_invalid() {
        return Decoded {
            op: None,
            len: 0,
            text: "(invalid)".into(),
        };
    }
    let mut text = String::new();
    {
        use iced_x86::{Formatter, IntelFormatter};
        IntelFormatter::new().format(&ins, &mut text);
    }
    Decoded {
        op: op_of(&ins),
        len: ins.len() as u8,
        text,
    }
}

fn op_of(ins: &Instruction) -> Option<Op> {
    if ins.has_lock_prefix() || ins.has_rep_prefix() || ins.has_repne_prefix() {
        return None;
    }
    let m = ins.mnemonic();
    match m {
        Mnemonic::Call if ins.op0_kind() == OpKind::NearBranch64 => Some(Op::Call {
            target: ins.near_branch_target(),
        }),
        Mnemonic::Nop => Some(Op::Nop),
        Mnemonic::Mov if ins.op_count() == 2 => {
            let dst = operand(ins, 0)?;
            let src = operand(ins, 1)?;
            if matches!(dst, Operand::Imm(_)) {
                return None;
            }
            Some(Op::Mov {
                dst,
                src,
                size: width(ins, dst)?,
            })
        }
        Mnemonic::Lea if ins.op_count() == 2 => match (operand(ins, 0)?, operand(ins, 1)?) {
            (Operand::Reg(dst), Operand::Mem(mem)) if dst.size >= 2 => Some(Op::Lea { dst, mem }),
            _ => None,
        },
        Mnemonic::Push if ins.op_count() == 1 => {
            let src = operand(ins, 0)?;
            match src {
                Operand::Reg(r) if r.size != 8 => None,
                Operand::Mem(_) if ins.memory_size().size() != 8 => None,
                _ => Some(Op::Push { src }),
            }
        }
        Mnemonic::Add
        | Mnemonic::Sub
        | Mnemonic::Cmp
        | Mnemonic::And
        | Mnemonic::Or
        | Mnemonic::Xor
        | Mnemonic::Test
            if ins.op_count() == 2 =>
        {
            let op = match m {
                Mnemonic::Add => AluOp::Add,
                Mnemonic::Sub => AluOp::Sub,
                Mnemonic::Cmp => AluOp::Cmp,
                Mnemonic::And => AluOp::And,
                Mnemonic::Or => AluOp::Or,
                Mnemonic::Xor => AluOp::Xor,
                _ => AluOp::Test,
            };
            let dst = operand(ins, 0)?;
            let src = operand(ins, 1)?;
            if matches!(dst, Operand::Imm(_)) {
                return None;
            }
            Some(Op::Alu {
                op,
                dst,
                src,
                size: width(ins, dst)?,
            })
        }
        _ => None,
    }
}

/// The operation width: the destination register's, or the memory size.
fn width(ins: &Instruction, dst: Operand) -> Option<u8> {
    let w = match dst {
        Operand::Reg(r) => r.size,
        _ => ins.memory_size().size() as u8,
    };
    matches!(w, 1 | 2 | 4 | 8).then_some(w)
}

fn operand(ins: &Instruction, i: u32) -> Option<Operand> {
    match ins.op_kind(i) {
        OpKind::Register => reg(ins.op_register(i)).map(Operand::Reg),
        OpKind::Memory => mem(ins).map(Operand::Mem),
        k if deferscope_decode::amd64::is_immediate(k) => Some(Operand::Imm(ins.immediate(i))),
        _ => None,
    }
}

/// Encoding number of a 64-bit general register.
fn gpr_number(r: Register) -> Option<u8> {
    use Register::*;
    Some(match r {
        RAX => 0,
        RCX => 1,
        RDX => 2,
        RBX => 3,
        RSP => 4,
        RBP => 5,
        RSI => 6,
        RDI => 7,
        R8 => 8,
        R9 => 9,
        R10 => 10,
        R11 => 11,
        R12 => 12,
        R13 => 13,
        R14 => 14,
        R15 => 15,
        _ => return Option::None,
    })
}

fn reg(r: Register) -> Option<Reg> {
    if !r.is_gpr() || matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        return None;
    }
    Some(Reg {
        n: gpr_number(r.full_register())?,
        size: r.size() as u8,
    })
}

fn mem(ins: &Instruction) -> Option<Mem> {
    if matches!(ins.memory_segment(), Register::FS | Register::GS) {
        return None;
    }
    let base = ins.memory_base();
    if base == Register::RIP {
        return Some(Mem {
            base: None,
            index: None,
            scale: 1,
            disp: ins.memory_displacement64(),
        });
    }
    let opt = |r: Register| -> Option<Option<u8>> {
        if r == Register::None {
            Some(None)
        } else if r.is_gpr64() {
            Some(Some(gpr_number(r)?))
        } else {
            None
        }
    };
    Some(Mem {
        base: opt(base)?,
        index: opt(ins.memory_index())?,
        scale: ins.memory_index_scale() as u8,
        disp: ins.memory_displacement64(),
    })
}

fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size as u32)) - 1
    }
}

/// The effective address of `m`.
pub fn address(m: &Mem, r: &Regs) -> u64 {
    let mut a = m.disp;
    if let Some(b) = m.base {
        a = a.wrapping_add(r.gpr[b as usize]);
    }
    if let Some(i) = m.index {
        a = a.wrapping_add(r.gpr[i as usize].wrapping_mul(m.scale as u64));
    }
    a
}

fn read(o: &Operand, size: u8, r: &Regs, mem: &mut impl Memory) -> io::Result<u64> {
    Ok(match o {
        Operand::Reg(g) => r.gpr[g.n as usize] & mask(size),
        Operand::Imm(v) => v & mask(size),
        Operand::Mem(m) => {
            let mut b = [0u8; 8];
            mem.read(address(m, r), &mut b[..size as usize])?;
            u64::from_le_bytes(b)
        }
    })
}

fn write(o: &Operand, size: u8, v: u64, r: &mut Regs, mem: &mut impl Memory) -> io::Result<()> {
    match o {
        Operand::Reg(g) => {
            let slot = &mut r.gpr[g.n as usize];
            *slot = match size {
                8 => v,
                4 => v & mask(4),
                _ => (*slot & !mask(size)) | (v & mask(size)),
            };
        }
        Operand::Mem(m) => {
            mem.write(address(m, r), &v.to_le_bytes()[..size as usize])?;
        }
        Operand::Imm(_) => {}
    }
    Ok(())
}

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const OF: u64 = 1 << 11;
const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

/// Result and status flags of `a op b` at `size` bytes.
pub fn alu(op: AluOp, a: u64, b: u64, size: u8) -> (u64, u64) {
    let m = mask(size);
    let sign = 1u64 << (8 * size as u32 - 1);
    let (a, b) = (a & m, b & m);
    let (res, cf, of, af) = match op {
        AluOp::Add => {
            let res = a.wrapping_add(b) & m;
            let of = (!(a ^ b) & (a ^ res) & sign) != 0;
            (res, res < a, of, (a ^ b ^ res) & 0x10 != 0)
        }
        AluOp::Sub | AluOp::Cmp => {
            let res = a.wrapping_sub(b) & m;
            let of = ((a ^ b) & (a ^ res) & sign) != 0;
            (res, a < b, of, (a ^ b ^ res) & 0x10 != 0)
        }
        AluOp::And | AluOp::Test => (a & b, false, false, false),
        AluOp::Or => (a | b, false, false, false),
        AluOp::Xor => (a ^ b, false, false, false),
    };
    let mut f = 0;
    if cf {
        f |= CF;
    }
    if (res as u8).count_ones() & 1 == 0 {
        f |= PF;
    }
    if af {
        f |= AF;
    }
    if res == 0 {
        f |= ZF;
    }
    if res & sign != 0 {
        f |= SF;
    }
    if of {
        f |= OF;
    }
    (res, f)
}

/// Perform `op`, the instruction at `r.rip` whose successor is `next`.
/// On an error (memory that cannot be read or written), `r` may be
/// partly updated and must be discarded; memory is written last, so the
/// process is unchanged.
pub fn execute(op: &Op, next: u64, r: &mut Regs, mem: &mut impl Memory) -> io::Result<()> {
    match *op {
        Op::Call { target } => {
            let sp = r.gpr[RSP].wrapping_sub(8);
            mem.write(sp, &next.to_le_bytes())?;
            r.gpr[RSP] = sp;
            r.rip = target;
            return Ok(());
        }
        Op::Nop => {}
        Op::Mov { dst, src, size } => {
            let v = read(&src, size, r, mem)?;
            write(&dst, size, v, r, mem)?;
        }
        Op::Lea { dst, mem: m } => {
            let a = address(&m, r);
            write(&Operand::Reg(dst), dst.size, a, r, mem)?;
        }
        Op::Push { src } => {
            let v = match src {
                Operand::Imm(v) => v,
                _ => read(&src, 8, r, mem)?,
            };
            let sp = r.gpr[RSP].wrapping_sub(8);
            mem.write(sp, &v.to_le_bytes())?;
            r.gpr[RSP] = sp;
        }
        Op::Alu { op, dst, src, size } => {
            let a = read(&dst, size, r, mem)?;
            let b = read(&src, size, r, mem)?;
            let (res, flags) = alu(op, a, b, size);
            if !matches!(op, AluOp::Cmp | AluOp::Test) {
                write(&dst, size, res, r, mem)?;
            }
            r.rflags = (r.rflags & !STATUS) | flags;
        }
    }
    r.rip = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Sparse byte-addressed memory.
    #[derive(Default)]
    struct Ram(HashMap<u64, u8>);

    impl Memory for Ram {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = *self
                    .0
                    .get(&(addr + i as u64))
                    .ok_or_else(|| io::Error::other(format!("unmapped {addr:#x}")))?;
            }
            Ok(())
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> io::Result<()> {
            for (i, b) in data.iter().enumerate() {
                self.0.insert(addr + i as u64, *b);
            }
            Ok(())
        }
    }

    impl Ram {
        fn u64(&mut self, addr: u64) -> u64 {
            let mut b = [0; 8];
            self.read(addr, &mut b).unwrap();
            u64::from_le_bytes(b)
        }
    }

    fn run(code: &[u8], ip: u64, r: &mut Regs, m: &mut Ram) -> Decoded {
        let d = decode(code, ip);
        let op = d.op.unwrap_or_else(|| panic!("not emulated: {}", d.text));
        r.rip = ip;
        execute(&op, ip + d.len as u64, r, m).unwrap();
        d
    }

    #[test]
    fn call_rel32_pushes_the_return_address() {
        // go1.22: CALL runtime.deferprocStack(SB), e8 rel32
        let mut r = Regs::default();
        r.gpr[RSP] = 0xc000_1000;
        let mut m = Ram::default();
        m.write(0xc000_0ff8, &[0; 8]).unwrap();
        let rel: i32 = -0x1234;
        let mut code = vec![0xe8];
        code.extend_from_slice(&rel.to_le_bytes());
        let d = run(&code, 0x48_0000, &mut r, &mut m);
        assert_eq!(d.len, 5);
        assert_eq!(r.rip, (0x48_0005i64 + rel as i64) as u64);
        assert_eq!(r.gpr[RSP], 0xc000_0ff8);
        assert_eq!(m.u64(0xc000_0ff8), 0x48_0005);
    }

    #[test]
    fn closure_store_to_a_stack_slot() {
        // MOVQ AX, 0x8(SP) = 48 89 44 24 08
        let mut r = Regs::default();
        r.gpr[0] = 0x4c_1234;
        r.gpr[RSP] = 0xc000_2000;
        let mut m = Ram::default();
        run(&[0x48, 0x89, 0x44, 0x24, 0x08], 0x1000, &mut r, &mut m);
        assert_eq!(m.u64(0xc000_2008), 0x4c_1234);
        assert_eq!(r.rip, 0x1005);
        // MOVQ $-1, 0x10(SP) = 48 c7 44 24 10 ff ff ff ff (sign-extended)
        run(
            &[0x48, 0xc7, 0x44, 0x24, 0x10, 0xff, 0xff, 0xff, 0xff],
            0x1000,
            &mut r,
            &mut m,
        );
        assert_eq!(m.u64(0xc000_2010), u64::MAX);
    }

    #[test]
    fn prologue_instructions() {
        let mut r = Regs::default();
        r.gpr[RSP] = 0xc000_3000;
        r.gpr[14] = 0xc000_0100; // g
        let mut m = Ram::default();
        m.write(0xc000_0110, &0xc000_2800u64.to_le_bytes()).unwrap(); // stackguard0
        m.write(0xc000_0120, &0xdeadu64.to_le_bytes()).unwrap(); // g._panic
                                                                 // LEAQ -0x38(SP), R12 = 4c 8d 64 24 c8
        run(&[0x4c, 0x8d, 0x64, 0x24, 0xc8], 0x2000, &mut r, &mut m);
        assert_eq!(r.gpr[12], 0xc000_3000 - 0x38);
        // CMPQ R12, 0x10(R14) (Go syntax CMPQ 0x10(R14), R12) = 4d 3b 66 10:
        // cmp r12, [r14+0x10]; r12 > stackguard: no flags for JBE.
        r.rflags = 0x202;
        run(&[0x4d, 0x3b, 0x66, 0x10], 0x2005, &mut r, &mut m);
        assert_eq!(r.rflags & (CF | ZF), 0);
        assert_eq!(r.rflags & 0x200, 0x200, "IF kept");
        // CMPQ SP, 0x10(R14) = 49 3b 66 10, with SP below the guard: CF.
        r.gpr[RSP] = 0xc000_2700;
        run(&[0x49, 0x3b, 0x66, 0x10], 0x2000, &mut r, &mut m);
        assert_eq!(r.rflags & CF, CF);
        // MOVQ 0x20(R14), CX = 49 8b 4e 20
        run(&[0x49, 0x8b, 0x4e, 0x20], 0x2000, &mut r, &mut m);
        assert_eq!(r.gpr[1], 0xdead);
        // PUSHQ BP = 55; SUBQ $0x18, SP = 48 83 ec 18
        r.gpr[5] = 0x77;
        let sp = r.gpr[RSP];
        run(&[0x55], 0x2000, &mut r, &mut m);
        assert_eq!(r.gpr[RSP], sp - 8);
        assert_eq!(m.u64(sp - 8), 0x77);
        run(&[0x48, 0x83, 0xec, 0x18], 0x2001, &mut r, &mut m);
        assert_eq!(r.gpr[RSP], sp - 8 - 0x18);
    }

    #[test]
    fn rip_relative_and_partial_registers() {
        let mut r = Regs::default();
        let mut m = Ram::default();
        // LEAQ 0x100(IP), AX = 48 8d 05 00 01 00 00 at 0x5000 -> 0x5107
        run(&[0x48, 0x8d, 0x05, 0, 1, 0, 0], 0x5000, &mut r, &mut m);
        assert_eq!(r.gpr[0], 0x5107);
        // MOVL $1, AX clears the upper half: b8 01 00 00 00
        r.gpr[0] = u64::MAX;
        run(&[0xb8, 1, 0, 0, 0], 0x5000, &mut r, &mut m);
        assert_eq!(r.gpr[0], 1);
        // MOVB $2, AL keeps the rest: b0 02
        r.gpr[0] = 0x1100;
        run(&[0xb0, 2], 0x5000, &mut r, &mut m);
        assert_eq!(r.gpr[0], 0x1102);
        // MOVQ (R14)(AX*8), CX: 49 8b 0c c6
        r.gpr[14] = 0x9000;
        r.gpr[0] = 2;
        m.write(0x9010, &42u64.to_le_bytes()).unwrap();
        run(&[0x49, 0x8b, 0x0c, 0xc6], 0x5000, &mut r, &mut m);
        assert_eq!(r.gpr[1], 42);
    }

    #[test]
    fn not_emulated() {
        for code in [
            &[0x0f, 0x11, 0x44, 0x24, 0x08][..], // MOVUPS X0, 0x8(SP)
            &[0x64, 0x48, 0x8b, 0x04, 0x25, 0xf8, 0xff, 0xff, 0xff][..], // MOVQ FS:-8, AX
            &[0xf0, 0x48, 0x01, 0x03][..],       // LOCK ADDQ AX, (BX)
            &[0x88, 0xe0][..],                   // MOVB AH, AL
            &[0xff, 0xd0][..],                   // CALL AX
            &[0xc3][..],                         // RET
        ] {
            let d = decode(code, 0x1000);
            assert!(d.op.is_none(), "{} should not be emulated", d.text);
        }
    }

    /// Flags of CMP against the definitions of the conditions the
    /// compiler's branches use, over many operand pairs and widths.
    #[test]
    fn cmp_flags_match_the_conditions() {
        let vals: [u64; 12] = [
            0,
            1,
            2,
            0x7f,
            0x80,
            0xff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            u64::MAX,
        ];
        for size in [1u8, 2, 4, 8] {
            let m = mask(size);
            let bits = 8 * size as u32;
            let signed = |v: u64| ((v << (64 - bits)) as i64) >> (64 - bits);
            for &a in &vals {
                for &b in &vals {
                    let (a, b) = (a & m, b & m);
                    let (res, f) = alu(AluOp::Cmp, a, b, size);
                    assert_eq!(res, a.wrapping_sub(b) & m);
                    let cf = f & CF != 0;
                    let zf = f & ZF != 0;
                    let sf = f & SF != 0;
                    let of = f & OF != 0;
                    assert_eq!(cf, a < b, "JB {a:#x} {b:#x} /{size}");
                    assert_eq!(cf || zf, a <= b, "JBE");
                    assert_eq!(zf, a == b, "JE");
                    assert_eq!(sf != of, signed(a) < signed(b), "JL {a:#x} {b:#x} /{size}");
                    assert_eq!(zf || sf != of, signed(a) <= signed(b), "JLE");
                    let (sum, fa) = alu(AluOp::Add, a, b, size);
                    assert_eq!(sum, a.wrapping_add(b) & m);
                    assert_eq!(fa & CF != 0, (a as u128 + b as u128) > m as u128);
                    let exact = signed(a) as i128 + signed(b) as i128;
                    assert_eq!(fa & OF != 0, exact != signed(sum) as i128, "ADD OF");
                }
            }
        }
        // TEST AL, $2 (a8 02) when bit 1 is set: ZF clear, CF/OF clear.
        let (_, f) = alu(AluOp::Test, 0x3, 0x2, 1);
        assert_eq!(f & (ZF | CF | OF), 0);
        // Parity of the low byte: 0x3 has two bits, even.
        assert_eq!(alu(AluOp::Or, 0x3, 0, 8).1 & PF, PF);
        assert_eq!(alu(AluOp::Or, 0x1, 0, 8).1 & PF, 0);
    }
}

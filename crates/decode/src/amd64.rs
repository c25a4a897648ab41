//! amd64: direct calls and SP-relative stores, decoded with iced-x86, and
//! the [`facts`] of one decoded instruction.
//!
//! "Zero" stores are the ones a prologue uses to clear slots: from X15 (the
//! zero register of Go's ABIInternal), from an immediate 0, or from a
//! general register that an earlier instruction in the same straight-line
//! run cleared (`XORL R, R` or `MOVQ $0, R`), as go1.17-1.19 do with R13.
//!
//! Which mnemonics store is decided in one place, [`store_kind`], for the
//! events and the facts alike.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};

use crate::facts::{Call, Facts, ImmOp, MemOp, SpMem, Value};
use crate::Event;

/// Whether an operand is an immediate, of any encoded width. Shared by the
/// disassembler and the trace emulator.
pub fn is_immediate(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// What a data-movement mnemonic writes to a memory destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    /// The whole source operand: `MOV`, `MOVUPS`, `MOVAPS`, `MOVDQU`,
    /// `MOVDQA`, `MOVQ`, `MOVD` (the moves Go's prologues, closure slots
    /// and deferBits stores use).
    Whole,
    /// The low lane of an XMM register: `MOVSS`, `MOVSD` (scalar floats).
    /// The facts report these stores; the events leave them out.
    Lane,
}

/// The one list of amd64 stores: which mnemonics store their source to a
/// memory first operand, and how.
fn store_kind(m: Mnemonic) -> Option<Store> {
    match m {
        Mnemonic::Mov
        | Mnemonic::Movups
        | Mnemonic::Movaps
        | Mnemonic::Movdqu
        | Mnemonic::Movdqa
        | Mnemonic::Movq
        | Mnemonic::Movd => Some(Store::Whole),
        Mnemonic::Movss | Mnemonic::Movsd => Some(Store::Lane),
        _ => None,
    }
}

/// A store the events ([`scan`], [`scan_flow`]) report.
fn is_store_mnemonic(m: Mnemonic) -> bool {
    store_kind(m) == Some(Store::Whole)
}

/// Bit for a general-purpose register's 64-bit family, if it is one.
fn gpr_bit(r: Register) -> Option<u32> {
    if !r.is_gpr() {
        return None;
    }
    Some(1 << (r.full_register().number() as u32 & 31))
}

pub fn scan(code: &[u8], entry: u64, sink: impl FnMut(Event)) {
    scan_impl(code, entry, false, sink)
}

/// [`scan`] plus the flow events (see [`crate::scan_flow`]).
pub fn scan_flow(code: &[u8], entry: u64, sink: impl FnMut(Event)) {
    scan_impl(code, entry, true, sink)
}

/// Register number of a 64-bit general register family (`AX`=0 .. `R15`=15),
/// [`crate::SP`] for `RSP`.
fn reg_no(r: Register) -> Option<u8> {
    if !r.is_gpr() {
        return None;
    }
    let f = r.full_register();
    if f == Register::RSP {
        return Some(crate::SP);
    }
    let n = (f as u32).checked_sub(Register::RAX as u32)?;
    (n < 16).then_some(n as u8)
}

fn flow_events(ins: &Instruction, sink: &mut impl FnMut(Event)) {
    let pc = ins.ip();
    let next = ins.next_ip();
    let m = ins.mnemonic();
    match ins.flow_control() {
        FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
            let target = matches!(
                ins.op0_kind(),
                OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
            )
            .then(|| ins.near_branch_target());
            sink(Event::Jump {
                pc,
                next,
                target,
                cond: ins.flow_control() == FlowControl::ConditionalBranch,
            });
            return;
        }
        FlowControl::IndirectBranch => {
            sink(Event::Jump {
                pc,
                next,
                target: None,
                cond: false,
            });
            return;
        }
        FlowControl::Return => {
            sink(Event::Ret { pc, next });
            return;
        }
        FlowControl::Exception | FlowControl::Interrupt => {
            sink(Event::Halt { pc, next });
            return;
        }
        FlowControl::IndirectCall => {
            sink(Event::CallIndirect { pc });
            return;
        }
        FlowControl::Call => return,
        _ => {}
    }
    if ins.op_count() != 2 {
        if ins.op_count() == 1 && ins.op0_kind() == OpKind::Register && m != Mnemonic::Push {
            if let Some(r) = reg_no(ins.op0_register()) {
                sink(Event::Clobber { pc, reg: r });
            }
        }
        return;
    }
    let (k0, k1) = (ins.op0_kind(), ins.op1_kind());
    if m == Mnemonic::Lea && k0 == OpKind::Register && k1 == OpKind::Memory {
        return lea_event(ins, sink);
    }
    if m == Mnemonic::Mov && k0 == OpKind::Register && k1 == OpKind::Register {
        if let (Some(dst), Some(src)) = (reg_no(ins.op0_register()), reg_no(ins.op1_register())) {
            match ins.op0_register().size() {
                8 => sink(Event::Move {
                    pc,
                    dst,
                    src,
                    narrow: false,
                }),
                4 => sink(Event::Move {
                    pc,
                    dst,
                    src,
                    narrow: true,
                }),
                _ => sink(Event::Clobber { pc, reg: dst }),
            }
        }
        return;
    }
    if k0 == OpKind::Memory && is_store_mnemonic(m) && ins.memory_index() == Register::None {
        if let Some(base) = reg_no(ins.memory_base()) {
            let src = if k1 == OpKind::Register {
                reg_no(ins.op1_register())
            } else {
                None
            };
            sink(Event::Store {
                pc,
                base,
                offset: ins.memory_displacement64() as i64,
                src,
                size: ins.memory_size().size() as u8,
            });
        }
        return;
    }
    if k0 == OpKind::Register {
        let Some(dst) = reg_no(ins.op0_register()) else {
            return;
        };
        let value = if m == Mnemonic::Mov && is_immediate(k1) {
            Some(ins.immediate(1))
        } else if m == Mnemonic::Xor
            && k1 == OpKind::Register
            && ins.op1_register() == ins.op0_register()
        {
            Some(0)
        } else {
            None
        };
        if let Some(value) = value {
            return sink(Event::Const {
                pc,
                reg: dst,
                value,
            });
        }
        if m == Mnemonic::Mov
            && k1 == OpKind::Memory
            && ins.memory_index() == Register::None
            && ins.op0_register().size() == 8
        {
            if let Some(base) = reg_no(ins.memory_base()) {
                sink(Event::Load {
                    pc,
                    dst,
                    base,
                    offset: ins.memory_displacement64() as i64,
                });
                return;
            }
        }
        if !matches!(m, Mnemonic::Cmp | Mnemonic::Test) {
            sink(Event::Clobber { pc, reg: dst });
        }
    }
}

/// The event of `LEAQ mem, reg`: a static address, SP + offset, or
/// another register + offset.
fn lea_event(ins: &Instruction, sink: &mut impl FnMut(Event)) {
    let pc = ins.ip();
    let Some(dst) = reg_no(ins.op0_register()) else {
        return;
    };
    if ins.memory_base() == Register::RIP {
        sink(Event::AddrLoad {
            pc,
            reg: dst,
            addr: ins.ip_rel_memory_address(),
        });
    } else if ins.memory_base() == Register::RSP && ins.memory_index() == Register::None {
        sink(Event::SpAddr {
            pc,
            reg: dst,
            offset: ins.memory_displacement64() as i64,
        });
    } else if let (Some(base), Register::None) = (reg_no(ins.memory_base()), ins.memory_index()) {
        sink(Event::RegAddr {
            pc,
            reg: dst,
            base,
            offset: ins.memory_displacement64() as i64,
        });
    } else {
        sink(Event::Clobber { pc, reg: dst });
    }
}

fn scan_impl(code: &[u8], entry: u64, flow: bool, mut sink: impl FnMut(Event)) {
    let mut dec = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    // GPRs known to hold zero in the current straight-line run.
    let mut zero_regs: u32 = 0;
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if ins.is_invalid() {
            zero_regs = 0;
            continue;
        }
        let m = ins.mnemonic();
        if flow {
            flow_events(&ins, &mut sink);
        }
        if m == Mnemonic::Call && ins.op0_kind() == OpKind::NearBranch64 {
            sink(Event::Call {
                pc: ins.ip(),
                target: ins.near_branch_target(),
            });
        }
        if ins.op_count() == 2
            && ins.op0_kind() == OpKind::Memory
            && ins.memory_base() == Register::RSP
            && ins.memory_index() == Register::None
            && is_store_mnemonic(m)
        {
            let zero = match ins.op1_kind() {
                OpKind::Register => {
                    let r = ins.op1_register();
                    r == Register::XMM15 || gpr_bit(r).is_some_and(|b| zero_regs & b != 0)
                }
                k if is_immediate(k) => ins.immediate(1) == 0,
                _ => false,
            };
            sink(Event::StackStore {
                pc: ins.ip(),
                offset: ins.memory_displacement64() as i64,
                size: ins.memory_size().size() as u8,
                zero,
            });
        }
        // Track registers cleared by XOR r,r or MOV r,$0.
        if ins.flow_control() != FlowControl::Next {
            zero_regs = 0;
        } else if ins.op_count() >= 1 && ins.op0_kind() == OpKind::Register {
            if let Some(bit) = gpr_bit(ins.op0_register()) {
                let clears = (m == Mnemonic::Xor
                    && ins.op1_kind() == OpKind::Register
                    && ins.op1_register() == ins.op0_register())
                    || (m == Mnemonic::Mov
                        && ins.op1_kind() != OpKind::Register
                        && ins.op1_kind() != OpKind::Memory
                        && ins.immediate(1) == 0);
                if clears {
                    zero_regs |= bit;
                } else if !matches!(m, Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Push) {
                    zero_regs &= !bit;
                }
            }
        }
    }
}

/// The facts of one decoded instruction (see [`crate::facts`]): its
/// call, its access to an `off(SP)` slot, a register-with-constant
/// operation, `LEAQ off(SP), R`, the register it writes and a register
/// copy.
#[inline]
pub fn facts(ins: &Instruction) -> Facts {
    let mut f = Facts::default();
    let m = ins.mnemonic();
    if m == Mnemonic::Call {
        f.call = Some(match ins.op_kind(0) {
            OpKind::NearBranch64 | OpKind::NearBranch32 => Call::Direct(ins.near_branch_target()),
            _ => Call::Indirect,
        });
        return f;
    }
    let reg = |r: Register| r.full_register() as u16;
    let n = ins.op_count();
    let sp_mem = |k: u32| {
        ins.op_kind(k) == OpKind::Memory
            && ins.memory_base() == Register::RSP
            && ins.memory_index() == Register::None
    };
    let imm = |k: u32| -> Option<u64> { is_immediate(ins.op_kind(k)).then(|| ins.immediate(k)) };
    let size = ins.memory_size().size() as u8;
    let off = ins.memory_displacement64() as i64;
    if n == 2 && sp_mem(0) {
        let op = if store_kind(m).is_some() {
            match ins.op_kind(1) {
                OpKind::Register => {
                    let r = ins.op_register(1);
                    if r == Register::XMM15 {
                        MemOp::Store(Value::Imm(0))
                    } else {
                        MemOp::Store(Value::Reg(reg(r)))
                    }
                }
                _ => MemOp::Store(Value::Imm(imm(1).unwrap_or(0))),
            }
        } else if m == Mnemonic::Test {
            imm(1).map_or(MemOp::Other, MemOp::Test)
        } else {
            MemOp::Other
        };
        f.sp = Some(SpMem { off, size, op });
    } else if n == 2 && sp_mem(1) && ins.op_kind(0) == OpKind::Register {
        let d = reg(ins.op_register(0));
        if m == Mnemonic::Lea {
            f.lea_sp = Some((d, off));
        } else {
            let op = if matches!(m, Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx) {
                MemOp::Load(d)
            } else {
                MemOp::Other
            };
            f.sp = Some(SpMem { off, size, op });
        }
        f.dest = Some(d);
    } else if n >= 1 && ins.op_kind(0) == OpKind::Register {
        let d = reg(ins.op_register(0));
        if let Some(v) = imm(1) {
            f.imm_op = match m {
                Mnemonic::Or => Some((ImmOp::Or(v), d, d)),
                Mnemonic::And => Some((ImmOp::And(v), d, d)),
                Mnemonic::Test => Some((ImmOp::Test(v), d, d)),
                _ => None,
            };
        } else if n == 2 && ins.op_kind(1) == OpKind::Register && m == Mnemonic::Mov {
            f.copy = Some((d, reg(ins.op_register(1))));
        }
        if !matches!(
            m,
            Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Push | Mnemonic::Bt
        ) {
            f.dest = Some(d);
        }
    }
    f
}

/// See [`crate::first_atomic_store`].
pub fn first_atomic_store(code: &[u8], entry: u64) -> Option<u8> {
    let mut d = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    while d.can_decode() {
        d.decode_out(&mut ins);
        let mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        if ins.mnemonic() == Mnemonic::Xchg && mem {
            return u8::try_from(ins.memory_size().size()).ok();
        }
    }
    None
}

pub fn call_candidates(text: &[u8], base: u64, targets: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for i in memchr::memchr_iter(0xe8, text) {
        let Some(rel) = text.get(i + 1..i + 5) else {
            break;
        };
        let rel = i32::from_le_bytes([rel[0], rel[1], rel[2], rel[3]]) as i64;
        let pc = base + i as u64;
        let t = (pc as i64).wrapping_add(5).wrapping_add(rel) as u64;
        if targets.contains(&t) {
            out.push(pc);
        }
    }
    out
}

/// [`crate::mem_writes`] on amd64: an instruction whose first operand is a
/// memory operand without an index writes it, except the comparisons and
/// tests (Go's code has no other memory-first instruction that only reads).
pub fn mem_writes(code: &[u8], entry: u64, mut sink: impl FnMut(crate::MemWrite)) {
    let mut dec = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if ins.is_invalid()
            || ins.op_count() == 0
            || ins.op0_kind() != OpKind::Memory
            || ins.memory_index() != Register::None
            || matches!(
                ins.mnemonic(),
                Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Bt | Mnemonic::Lea | Mnemonic::Nop
            )
        {
            continue;
        }
        if let Some(base) = reg_no(ins.memory_base()) {
            sink(crate::MemWrite {
                pc: ins.ip(),
                base,
                offset: ins.memory_displacement64() as i64,
                size: ins.memory_size().size() as u8,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(code: &[u8]) -> Vec<Event> {
        let mut v = Vec::new();
        scan(code, 0x1000, |e| v.push(e));
        v
    }

    // Byte sequences are the spec's examples (§3.1), as `go tool objdump`
    // prints them.
    #[test]
    fn byte_store_and_call() {
        // MOVB $0x0, 0x7(SP) ; CALL +0
        let v = events(&[0xc6, 0x44, 0x24, 0x07, 0x00, 0xe8, 0, 0, 0, 0]);
        assert_eq!(
            v,
            vec![
                Event::StackStore {
                    pc: 0x1000,
                    offset: 7,
                    size: 1,
                    zero: true
                },
                Event::Call {
                    pc: 0x1005,
                    target: 0x100a
                },
            ]
        );
    }

    #[test]
    fn zero_register_tracking() {
        // MOVUPS X15, 0x28(SP)
        let v = events(&[0x44, 0x0f, 0x11, 0x7c, 0x24, 0x28]);
        assert_eq!(
            v,
            vec![Event::StackStore {
                pc: 0x1000,
                offset: 0x28,
                size: 16,
                zero: true
            }]
        );
        // XORL R13, R13 ; MOVQ R13, 0x10(SP) ; MOVQ AX, 0x18(SP)
        let v = events(&[
            0x45, 0x31, 0xed, 0x4c, 0x89, 0x6c, 0x24, 0x10, 0x48, 0x89, 0x44, 0x24, 0x18,
        ]);
        assert_eq!(
            v,
            vec![
                Event::StackStore {
                    pc: 0x1003,
                    offset: 0x10,
                    size: 8,
                    zero: true
                },
                Event::StackStore {
                    pc: 0x1008,
                    offset: 0x18,
                    size: 8,
                    zero: false
                },
            ]
        );
    }

    fn flow(code: &[u8]) -> Vec<Event> {
        let mut v = Vec::new();
        scan_flow(code, 0x1000, |e| v.push(e));
        v
    }

    // Byte sequences from the spec's listings (§3.1-3.3), assembled.
    #[test]
    fn flow_events_amd64() {
        // LEAQ 0x10(IP), AX ; TESTL AX, AX ; JNE -4 ; RET
        let v = flow(&[
            0x48, 0x8d, 0x05, 0x10, 0, 0, 0, 0x85, 0xc0, 0x75, 0xfc, 0xc3,
        ]);
        assert_eq!(
            v,
            vec![
                Event::AddrLoad {
                    pc: 0x1000,
                    reg: 0,
                    addr: 0x1017
                },
                Event::Jump {
                    pc: 0x1009,
                    next: 0x100b,
                    target: Some(0x1007),
                    cond: true
                },
                Event::Ret {
                    pc: 0x100b,
                    next: 0x100c
                },
            ]
        );
        // LEAQ 0x18(SP), AX ; MOVQ CX, 0(AX) ; MOVQ 0x8(SP), DX
        let v = flow(&[
            0x48, 0x8d, 0x44, 0x24, 0x18, 0x48, 0x89, 0x08, 0x48, 0x8b, 0x54, 0x24, 0x08,
        ]);
        assert_eq!(
            v,
            vec![
                Event::SpAddr {
                    pc: 0x1000,
                    reg: 0,
                    offset: 0x18
                },
                Event::Store {
                    pc: 0x1005,
                    base: 0,
                    offset: 0,
                    src: Some(1),
                    size: 8
                },
                Event::Load {
                    pc: 0x1008,
                    dst: 2,
                    base: crate::SP,
                    offset: 8
                },
            ]
        );
    }

    #[test]
    fn candidates_match_targets() {
        let text = [0x90, 0xe8, 0x0a, 0, 0, 0, 0x90];
        assert_eq!(call_candidates(&text, 0x2000, &[0x2010]), vec![0x2001]);
        assert!(call_candidates(&text, 0x2000, &[0x2011]).is_empty());
    }
}

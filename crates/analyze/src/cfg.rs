//! Control flow of one function: basic blocks from the decoded branches,
//! dominators, back edges and natural loops.
//!
//! Blocks start at the entry, at every branch target inside the function
//! and after every branch, return, trap or call that never returns. A
//! conditional branch has two successors, an unconditional one its target,
//! an indirect jump its jump table's targets when known (else none), a
//! return, trap or call that never returns (`runtime.gopanic`, the bounds
//! check panics, ...: see [`NoReturn`]) none; any other block falls
//! through. The never-returning calls matter: the compiler places such a
//! call's block anywhere, often right before a block of a loop, and a
//! fall-through edge from it would enter the loop around its header, so
//! the header would no longer dominate the loop and the loop would be
//! missed (go1.22+ `go/parser.(*resolver).Visit`, whose range loop inside
//! a type switch follows a `CALL runtime.gopanic`). Dominators come from the iterative algorithm of Cooper, Harvey
//! and Kennedy over reverse postorder; an edge `u -> h` whose head `h`
//! dominates `u` is a back edge, and its natural loop is `h` plus every
//! block that reaches `u` without passing through `h`. A backward `goto`
//! gives such a loop just as `for` does.

use deferscope_decode::Event;

/// How a block ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    Fall,
    Jump,
    Cond,
    Indirect,
    Ret,
    Halt,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub start: u64,
    pub end: u64,
    pub term: Term,
    pub succs: Vec<usize>,
    pub preds: Vec<usize>,
}

/// A natural loop: its header block and all its blocks (sorted).
#[derive(Clone, Debug)]
pub struct Loop {
    pub header: usize,
    pub blocks: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Cfg {
    pub blocks: Vec<Block>,
}

/// Direct calls that never return: the entries of their targets (sorted)
/// and the length of a direct call instruction (5 bytes on amd64, 4 on
/// arm64), where the next block starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReturn<'a> {
    pub targets: &'a [u64],
    pub call_len: u64,
}

impl NoReturn<'_> {
    fn at(&self, e: &Event) -> Option<(u64, u64)> {
        match *e {
            Event::Call { pc, target } if self.targets.binary_search(&target).is_ok() => {
                Some((pc, pc + self.call_len))
            }
            _ => None,
        }
    }
}

impl Cfg {
    /// Build the graph of the code `[entry, end)` from its flow events.
    pub fn build(entry: u64, end: u64, events: &[Event]) -> Cfg {
        Cfg::build_with_tables(entry, end, events, &Default::default(), NoReturn::default())
    }

    /// Like [`Cfg::build`], with the targets of indirect jumps that are
    /// known (jump tables), keyed by the jump's pc, and the calls that
    /// never return.
    pub fn build_with_tables(
        entry: u64,
        end: u64,
        events: &[Event],
        tables: &std::collections::HashMap<u64, Vec<u64>>,
        noreturn: NoReturn<'_>,
    ) -> Cfg {
        let inside = |a: u64| a >= entry && a < end;
        let mut leaders = vec![entry];
        for e in events {
            match *e {
                Event::Jump {
                    pc, next, target, ..
                } => {
                    leaders.push(next);
                    if let Some(t) = tables.get(&pc) {
                        leaders.extend(t.iter().copied().filter(|&a| inside(a)));
                    }
                    if let Some(t) = target.filter(|&t| inside(t)) {
                        leaders.push(t);
                    }
                }
                Event::Ret { next, .. } | Event::Halt { next, .. } => leaders.push(next),
                _ => {
                    if let Some((_, next)) = noreturn.at(e) {
                        leaders.push(next);
                    }
                }
            }
        }
        leaders.retain(|&a| inside(a));
        leaders.sort_unstable();
        leaders.dedup();
        let mut blocks: Vec<Block> = leaders
            .iter()
            .enumerate()
            .map(|(i, &s)| Block {
                start: s,
                end: leaders.get(i + 1).copied().unwrap_or(end),
                term: Term::Fall,
                succs: Vec::new(),
                preds: Vec::new(),
            })
            .collect();
        let index = |a: u64| leaders.binary_search(&a).ok();
        let containing = |a: u64| leaders.partition_point(|&s| s <= a).checked_sub(1);
        let mut targets: Vec<Option<u64>> = vec![None; blocks.len()];
        let mut table_of: Vec<Option<u64>> = vec![None; blocks.len()];
        for e in events {
            let (pc, term, target) = match *e {
                Event::Jump {
                    pc, target, cond, ..
                } => (
                    pc,
                    match (target, cond) {
                        (None, _) => Term::Indirect,
                        (Some(_), true) => Term::Cond,
                        (Some(_), false) => Term::Jump,
                    },
                    target,
                ),
                Event::Ret { pc, .. } => (pc, Term::Ret, None),
                Event::Halt { pc, .. } => (pc, Term::Halt, None),
                _ => match noreturn.at(e) {
                    Some((pc, _)) => (pc, Term::Halt, None),
                    None => continue,
                },
            };
            if let Some(b) = containing(pc) {
                blocks[b].term = term;
                targets[b] = target;
                if term == Term::Indirect && tables.contains_key(&pc) {
                    table_of[b] = Some(pc);
                }
            }
        }
        let n = blocks.len();
        for b in 0..n {
            let mut s = Vec::new();
            match blocks[b].term {
                Term::Fall | Term::Cond if b + 1 < n => s.push(b + 1),
                _ => {}
            }
            if matches!(blocks[b].term, Term::Jump | Term::Cond) {
                if let Some(t) = targets[b].and_then(index) {
                    s.push(t);
                }
            }
            if let Some(t) = table_of[b].and_then(|pc| tables.get(&pc)) {
                s.extend(t.iter().filter_map(|&a| index(a)));
            }
            s.sort_unstable();
            s.dedup();
            for &t in &s {
                blocks[t].preds.push(b);
            }
            blocks[b].succs = s;
        }
        Cfg { blocks }
    }

    /// Some indirect jump's targets are not known (no jump table found):
    /// a block without predecessors may then be one of them.
    pub fn has_unknown_jumps(&self) -> bool {
        self.blocks
            .iter()
            .any(|b| b.term == Term::Indirect && b.succs.is_empty())
    }

    /// The block holding `pc`.
    pub fn block_of(&self, pc: u64) -> Option<usize> {
        let i = self
            .blocks
            .partition_point(|b| b.start <= pc)
            .checked_sub(1)?;
        (pc < self.blocks[i].end).then_some(i)
    }

    /// Blocks reachable from the entry, in reverse postorder.
    pub fn rpo(&self) -> Vec<usize> {
        let n = self.blocks.len();
        let mut seen = vec![false; n];
        let mut post = Vec::with_capacity(n);
        if n == 0 {
            return post;
        }
        // Iterative DFS: (block, next successor index).
        let mut stack = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some(&mut (b, ref mut i)) = stack.last_mut() {
            if let Some(&s) = self.blocks[b].succs.get(*i) {
                *i += 1;
                if !seen[s] {
                    seen[s] = true;
                    stack.push((s, 0));
                }
            } else {
                post.push(b);
                stack.pop();
            }
        }
        post.reverse();
        post
    }

    /// Immediate dominators (`None` for unreachable blocks; the entry is
    /// its own).
    pub fn idoms(&self) -> Vec<Option<usize>> {
        let rpo = self.rpo();
        let mut order = vec![usize::MAX; self.blocks.len()];
        for (i, &b) in rpo.iter().enumerate() {
            order[b] = i;
        }
        let mut idom: Vec<Option<usize>> = vec![None; self.blocks.len()];
        if rpo.is_empty() {
            return idom;
        }
        idom[rpo[0]] = Some(rpo[0]);
        let mut changed = true;
        while changed {
            changed = false;
            for &b in &rpo[1..] {
                let mut new: Option<usize> = None;
                for &p in &self.blocks[b].preds {
                    if idom[p].is_none() {
                        continue;
                    }
                    new = Some(match new {
                        None => p,
                        Some(mut x) => {
                            let mut y = p;
                            while x != y {
                                while order[x] > order[y] {
                                    x = idom[x].unwrap_or(rpo[0]);
                                }
                                while order[y] > order[x] {
                                    y = idom[y].unwrap_or(rpo[0]);
                                }
                            }
                            x
                        }
                    });
                }
                if new.is_some() && idom[b] != new {
                    idom[b] = new;
                    changed = true;
                }
            }
        }
        idom
    }

    /// Natural loops, one per header (back edges to the same header merged).
    pub fn loops(&self) -> Vec<Loop> {
        self.loops_with(&self.idoms())
    }

    /// [`Cfg::loops`] from the immediate dominators [`Cfg::idoms`] gave.
    /// Each back edge's body is collected by a walk over its own blocks
    /// only (a generation mark per block, no whole-graph pass per edge).
    pub fn loops_with(&self, idom: &[Option<usize>]) -> Vec<Loop> {
        let dominates = |h: usize, mut u: usize| loop {
            if u == h {
                return true;
            }
            match idom[u] {
                Some(d) if d != u => u = d,
                _ => return false,
            }
        };
        let n = self.blocks.len();
        let mut out: Vec<Loop> = Vec::new();
        // Header block -> its loop in `out`.
        let mut loop_of: Vec<Option<usize>> = vec![None; n];
        // mark[b] == gen: b is in the body being collected.
        let mut mark: Vec<u32> = vec![0; n];
        let mut gen = 0u32;
        let mut body: Vec<usize> = Vec::new();
        let mut work: Vec<usize> = Vec::new();
        for (u, b) in self.blocks.iter().enumerate() {
            if idom[u].is_none() {
                continue;
            }
            for &h in &b.succs {
                if !dominates(h, u) {
                    continue;
                }
                gen += 1;
                body.clear();
                mark[h] = gen;
                body.push(h);
                work.clear();
                work.push(u);
                while let Some(x) = work.pop() {
                    if mark[x] == gen {
                        continue;
                    }
                    mark[x] = gen;
                    body.push(x);
                    work.extend(self.blocks[x].preds.iter().copied());
                }
                body.sort_unstable();
                match loop_of[h] {
                    Some(k) => {
                        let l = &mut out[k];
                        l.blocks.extend_from_slice(&body);
                        l.blocks.sort_unstable();
                        l.blocks.dedup();
                    }
                    None => {
                        loop_of[h] = Some(out.len());
                        out.push(Loop {
                            header: h,
                            blocks: body.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jump(pc: u64, target: u64, cond: bool) -> Event {
        Event::Jump {
            pc,
            next: pc + 2,
            target: Some(target),
            cond,
        }
    }

    /// entry: 0..4; loop header 4..8 (cond exit to 12); body 8..12 jumps
    /// back to 4; exit 12..14 returns.
    #[test]
    fn one_loop() {
        let ev = [
            jump(6, 12, true),
            jump(10, 4, false),
            Event::Ret { pc: 12, next: 14 },
        ];
        let g = Cfg::build(0, 14, &ev);
        let starts: Vec<u64> = g.blocks.iter().map(|b| b.start).collect();
        assert_eq!(starts, vec![0, 4, 8, 12]);
        let loops = g.loops();
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].header, 1);
        assert_eq!(loops[0].blocks, vec![1, 2]);
        assert_eq!(g.block_of(9), Some(2));
    }

    /// A block ending in a call that never returns falls into a loop's
    /// body: with the call known, the loop is found; without, the edge
    /// from outside into the body hides it (the header no longer
    /// dominates the body).
    /// 0..2 branches to the panic block 4 or falls to 2..4, which jumps to
    /// the header 12; 4..9 calls a panic function (5 bytes at 4) and would
    /// fall into the body 9..12, which falls to the header 12..14; the
    /// header exits to 16 or falls to 14..16, which jumps back to the body.
    #[test]
    fn noreturn_call_before_loop_body() {
        let ev = [
            jump(0, 4, true),
            jump(2, 12, false),
            Event::Call { pc: 4, target: 100 },
            jump(12, 16, true),
            jump(14, 9, false),
            Event::Ret { pc: 16, next: 17 },
        ];
        let plain = Cfg::build(0, 17, &ev);
        assert!(plain.loops().is_empty());
        let targets = [100u64];
        let g = Cfg::build_with_tables(
            0,
            17,
            &ev,
            &Default::default(),
            NoReturn {
                targets: &targets,
                call_len: 5,
            },
        );
        let starts: Vec<u64> = g.blocks.iter().map(|b| b.start).collect();
        assert_eq!(starts, vec![0, 2, 4, 9, 12, 14, 16]);
        assert_eq!(g.blocks[2].term, Term::Halt);
        assert!(g.blocks[2].succs.is_empty());
        let loops = g.loops();
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].header, 4);
        assert_eq!(loops[0].blocks, vec![3, 4, 5]);
    }

    /// A forward branch makes no loop.
    #[test]
    fn no_loop() {
        let ev = [jump(2, 8, true), Event::Ret { pc: 8, next: 9 }];
        let g = Cfg::build(0, 9, &ev);
        assert!(g.loops().is_empty());
    }
}

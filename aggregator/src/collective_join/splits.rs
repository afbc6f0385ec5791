//! Communicators made by `ncclCommSplit`. No rank knows the new
//! communicator's size or its own rank in it: NCCL numbers the members of
//! each color by their key, ties broken by their rank in the parent. So the
//! join numbers them the same way once every rank of the parent has reported
//! its part in the split, and holds the calls made on a split communicator
//! until then. A split of a split takes the parent's numbering from here.

use std::collections::VecDeque;

use foldhash::HashMap;

use super::{Proc, RankCall};

/// Calls held per split communicator while its split is incomplete; past
/// this, the oldest are dropped (a part that never comes: its rank died in
/// the split, which then never returned anywhere).
const WAITING_MAX: usize = 1 << 16;

/// One rank's part in a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPart {
    pub parent: u64,
    /// Which of the parent's splits, from 0.
    pub nth: u64,
    /// The caller in the parent; -1 when the parent is itself a split.
    pub parent_rank: i32,
    pub parent_nranks: i32,
    /// Negative: NCCL_SPLIT_NOCOLOR, a member of no new communicator.
    pub color: i32,
    pub key: i32,
    /// The new communicator (0 for no color).
    pub communicator: u64,
    pub host: String,
    pub pid: u32,
}

#[derive(Debug, Default)]
pub struct Splits {
    /// Parts of splits not yet complete, by (parent, nth).
    gathering: HashMap<(u64, u64), Vec<SplitPart>>,
    /// Parts of splits of split communicators not numbered yet.
    orphans: HashMap<u64, Vec<SplitPart>>,
    /// Every numbered split communicator: its members' (rank, size).
    numbered: HashMap<u64, HashMap<Proc, (u32, u32)>>,
    /// Calls on split communicators not numbered yet.
    waiting: HashMap<u64, VecDeque<RankCall>>,
}

impl Splits {
    /// Takes one rank's part in a split; returns the calls held for the
    /// communicators it completed, now numbered, in arrival order.
    pub fn part(&mut self, mut part: SplitPart) -> Vec<(u64, RankCall)> {
        if part.parent_rank < 0 {
            let proc = (part.host.clone(), part.pid);
            match self.numbered.get(&part.parent).and_then(|m| m.get(&proc)) {
                Some(&(rank, nranks)) => (part.parent_rank, part.parent_nranks) = (rank as i32, nranks as i32),
                None => {
                    self.orphans.entry(part.parent).or_default().push(part);
                    return Vec::new();
                }
            }
        }
        let key = (part.parent, part.nth);
        let parts = self.gathering.entry(key).or_default();
        let proc = |p: &SplitPart| (p.host.clone(), p.pid);
        if parts.iter().any(|p| proc(p) == proc(&part)) {
            return Vec::new(); // a replayed batch
        }
        let nranks = part.parent_nranks;
        parts.push(part);
        if nranks <= 0 || parts.len() < nranks as usize {
            return Vec::new();
        }
        let parts = self.gathering.remove(&key).unwrap_or_default();
        let mut released = Vec::new();
        for communicator in number(parts, &mut self.numbered) {
            for call in self.waiting.remove(&communicator).into_iter().flatten() {
                released.extend(self.number(communicator, call).map(|call| (communicator, call)));
            }
            for orphan in self.orphans.remove(&communicator).into_iter().flatten() {
                released.extend(self.part(orphan));
            }
        }
        released
    }

    /// A call on a split communicator with its rank and size filled in, or
    /// None while its split is incomplete (the call is held).
    pub fn number(&mut self, communicator: u64, mut call: RankCall) -> Option<RankCall> {
        let proc = (call.host.clone(), call.pid);
        match self.numbered.get(&communicator) {
            Some(members) => {
                // A process that was no member: the call cannot be placed.
                let &(rank, nranks) = members.get(&proc)?;
                (call.rank, call.nranks) = (rank, nranks);
                Some(call)
            }
            None => {
                let waiting = self.waiting.entry(communicator).or_default();
                if waiting.len() >= WAITING_MAX {
                    waiting.pop_front();
                }
                waiting.push_back(call);
                None
            }
        }
    }

    /// Calls held for splits not yet complete.
    pub fn held(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }
}

/// Numbers the members of every color of one complete split; returns the
/// communicators numbered.
fn number(mut parts: Vec<SplitPart>, numbered: &mut HashMap<u64, HashMap<Proc, (u32, u32)>>) -> Vec<u64> {
    parts.retain(|p| p.color >= 0 && p.communicator != 0);
    parts.sort_by_key(|p| (p.communicator, p.key, p.parent_rank));
    let mut made = Vec::new();
    for members in parts.chunk_by(|a, b| a.communicator == b.communicator) {
        let size = members.len() as u32;
        let ranks = members.iter().enumerate().map(|(rank, p)| ((p.host.clone(), p.pid), (rank as u32, size)));
        numbered.insert(members[0].communicator, ranks.collect());
        made.push(members[0].communicator);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(parent_rank: i32, color: i32, key: i32) -> SplitPart {
        SplitPart {
            parent: 1,
            nth: 0,
            parent_rank,
            parent_nranks: 4,
            color,
            key,
            communicator: if color < 0 { 0 } else { 100 + color as u64 },
            host: format!("h{parent_rank}"),
            pid: 10,
        }
    }

    fn call(host: &str) -> RankCall {
        RankCall {
            job: "j".into(),
            host: host.into(),
            pid: 10,
            device: 0,
            rank: 0,
            global_rank: -1,
            world_size: -1,
            nranks: 0,
            seq: 0,
            op: 0,
            count: 1,
            datatype: 0,
            entry_ns: 0,
            exit_ns: 0,
        }
    }

    #[test]
    fn members_are_numbered_by_key_then_parent_rank_once_every_rank_took_part() {
        let mut splits = Splits::default();
        assert!(splits.number(101, call("h3")).is_none(), "held: the split is incomplete");
        // Color 1: ranks 1 and 3, rank 3 first by its key; rank 2 in no color.
        for p in [part(3, 1, 0), part(0, 0, 0), part(2, -1, 0)] {
            assert!(splits.part(p).is_empty());
        }
        let released = splits.part(part(1, 1, 7));
        assert_eq!(released.len(), 1);
        let (communicator, held) = &released[0];
        assert_eq!((*communicator, held.rank, held.nranks), (101, 0, 2));
        let numbered = splits.number(101, call("h1")).unwrap();
        assert_eq!((numbered.rank, numbered.nranks), (1, 2));
        assert_eq!(splits.number(100, call("h0")).map(|c| (c.rank, c.nranks)), Some((0, 1)));
        assert!(splits.number(100, call("h2")).is_none(), "no member");
        assert_eq!(splits.held(), 0);
    }

    #[test]
    fn a_split_of_a_split_is_numbered_once_its_parent_is() {
        let mut splits = Splits::default();
        // Split 101 (ranks 1, 3 of the parent) is split again before it is numbered.
        let child = |host: &str, key| SplitPart {
            parent: 101,
            nth: 0,
            parent_rank: -1,
            parent_nranks: -1,
            color: 5,
            key,
            communicator: 555,
            host: host.into(),
            pid: 10,
        };
        assert!(splits.part(child("h3", 1)).is_empty());
        assert!(splits.part(child("h1", 0)).is_empty());
        assert!(splits.number(555, call("h1")).is_none());
        for p in [part(0, 0, 0), part(1, 1, 0), part(2, 0, 0)] {
            splits.part(p);
        }
        let released = splits.part(part(3, 1, 0));
        assert_eq!(released.iter().map(|(c, call)| (*c, call.rank, call.nranks)).collect::<Vec<_>>(), [(555, 0, 2)]);
    }
}

use std::collections::HashSet;

use super::*;

const MS: u64 = 1_000_000;

/// Rank `rank` of a flat job: host `rank / 8`, device `rank % 8`, pid
/// 1000 + rank, the job's rank 100 + rank (so the two numberings differ).
fn call(rank: u32, nranks: u32, seq: u64, entry_ms: u64) -> RankCall {
    RankCall {
        job: "job".into(),
        host: format!("host-{}", rank / 8),
        pid: 1000 + rank,
        device: (rank % 8) as i32,
        rank,
        global_rank: 100 + rank as i32,
        world_size: -1,
        nranks,
        seq,
        op: 2,
        count: 1 << 20,
        datatype: 7,
        entry_ns: entry_ms * MS,
        exit_ns: entry_ms * MS + 3 * MS,
    }
}

/// Plays `nranks` ranks through `seqs` collectives; `arrive(rank, seq)`
/// gives each entry time in ms, or None for a rank that never arrives.
fn play(join: &mut CollectiveJoin, nranks: u32, seqs: u64, arrive: impl Fn(u32, u64) -> Option<u64>) -> Vec<Judged> {
    let mut judged = Vec::new();
    for seq in 0..seqs {
        for rank in 0..nranks {
            if let Some(at) = arrive(rank, seq) {
                judged.extend(join.add(42, call(rank, nranks, seq, at)));
            }
        }
    }
    judged
}

/// Every host of `hosts` reports its clock at `at_ms` (a heartbeat).
fn heartbeat(join: &mut CollectiveJoin, hosts: u32, at_ms: u64) {
    for host in 0..hosts {
        join.heard("job", &format!("host-{host}"), at_ms * MS, None);
    }
}

#[test]
fn a_healthy_job_is_complete_everywhere_and_nothing_is_stuck_however_long_it_is_quiet() {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    // Ranks spread by a millisecond around each step; nobody stands out.
    let judged = play(&mut join, 64, 50, |rank, seq| Some(seq * 100 + u64::from(rank % 3)));
    assert_eq!(judged.len(), 50);
    assert!(judged.iter().all(|j| j.verdict == Verdict::Complete), "{judged:?}");
    assert!(judged.iter().all(|j| j.hosts == 8 && j.arrived == 64 && j.role == "world"));
    assert_eq!(join.open_instances(), 0);
    heartbeat(&mut join, 8, 3_600_000);
    assert!(join.stuck().is_empty());
}

#[test]
fn the_late_rank_is_named_by_the_job_s_rank_with_its_communicator_s_and_how_late() {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    let judged =
        play(&mut join, 16, 10, |rank, seq| Some(seq * 100 + if rank == 13 { 40 } else { u64::from(rank % 2) }));
    for j in &judged {
        assert_eq!((&j.verdict, j.cause), (&Verdict::Straggler, None), "{j:?}");
        let last = j.last.as_ref().unwrap();
        let at = RankAt { rank: 13, global_rank: 113, host: "host-1".into(), device: 5 };
        assert_eq!(last.at, at);
        assert!((39 * MS..=40 * MS).contains(&last.late_ns), "{}", last.late_ns);
    }
}

/// Data-parallel groups hold one rank per host: the offset is learned from
/// many collectives, not from several ranks of a host in one.
#[test]
fn a_host_clock_offset_is_learned_with_one_rank_per_host_and_the_real_straggler_still_named() {
    for skew_ms in [40i64, -40] {
        let mut join = CollectiveJoin::new(JoinSettings::default());
        let mut judged = Vec::new();
        // 16 hosts, one rank each (rank r on host-r); host 2's clock is off;
        // rank 5 is 20 ms late at every fourth collective.
        for seq in 0..200u64 {
            for rank in 0..16u32 {
                let mut c = call(rank, 16, seq, 0);
                c.host = format!("host-{rank}");
                let late = if rank == 5 && seq % 4 == 0 { 20 } else { 0 };
                let skew = if rank == 2 { skew_ms } else { 0 };
                c.entry_ns = ((1_000 + seq * 100 + u64::from(rank % 2)) as i64 + late + skew) as u64 * MS;
                judged.extend(join.add(9, c));
            }
        }
        let offset_ms = join.host_offset_ns("host-2") as f64 / MS as f64;
        assert!((offset_ms - skew_ms as f64).abs() <= 1.0, "{offset_ms}");
        // Once the window holds enough collectives, only rank 5 stands out.
        let flagged: Vec<(u64, u32)> = judged
            .iter()
            .filter(|j| j.seq >= 20 && j.verdict == Verdict::Straggler)
            .map(|j| (j.seq, j.last.as_ref().unwrap().at.rank))
            .collect();
        let expected: Vec<(u64, u32)> = (20..200).filter(|s| s % 4 == 0).map(|s| (s, 5)).collect();
        assert_eq!(flagged, expected);
    }
}

#[test]
fn ranks_that_disagree_on_count_are_named_with_their_job_rank_host_and_device() {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    let mut judged = None;
    for rank in 0..8 {
        let mut c = call(rank, 8, 0, 10);
        if rank == 5 {
            c.count = 1000;
        }
        judged = judged.or(join.add(7, c));
    }
    let at = RankAt { rank: 5, global_rank: 105, host: "host-0".into(), device: 5 };
    let verdict = judged.unwrap().verdict;
    assert_eq!(verdict, Verdict::Mismatch { field: Field::Count, expected: 1 << 20, differing: vec![(at, 1000)] });
}

#[test]
fn a_hang_is_judged_in_event_time_once_every_live_host_reported_past_it() {
    let mut join = CollectiveJoin::new(JoinSettings { hang_after_ns: 1_000 * MS, ..JoinSettings::default() });
    // Rank 3 (host 0) stops after sequence 4; the others go on to 7.
    let judged = play(&mut join, 16, 8, |rank, seq| (rank != 3 || seq <= 4).then_some(seq * 100));
    assert_eq!(judged.len(), 5);
    // However long the aggregator waits, nothing is stuck until the hosts
    // say so: host 1 reported past the timeout, host 0 not yet.
    join.heard("job", "host-1", 2_000 * MS, None);
    join.heard("job", "host-0", 1_400 * MS, None);
    assert!(join.stuck().is_empty(), "host 0 has not reported far enough");
    join.heard("job", "host-0", 1_600 * MS, None);
    let hangs = join.stuck();
    assert_eq!(hangs.iter().map(|h| h.seq).collect::<Vec<_>>(), vec![5, 6]);
    let Verdict::Hang { missing } = &hangs[0].verdict else { panic!("{hangs:?}") };
    let at = RankAt { rank: 3, global_rank: 103, host: "host-0".into(), device: 3 };
    assert_eq!(missing, &[Missing { at, last_completed: Some(4), blocked: false, silent: false }]);
    assert_eq!((hangs[0].arrived, hangs[0].cause), (15, None), "the first is the cause");
    assert_eq!(hangs[1].cause, Some(Cause { communicator: 42, seq: 5, rank: 103 }), "the next, its consequence");
    join.heard("job", "host-0", 5_000 * MS, None);
    let later = join.stuck();
    assert_eq!(later.iter().map(|h| (h.seq, h.cause.map(|c| c.seq))).collect::<Vec<_>>(), [(7, Some(5))]);
    assert!(join.stuck().is_empty(), "each hang is reported once");
    assert_eq!(join.open_instances(), 0);
    // Should the missing rank come after all, the collective is judged
    // again as what it turned out to be; a replay of that changes nothing.
    let late = join.add(42, call(3, 16, 5, 900)).expect("judged again");
    assert_eq!((late.verdict, late.last.unwrap().late_ns), (Verdict::Straggler, 400 * MS));
    assert!(join.add(42, call(3, 16, 5, 900)).is_none());
}

/// Tensor parallelism inside a host, data parallelism across: rank 1 of
/// host 0 stops. Its tensor group waits for it (the cause); the data
/// groups of its peers wait for the peers, stuck in the tensor group
/// (consequences); its own data group waits for it too.
#[test]
fn when_several_communicators_hang_the_first_stuck_one_is_the_cause_and_the_rest_its_consequences() {
    let mut join = CollectiveJoin::new(JoinSettings { hang_after_ns: 1_000 * MS, ..JoinSettings::default() });
    let (hosts, tp) = (4u32, 4u32);
    let tp_comm = |host: u32| 1_000 + u64::from(host);
    let dp_comm = |local: u32| 2_000 + u64::from(local);
    let rank_call = |host: u32, local: u32, comm_rank: u32, nranks: u32, seq: u64, at_ms: u64| RankCall {
        job: "job".into(),
        host: format!("host-{host}"),
        pid: 500 + local,
        device: local as i32,
        rank: comm_rank,
        global_rank: (host * tp + local) as i32,
        world_size: (hosts * tp) as i32,
        nranks,
        seq,
        op: 2,
        count: 64,
        datatype: 7,
        entry_ns: at_ms * MS,
        exit_ns: at_ms * MS + 10,
    };
    let mut judged = Vec::new();
    for step in 0..4u64 {
        let t = step * 100;
        for host in 0..hosts {
            for local in 0..tp {
                // Host 0's rank 1 does step 2's tensor all-reduce no more.
                let stopped = host == 0 && local == 1 && step >= 2;
                // Its peers are stuck in that tensor all-reduce from step 2.
                let peer_stuck = host == 0 && step >= 3;
                if !stopped && !peer_stuck {
                    judged.extend(join.add(tp_comm(host), rank_call(host, local, local, tp, step, t + 10)));
                }
                // Host 0's ranks never get past step 2's tensor all-reduce.
                if !(stopped || host == 0 && step >= 2) {
                    judged.extend(join.add(dp_comm(local), rank_call(host, local, host, hosts, step, t + 50)));
                }
            }
        }
    }
    assert!(judged.iter().all(|j| j.verdict == Verdict::Complete), "{judged:?}");
    let roles: HashSet<(u64, &str)> = judged.iter().map(|j| (j.communicator, j.role)).collect();
    assert!(roles.contains(&(tp_comm(0), "tp")) && roles.contains(&(dp_comm(2), "dp")), "{roles:?}");
    heartbeat(&mut join, hosts, 2_000);
    let hangs = join.stuck();
    type Named = (u64, u64, Option<(u64, u64, i32)>);
    let summary: Vec<Named> =
        hangs.iter().map(|h| (h.communicator, h.seq, h.cause.map(|c| (c.communicator, c.seq, c.rank)))).collect();
    let root = Some((tp_comm(0), 2, 1));
    let mut expected = vec![(tp_comm(0), 2, None)];
    for seq in [2, 3] {
        expected.extend((0..tp).map(|local| (dp_comm(local), seq, root)));
    }
    assert_eq!(summary, expected, "the stopped rank's tensor group first, then everything waiting behind it");
    let Verdict::Hang { missing } = &hangs[0].verdict else { panic!() };
    assert_eq!((missing.len(), missing[0].at.global_rank, missing[0].blocked), (1, 1, false));
    let peers = hangs.iter().find(|h| h.communicator == dp_comm(2)).unwrap();
    let Verdict::Hang { missing } = &peers.verdict else { panic!() };
    assert!(missing.iter().all(|m| m.blocked && m.at.host == "host-0"), "{missing:?}");
}

#[test]
fn a_host_that_went_silent_is_reported_once_not_as_hangs_of_its_collectives() {
    let mut join = CollectiveJoin::new(JoinSettings { hang_after_ns: 1_000 * MS, ..JoinSettings::default() });
    // Host 1 (ranks 8-15) stops reporting after sequence 3.
    let judged = play(&mut join, 16, 6, |rank, seq| (rank < 8 || seq <= 3).then_some(seq * 100));
    assert_eq!(judged.len(), 4);
    join.heard("job", "host-1", 350 * MS, None);
    join.heard("job", "host-0", 3_000 * MS, None);
    let judged = join.stuck();
    assert_eq!(judged.len(), 1, "{judged:?}");
    assert_eq!(judged[0].verdict, Verdict::Silent { host: "host-1".into(), last_heard_ns: 350 * MS });
    join.heard("job", "host-0", 9_000 * MS, None);
    assert!(join.stuck().is_empty(), "reported once");
    // It comes back: its calls complete what waited for them.
    let back = play(&mut join, 16, 6, |rank, seq| (rank >= 8 && seq > 3).then_some(seq * 100));
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|j| j.verdict == Verdict::Complete));
}

/// Tensor groups of 4 inside 4 hosts, data groups across them: rank 6
/// (host 1) is 20 ms late at odd steps' tensor all-reduce; its host peers,
/// left as late, reach their data all-reduce late. Each host's calls in
/// time order, and (`host_major`) each host's whole run at once, hosts in
/// reverse: a host reports in its own order, never the fleet's.
fn victims_played(host_major: bool) -> Vec<Judged> {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    let (hosts, tp) = (4u32, 4u32);
    let mut calls = Vec::new();
    for step in 0..10u64 {
        let t = 1_000 + step * 100;
        for host in 0..hosts {
            for local in 0..tp {
                let global = host * tp + local;
                let base = |seq_comm: u64, comm_rank: u32, nranks: u32, at: u64| RankCall {
                    job: "job".into(),
                    host: format!("host-{host}"),
                    pid: 500 + local,
                    device: local as i32,
                    rank: comm_rank,
                    global_rank: global as i32,
                    world_size: (hosts * tp) as i32,
                    nranks,
                    seq: seq_comm,
                    op: 2,
                    count: 64,
                    datatype: 7,
                    entry_ns: at * MS + u64::from(global % 3) * 100_000,
                    exit_ns: at * MS,
                };
                let slow_step = step % 2 == 1 && host == 1;
                let tp_at = t + if slow_step && local == 2 { 20 } else { 0 };
                calls.push((1_000 + u64::from(host), base(step, local, tp, tp_at)));
                let dp_at = t + 50 + if slow_step { 20 } else { 0 };
                calls.push((2_000 + u64::from(local), base(step, host, hosts, dp_at)));
            }
        }
    }
    if host_major {
        calls.sort_by_key(|(_, c)| (std::cmp::Reverse(c.host.clone()), c.entry_ns));
    } else {
        calls.sort_by_key(|(_, c)| c.entry_ns);
    }
    calls.into_iter().filter_map(|(comm, call)| join.add(comm, call)).collect()
}

#[test]
fn a_peer_that_waited_for_the_straggler_names_it_as_its_cause_in_any_host_order() {
    for host_major in [false, true] {
        let judged = victims_played(host_major);
        let stragglers: Vec<&Judged> = judged.iter().filter(|j| j.verdict == Verdict::Straggler).collect();
        let roots: HashSet<i32> =
            stragglers.iter().filter(|j| j.cause.is_none()).map(|j| j.last.as_ref().unwrap().at.global_rank).collect();
        assert_eq!(roots, HashSet::from([6]), "host-major {host_major}: {stragglers:?}");
        let victims: Vec<&&Judged> = stragglers.iter().filter(|j| j.cause.is_some()).collect();
        assert_eq!(victims.len(), 5 * 3, "three peers at five slow steps: {victims:?}");
        assert!(victims.iter().all(|j| j.cause.unwrap().rank == 6 && j.role == "dp"), "{victims:#?}");
    }
}

#[test]
fn a_replayed_call_changes_nothing() {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    assert!(join.add(1, call(0, 2, 0, 10)).is_none());
    assert!(join.add(1, call(0, 2, 0, 10)).is_none(), "the same rank twice is not two ranks");
    assert_eq!(join.add(1, call(1, 2, 0, 10)).unwrap().verdict, Verdict::Complete);
    assert!(join.add(1, call(1, 2, 0, 10)).is_none(), "a replay of a judged collective");
    assert_eq!(join.open_instances(), 0);
}

/// A hold-up explains the lateness of the held rank's next joined call, not
/// of a later one: rank 3 waits for rank 5 at sequence 1, is on time at 2,
/// and is late on its own at 3 — a straggler in its own right.
#[test]
fn a_rank_held_up_once_is_not_excused_for_a_later_lateness_of_its_own() {
    let mut join = CollectiveJoin::new(JoinSettings::default());
    let judged = play(&mut join, 16, 4, |rank, seq| {
        let late = (seq == 1 && rank == 5) || (seq == 3 && rank == 3);
        Some(seq * 100 + u64::from(rank % 2) / 2 + if late { 20 } else { 0 })
    });
    let stragglers: Vec<&Judged> = judged.iter().filter(|j| j.verdict == Verdict::Straggler).collect();
    let roots: Vec<(u64, u32)> =
        stragglers.iter().filter(|j| j.cause.is_none()).map(|j| (j.seq, j.last.as_ref().unwrap().at.rank)).collect();
    assert_eq!(roots, vec![(1, 5), (3, 3)], "{stragglers:#?}");
}

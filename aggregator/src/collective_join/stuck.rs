//! Collectives that will not complete: judged once every live host of the
//! job has reported far enough past them, a hang's cause named before its
//! consequences, and hosts gone silent named instead of hangs.

use foldhash::{HashMap, HashMapExt, HashSet};

use super::{
    job_rank, sorted_calls, summarise, Cause, JobState, JoinSettings, Judged, Missing, Offsets, Proc, Verdict,
};

pub(super) fn stuck_in_job(settings: &JoinSettings, offsets: &Offsets, name: &str, job: &mut JobState) -> Vec<Judged> {
    // Hosts' reports on one timeline; those far behind the newest are silent.
    let heard: Vec<(String, u64)> =
        job.hosts.iter().map(|(h, c)| (h.clone(), offsets.corrected(h, c.watermark_ns))).collect();
    let Some(front) = heard.iter().map(|(_, w)| *w).max() else { return Vec::new() };
    let silent: HashMap<String, u64> =
        heard.iter().filter(|(_, w)| front.saturating_sub(*w) >= settings.hang_after_ns).cloned().collect();
    let Some(live_front) = heard.iter().filter(|(h, _)| !silent.contains_key(h)).map(|(_, w)| *w).min() else {
        return Vec::new();
    };
    let mut due: Vec<(u64, u64, u64)> = Vec::new();
    for (&id, comm) in &job.communicators {
        for (&seq, instance) in &comm.open {
            let first = offsets.corrected(&instance.first_host, instance.first_raw_ns);
            let waiting = !instance.waits_for_silent && !instance.hung;
            if waiting && first.saturating_add(settings.hang_after_ns) <= live_front {
                due.push((first, id, seq));
            }
        }
    }
    if due.is_empty() {
        return Vec::new();
    }
    due.sort_unstable();
    // Which open collective each rank's process waits in (the earliest).
    let mut waiting: HashMap<Proc, (u64, u64, u64)> = HashMap::new();
    for (&id, comm) in &job.communicators {
        for (&seq, instance) in &comm.open {
            let first = offsets.corrected(&instance.first_host, instance.first_raw_ns);
            for call in instance.calls.values() {
                let entry = waiting.entry((call.host.clone(), call.pid)).or_insert((first, id, seq));
                *entry = (*entry).min((first, id, seq));
            }
        }
    }
    // Causes first, while every stuck collective is still open to follow.
    let mut silent_hosts: Vec<(String, u64)> = Vec::new();
    let mut hung: Vec<(u64, u64, Vec<Missing>, Option<Cause>)> = Vec::new();
    for (_, id, seq) in due {
        let comm = job.communicators.get(&id).expect("listed above");
        let instance = comm.open.get(&seq).expect("listed above");
        let mut missing = Vec::new();
        for rank in (0..instance.nranks).filter(|r| !instance.calls.contains_key(r)) {
            let at = comm.at(rank);
            let proc = comm.placement.get(&rank).map(|p| (p.host.clone(), p.pid));
            let blocked = proc.as_ref().and_then(|p| waiting.get(p)).is_some_and(|&(_, c, s)| (c, s) != (id, seq));
            let silent = silent.contains_key(&at.host);
            missing
                .push((Missing { last_completed: comm.last_completed.get(&rank).copied(), at, blocked, silent }, proc));
        }
        if missing.iter().all(|(m, _)| m.silent) {
            for (m, _) in &missing {
                if !silent_hosts.iter().any(|(h, _)| *h == m.at.host) {
                    silent_hosts.push((m.at.host.clone(), silent[&m.at.host]));
                }
            }
            let comm = job.communicators.get_mut(&id).expect("listed above");
            comm.open.get_mut(&seq).expect("listed above").waits_for_silent = true;
            continue;
        }
        let cause = hang_cause(job, &waiting, id, seq, &missing);
        hung.push((id, seq, missing.into_iter().map(|(m, _)| m).collect(), cause));
    }
    let mut judged = Vec::new();
    let world = job.world;
    for (id, seq, missing, cause) in hung {
        let comm = job.communicators.get_mut(&id).expect("listed above");
        let role = comm.role(comm.open[&seq].nranks, world);
        let instance = comm.open.get_mut(&seq).expect("listed above");
        instance.hung = true;
        let calls = sorted_calls(instance);
        let mut j = summarise(offsets, name, id, seq, instance.nranks, &calls);
        j.role = role;
        j.cause = cause;
        j.verdict = Verdict::Hang { missing };
        judged.push(j);
    }
    for (host, last_heard) in silent_hosts {
        if job.silent_reported.insert(host.clone()) {
            judged.push(Judged {
                job: name.to_string(),
                communicator: 0,
                seq: 0,
                nranks: 0,
                arrived: 0,
                hosts: 1,
                role: "",
                op: 0,
                count: 0,
                datatype: 0,
                first_entry_ns: last_heard,
                median_entry_ns: last_heard,
                last_entry_ns: last_heard,
                last: None,
                verdict: Verdict::Silent { host, last_heard_ns: last_heard },
                cause: None,
            });
        }
    }
    judged
}

/// The cause of the hung collective (`id`, `seq`): None when it is a root
/// (a missing rank is stuck nowhere else, and no earlier root was named for
/// that rank). A collective whose missing ranks wait elsewhere follows them
/// to the collective they wait in, and on to its root.
fn hang_cause(
    job: &mut JobState,
    waiting: &HashMap<Proc, (u64, u64, u64)>,
    id: u64,
    seq: u64,
    missing: &[(Missing, Option<Proc>)],
) -> Option<Cause> {
    let stuck: Vec<&(Missing, Option<Proc>)> = missing.iter().filter(|(m, _)| !m.blocked && !m.silent).collect();
    if let Some((m, proc)) = stuck.first() {
        let here = Cause { communicator: id, seq, rank: job_rank(&m.at) };
        let Some(proc) = proc else { return None };
        return match job.hang_roots.get(proc) {
            Some(root) if (root.communicator, root.seq) != (id, seq) => Some(*root),
            _ => {
                for (_, p) in &stuck {
                    if let Some(p) = p {
                        job.hang_roots.entry(p.clone()).or_insert(here);
                    }
                }
                None
            }
        };
    }
    // Every missing rank waits elsewhere (or is silent): follow the first
    // blocked one to where it waits, and on, to a collective with a stuck rank.
    let mut seen: HashSet<(u64, u64)> = [(id, seq)].into_iter().collect();
    let (mut at_id, mut at_seq) = (id, seq);
    let mut proc = missing.iter().find(|(m, _)| m.blocked).and_then(|(_, p)| p.clone())?;
    loop {
        let &(_, next_id, next_seq) = waiting.get(&proc)?;
        if !seen.insert((next_id, next_seq)) {
            // Ranks waiting on each other: a deadlock; the last one followed.
            return Some(Cause { communicator: at_id, seq: at_seq, rank: -1 });
        }
        (at_id, at_seq) = (next_id, next_seq);
        let comm = job.communicators.get(&at_id)?;
        let instance = comm.open.get(&at_seq)?;
        let mut next_proc = None;
        for rank in (0..instance.nranks).filter(|r| !instance.calls.contains_key(r)) {
            let Some(p) = comm.placement.get(&rank) else {
                return Some(Cause { communicator: at_id, seq: at_seq, rank: -1 });
            };
            let p: Proc = (p.host.clone(), p.pid);
            match waiting.get(&p) {
                Some(&(_, c, s)) if (c, s) != (at_id, at_seq) => next_proc = next_proc.or(Some(p)),
                _ => {
                    if let Some(root) = job.hang_roots.get(&p) {
                        return Some(*root);
                    }
                    let root = Cause { communicator: at_id, seq: at_seq, rank: job_rank(&comm.at(rank)) };
                    job.hang_roots.insert(p, root);
                    return Some(root);
                }
            }
        }
        proc = next_proc?;
    }
}

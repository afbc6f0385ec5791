//! Tables of the GPU views.

use plumbline_proto::v1::{GpuCallView, GpuHangResponse, GpuJobView, GpuKernelView, GpuMismatchView, GpuStragglerView};

use super::render::{bytes, duration, millis, or_dash, table, time};

pub fn jobs(jobs: &[GpuJobView]) -> String {
    let header =
        ["JOB", "RANKS", "HOSTS", "COMMS", "COLLECTIVES", "STRAGGLERS", "HANGS", "MISMATCHES", "FIRST", "LAST"];
    table(&header, jobs, |j| {
        vec![
            j.job.clone(),
            j.ranks.to_string(),
            j.hosts.to_string(),
            j.communicators.to_string(),
            j.collectives.to_string(),
            j.stragglers.to_string(),
            j.hangs.to_string(),
            j.mismatches.to_string(),
            time(j.first_wall_ns),
            time(j.last_wall_ns),
        ]
    })
}

pub fn stragglers(ranks: &[GpuStragglerView]) -> String {
    if ranks.is_empty() {
        return "no straggler: no rank arrived last and late at any collective judged\n".into();
    }
    let header = [
        "JOB",
        "RANK",
        "HOST",
        "GPU",
        "COMM_RANK",
        "ROLE",
        "LAST_AT",
        "OF",
        "MEAN_LATE_MS",
        "MAX_LATE_MS",
        "VICTIMS",
        "LAST_SEQ",
        "LAST",
    ];
    table(&header, ranks, |r| {
        vec![
            r.job.clone(),
            r.rank.to_string(),
            r.host.clone(),
            r.device.to_string(),
            r.comm_rank.to_string(),
            or_dash(&r.role),
            r.times_last.to_string(),
            r.collectives.to_string(),
            millis(r.mean_late_ns),
            millis(r.max_late_ns),
            r.victims.to_string(),
            r.last_seq.to_string(),
            time(r.last_wall_ns),
        ]
    })
}

fn last_completed(seq: i64) -> String {
    if seq < 0 {
        "none".into()
    } else {
        seq.to_string()
    }
}

pub fn hangs(response: &GpuHangResponse) -> String {
    let mut out = String::new();
    for s in &response.silent {
        out.push_str(&format!(
            "job {}: host {} went silent (last heard {}): its ranks' collectives are not judged\n",
            s.job,
            s.host,
            time(s.last_heard_wall_ns)
        ));
    }
    if response.hangs.is_empty() {
        if out.is_empty() {
            out.push_str("no hang: every collective judged was reached by all its ranks\n");
        }
        return out;
    }
    for h in &response.hangs {
        let what = if h.cause_communicator == 0 && h.cause_rank < 0 {
            "ROOT CAUSE".to_string()
        } else {
            format!("consequence of {:016x} seq {} (rank {})", h.cause_communicator, h.cause_seq, h.cause_rank)
        };
        out.push_str(&format!(
            "{what}: job {} communicator {:016x}{}: stopped at seq {} ({}), {} of {} ranks arrived, first at {}{}\n",
            h.job,
            h.communicator,
            if h.role.is_empty() { String::new() } else { format!(" ({})", h.role) },
            h.seq,
            h.op,
            h.arrived,
            h.nranks,
            time(h.first_wall_ns),
            if h.later_hung > 0 { format!("; {} later collectives also hung", h.later_hung) } else { String::new() },
        ));
        let header = ["  MISSING_RANK", "COMM_RANK", "HOST", "GPU", "LAST_COMPLETED_SEQ", "STATE"];
        let missing = table(&header, &h.missing, |m| {
            let state = match (m.silent, m.blocked) {
                (true, _) => "host silent",
                (false, true) => "waiting elsewhere",
                (false, false) => "stuck",
            };
            vec![
                format!("  {}", m.global_rank),
                m.rank.to_string(),
                or_dash(&m.host),
                m.device.to_string(),
                last_completed(m.last_completed_seq),
                state.to_string(),
            ]
        });
        out.push_str(&missing);
    }
    out
}

pub fn mismatches(mismatches: &[GpuMismatchView]) -> String {
    if mismatches.is_empty() {
        return "no mismatch: the ranks of every collective judged agreed on op, count and datatype\n".into();
    }
    let header = ["JOB", "COMMUNICATOR", "ROLE", "SEQ", "FIELD", "EXPECTED", "RANKS", "WHERE", "THEIR_VALUES", "AT"];
    table(&header, mismatches, |m| {
        let places: Vec<String> =
            m.hosts.iter().zip(&m.devices).map(|(host, gpu)| format!("{}:gpu{gpu}", or_dash(host))).collect();
        vec![
            m.job.clone(),
            format!("{:016x}", m.communicator),
            or_dash(&m.role),
            m.seq.to_string(),
            m.field.clone(),
            m.expected.clone(),
            m.global_ranks.iter().map(i32::to_string).collect::<Vec<_>>().join(","),
            places.join(","),
            m.values.join(","),
            time(m.first_wall_ns),
        ]
    })
}

pub fn kernels(kernels: &[GpuKernelView]) -> String {
    let header = ["JOB", "RANK", "HOST", "LAUNCHES", "FAILED", "LAUNCH_TIME", "GRID", "BLOCK", "KERNEL"];
    table(&header, kernels, |k| {
        vec![
            or_dash(&k.job),
            k.rank.to_string(),
            k.host.clone(),
            k.launches.to_string(),
            k.failed.to_string(),
            duration(k.total_ns),
            k.grid.clone(),
            k.block.clone(),
            or_dash(&k.kernel),
        ]
    })
}

/// What a call was about, in a few words.
fn detail(c: &GpuCallView) -> String {
    match (c.library.as_str(), c.call.as_str()) {
        ("nccl", _) if c.communicator != 0 => format!(
            "comm {:016x} ({} ranks) seq {} count {} dtype {}",
            c.communicator, c.nranks, c.seq, c.count, c.datatype
        ),
        ("nccl", _) => format!("count {} dtype {} ({} ranks)", c.count, c.datatype, c.nranks),
        (_, "LAUNCH_KERNEL" | "LAUNCH_KERNEL_EX") => {
            format!("{} grid {} block {} smem {}", or_dash(&c.kernel), c.grid, c.block, c.bytes)
        }
        (_, "MEMCPY" | "MEMCPY_ASYNC") => format!("{} kind {}", bytes(c.bytes), c.memcpy_kind),
        (_, "MALLOC") => bytes(c.bytes),
        _ => String::new(),
    }
}

pub fn timeline(calls: &[GpuCallView]) -> String {
    let header = ["TIME", "HOST", "PID", "RANK", "GPU", "CALL", "TOOK", "RESULT", "DETAIL"];
    table(&header, calls, |c| {
        vec![
            time(c.wall_ns),
            c.host.clone(),
            c.pid.to_string(),
            c.rank.to_string(),
            c.device.to_string(),
            format!("{}.{}", c.library, c.call),
            duration(c.duration_ns),
            c.result.to_string(),
            detail(c),
        ]
    })
}

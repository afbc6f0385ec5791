//! A tracer process's CPU time and memory, read from /proc.

use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system time so far.
    pub cpu: Duration,
    /// Peak resident set (VmHWM), in bytes.
    pub rss_peak: u64,
}

pub fn of(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may hold spaces.
    let after_comm = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
    let ticks: u64 = fields.get(11..13).unwrap_or_default().iter().filter_map(|f| f.parse::<u64>().ok()).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage { cpu: Duration::from_millis(ticks * 1000 / hz), rss_peak: kib("VmHWM:") * 1024 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let mut spin = 0u64;
        for i in 0..20_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        std::hint::black_box(spin);
        let usage = super::of(std::process::id()).unwrap();
        assert!(usage.rss_peak > 0, "{usage:?}");
        assert!(usage.cpu > std::time::Duration::ZERO, "{usage:?}");
    }
}

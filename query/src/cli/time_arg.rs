//! `--since 10m` or `--since 2026-11-23T14:00:00Z`: wall-clock ns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration ago or an RFC 3339 time, as ns since the Unix epoch.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let at = match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now().checked_sub(ago).ok_or("too far back")?,
        Err(_) => humantime::parse_rfc3339_weak(text)
            .map_err(|_| format!("`{text}` is neither a duration (10m, 2h) nor an RFC 3339 time"))?,
    };
    Ok(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse_and_nonsense_is_explained() {
        assert_eq!(parse_time("2026-11-23T14:00:00Z").unwrap(), 1_795_442_400_000_000_000);
        let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let before = now();
        let ten_minutes_ago = parse_time("10m").unwrap();
        let after = now();
        assert!((before..=after).contains(&(ten_minutes_ago + 600_000_000_000)));
        assert!(parse_time("yesterday-ish").unwrap_err().contains("neither a duration"));
    }
}

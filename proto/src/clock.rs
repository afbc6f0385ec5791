//! Placing node-local boot-time stamps on the shared wall-clock timeline.

use crate::v1::ClockAnchor;

/// One clock tick (USER_HZ = 100 on every Linux architecture we run on): the
/// resolution of process start times read from /proc.
pub const CLOCK_TICK_NS: u64 = 10_000_000;

/// The part of a process start time that names the process: truncated to a
/// clock tick, so a start seen in /proc and the same start seen by the
/// kernel program give one identity.
pub fn process_start_key(start_ns: u64) -> u64 {
    start_ns - start_ns % CLOCK_TICK_NS
}

/// Wall-clock ns for a CLOCK_BOOTTIME stamp, using the batch's anchor.
pub fn wall_ns(anchor: &ClockAnchor, boot_ns: u64) -> u64 {
    let offset = anchor.wall_ns as i128 - anchor.boot_ns as i128;
    (boot_ns as i128 + offset).clamp(0, u64::MAX as i128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_key_truncates_to_a_clock_tick() {
        assert_eq!(process_start_key(1_234_567_891), 1_230_000_000);
        assert_eq!(process_start_key(1_230_000_000), 1_230_000_000);
    }

    #[test]
    fn wall_time_follows_the_anchor_in_both_directions() {
        let anchor = ClockAnchor { boot_ns: 1_000, wall_ns: 1_700_000_000_000_000_000, uncertainty_ns: 0 };
        assert_eq!(wall_ns(&anchor, 1_500), 1_700_000_000_000_000_500);
        assert_eq!(wall_ns(&anchor, 400), 1_699_999_999_999_999_400);
    }
}

//! Host health: each host's last batch seen, its events and kernel losses
//! per minute, and whether it has gone quiet for too long.

use plumbline_proto::v1::{ActivityRequest, HostHealthResponse, HostMinute, HostView, LossMinute, TimeRange};
use plumbline_store::{now_wall_ns, StoreRead};

use crate::activity::activity_filter;
use crate::error::QueryError;
use crate::request::{self, MAX_LIMIT};

/// The series' range when the request names none: the last hour.
pub const DEFAULT_SPAN_NS: u64 = 3_600_000_000_000;

/// How long a host may be silent before it is stale. An agent sends a
/// batch within 250 ms of an event (`[batch] max_delay_ms`) but nothing
/// while its host does nothing, so the bar is a minute of silence, not a
/// few batch intervals; any host running workloads execs, opens or
/// connects far more often than that.
pub const STALE_AFTER_NS: u64 = 60_000_000_000;

pub async fn host_health(store: &dyn StoreRead, request: &ActivityRequest) -> Result<HostHealthResponse, QueryError> {
    let now = now_wall_ns();
    let mut filter = activity_filter(request)?;
    let end = filter.range.end_ns.unwrap_or(now);
    filter.range.start_ns = Some(filter.range.start_ns.unwrap_or(end.saturating_sub(DEFAULT_SPAN_NS)));
    // Hosts and minutes alike: the series of a fleet's hour are many rows.
    filter.limit = MAX_LIMIT;
    let rows = store.host_health(&filter).await?;
    let hosts = rows
        .hosts
        .into_iter()
        .take(request::limit(request.limit) as usize)
        .map(|h| HostView {
            stale: is_stale(h.last_seen_wall_ns, now),
            host: h.host,
            last_seen_wall_ns: h.last_seen_wall_ns,
            events: h.events,
            lost: h.lost,
        })
        .collect();
    let events_per_minute = rows
        .events_per_minute
        .into_iter()
        .rev()
        .map(|m| HostMinute { host: m.host, minute_wall_ns: m.minute_wall_ns, events: m.events })
        .collect();
    let losses_per_minute = rows
        .losses_per_minute
        .into_iter()
        .rev()
        .map(|m| LossMinute { host: m.host, kind: m.kind, minute_wall_ns: m.minute_wall_ns, lost: m.lost })
        .collect();
    Ok(HostHealthResponse {
        hosts,
        events_per_minute,
        losses_per_minute,
        range: Some(TimeRange { start_ns: filter.range.start_ns.unwrap_or(0), end_ns: end }),
        now_wall_ns: now,
        stale_after_ns: STALE_AFTER_NS,
    })
}

/// Silent for longer than [`STALE_AFTER_NS`] at `now`.
pub fn is_stale(last_seen_wall_ns: u64, now_wall_ns: u64) -> bool {
    now_wall_ns.saturating_sub(last_seen_wall_ns) > STALE_AFTER_NS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_stale_only_after_a_minute_of_silence() {
        let now = 10 * STALE_AFTER_NS;
        assert!(!is_stale(now, now));
        assert!(!is_stale(now - STALE_AFTER_NS, now));
        assert!(is_stale(now - STALE_AFTER_NS - 1, now));
        // A host clock ahead of ours is not stale.
        assert!(!is_stale(now + 5, now));
    }
}

//! `plumb hosts`: each host's last batch seen, how long ago, its events and
//! kernel losses in the range, stalest first.

use plumbline_proto::v1::HostHealthResponse;

use super::render::{duration, table, time};

pub fn hosts(response: &HostHealthResponse) -> String {
    if response.hosts.is_empty() {
        return "no host has sent anything the store kept (is an agent running and pointed at this pipeline?)\n".into();
    }
    table(&["HOST", "LAST BATCH SEEN", "AGO", "EVENTS", "LOST", "STATE"], &response.hosts, |h| {
        let ago = response.now_wall_ns.saturating_sub(h.last_seen_wall_ns);
        vec![
            h.host.clone(),
            time(h.last_seen_wall_ns),
            duration(ago),
            h.events.to_string(),
            h.lost.to_string(),
            if h.stale { "STALE" } else { "ok" }.to_string(),
        ]
    })
}

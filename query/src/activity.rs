//! Requests and answers of the activity views: from `ActivityRequest` to the
//! store's filter, and from store rows to `plumbline.v1` messages.

use std::collections::HashMap;

use plumbline_proto::v1::{loss_marker::Reason, ActivityRequest, Container, DnsLookup, FileActivity, LossRecord};
use plumbline_store::{ActivityFilter, ContainerRow, DnsQueryRow, FileActivityRow, LossMarkerRow, StoreRead};

use crate::error::QueryError;
use crate::request::{self, non_empty};

use crate::request::MAX_LIMIT;

pub fn activity_filter(request: &ActivityRequest) -> Result<ActivityFilter, QueryError> {
    Ok(ActivityFilter {
        host: non_empty(&request.host),
        pid: (request.pid != 0).then_some(request.pid),
        container: non_empty(&request.container),
        range: request::time_range(request.range)?,
        contains: non_empty(&request.contains),
        sock_ids: Vec::new(),
        limit: request::limit(request.limit),
    })
}

/// (host, cgroup id) → container id, for the hosts a filter covers.
pub struct ContainerIds(HashMap<(String, u64), String>);

impl ContainerIds {
    pub async fn load(store: &dyn StoreRead, filter: &ActivityFilter) -> Result<Self, QueryError> {
        let all = ActivityFilter { host: filter.host.clone(), limit: MAX_LIMIT, ..Default::default() };
        let rows = store.list_containers(&all).await?;
        Ok(Self(rows.into_iter().map(|c| ((c.host, c.cgroup_id), c.container_id)).collect()))
    }

    pub fn get(&self, host: &str, cgroup_id: u64) -> String {
        self.0.get(&(host.to_string(), cgroup_id)).cloned().unwrap_or_default()
    }
}

pub fn file_activity(row: FileActivityRow, containers: &ContainerIds) -> FileActivity {
    FileActivity {
        container_id: containers.get(&row.host, row.cgroup_id),
        host: row.host,
        pid: row.pid,
        comm: row.comm,
        path: row.path,
        opens: row.opens,
        failed_opens: row.failed_opens,
        failed_errno: row.failed_errno as i32,
        unlinks: row.unlinks,
        renamed_to: row.renamed_to,
        bytes_written: row.bytes_written,
        first_wall_ns: row.first_wall_ns,
        last_wall_ns: row.last_wall_ns,
        boot_id: row.boot_id,
    }
}

/// "A", "AAAA" ... for the query types people read; the number otherwise.
pub fn qtype_name(qtype: u16) -> String {
    match qtype {
        1 => "A".into(),
        5 => "CNAME".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        other => other.to_string(),
    }
}

pub fn dns_lookup(row: DnsQueryRow) -> DnsLookup {
    DnsLookup {
        host: row.host,
        pid: row.pid,
        comm: row.comm,
        name: row.name,
        qtype: qtype_name(row.qtype),
        rcode: row.rcode.into(),
        answers: row.answers.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
        server: row.server,
        latency_ns: row.latency_ns,
        wall_ns: row.wall_ns,
        boot_id: row.boot_id,
    }
}

pub fn container(row: ContainerRow) -> Container {
    Container {
        host: row.host,
        boot_id: row.boot_id,
        cgroup_id: row.cgroup_id,
        cgroup_path: row.cgroup_path,
        container_id: row.container_id,
        runtime: row.runtime,
        pod_uid: row.pod_uid,
        pod_namespace: row.pod_namespace,
        pod_name: row.pod_name,
    }
}

pub fn loss(row: LossMarkerRow) -> LossRecord {
    let reason = Reason::try_from(i32::from(row.reason)).map_or_else(
        |_| row.reason.to_string(),
        |r| r.as_str_name().trim_start_matches("REASON_").to_ascii_lowercase(),
    );
    LossRecord {
        host: row.host,
        boot_id: row.boot_id,
        kind: row.kind,
        reason,
        cpu: row.cpu,
        count: row.count,
        from_wall_ns: row.from_wall_ns,
        to_wall_ns: row.to_wall_ns,
    }
}

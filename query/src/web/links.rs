//! Addresses of the session, LLM and process views, built in one place so
//! each view links to the others the same way, every one self-contained.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::params::Scope;

/// Every byte but the unreserved ones (RFC 3986) is percent-encoded in a
/// path segment: a host name or job key may hold anything.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// `path?query`, or `path` when the query is empty.
pub fn with_query<V: AsRef<str>>(path: &str, pairs: &[(&str, V)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_ref())).filter(|(_, v)| !v.is_empty()).collect();
    match serde_urlencoded::to_string(kept).unwrap_or_default() {
        q if q.is_empty() => path.to_string(),
        q => format!("{path}?{q}"),
    }
}

/// The scope's pairs, to put beside a view's own.
pub fn scope_pairs(scope: &Scope) -> [(&'static str, &str); 3] {
    [("host", &scope.host), ("since", &scope.since), ("until", &scope.until)]
}

pub fn session(id: &str) -> String {
    format!("/sessions/{}", segment(id))
}

/// A session node's detail: the fragment htmx loads, and (opened as a
/// plain link) a page of its own.
pub fn node(session_id: &str, node: u64) -> String {
    format!("/sessions/{}/node/{node}", segment(session_id))
}

/// A process's page; `start_key_ns` 0 means its most recent run.
pub fn process(host: &str, pid: u32, start_key_ns: u64) -> String {
    let path = format!("/processes/{}/{pid}", segment(host));
    if start_key_ns == 0 {
        path
    } else {
        format!("{path}?start={start_key_ns}")
    }
}

/// Sessions of an agent on a host.
pub fn sessions_of(host: &str, agent: &str) -> String {
    with_query("/sessions", &[("host", host), ("agent", agent)])
}

/// Why a process ran: the chain of causes behind it (`/why`).
pub fn why(host: &str, pid: u32) -> String {
    with_query("/why", &[("host", host), ("pid", &pid.to_string())])
}

/// The findings inbox, narrowed to one session.
pub fn findings_of(session_id: &str) -> String {
    with_query("/findings", &[("session", session_id)])
}

/// The GPU jobs list.
pub const GPU_JOBS: &str = "/gpu";

/// A GPU job's page.
pub fn gpu_job(job: &str) -> String {
    format!("{GPU_JOBS}/{}", segment(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_is_one_path_segment_whatever_it_holds() {
        assert_eq!(segment("vm-1.lab_x"), "vm-1.lab_x");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(process("a/b", 7, 0), "/processes/a%2Fb/7");
        assert_eq!(process("h", 7, 99), "/processes/h/7?start=99");
    }

    #[test]
    fn empty_values_are_left_out_of_a_query() {
        assert_eq!(with_query("/x", &[("a", ""), ("b", "1 2")]), "/x?b=1+2");
        assert_eq!(with_query("/x", &[("a", "")]), "/x");
    }
}

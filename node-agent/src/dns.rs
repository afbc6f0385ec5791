//! DNS as the kernel saw it on the wire: queries matched with their answers
//! (by socket and message id), and, per process, which name each answered
//! address came from, so a later connect can say where it was going.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use plumbline_ebpf::abi::DnsPacket;
use simple_dns::{rdata::RData, Packet};

/// How long a name stays attached to an address after its answer, at least
/// (longer when the record's TTL says so).
const NAME_TTL_MIN_NS: u64 = 10 * 60 * 1_000_000_000;
/// Bound on what is remembered.
const MAX_PENDING: usize = 16_384;
const MAX_NAMES: usize = 65_536;

/// A lookup ready to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    pub qtype: u16,
    pub rcode: u16,
    pub answers: Vec<IpAddr>,
    pub server: (IpAddr, u16),
    /// Query sent to answer received; 0 when the query was not seen.
    pub latency_ns: u64,
    /// When the query was sent (or the answer received, if unseen).
    pub ts_ns: u64,
}

struct Pending {
    ts_ns: u64,
    pid: u32,
    tid: u32,
    name: String,
    qtype: u16,
}

#[derive(Default)]
pub struct DnsTracker {
    pending: HashMap<(u64, u16), Pending>,
    /// (tgid, address) → (name, expires).
    names: HashMap<(u32, IpAddr), (String, u64)>,
    /// address → (name, expires), whoever asked.
    host_names: HashMap<IpAddr, (String, u64)>,
}

pub fn sockaddr_ip(addr: &[u8; 16], family: u16) -> IpAddr {
    if family == 2 {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*addr))
    }
}

impl DnsTracker {
    /// Takes one packet; returns a lookup when an answer completes one.
    pub fn packet(&mut self, event: &DnsPacket, message: &[u8]) -> Option<Lookup> {
        let packet = Packet::parse(message).ok()?;
        let question = packet.questions.first()?;
        let name = question.qname.to_string();
        let qtype: u16 = question.qtype.into();
        let key = (event.cookie, packet.id());
        let now = event.hdr.ts_boot_ns;
        if event.egress != 0 {
            if self.pending.len() >= MAX_PENDING {
                self.pending.clear();
            }
            self.pending.insert(key, Pending { ts_ns: now, pid: event.hdr.pid, tid: event.hdr.tid, name, qtype });
            return None;
        }
        // An answer that does not echo its query's question is not its answer.
        let query = self.pending.remove(&key).filter(|q| q.name == name && q.qtype == qtype);
        let mut answers = Vec::new();
        let mut ttl = 0u32;
        for record in &packet.answers {
            let ip = match &record.rdata {
                RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
                RData::AAAA(a) => IpAddr::V6(Ipv6Addr::from(a.address)),
                _ => continue,
            };
            ttl = ttl.max(record.ttl);
            answers.push(ip);
        }
        let (pid, tid, ts_ns, latency_ns) = match &query {
            Some(q) => (q.pid, q.tid, q.ts_ns, now.saturating_sub(q.ts_ns)),
            None => (event.hdr.pid, event.hdr.tid, now, 0),
        };
        let expires = now + NAME_TTL_MIN_NS.max(u64::from(ttl) * 1_000_000_000);
        if self.names.len() + answers.len() > MAX_NAMES {
            self.names.clear();
            self.host_names.clear();
        }
        for ip in &answers {
            self.names.insert((pid, *ip), (name.clone(), expires));
            self.host_names.insert(*ip, (name.clone(), expires));
        }
        Some(Lookup {
            pid,
            tid,
            name,
            qtype,
            rcode: packet.rcode() as u16,
            answers,
            server: (sockaddr_ip(&event.remote.addr, event.remote.family), event.remote.port),
            latency_ns,
            ts_ns,
        })
    }

    /// The name `tgid` (or, failing that, anyone on the host) looked up for
    /// `ip`, if the answer is still fresh at `now_ns`.
    pub fn name_for(&self, tgid: u32, ip: IpAddr, now_ns: u64) -> Option<&str> {
        fn fresh(entry: &(String, u64), now_ns: u64) -> Option<&str> {
            (entry.1 > now_ns).then_some(entry.0.as_str())
        }
        self.names
            .get(&(tgid, ip))
            .and_then(|e| fresh(e, now_ns))
            .or_else(|| self.host_names.get(&ip).and_then(|e| fresh(e, now_ns)))
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use simple_dns::{rdata::A, Name, Question, ResourceRecord, CLASS, QCLASS, QTYPE, TYPE};

    use super::*;

    fn packet(egress: bool, pid: u32, ts: u64) -> DnsPacket {
        let mut p = DnsPacket::zeroed();
        p.hdr.pid = pid;
        p.hdr.ts_boot_ns = ts;
        p.cookie = 77;
        p.egress = u8::from(egress);
        p.remote.family = 2;
        p.remote.addr[..4].copy_from_slice(&[127, 0, 0, 53]);
        p.remote.port = 53;
        p
    }

    fn query(answer: Option<[u8; 4]>) -> Vec<u8> {
        let mut p = Packet::new_query(4242);
        p.questions.push(Question::new(
            Name::new_unchecked("svc.plumbline.test"),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        if let Some(ip) = answer {
            p.answers.push(ResourceRecord::new(
                Name::new_unchecked("svc.plumbline.test"),
                CLASS::IN,
                30,
                RData::A(A { address: u32::from(Ipv4Addr::from(ip)) }),
            ));
        }
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn an_answer_completes_its_query_and_names_the_address_for_the_asker() {
        let mut dns = DnsTracker::default();
        assert!(dns.packet(&packet(true, 10, 1_000), &query(None)).is_none());
        let lookup = dns.packet(&packet(false, 0, 4_000), &query(Some([127, 77, 0, 9]))).unwrap();
        assert_eq!(
            (lookup.pid, lookup.name.as_str(), lookup.qtype, lookup.latency_ns),
            (10, "svc.plumbline.test", 1, 3_000)
        );
        assert_eq!(lookup.answers, vec![IpAddr::from([127, 77, 0, 9])]);
        assert_eq!(lookup.server, (IpAddr::from([127, 0, 0, 53]), 53));
        let ip = IpAddr::from([127, 77, 0, 9]);
        assert_eq!(dns.name_for(10, ip, 5_000), Some("svc.plumbline.test"));
        assert_eq!(dns.name_for(99, ip, 5_000), Some("svc.plumbline.test"), "host-wide fallback");
        assert_eq!(dns.name_for(10, ip, u64::MAX), None, "expired");
    }

    #[test]
    fn garbage_is_ignored() {
        assert!(DnsTracker::default().packet(&packet(false, 1, 1), b"\x00\x01").is_none());
    }
}

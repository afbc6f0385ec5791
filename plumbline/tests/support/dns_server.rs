//! A DNS server for one name, on UDP port 53 of a loopback address.

use std::net::{Ipv4Addr, UdpSocket};

use simple_dns::{rdata::RData, Packet, ResourceRecord, CLASS};

pub struct Running(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

pub fn start(ip: [u8; 4], name: &str, answer: [u8; 4]) -> Running {
    let socket = UdpSocket::bind((Ipv4Addr::from(ip), 53)).expect("bind a loopback port 53 (as root)");
    socket.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, name) = (stop.clone(), name.to_string());
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            let Ok(query) = Packet::parse(&buf[..n]) else { continue };
            let mut reply = query.clone().into_reply();
            for question in &query.questions {
                let is_a = u16::from(question.qtype) == 1;
                if is_a && question.qname.to_string() == name {
                    let rdata = RData::A(simple_dns::rdata::A { address: u32::from(Ipv4Addr::from(answer)) });
                    reply.answers.push(ResourceRecord::new(question.qname.clone(), CLASS::IN, 60, rdata));
                }
            }
            let _ = socket.send_to(&reply.build_bytes_vec().unwrap(), from);
        }
    });
    Running(stop)
}

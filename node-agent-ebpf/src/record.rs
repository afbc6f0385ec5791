//! Parses one ring-buffer record into a typed view, checking every length
//! the kernel side claims before trusting it.

use std::mem::size_of;

use bytemuck::{pod_read_unaligned, Pod};

use crate::abi::{
    kind, CudaCall, DnsPacket, EnforceExec, EnforceFile, EnforceNet, EnforceRate, EventHeader, FileOpen, FileRename,
    FileUnlink, NcclCall, NetClose, NetConnect, PathLens, ProcExec, ProcExecFailed, ProcExit, ProcFork, Shm, TlsData,
    TlsSni, UnixConnect,
};

/// A record read from a ring buffer.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    ProcExec {
        event: ProcExec,
        args: &'a [u8],
    },
    ProcFork(ProcFork),
    ProcExit(ProcExit),
    ProcExecFailed {
        event: ProcExecFailed,
        args: &'a [u8],
    },
    FileOpen {
        event: FileOpen,
        path: PathParts<'a>,
    },
    FileUnlink {
        event: FileUnlink,
        path: PathParts<'a>,
    },
    FileRename {
        event: FileRename,
        from: PathParts<'a>,
        to: PathParts<'a>,
    },
    /// A TCP connect or accept, or a UDP connect.
    NetConnect(NetConnect),
    NetClose(NetClose),
    UnixConnect {
        event: UnixConnect,
        path: &'a [u8],
    },
    Dns {
        event: DnsPacket,
        message: &'a [u8],
    },
    Shm(Shm),
    /// A piece of TLS plaintext.
    TlsData {
        event: TlsData,
        data: &'a [u8],
    },
    /// The server name a TLS client asked for.
    TlsSni(TlsSni),
    /// A CUDA runtime call, at its return.
    Cuda(CudaCall),
    /// An NCCL call, at its return; a communicator init carries the
    /// `ncclUniqueId` it was given (empty otherwise).
    Nccl {
        event: NcclCall,
        unique_id: &'a [u8],
    },
    /// A connect or send a workload's role does not allow: refused, or
    /// recorded in audit.
    EnforceNet(EnforceNet),
    /// An LLM request past its role's rate, or a connect refused for it.
    EnforceRate(EnforceRate),
    /// An exec a workload's role does not allow, after it succeeded: the
    /// process was killed before running the new image, or (audit) recorded.
    EnforceExec {
        event: EnforceExec,
        path: &'a [u8],
    },
    /// A file operation a workload's role does not allow: refused (LSM), the
    /// process killed after the open (fallback), or (audit) recorded.
    EnforceFile {
        event: EnforceFile,
        path: &'a [u8],
    },
    /// A kind this agent does not know (a newer object); skipped, counted.
    Unknown(EventHeader),
}

/// A path as a record carries it: the part resolved in the kernel, then the
/// caller's own string (see `struct plb_path_lens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathParts<'a> {
    pub base: &'a [u8],
    pub rel: &'a [u8],
    pub truncated: bool,
}

impl PathParts<'_> {
    /// The absolute path: the relative string joined to its base, then
    /// `.`, `..` and repeated slashes resolved lexically (the kernel has
    /// already followed symlinks in the base).
    pub fn to_path(&self) -> String {
        let base = String::from_utf8_lossy(self.base);
        let rel = String::from_utf8_lossy(self.rel);
        let joined = match (base.is_empty(), rel.is_empty()) {
            (_, true) => base.into_owned(),
            (true, false) => rel.into_owned(),
            (false, false) => format!("{base}/{rel}"),
        };
        normalize(&joined)
    }
}

fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {len} bytes is shorter than the {need} bytes its kind {kind} needs")]
    TooShort { kind: u16, len: usize, need: usize },
    #[error("record header says {claimed} bytes but the ring buffer gave {len}")]
    SizeMismatch { claimed: usize, len: usize },
    #[error("record of kind {kind} claims {args_len} bytes of variable data but carries {available}")]
    ArgsOverrun { kind: u16, args_len: usize, available: usize },
}

/// The header of a record, without checking the rest (to order records
/// before they are parsed); `None` when the bytes are too few for one.
pub fn peek_header(bytes: &[u8]) -> Option<EventHeader> {
    read(bytes, 0).ok()
}

impl<'a> Record<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let header: EventHeader = read(bytes, 0)?;
        let claimed = header.size as usize;
        if claimed > bytes.len() || claimed < std::mem::size_of::<EventHeader>() {
            return Err(RecordError::SizeMismatch { claimed, len: bytes.len() });
        }
        let bytes = &bytes[..claimed];
        Ok(match header.kind {
            kind::PROC_EXEC => {
                let event: ProcExec = read(bytes, header.kind)?;
                let args = tail(bytes, std::mem::size_of::<ProcExec>(), event.args_len, header.kind)?;
                Record::ProcExec { event, args }
            }
            kind::PROC_FORK => Record::ProcFork(read(bytes, header.kind)?),
            kind::PROC_EXIT => Record::ProcExit(read(bytes, header.kind)?),
            kind::PROC_EXEC_FAILED => {
                let event: ProcExecFailed = read(bytes, header.kind)?;
                let args = tail(bytes, std::mem::size_of::<ProcExecFailed>(), event.args_len, header.kind)?;
                Record::ProcExecFailed { event, args }
            }
            kind::FILE_OPEN => {
                let event: FileOpen = read(bytes, header.kind)?;
                let (path, _) = path_parts(bytes, size_of::<FileOpen>(), &event.path, header.kind)?;
                Record::FileOpen { event, path }
            }
            kind::FILE_UNLINK => {
                let event: FileUnlink = read(bytes, header.kind)?;
                let (path, _) = path_parts(bytes, size_of::<FileUnlink>(), &event.path, header.kind)?;
                Record::FileUnlink { event, path }
            }
            kind::FILE_RENAME => {
                let event: FileRename = read(bytes, header.kind)?;
                let (from, next) = path_parts(bytes, size_of::<FileRename>(), &event.from, header.kind)?;
                let (to, _) = path_parts(bytes, next, &event.to, header.kind)?;
                Record::FileRename { event, from, to }
            }
            kind::NET_CONNECT | kind::NET_ACCEPT => Record::NetConnect(read(bytes, header.kind)?),
            kind::NET_CLOSE => Record::NetClose(read(bytes, header.kind)?),
            kind::UNIX_CONNECT => {
                let event: UnixConnect = read(bytes, header.kind)?;
                let path = tail(bytes, size_of::<UnixConnect>(), event.path_len, header.kind)?;
                Record::UnixConnect { event, path }
            }
            kind::NET_DNS => {
                let event: DnsPacket = read(bytes, header.kind)?;
                let message = tail(bytes, size_of::<DnsPacket>(), event.len, header.kind)?;
                Record::Dns { event, message }
            }
            kind::SHM => Record::Shm(read(bytes, header.kind)?),
            kind::TLS_DATA => {
                let event: TlsData = read(bytes, header.kind)?;
                let data = tail(bytes, size_of::<TlsData>(), event.len, header.kind)?;
                Record::TlsData { event, data }
            }
            kind::TLS_SNI => Record::TlsSni(read(bytes, header.kind)?),
            kind::CUDA => Record::Cuda(read(bytes, header.kind)?),
            kind::NCCL => {
                let event: NcclCall = read(bytes, header.kind)?;
                let unique_id = tail(bytes, size_of::<NcclCall>(), event.id_len, header.kind)?;
                Record::Nccl { event, unique_id }
            }
            kind::ENFORCE_NET => Record::EnforceNet(read(bytes, header.kind)?),
            kind::ENFORCE_RATE => Record::EnforceRate(read(bytes, header.kind)?),
            kind::ENFORCE_EXEC => {
                let event: EnforceExec = read(bytes, header.kind)?;
                let path = tail(bytes, size_of::<EnforceExec>(), event.path_len, header.kind)?;
                Record::EnforceExec { event, path }
            }
            kind::ENFORCE_FILE => {
                let event: EnforceFile = read(bytes, header.kind)?;
                let path = tail(bytes, size_of::<EnforceFile>(), event.path_len, header.kind)?;
                Record::EnforceFile { event, path }
            }
            _ => Record::Unknown(header),
        })
    }

    pub fn header(&self) -> &EventHeader {
        match self {
            Record::ProcExec { event, .. } => &event.hdr,
            Record::ProcFork(e) => &e.hdr,
            Record::ProcExit(e) => &e.hdr,
            Record::ProcExecFailed { event, .. } => &event.hdr,
            Record::FileOpen { event, .. } => &event.hdr,
            Record::FileUnlink { event, .. } => &event.hdr,
            Record::FileRename { event, .. } => &event.hdr,
            Record::NetConnect(e) => &e.hdr,
            Record::NetClose(e) => &e.hdr,
            Record::UnixConnect { event, .. } => &event.hdr,
            Record::Dns { event, .. } => &event.hdr,
            Record::Shm(e) => &e.hdr,
            Record::TlsData { event, .. } => &event.hdr,
            Record::TlsSni(e) => &e.hdr,
            Record::Cuda(e) => &e.hdr,
            Record::Nccl { event, .. } => &event.hdr,
            Record::EnforceNet(e) => &e.hdr,
            Record::EnforceRate(e) => &e.hdr,
            Record::EnforceExec { event, .. } => &event.hdr,
            Record::EnforceFile { event, .. } => &event.hdr,
            Record::Unknown(h) => h,
        }
    }
}

fn read<T: Pod>(bytes: &[u8], kind: u16) -> Result<T, RecordError> {
    let need = std::mem::size_of::<T>();
    match bytes.get(..need) {
        Some(prefix) => Ok(pod_read_unaligned(prefix)),
        None => Err(RecordError::TooShort { kind, len: bytes.len(), need }),
    }
}

fn tail(bytes: &[u8], fixed: usize, len: impl Into<u32>, kind: u16) -> Result<&[u8], RecordError> {
    let len = len.into() as usize;
    let available = bytes.len().saturating_sub(fixed);
    bytes.get(fixed..fixed + len).ok_or(RecordError::ArgsOverrun { kind, args_len: len, available })
}

/// The path at `offset` described by `lens`, and the offset after it.
fn path_parts<'a>(
    bytes: &'a [u8],
    offset: usize,
    lens: &PathLens,
    kind: u16,
) -> Result<(PathParts<'a>, usize), RecordError> {
    let base = tail(bytes, offset, lens.base_len, kind)?;
    let rel = tail(bytes, offset + base.len(), lens.rel_len, kind)?;
    Ok((PathParts { base, rel, truncated: lens.truncated != 0 }, offset + base.len() + rel.len()))
}

/// A unix socket path as `sun_path` holds it: up to the first NUL, or, for an
/// abstract name (leading NUL), `@` and the name without trailing NULs.
pub fn unix_path(sun_path: &[u8]) -> String {
    match sun_path.split_first() {
        Some((0, rest)) => {
            let end = rest.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            format!("@{}", String::from_utf8_lossy(&rest[..end]))
        }
        Some(_) => String::from_utf8_lossy(c_str(sun_path)).into_owned(),
        None => String::new(),
    }
}

/// The bytes of a fixed-size C string field, up to its first NUL.
pub fn c_str(field: &[u8]) -> &[u8] {
    field.iter().position(|&b| b == 0).map_or(field, |end| &field[..end])
}

/// Splits NUL-separated argv bytes into arguments. A trailing NUL does not
/// make an extra empty argument; empty arguments in the middle are kept.
pub fn split_args(args: &[u8]) -> impl Iterator<Item = &[u8]> {
    let args = args.strip_suffix(&[0]).unwrap_or(args);
    let empty = args.is_empty();
    args.split(|&b| b == 0).filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    fn exec_record(args: &[u8]) -> Vec<u8> {
        let mut event = ProcExec::zeroed();
        event.hdr.kind = kind::PROC_EXEC;
        event.hdr.pid = 42;
        event.args_len = args.len() as u16;
        event.hdr.size = (std::mem::size_of::<ProcExec>() + args.len()) as u16;
        event.comm[..2].copy_from_slice(b"sh");
        let mut bytes = bytemuck::bytes_of(&event).to_vec();
        bytes.extend_from_slice(args);
        bytes
    }

    #[test]
    fn exec_record_yields_its_argv_tail() {
        let bytes = exec_record(b"/bin/sh\0-c\0exit 7\0");
        let Record::ProcExec { event, args } = Record::parse(&bytes).unwrap() else { panic!() };
        assert_eq!(event.hdr.pid, 42);
        assert_eq!(c_str(&event.comm), b"sh");
        let args: Vec<&[u8]> = split_args(args).collect();
        assert_eq!(args, vec![&b"/bin/sh"[..], b"-c", b"exit 7"]);
    }

    #[test]
    fn empty_argv_yields_no_arguments_and_inner_empty_arguments_are_kept() {
        assert_eq!(split_args(b"").count(), 0);
        assert_eq!(split_args(b"a\0\0b\0").collect::<Vec<_>>(), vec![&b"a"[..], b"", b"b"]);
    }

    #[test]
    fn argv_longer_than_the_record_is_rejected() {
        let mut bytes = exec_record(b"abc\0");
        // Claim more argv than the record carries.
        let offset = std::mem::offset_of!(ProcExec, args_len);
        bytes[offset..offset + 2].copy_from_slice(&100u16.to_le_bytes());
        assert!(matches!(Record::parse(&bytes), Err(RecordError::ArgsOverrun { args_len: 100, .. })));
    }

    #[test]
    fn header_size_beyond_the_buffer_is_rejected() {
        let mut bytes = exec_record(b"");
        bytes.truncate(100);
        assert!(matches!(Record::parse(&bytes), Err(RecordError::SizeMismatch { .. })));
    }

    #[test]
    fn unknown_kind_is_returned_not_misread() {
        let mut header = EventHeader::zeroed();
        header.kind = 55;
        header.size = std::mem::size_of::<EventHeader>() as u16;
        let Record::Unknown(h) = Record::parse(bytemuck::bytes_of(&header)).unwrap() else { panic!() };
        assert_eq!(h.kind, 55);
    }

    #[test]
    fn a_rename_carries_two_paths_joined_to_their_bases() {
        let mut event = FileRename::zeroed();
        event.hdr.kind = kind::FILE_RENAME;
        event.from = PathLens { base_len: 9, rel_len: 5, truncated: 0, _pad0: [0; 3] };
        event.to = PathLens { base_len: 0, rel_len: 10, truncated: 0, _pad0: [0; 3] };
        let mut bytes = bytemuck::bytes_of(&event).to_vec();
        bytes.extend_from_slice(b"/tmp/work./a.c/tmp/b.txt");
        let size = bytes.len() as u16;
        bytes[std::mem::offset_of!(EventHeader, size)..][..2].copy_from_slice(&size.to_le_bytes());
        let Record::FileRename { from, to, .. } = Record::parse(&bytes).unwrap() else { panic!() };
        assert_eq!((from.to_path(), to.to_path()), ("/tmp/work/a.c".to_string(), "/tmp/b.txt".to_string()));
    }

    #[test]
    fn paths_are_normalized_lexically() {
        let parts = |base: &'static [u8], rel: &'static [u8]| PathParts { base, rel, truncated: false };
        assert_eq!(parts(b"/home/u/src", b"../include/./x.h").to_path(), "/home/u/include/x.h");
        assert_eq!(parts(b"/", b"etc//passwd").to_path(), "/etc/passwd");
        assert_eq!(parts(b"", b"/../etc").to_path(), "/etc");
        assert_eq!(parts(b"/proc/self", b"").to_path(), "/proc/self");
    }

    #[test]
    fn unix_paths_and_abstract_names_print_like_ss() {
        let mut sun = [0u8; 108];
        sun[..9].copy_from_slice(b"/run/x.sk");
        assert_eq!(unix_path(&sun), "/run/x.sk");
        let mut sun = [0u8; 108];
        sun[1..5].copy_from_slice(b"name");
        assert_eq!(unix_path(&sun), "@name");
    }

    #[test]
    fn a_communicator_init_carries_its_unique_id_and_a_collective_none() {
        let mut event = NcclCall::zeroed();
        event.hdr.kind = kind::NCCL;
        event.id_len = crate::abi::NCCL_ID_BYTES as u16;
        event.hdr.size = (size_of::<NcclCall>() + crate::abi::NCCL_ID_BYTES) as u16;
        let mut bytes = bytemuck::bytes_of(&event).to_vec();
        bytes.extend((0..128u8).collect::<Vec<_>>());
        let Record::Nccl { unique_id, .. } = Record::parse(&bytes).unwrap() else { panic!() };
        assert_eq!(unique_id, (0..128u8).collect::<Vec<_>>());

        // An id the record claims but does not carry is refused.
        bytes.truncate(size_of::<NcclCall>() + 64);
        let size = bytes.len() as u16;
        bytes[std::mem::offset_of!(EventHeader, size)..][..2].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(Record::parse(&bytes), Err(RecordError::ArgsOverrun { args_len: 128, .. })));

        event.id_len = 0;
        event.hdr.size = size_of::<NcclCall>() as u16;
        let Record::Nccl { unique_id, .. } = Record::parse(bytemuck::bytes_of(&event)).unwrap() else { panic!() };
        assert!(unique_id.is_empty());
    }

    #[test]
    fn truncated_fixed_part_is_rejected() {
        let mut header = EventHeader::zeroed();
        header.kind = kind::PROC_FORK;
        header.size = std::mem::size_of::<EventHeader>() as u16;
        assert!(matches!(Record::parse(bytemuck::bytes_of(&header)), Err(RecordError::TooShort { .. })));
    }
}

//! Parses one ring-buffer record into a typed view, checking every length
//! the kernel side claims before trusting it.

use bytemuck::{pod_read_unaligned, Pod};

use crate::abi::{kind, EventHeader, ProcExec, ProcExecFailed, ProcExit, ProcFork};

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
    /// A kind this agent does not know (a newer object); skipped, counted.
    Unknown(EventHeader),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {len} bytes is shorter than the {need} bytes its kind {kind} needs")]
    TooShort { kind: u16, len: usize, need: usize },
    #[error("record header says {claimed} bytes but the ring buffer gave {len}")]
    SizeMismatch { claimed: usize, len: usize },
    #[error("record of kind {kind} claims {args_len} argv bytes but carries {available}")]
    ArgsOverrun {
        kind: u16,
        args_len: usize,
        available: usize,
    },
}

impl<'a> Record<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let header: EventHeader = read(bytes, 0)?;
        let claimed = header.size as usize;
        if claimed > bytes.len() || claimed < std::mem::size_of::<EventHeader>() {
            return Err(RecordError::SizeMismatch {
                claimed,
                len: bytes.len(),
            });
        }
        let bytes = &bytes[..claimed];
        Ok(match header.kind {
            kind::PROC_EXEC => {
                let event: ProcExec = read(bytes, header.kind)?;
                let args = tail(
                    bytes,
                    std::mem::size_of::<ProcExec>(),
                    event.args_len,
                    header.kind,
                )?;
                Record::ProcExec { event, args }
            }
            kind::PROC_FORK => Record::ProcFork(read(bytes, header.kind)?),
            kind::PROC_EXIT => Record::ProcExit(read(bytes, header.kind)?),
            kind::PROC_EXEC_FAILED => {
                let event: ProcExecFailed = read(bytes, header.kind)?;
                let args = tail(
                    bytes,
                    std::mem::size_of::<ProcExecFailed>(),
                    event.args_len,
                    header.kind,
                )?;
                Record::ProcExecFailed { event, args }
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
            Record::Unknown(h) => h,
        }
    }
}

fn read<T: Pod>(bytes: &[u8], kind: u16) -> Result<T, RecordError> {
    let need = std::mem::size_of::<T>();
    match bytes.get(..need) {
        Some(prefix) => Ok(pod_read_unaligned(prefix)),
        None => Err(RecordError::TooShort {
            kind,
            len: bytes.len(),
            need,
        }),
    }
}

fn tail(bytes: &[u8], fixed: usize, len: u16, kind: u16) -> Result<&[u8], RecordError> {
    let available = bytes.len() - fixed;
    bytes
        .get(fixed..fixed + len as usize)
        .ok_or(RecordError::ArgsOverrun {
            kind,
            args_len: len as usize,
            available,
        })
}

/// The bytes of a fixed-size C string field, up to its first NUL.
pub fn c_str(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|&b| b == 0)
        .map_or(field, |end| &field[..end])
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
        let Record::ProcExec { event, args } = Record::parse(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(event.hdr.pid, 42);
        assert_eq!(c_str(&event.comm), b"sh");
        let args: Vec<&[u8]> = split_args(args).collect();
        assert_eq!(args, vec![&b"/bin/sh"[..], b"-c", b"exit 7"]);
    }

    #[test]
    fn empty_argv_yields_no_arguments_and_inner_empty_arguments_are_kept() {
        assert_eq!(split_args(b"").count(), 0);
        assert_eq!(
            split_args(b"a\0\0b\0").collect::<Vec<_>>(),
            vec![&b"a"[..], b"", b"b"]
        );
    }

    #[test]
    fn argv_longer_than_the_record_is_rejected() {
        let mut bytes = exec_record(b"abc\0");
        // Claim more argv than the record carries.
        let offset = std::mem::offset_of!(ProcExec, args_len);
        bytes[offset..offset + 2].copy_from_slice(&100u16.to_le_bytes());
        assert!(matches!(
            Record::parse(&bytes),
            Err(RecordError::ArgsOverrun { args_len: 100, .. })
        ));
    }

    #[test]
    fn header_size_beyond_the_buffer_is_rejected() {
        let mut bytes = exec_record(b"");
        bytes.truncate(100);
        assert!(matches!(
            Record::parse(&bytes),
            Err(RecordError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn unknown_kind_is_returned_not_misread() {
        let mut header = EventHeader::zeroed();
        header.kind = 63;
        header.size = std::mem::size_of::<EventHeader>() as u16;
        let Record::Unknown(h) = Record::parse(bytemuck::bytes_of(&header)).unwrap() else {
            panic!()
        };
        assert_eq!(h.kind, 63);
    }

    #[test]
    fn truncated_fixed_part_is_rejected() {
        let mut header = EventHeader::zeroed();
        header.kind = kind::PROC_FORK;
        header.size = std::mem::size_of::<EventHeader>() as u16;
        assert!(matches!(
            Record::parse(bytemuck::bytes_of(&header)),
            Err(RecordError::TooShort { .. })
        ));
    }
}

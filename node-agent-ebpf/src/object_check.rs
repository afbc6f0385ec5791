//! Refuses an empty object or one built against another ABI version.

use object::{Object, ObjectSection, ObjectSymbol};

use crate::abi::ABI_VERSION;

/// Why an embedded BPF object cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("BPF object `{name}` is empty: the build did not produce it")]
    Empty { name: &'static str },
    #[error("BPF object `{name}` is not a readable ELF file")]
    Unreadable {
        name: &'static str,
        #[source]
        source: object::Error,
    },
    #[error("BPF object `{name}` has no `plb_abi_version`; it was not built from bpf/include/emit.bpf.h")]
    NoVersion { name: &'static str },
    #[error("BPF object `{name}` was built for ABI {found}, this agent speaks ABI {expected}: rebuild")]
    VersionMismatch { name: &'static str, found: u32, expected: u32 },
}

pub(crate) fn check(name: &'static str, bytes: &[u8]) -> Result<(), ObjectError> {
    if bytes.is_empty() {
        return Err(ObjectError::Empty { name });
    }
    let found = abi_version(bytes).map_err(|source| ObjectError::Unreadable { name, source })?;
    match found {
        None => Err(ObjectError::NoVersion { name }),
        Some(found) if found != ABI_VERSION => Err(ObjectError::VersionMismatch { name, found, expected: ABI_VERSION }),
        Some(_) => Ok(()),
    }
}

/// Reads the `plb_abi_version` constant from the object's `.rodata`.
fn abi_version(bytes: &[u8]) -> Result<Option<u32>, object::Error> {
    let file = object::File::parse(bytes)?;
    let Some(symbol) = file.symbols().find(|s| s.name() == Ok("plb_abi_version")) else {
        return Ok(None);
    };
    let Some(index) = symbol.section_index() else {
        return Ok(None);
    };
    let section = file.section_by_index(index)?;
    let data = section.data()?;
    let start = (symbol.address() - section.address()) as usize;
    Ok(data.get(start..start + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PROCESS;

    #[test]
    fn embedded_process_object_carries_this_abi_version() {
        assert_eq!(abi_version(PROCESS.bytes).unwrap(), Some(ABI_VERSION));
        PROCESS.bytes().unwrap();
    }

    #[test]
    fn empty_object_is_refused() {
        assert!(matches!(check("x", &[]), Err(ObjectError::Empty { .. })));
    }

    #[test]
    fn non_elf_object_is_refused() {
        assert!(matches!(check("x", b"not an elf file"), Err(ObjectError::Unreadable { .. })));
    }
}

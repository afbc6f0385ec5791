//! What TLS stack a file holds, and where to probe it.
//!
//! A shared library or executable is examined once (by device and inode):
//! OpenSSL's `SSL_read`/`SSL_write` (and `_ex`) in the dynamic or static symbol
//! table — the system libssl, or OpenSSL linked into an executable such as
//! node — and Go's `crypto/tls.(*Conn).Read`/`Write` in a Go binary's symbol
//! table, whose RET instructions are found by decoding the function. Stacks
//! the agent cannot hook (GnuTLS, NSS, a Go binary stripped of its symbol
//! table, rustls) are named with the reason, so a process using them is
//! reported rather than silently missed.

use std::{fs::File, path::Path};

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use object::{Object, ObjectSymbol};

use crate::file_probes::file_offset;
pub use crate::file_probes::ProbePoint;

/// What examining a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTarget {
    /// No TLS library the agent knows of.
    None,
    Hookable {
        library: &'static str,
        probes: Vec<ProbePoint>,
    },
    Unhookable {
        library: &'static str,
        reason: String,
    },
}

const OPENSSL: [(&str, &str); 4] = [
    ("SSL_write", "plb_ssl_write"),
    ("SSL_read", "plb_ssl_read"),
    ("SSL_write_ex", "plb_ssl_write_ex"),
    ("SSL_read_ex", "plb_ssl_read_ex"),
];
const GO_WRITE: &str = "crypto/tls.(*Conn).Write";
const GO_READ: &str = "crypto/tls.(*Conn).Read";

/// Shared libraries recognised by name whose TLS the agent cannot read.
const UNHOOKABLE_LIBRARIES: [(&str, &str, &str); 5] = [
    ("libgnutls.so", "gnutls", "GnuTLS (gnutls_record_send/recv) is not hooked"),
    ("libssl3.so", "nss", "NSS (PR_Write/PR_Read) is not hooked"),
    ("libnss3.so", "nss", "NSS (PR_Write/PR_Read) is not hooked"),
    ("libwolfssl.so", "wolfssl", "wolfSSL is not hooked"),
    ("libmbedtls.so", "mbedtls", "Mbed TLS is not hooked"),
];

/// Examines the file at `path`.
pub fn examine(path: &Path) -> std::io::Result<TlsTarget> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some((_, library, reason)) = UNHOOKABLE_LIBRARIES.iter().find(|(prefix, ..)| name.starts_with(prefix)) {
        return Ok(TlsTarget::Unhookable { library, reason: (*reason).to_string() });
    }
    let file = File::open(path)?;
    // SAFETY: the map is read-only and lives only for this call; a file
    // truncated underneath would fault, which executables in use are not.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(examine_bytes(&map))
}

/// Examines an ELF image.
pub fn examine_bytes(bytes: &[u8]) -> TlsTarget {
    let Ok(elf) = object::File::parse(bytes) else { return TlsTarget::None };
    let symbols = elf.dynamic_symbols().chain(elf.symbols());
    let mut openssl: Vec<ProbePoint> = Vec::new();
    let mut go_write = None;
    let mut go_read = None;
    let mut ssl_ctrl = None;
    for symbol in symbols {
        if !symbol.is_definition() || symbol.kind() != object::SymbolKind::Text {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        // Versioned names (SSL_write@@OPENSSL_3.0.0) appear in some tables.
        let base = name.split('@').next().unwrap_or(name);
        if let Some((symbol_name, program)) = OPENSSL.iter().find(|(s, _)| *s == base) {
            if openssl.iter().any(|p| p.symbol == *symbol_name) {
                continue;
            }
            let Some(offset) = file_offset(&elf, symbol.address()) else { continue };
            openssl.push(ProbePoint { program, offset, symbol: symbol_name.to_string() });
            openssl.push(ProbePoint { program: "plb_ssl_return", offset, symbol: symbol_name.to_string() });
        } else if base == "SSL_ctrl" {
            if let Some(offset) = file_offset(&elf, symbol.address()).filter(|_| ssl_ctrl.is_none()) {
                ssl_ctrl = Some(ProbePoint { program: "plb_ssl_ctrl", offset, symbol: base.to_string() });
            }
        } else if base == GO_WRITE {
            go_write = Some((symbol.address(), symbol.size()));
        } else if base == GO_READ {
            go_read = Some((symbol.address(), symbol.size()));
        }
    }
    if openssl.iter().any(|p| p.symbol == "SSL_write") && openssl.iter().any(|p| p.symbol == "SSL_read") {
        // SSL_ctrl carries the server name (SNI) the client asks for.
        openssl.extend(ssl_ctrl);
        return TlsTarget::Hookable { library: "openssl", probes: openssl };
    }
    if let (Some(write), Some(read)) = (go_write, go_read) {
        return match go_probes(&elf, bytes, write, read) {
            Some(probes) => TlsTarget::Hookable { library: "go", probes },
            None => TlsTarget::Unhookable {
                library: "go",
                reason: "crypto/tls found but its code could not be decoded".to_string(),
            },
        };
    }
    let go = elf.section_by_name(".go.buildinfo").is_some() || elf.section_by_name(".gopclntab").is_some();
    if go && memchr::memmem::find(bytes, GO_WRITE.as_bytes()).is_some() {
        return TlsTarget::Unhookable {
            library: "go",
            reason: "Go binary without a symbol table (built with -ldflags=-s): crypto/tls cannot be located"
                .to_string(),
        };
    }
    if memchr::memmem::find(bytes, b"rustls::conn").is_some() {
        return TlsTarget::Unhookable { library: "rustls", reason: "rustls is not hooked".to_string() };
    }
    TlsTarget::None
}

/// Entry probes on Write and Read, and a probe on every RET of Read.
fn go_probes(elf: &object::File<'_>, bytes: &[u8], write: (u64, u64), read: (u64, u64)) -> Option<Vec<ProbePoint>> {
    let write_offset = file_offset(elf, write.0)?;
    let read_offset = file_offset(elf, read.0)?;
    let mut probes = vec![
        ProbePoint { program: "plb_go_tls_write", offset: write_offset, symbol: GO_WRITE.into() },
        ProbePoint { program: "plb_go_tls_read", offset: read_offset, symbol: GO_READ.into() },
    ];
    let code = bytes.get(read_offset as usize..(read_offset + read.1) as usize)?;
    let mut decoder = Decoder::with_ip(64, code, read.0, DecoderOptions::NONE);
    let mut rets = 0;
    for instruction in &mut decoder {
        if instruction.mnemonic() == Mnemonic::Ret {
            rets += 1;
            probes.push(ProbePoint {
                program: "plb_go_tls_read_return",
                offset: read_offset + (instruction.ip() - read.0),
                symbol: format!("{GO_READ}+{:#x}", instruction.ip() - read.0),
            });
        }
    }
    (rets > 0).then_some(probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_libssl() -> Option<std::path::PathBuf> {
        ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    #[test]
    fn the_system_libssl_is_hookable_with_all_four_calls() {
        let Some(path) = system_libssl() else {
            assert!(std::env::var_os("CI").is_none(), "CI machines have libssl3");
            return;
        };
        let TlsTarget::Hookable { library, probes } = examine(&path).unwrap() else { panic!("not hookable") };
        assert_eq!(library, "openssl");
        for symbol in ["SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"] {
            assert_eq!(probes.iter().filter(|p| p.symbol == symbol).count(), 2, "{symbol}: entry and return");
        }
        assert!(probes.iter().any(|p| p.program == "plb_ssl_ctrl"), "the server name comes from SSL_ctrl");
    }

    #[test]
    fn files_without_tls_and_garbage_are_not_targets() {
        assert_eq!(examine(Path::new("/bin/true")).unwrap(), TlsTarget::None);
        assert_eq!(examine_bytes(b"\x7fELF garbage"), TlsTarget::None);
        assert_eq!(examine_bytes(&[]), TlsTarget::None);
    }

    #[test]
    fn gnutls_and_nss_are_named_unhookable() {
        for name in ["libgnutls.so.30", "libnss3.so", "libssl3.so"] {
            let target = examine(Path::new(&format!("/nonexistent/{name}"))).unwrap();
            assert!(matches!(target, TlsTarget::Unhookable { .. }), "{name}: {target:?}");
        }
    }
}

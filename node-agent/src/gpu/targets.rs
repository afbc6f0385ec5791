//! Which file is the CUDA runtime or NCCL, and where to probe it.
//!
//! A file is recognised by the functions its dynamic symbol table exports,
//! not by its name: libcudart is stripped but exports versioned names
//! (`cudaLaunchKernel@@libcudart.so.12`), and a program may carry either
//! library under another name. In libnccl each `ncclX` is a weak alias of
//! `pncclX` at the same address: one probe covers both.

use std::{fs::File, path::Path};

use object::{Object, ObjectSymbol};

use crate::file_probes::{file_offset, ProbePoint};

/// What examining a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuTarget {
    /// Neither library.
    None,
    Hookable {
        /// "cudart", "nccl", or both when one file holds both.
        libraries: Vec<&'static str>,
        probes: Vec<ProbePoint>,
    },
}

/// A family of functions: the symbol that identifies the library, each
/// function's entry program, and the return program they share.
struct Family {
    library: &'static str,
    anchor: &'static str,
    functions: &'static [(&'static str, &'static str)],
    on_return: &'static str,
}

/// `_ptsz`/`_ptds` are the per-thread-default-stream builds of a call: separate
/// functions with the same arguments.
const CUDART: Family = Family {
    library: "cudart",
    anchor: "cudaLaunchKernel",
    functions: &[
        ("cudaLaunchKernel", "plb_cuda_launch_kernel"),
        ("cudaLaunchKernel_ptsz", "plb_cuda_launch_kernel"),
        ("cudaLaunchKernelExC", "plb_cuda_launch_kernel_ex"),
        ("cudaLaunchKernelExC_ptsz", "plb_cuda_launch_kernel_ex"),
        ("cudaGraphLaunch", "plb_cuda_graph_launch"),
        ("cudaGraphLaunch_ptsz", "plb_cuda_graph_launch"),
        ("cudaMemcpy", "plb_cuda_memcpy"),
        ("cudaMemcpy_ptds", "plb_cuda_memcpy"),
        ("cudaMemcpyAsync", "plb_cuda_memcpy_async"),
        ("cudaMemcpyAsync_ptsz", "plb_cuda_memcpy_async"),
        ("cudaMalloc", "plb_cuda_malloc"),
        ("cudaFree", "plb_cuda_free"),
        ("cudaStreamSynchronize", "plb_cuda_stream_synchronize"),
        ("cudaStreamSynchronize_ptsz", "plb_cuda_stream_synchronize"),
        ("cudaDeviceSynchronize", "plb_cuda_device_synchronize"),
        ("cudaSetDevice", "plb_cuda_set_device"),
    ],
    on_return: "plb_cuda_return",
};

const NCCL: Family = Family {
    library: "nccl",
    anchor: "ncclAllReduce",
    functions: &[
        ("ncclAllReduce", "plb_nccl_all_reduce"),
        ("ncclAllGather", "plb_nccl_all_gather"),
        ("ncclReduceScatter", "plb_nccl_reduce_scatter"),
        ("ncclBroadcast", "plb_nccl_broadcast"),
        ("ncclReduce", "plb_nccl_reduce"),
        ("ncclSend", "plb_nccl_send"),
        ("ncclRecv", "plb_nccl_recv"),
        ("ncclGroupStart", "plb_nccl_group_start"),
        ("ncclGroupEnd", "plb_nccl_group_end"),
        ("ncclCommInitRank", "plb_nccl_comm_init_rank"),
        // Same registers and stack as ncclCommInitRank, plus a config pointer.
        ("ncclCommInitRankConfig", "plb_nccl_comm_init_rank"),
        ("ncclCommSplit", "plb_nccl_comm_split"),
        ("ncclCommDestroy", "plb_nccl_comm_destroy"),
    ],
    on_return: "plb_nccl_return",
};

/// Whether a file's name says it may be one of the libraries: the cheap test
/// made on every mapped or opened file before one is read.
pub fn is_candidate(path: &Path) -> bool {
    path.file_name()
        .map(|name| name.to_string_lossy())
        .is_some_and(|name| name.starts_with("libcudart.so") || name.starts_with("libnccl.so"))
}

/// Examines the file at `path`.
pub fn examine(path: &Path) -> std::io::Result<GpuTarget> {
    let file = File::open(path)?;
    // SAFETY: the map is read-only and lives only for this call; a file
    // truncated underneath would fault, which libraries in use are not.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(examine_bytes(&map))
}

/// Examines an ELF image.
pub fn examine_bytes(bytes: &[u8]) -> GpuTarget {
    let Ok(elf) = object::File::parse(bytes) else { return GpuTarget::None };
    let mut exported: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for symbol in elf.dynamic_symbols() {
        if !symbol.is_definition() || symbol.kind() != object::SymbolKind::Text {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        // Versioned names (cudaMalloc@@libcudart.so.12) appear in some tables.
        let base = name.split('@').next().unwrap_or(name);
        // pncclX is the strong symbol ncclX aliases.
        let base = base.strip_prefix("pnccl").map_or(base, |_| &base[1..]);
        exported.entry(base).or_insert(symbol.address());
    }
    let mut libraries = Vec::new();
    let mut probes = Vec::new();
    for family in [&CUDART, &NCCL] {
        if !exported.contains_key(family.anchor) {
            continue;
        }
        libraries.push(family.library);
        for (function, program) in family.functions {
            let Some(offset) = exported.get(function).and_then(|&address| file_offset(&elf, address)) else {
                continue;
            };
            probes.push(ProbePoint { program, offset, symbol: function.to_string() });
            probes.push(ProbePoint { program: family.on_return, offset, symbol: function.to_string() });
        }
    }
    if libraries.is_empty() {
        return GpuTarget::None;
    }
    GpuTarget::Hookable { libraries, probes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_libraries_names_are_candidates() {
        for path in ["/x/libcudart.so.12", "/x/libcudart.so", "/site-packages/nvidia/nccl/lib/libnccl.so.2"] {
            assert!(is_candidate(Path::new(path)), "{path}");
        }
        for path in ["/x/libcuda.so.1", "/x/libcudart_static.a", "/x/libnccl-net.so", "/usr/bin/python3"] {
            assert!(!is_candidate(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn files_without_cuda_or_nccl_and_garbage_are_not_targets() {
        assert_eq!(examine(Path::new("/bin/true")).unwrap(), GpuTarget::None);
        assert_eq!(examine_bytes(b"\x7fELF garbage"), GpuTarget::None);
        assert_eq!(examine_bytes(&[]), GpuTarget::None);
    }
}

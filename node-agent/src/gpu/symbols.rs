//! Kernel names. A launch passes the kernel's host function: an address in
//! the process. The process's memory maps say which file is mapped there and
//! at what offset; that file's program headers turn the offset into an
//! address in the ELF file, whose symbol table names the function (C++ names
//! demangled). Symbol tables are read once per file (device, inode); a
//! process's maps are read when first needed and again when an address falls
//! outside every mapping known (a library loaded since).

use std::{collections::HashMap, fs::File};

use object::{Object, ObjectSegment, ObjectSymbol, ObjectSymbolTable};

/// One file-backed mapping of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    /// (device, inode) of the file.
    file: (u64, u64),
    path: String,
}

/// A file's function symbols, sorted by address, and its loadable segments.
struct SymbolTable {
    map: memmap2::Mmap,
    /// (file offset, size in the file, virtual address) of each PT_LOAD.
    segments: Vec<(u64, u64, u64)>,
    /// (address, size, index in the dynamic (true) or static table).
    functions: Vec<(u64, u64, usize, bool)>,
}

impl SymbolTable {
    fn read(path: &str) -> Option<Self> {
        let file = File::open(path).ok()?;
        // SAFETY: read-only; a library or executable in use is not truncated.
        let map = unsafe { memmap2::Mmap::map(&file).ok()? };
        let elf = object::File::parse(&*map).ok()?;
        let segments = elf
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        let mut functions: Vec<(u64, u64, usize, bool)> = Vec::new();
        for (symbols, dynamic) in [(elf.symbols(), false), (elf.dynamic_symbols(), true)] {
            for symbol in symbols {
                if symbol.is_definition() && symbol.kind() == object::SymbolKind::Text && symbol.address() != 0 {
                    functions.push((symbol.address(), symbol.size(), symbol.index().0, dynamic));
                }
            }
        }
        functions.sort_unstable_by_key(|&(address, size, ..)| (address, std::cmp::Reverse(size)));
        functions.dedup_by_key(|f| f.0);
        Some(Self { map, segments, functions })
    }

    /// The function at file offset `offset`, demangled.
    fn name_at(&self, offset: u64) -> Option<String> {
        let &(seg_offset, _, vaddr) =
            self.segments.iter().find(|&&(start, size, _)| offset >= start && offset < start + size)?;
        let address = offset - seg_offset + vaddr;
        let at = self.functions.partition_point(|f| f.0 <= address).checked_sub(1)?;
        let (start, size, index, dynamic) = self.functions[at];
        if address >= start + size.max(1) {
            return None;
        }
        let elf = object::File::parse(&*self.map).ok()?;
        let symbol = if dynamic {
            elf.dynamic_symbol_table()?.symbol_by_index(object::SymbolIndex(index)).ok()?
        } else {
            elf.symbol_table()?.symbol_by_index(object::SymbolIndex(index)).ok()?
        };
        Some(demangle(symbol.name().ok()?))
    }
}

/// A C++ name demangled (`_ZN9plumbtest12scale_vectorEPfi` →
/// `plumbtest::scale_vector(float*, int)`); any other name as it is.
pub fn demangle(name: &str) -> String {
    let name = name.split('@').next().unwrap_or(name);
    cpp_demangle::Symbol::new(name).ok().and_then(|symbol| symbol.demangle().ok()).unwrap_or_else(|| name.to_string())
}

/// Names kernel host functions by address, per process.
#[derive(Default)]
pub struct KernelSymbols {
    maps: HashMap<u32, Vec<Mapping>>,
    /// None: the file could not be read as ELF (not retried).
    tables: HashMap<(u64, u64), Option<SymbolTable>>,
    /// (file, offset) already named.
    names: HashMap<((u64, u64), u64), Option<String>>,
}

impl KernelSymbols {
    /// Reads `pid`'s maps now, while the process is there to read: a short
    /// process may be gone by the time its launches are read.
    pub fn remember_maps(&mut self, pid: u32) {
        if let Some(maps) = read_maps(pid) {
            self.maps.insert(pid, maps);
        }
    }

    pub fn forget(&mut self, pid: u32) {
        self.maps.remove(&pid);
    }

    /// The name of the function at `address` in `pid`, if it can be found.
    pub fn name(&mut self, pid: u32, address: u64) -> Option<String> {
        if address == 0 {
            return None;
        }
        let mapping = match self.maps.get(&pid).and_then(|maps| find(maps, address)) {
            Some(mapping) => mapping,
            None => {
                self.remember_maps(pid);
                find(self.maps.get(&pid)?, address)?
            }
        };
        let offset = address - mapping.start + mapping.offset;
        if let Some(name) = self.names.get(&(mapping.file, offset)) {
            return name.clone();
        }
        let table = self.tables.entry(mapping.file).or_insert_with(|| {
            // The mapped file itself, even if deleted or in another mount
            // namespace; its path when the process has gone.
            let exact = format!("/proc/{pid}/map_files/{:x}-{:x}", mapping.start, mapping.end);
            SymbolTable::read(&exact).or_else(|| SymbolTable::read(&format!("/proc/{pid}/root{}", mapping.path)))
        });
        let name = table.as_ref().and_then(|table| table.name_at(offset));
        self.names.insert((mapping.file, offset), name.clone());
        name
    }
}

fn find(maps: &[Mapping], address: u64) -> Option<Mapping> {
    maps.iter().find(|m| address >= m.start && address < m.end).cloned()
}

fn read_maps(pid: u32) -> Option<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(text.lines().filter_map(parse_mapping).collect())
}

/// `start-end perms offset major:minor inode path`, file-backed lines only.
fn parse_mapping(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let _perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next().filter(|p| p.starts_with('/'))?;
    let device = u64::from_str_radix(major, 16).ok()? << 32 | u64::from_str_radix(minor, 16).ok()?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        file: (device, inode),
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    #[no_mangle]
    extern "C" fn plumbline_symbols_test_target(x: u64) -> u64 {
        x.wrapping_mul(2654435761).rotate_left(7)
    }

    #[test]
    fn a_function_of_this_process_is_named_by_its_address() {
        let address = plumbline_symbols_test_target as *const () as u64;
        let mut symbols = KernelSymbols::default();
        let name = symbols.name(std::process::id(), address);
        assert_eq!(name.as_deref(), Some("plumbline_symbols_test_target"));
        // Inside the function, not only at its start.
        assert_eq!(symbols.name(std::process::id(), address + 1).as_deref(), Some("plumbline_symbols_test_target"));
        assert_eq!(symbols.name(std::process::id(), 8), None, "an address no file is mapped at");
    }

    #[test]
    fn cpp_names_are_demangled_and_others_kept() {
        assert_eq!(demangle("_ZN9plumbtest12scale_vectorEPfi"), "plumbtest::scale_vector(float*, int)");
        assert_eq!(demangle("ncclDevKernel_AllReduce_Sum_f32_RING_LL"), "ncclDevKernel_AllReduce_Sum_f32_RING_LL");
        assert_eq!(demangle("cudaMalloc@@libcudart.so.12"), "cudaMalloc");
    }

    #[test]
    fn maps_lines_parse_and_anonymous_ones_are_skipped() {
        let line = "7f3a1c000000-7f3a1c021000 r-xp 00002000 fd:01 1234567    /usr/lib/libcudart.so.12";
        let mapping = parse_mapping(line).unwrap();
        assert_eq!((mapping.start, mapping.end, mapping.offset), (0x7f3a1c000000, 0x7f3a1c021000, 0x2000));
        assert_eq!(mapping.file, (0xfd << 32 | 1, 1234567));
        assert_eq!(mapping.path, "/usr/lib/libcudart.so.12");
        assert_eq!(parse_mapping("7ffd1000-7ffd2000 rw-p 00000000 00:00 0          [stack]"), None);
        assert_eq!(parse_mapping("7ffd1000-7ffd2000 rw-p 00000000 00:00 0"), None);
    }
}

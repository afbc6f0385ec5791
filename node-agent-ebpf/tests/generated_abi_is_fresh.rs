//! `src/abi/generated.rs` is the Rust mirror of `bpf/include/plumbline_abi.h`,
//! written by bindgen and checked in so an ordinary build needs no libclang.
//! This test regenerates it and fails when the checked-in copy has drifted
//! from the header.
//!
//! To rewrite the checked-in mirror after editing the header:
//! `PLUMBLINE_BLESS=1 cargo test -p plumbline-ebpf --test generated_abi_is_fresh`
//!
//! bindgen loads libclang (Debian: libclang1-19, which clang-19 pulls in).
//! Set `LIBCLANG_PATH` to use another one.

use std::path::PathBuf;

use bindgen::callbacks::{DeriveInfo, EnumVariantValue, IntKind, ItemInfo, ItemKind, ParseCallbacks};

/// What C cannot say about each enum: the Rust module that holds its values,
/// the prefixes dropped from their names (the first that matches), and the
/// Rust type of the values — the width of the record field that carries them.
const ENUMS: &[(&str, &str, &[&str], &str)] = &[
    // PLB_EV_KIND_MAX becomes kind::MAX.
    ("plb_event_kind", "kind", &["PLB_EV_KIND_", "PLB_EV_"], "u16"),
    ("plb_outcome", "outcome", &["PLB_OUT_"], "u32"),
    ("plb_io_kind", "io_kind", &["PLB_IO_"], "u32"),
    ("plb_transport", "transport", &["PLB_TRANSPORT_"], "u16"),
    ("plb_direction", "direction", &["PLB_DIR_"], "u16"),
    ("plb_filter_flags", "filter_flags", &["PLB_FILTER_"], "u32"),
    ("plb_filter_verdict", "filter_verdict", &["PLB_FILTER_"], "u8"),
    ("plb_shm_op", "shm_op", &["PLB_SHM_"], "u32"),
    ("plb_tls_library", "tls_library", &["PLB_TLS_"], "u8"),
    ("plb_tls_direction", "tls_direction", &["PLB_TLS_"], "u8"),
    ("plb_cuda_api", "cuda_api", &["PLB_CUDA_"], "u16"),
    ("plb_nccl_op", "nccl_op", &["PLB_NCCL_"], "u16"),
    ("plb_mode", "mode", &["PLB_MODE_"], "u8"),
    ("plb_decision", "decision", &["PLB_DECISION_"], "u8"),
    ("plb_mechanism", "mechanism", &["PLB_MECH_"], "u8"),
    ("plb_net_op", "net_op", &["PLB_NET_OP_"], "u8"),
    ("plb_exec_cover", "exec_cover", &["PLB_EXEC_"], "u8"),
    ("plb_file_op", "file_op", &["PLB_FILE_OP_"], "u8"),
    ("plb_file_access", "file_access", &["PLB_FILE_"], "u8"),
    ("plb_rate_action", "rate_action", &["PLB_RATE_"], "u8"),
    ("plb_rate_op", "rate_op", &["PLB_RATE_OP_"], "u8"),
    ("plb_rate_flag", "rate_flag", &["PLB_RATE_"], "u32"),
];

/// Derives beyond `Pod`/`Zeroable` for the BPF map keys and values the agent
/// keeps in its own maps and compares.
const EXTRA_DERIVES: &[(&str, &[&str])] = &[
    ("OpenKey", &["PartialEq", "Eq", "Hash"]),
    ("IoKey", &["PartialEq", "Eq", "Hash"]),
    ("IoStats", &["PartialEq", "Eq", "Default"]),
    ("CommKey", &["PartialEq", "Eq", "Hash"]),
    ("NetRuleAddr", &["PartialEq", "Eq", "Hash"]),
    ("RateKey", &["PartialEq", "Eq", "Hash"]),
    ("RoleInode", &["PartialEq", "Eq", "Hash"]),
    ("DnsName", &["PartialEq", "Eq", "Hash"]),
];

/// Struct names bindgen's `plb_snake_case` → `CamelCase` would spell otherwise.
const STRUCT_NAMES: &[(&str, &str)] = &[("plb_sockaddr", "SockAddr")];

/// What bindgen parses: the ABI header with the kernel's `__u64` & co. and
/// `char` spelled as `<stdint.h>` names, which bindgen writes as Rust's own
/// integers (`comm` and the paths are bytes to Rust whatever `char`'s sign).
const WRAPPER: &str = "\
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
#define __u8 uint8_t
#define __u16 uint16_t
#define __u32 uint32_t
#define __u64 uint64_t
#define __s8 int8_t
#define __s16 int16_t
#define __s32 int32_t
#define __s64 int64_t
#define char uint8_t
#include \"plumbline_abi.h\"
";

const HEADER: &str = "\
// Generated from bpf/include/plumbline_abi.h by tests/generated_abi_is_fresh.rs
// (bindgen); do not edit. After editing the header, rewrite it with
//   PLUMBLINE_BLESS=1 cargo test -p plumbline-ebpf --test generated_abi_is_fresh
";

#[derive(Debug)]
struct Names;

impl ParseCallbacks for Names {
    fn item_name(&self, item: ItemInfo) -> Option<String> {
        match item.kind {
            ItemKind::Var => item.name.strip_prefix("PLB_").map(str::to_string),
            ItemKind::Type => {
                if let Some((_, module, _, _)) = ENUMS.iter().find(|e| e.0 == item.name) {
                    return Some(module.to_string());
                }
                if let Some((_, name)) = STRUCT_NAMES.iter().find(|s| s.0 == item.name) {
                    return Some(name.to_string());
                }
                let snake = item.name.strip_prefix("plb_")?;
                Some(snake.split('_').map(|word| word[..1].to_uppercase() + &word[1..]).collect())
            }
            _ => None,
        }
    }

    fn enum_variant_name(&self, enum_name: Option<&str>, variant: &str, _: EnumVariantValue) -> Option<String> {
        let enum_name = enum_name?.trim_start_matches("enum ");
        let (_, _, prefixes, _) = ENUMS
            .iter()
            .find(|e| e.0 == enum_name)
            .unwrap_or_else(|| panic!("enum {enum_name} of plumbline_abi.h has no entry in ENUMS ({})", file!()));
        prefixes.iter().find_map(|p| variant.strip_prefix(p)).map(str::to_string)
    }

    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        // Every other constant is a length in bytes or a count.
        Some(match name {
            "PLB_ABI_VERSION" => IntKind::U32,
            "PLB_NAME_HASH_BASIS" | "PLB_NAME_HASH_PRIME" => IntKind::U64,
            _ => IntKind::Custom { name: "usize", is_signed: false },
        })
    }

    fn add_derives(&self, info: &DeriveInfo<'_>) -> Vec<String> {
        let extra = EXTRA_DERIVES.iter().find(|d| d.0 == info.name).map_or(&[][..], |d| d.1);
        ["bytemuck::Pod", "bytemuck::Zeroable"].iter().chain(extra).map(|d| d.to_string()).collect()
    }
}

fn generate() -> String {
    let include_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bpf/include");
    let bindings = bindgen::Builder::default()
        .header_contents("plumbline_abi_for_rust.h", WRAPPER)
        .clang_arg(format!("-I{}", include_dir.display()))
        .allowlist_item("plb_.*|PLB_.*")
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .translate_enum_integer_types(true)
        .parse_callbacks(Box::new(Names))
        .rust_edition(bindgen::RustEdition::Edition2021)
        // Not rustfmt: the output must not depend on which rustfmt is installed.
        .formatter(bindgen::Formatter::Prettyplease)
        .generate()
        .expect("bindgen could not parse bpf/include/plumbline_abi.h");
    let mut text = bindings.to_string();
    for (_, module, _, ty) in ENUMS {
        text = set_enum_type(&text, module, ty);
    }
    format!("{HEADER}{text}")
}

/// Gives the constants of one enum module their Rust type in place of the
/// module's `Type` alias (bindgen's `u32` for every C enum).
fn set_enum_type(text: &str, module: &str, ty: &str) -> String {
    let start = text.find(&format!("pub mod {module} {{\n")).unwrap_or_else(|| panic!("no module {module}"));
    let end = start + text[start..].find("\n}\n").unwrap_or_else(|| panic!("module {module} does not end"));
    let body = &text[start..end];
    assert!(body.contains("    pub type Type = u32;\n"), "module {module} has no `Type = u32`:\n{body}");
    let body = body.replace("    pub type Type = u32;\n", "").replace(": Type = ", &format!(": {ty} = "));
    format!("{}{body}{}", &text[..start], &text[end..])
}

#[test]
fn checked_in_abi_mirror_matches_the_c_header() {
    let generated = generate();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/abi/generated.rs");
    if std::env::var_os("PLUMBLINE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let first_difference = checked_in
        .lines()
        .zip(generated.lines())
        .position(|(old, new)| old != new)
        .map_or_else(|| "in its length".to_string(), |line| format!("from line {}", line + 1));
    assert!(
        checked_in == generated,
        "{} is out of date with bpf/include/plumbline_abi.h (it differs {first_difference}); \
         rerun this test with PLUMBLINE_BLESS=1",
        path.display()
    );
}

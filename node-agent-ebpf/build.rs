//! Compiles every `bpf/*.bpf.c` with clang-19 into `$OUT_DIR/<name>.bpf.o`
//! (CO-RE, with BTF from `-g`), for the architecture cargo builds for.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let bpf_dir = manifest_dir.join("bpf");
    let include_dir = bpf_dir.join("include");
    let clang = env::var("PLUMBLINE_CLANG").unwrap_or_else(|_| "clang-19".to_string());
    let target_arch = format!("-D__TARGET_ARCH_{}", bpf_target_arch());

    println!("cargo:rerun-if-env-changed=PLUMBLINE_CLANG");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    for entry in std::fs::read_dir(&include_dir).expect("bpf/include") {
        println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
    }

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&bpf_dir)
        .expect("bpf/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
        let stem = source.file_name().unwrap().to_string_lossy().trim_end_matches(".c").to_string();
        let object = out_dir.join(format!("{stem}.o"));
        run(
            Command::new(&clang)
                .args(["-O2", "-g", "-target", "bpf", &target_arch, "-Wall", "-Werror"])
                .arg("-I")
                .arg(&include_dir)
                .arg("-c")
                .arg(source)
                .arg("-o")
                .arg(&object),
            &clang,
        );
    }
}

/// libbpf's name for the target architecture, which `bpf_tracing.h` needs to
/// know. The programs read x86-64 registers by name (`struct pt_regs` in
/// `kernel_types.h`; gpu.bpf.c, tls.bpf.c and file.bpf.c take arguments from
/// it), so an arm64 build compiles but its uprobe and syscall-argument
/// programs fail to load until those are ported.
fn bpf_target_arch() -> &'static str {
    match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        other => panic!("no eBPF build for target architecture {other:?} (x86_64 and aarch64 are known)"),
    }
}

fn run(cmd: &mut Command, clang: &str) {
    let status = match cmd.status() {
        Ok(status) => status,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "{clang} not found: the eBPF programs need clang 19 and the libbpf headers \
             (Debian: apt-get install clang-19 libbpf-dev), or set PLUMBLINE_CLANG"
        ),
        Err(err) => panic!("running {clang}: {err}"),
    };
    assert!(status.success(), "{clang} failed: {cmd:?}");
}

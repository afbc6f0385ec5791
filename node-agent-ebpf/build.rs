//! Compiles every `bpf/*.bpf.c` with clang-19 into `$OUT_DIR/<name>.bpf.o`
//! (CO-RE, with BTF from `-g`).

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let bpf_dir = manifest_dir.join("bpf");
    let include_dir = bpf_dir.join("include");
    let clang = env::var("PLUMBLINE_CLANG").unwrap_or_else(|_| "clang-19".to_string());

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
                .args(["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Wall", "-Werror"])
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

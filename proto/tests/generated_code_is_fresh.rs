//! The generated Rust under `src/gen/` is checked in so an ordinary build
//! needs no protoc. This test regenerates it from the `.proto` files (with a
//! vendored protoc) and fails when the checked-in copy has drifted.
//!
//! To rewrite the checked-in code after editing a `.proto`:
//! `PLUMBLINE_BLESS=1 cargo test -p plumbline-proto --test generated_code_is_fresh`

use std::path::{Path, PathBuf};

fn generate(out_dir: &Path) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path().unwrap()) };
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out_dir)
        // Lets tools print any message as JSON (`plumbline agent --output stdout`).
        .type_attribute(".plumbline.v1", "#[derive(serde::Serialize)]")
        .compile_protos(&[root.join("plumbline/v1/events.proto"), root.join("plumbline/v1/query.proto")], &[root])
        .expect("generate Rust from the .proto files");
}

#[test]
fn checked_in_generated_code_matches_the_proto_files() {
    let fresh = tempfile::tempdir().unwrap();
    generate(fresh.path());
    let name = "plumbline.v1.rs";
    let generated = std::fs::read_to_string(fresh.path().join(name)).unwrap();
    let checked_in_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/gen").join(name);
    if std::env::var_os("PLUMBLINE_BLESS").is_some() {
        std::fs::write(&checked_in_path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with proto/proto/plumbline/v1/*.proto; rerun this test with PLUMBLINE_BLESS=1",
        checked_in_path.display()
    );
}

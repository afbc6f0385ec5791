//! The fuzz corpus, `fuzz/corpus/<target>/`, replayed through the bodies the
//! cargo-fuzz targets run (`plumbline_intent::fuzzing`), as kept and then
//! mangled, so that ordinary `cargo test` exercises every input the fuzzer
//! kept without a nightly toolchain. The corpus holds the seeds built from
//! the golden cases and the inputs the fuzzer found new paths with.

use std::path::Path;

use plumbline_intent::fuzzing;

/// A fuzz target's body.
type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 4] =
    [("http1", fuzzing::http1), ("http2", fuzzing::http2), ("sse", fuzzing::sse), ("llm", fuzzing::llm)];

/// Mangled copies per corpus input.
const MANGLED_COPIES: usize = 8;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus").path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).collect()
}

#[test]
fn the_saved_corpus_replays() {
    for (target, run) in TARGETS {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "no corpus for {target}");
        for input in &inputs {
            run(input);
        }
    }
}

#[test]
fn mangled_corpus_inputs_replay() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut runs = 0;
    for (target, run) in TARGETS {
        for input in corpus(target).iter().filter(|i| i.len() > 1) {
            for _ in 0..MANGLED_COPIES {
                let mut bytes = input.clone();
                // A few bytes overwritten, and sometimes the tail cut off.
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                if next() % 4 == 0 {
                    bytes.truncate(1 + (next() as usize) % bytes.len());
                }
                run(&bytes);
                runs += 1;
            }
        }
    }
    assert!(runs > 0);
}

//! A request and response body through `interpret` in every wire format.
//! The body is `plumbline_intent::fuzzing::llm`, which the tests replay.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plumbline_intent::fuzzing::llm(data));

//! A server-sent event body, fed whole and in pieces.
//! The body is `plumbline_intent::fuzzing::sse`, which the tests replay.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plumbline_intent::fuzzing::sse(data));

//! An HTTP/2 connection of either direction, fed whole and in pieces; requests
//! the endpoint catalog knows go through `interpret`.
//! The body is `plumbline_intent::fuzzing::http2`, which the tests replay.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plumbline_intent::fuzzing::http2(data));

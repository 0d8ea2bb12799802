//! Feeds arbitrary bytes to the client's response decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tagcached_protocol_fuzz::decode_response_stream(data));

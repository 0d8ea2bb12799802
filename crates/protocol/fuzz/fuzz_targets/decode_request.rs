//! Feeds arbitrary bytes to the server's request decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tagcached_protocol_fuzz::decode_request_stream(data));

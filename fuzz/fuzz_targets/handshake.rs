//! Fuzz target `handshake`: see `labnet_fuzz::protocol::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::handshake(data);
});

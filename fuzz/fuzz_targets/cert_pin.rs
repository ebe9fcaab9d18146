//! Fuzz target `cert_pin`: see `labnet_node::fuzzing::cert_pin`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::cert_pin(data);
});

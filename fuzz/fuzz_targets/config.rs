//! Fuzz target `config`: see `labnet_node::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::config(data);
});

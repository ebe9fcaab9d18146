//! Fuzz target `session`: see `labnet_node::fuzzing::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::session(data);
});

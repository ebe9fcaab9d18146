//! Fuzz target `scrub`: see `labnet_node::fuzzing::scrub`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::scrub(data);
});

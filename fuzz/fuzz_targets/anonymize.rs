//! Fuzz target `anonymize`: see `labnet_node::fuzzing::anonymize`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::anonymize(data);
});

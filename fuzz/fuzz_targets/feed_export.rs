//! Fuzz target `feed_export`: see `labnet_node::fuzzing::feed_export`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::feed_export(data);
});

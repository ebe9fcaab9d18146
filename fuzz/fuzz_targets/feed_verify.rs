//! Fuzz target `feed_verify`: see `labnet_node::fuzzing::feed_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_node::fuzzing::feed_verify(data);
});

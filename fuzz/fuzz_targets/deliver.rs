//! Fuzz target `deliver`: see `labnet_node::fuzzing::deliver`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = labnet_node::fuzzing::deliver(data);
});

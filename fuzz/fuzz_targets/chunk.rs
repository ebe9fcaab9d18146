//! Fuzz target `chunk`: see `labnet_fuzz::protocol::chunk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::chunk(data);
});

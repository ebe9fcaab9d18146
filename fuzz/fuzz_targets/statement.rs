//! Fuzz target `statement`: see `labnet_fuzz::protocol::statement`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::statement(data);
});

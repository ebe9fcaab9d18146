//! Fuzz target `sync_message`: see `labnet_fuzz::protocol::sync_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::sync_message(data);
});

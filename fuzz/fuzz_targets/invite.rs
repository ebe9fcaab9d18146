//! Fuzz target `invite`: see `labnet_fuzz::protocol::invite`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::invite(data);
});

//! Fuzz target `frame_decode`: see `labnet_fuzz::protocol::frame_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    labnet_fuzz::protocol::frame_decode(data);
});

//! The LEB128 writer shared by the sync wire and the change chunk checks.
//!
//! The sync messages and Automerge's chunk headers write unsigned integers the
//! same way: seven bits a byte, low bits first, the top bit set on every byte
//! but the last. Their readers differ (a chunk's length must also be minimal,
//! as Automerge writes it), so only the writer is shared.

/// Appends the minimal unsigned LEB128 encoding of `value` to `out`.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

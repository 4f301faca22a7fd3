//! Ring-buffer records decoded from arbitrary bytes: an error or an event, never a panic, and
//! argv stays within the limits.
//!
//! The raw bytes are tried as they are, and once more shaped like a record: the first byte picks
//! the kind (written at the header's kind offset) and the rest is padded to a record's length, so
//! a short run reaches every kind's decoder instead of stopping at the length check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sensor::kernel::decode::decode_record;
use palisade_sensor::kernel::event::KernelPayload;

/// Offset of the kind field in the record header, and the largest fixed part of any record.
const KIND_OFFSET: usize = 24;
const SHAPED_MIN_LEN: usize = 640;

fn check(record: &[u8]) {
    if let Ok(event) = decode_record(record)
        && let KernelPayload::Exec(exec) = &event.payload
    {
        assert!(exec.args.len() <= 256);
        assert!(exec.args.iter().all(|a| a.len() <= 4096 * 3));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((&kind, rest)) = data.split_first() {
        let mut shaped = rest.to_vec();
        if shaped.len() < SHAPED_MIN_LEN {
            shaped.resize(SHAPED_MIN_LEN, 0);
        }
        shaped[KIND_OFFSET..KIND_OFFSET + 4].copy_from_slice(&u32::from(kind % 16).to_le_bytes());
        check(&shaped);
    }
});

//! Ring-buffer records decoded from arbitrary bytes: an error or an event, never a panic, and
//! argv stays within the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_sensor::kernel::decode::decode_record;
use palisade_sensor::kernel::event::KernelPayload;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = decode_record(data)
        && let KernelPayload::Exec(exec) = &event.payload
    {
        assert!(exec.args.len() <= 256);
        assert!(exec.args.iter().all(|a| a.len() <= 4096 * 3));
    }
});

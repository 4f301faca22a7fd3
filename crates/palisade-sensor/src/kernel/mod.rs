//! The eBPF side (part kernel): loading the CO-RE programs, configuring their in-kernel filters,
//! reading the ring buffer and decoding records into [`event::KernelEvent`].

pub mod event;

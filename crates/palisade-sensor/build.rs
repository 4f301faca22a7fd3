//! Compiles the CO-RE eBPF programs (`src/bpf/sensor.bpf.c`) with clang into an object that
//! `src/kernel/mod.rs` embeds and loads with libbpf-rs. `vmlinux.h` is committed, so the build
//! needs clang but neither bpftool nor kernel BTF.

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/sensor.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let obj = out.join("sensor.bpf.o");
    if let Err(err) = SkeletonBuilder::new()
        .source(SRC)
        .obj(&obj)
        .clang_args(["-Isrc/bpf", "-Wall", "-Wno-unused-function"])
        .build()
    {
        panic!(
            "compiling {SRC} with clang failed (apt install clang libelf-dev zlib1g-dev): {err:#}"
        );
    }
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=src/bpf/sensor.h");
    println!("cargo:rerun-if-changed=src/bpf/vmlinux.h");
}

//! Compiles `proto/` (swarming.v2, muster.v1 and a minimal google.rpc.Status) into Rust:
//! protox parses the .proto files (no system protoc), prost-build generates the
//! message types and pbjson-build generates proto3-JSON serde impls for them.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "swarming/v2/swarming.proto",
    "google/rpc/status.proto",
    "muster/v1/ops.proto",
    "muster/v1/notifications.proto",
    "scheduler/scheduler.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("proto");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(p).display());
    }

    let fds = protox::compile(PROTOS, [&proto_dir])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("swarming_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;

    prost_build::Config::new()
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        // Our own Timestamp: pbjson-types writes `+00:00`, the wire wants `Z`.
        .extern_path(".google.protobuf.Timestamp", "crate::pb::Timestamp")
        .compile_fds(fds)?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new().register_descriptors(&descriptors)?.ignore_unknown_fields().build(&[
        ".swarming.v2",
        ".google.rpc",
        ".muster.v1",
        ".scheduler",
    ])?;
    Ok(())
}

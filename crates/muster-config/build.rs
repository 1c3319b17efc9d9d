//! Compiles muster's own copies of the upstream config schemas (`proto/`)
//! into Rust types (prost-build) and a descriptor set that the text-format
//! parser (prost-reflect) reads at run time.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "swarming/config/realms.proto",
    "swarming/config/config.proto",
    "swarming/config/bots.proto",
    "swarming/config/pools.proto",
    "auth_service/realms_config.proto",
    "auth/configs/ip_allowlist.proto",
    "scheduler/config/config.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("proto");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(p).display());
    }
    let fds = protox::compile(PROTOS, [&proto_dir])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("config_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

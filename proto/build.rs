//! Compiles every .proto under `proto/` with protox (pure Rust, no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/r1/v1/common.proto",
        "proto/r1/v1/reward.proto",
        "proto/r1/v1/inference.proto",
        "proto/r1/v1/learner.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}

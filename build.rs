//! Generates the slant.v1 gRPC code and the descriptor set used by server
//! reflection. protoc comes from `$PROTOC` when set, else from the
//! `protoc-bin-vendored` crate, so a fresh clone builds with cargo alone.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("slant_descriptor.bin"))
        .compile_protos(&["proto/slant/v1/slant.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

//! Generates the slant.v1 gRPC code, the descriptor set used by server
//! reflection, and (pbjson) the types' serde impls in the proto3 JSON
//! mapping. protoc comes from `$PROTOC` when set, else from the
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
    let descriptors = out.join("slant_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptors)
        .compile_protos(&["proto/slant/v1/slant.proto"], &["proto"])?;
    // Every field is written, defaults included (a probability of 0, a
    // span starting at 0), as the proto3 JSON mapping allows: readers need
    // not know the defaults.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .emit_fields()
        .build(&[".slant.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

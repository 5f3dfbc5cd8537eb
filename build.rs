//! Generates the slant.v1 gRPC code, the descriptor set used by server
//! reflection, and (pbjson) the types' serde impls in the proto3 JSON
//! mapping. The messages and the client go to `OUT_DIR`; the server goes
//! to `OUT_DIR/server`, generated apart so that Score answers with
//! `service::reply::ScoreReply`, which encodes the same `ScoreResponse`
//! bytes straight from the model's names (see that module). protoc comes
//! from `$PROTOC` when set, else from the `protoc-bin-vendored` crate, so a
//! fresh clone builds with cargo alone.
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
    let proto = ["proto/slant/v1/slant.proto"];
    tonic_prost_build::configure()
        .build_server(false)
        .file_descriptor_set_path(&descriptors)
        .compile_protos(&proto, &["proto"])?;
    let server = out.join("server");
    std::fs::create_dir_all(&server)?;
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&server)
        .extern_path(
            ".slant.v1.ScoreResponse",
            "crate::service::reply::ScoreReply",
        )
        .extern_path(".slant.v1", "crate::proto")
        .compile_protos(&proto, &["proto"])?;
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

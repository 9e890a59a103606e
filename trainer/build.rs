//! LibTorch builds (`--features tch`): the binaries and test programs find the libtorch they were
//! linked against at run time by an rpath, so nobody sets `LD_LIBRARY_PATH` by hand.
//!
//! torch-sys reports the folder it linked (`DEP_TCH_LIBTORCH_LIB`: the `torch/lib` of the wheel
//! in `.venv` that `cargo xtask` builds against). `OGMGE_TORCH_RPATH` replaces it where the binary
//! runs on another machine (the GPU bundle: that machine's own torch, same version). With
//! `tch-cuda`, libtorch's CUDA half is linked even though no symbol of it is referenced (the
//! linker's `--as-needed` would drop it, and LibTorch would then see no GPU).

#[path = "src/torch_version.rs"]
mod torch_version;

fn main() {
    println!("cargo:rerun-if-env-changed=OGMGE_TORCH_RPATH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    // The real folder: libtorch's CUDA half finds NVIDIA's libraries relative to its own path.
    let linked = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    let linked = std::fs::canonicalize(&linked).map_or(linked, |p| p.display().to_string());
    // The version the binary checks at start (`device::prepare`).
    let version = torch_version::of_lib_dir(std::path::Path::new(&linked)).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OGMGE_TORCH_BUILT={version}");
    let rpath = std::env::var("OGMGE_TORCH_RPATH").unwrap_or(linked);
    for dir in rpath.split(':').filter(|d| !d.is_empty()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    if std::env::var_os("CARGO_FEATURE_TCH_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

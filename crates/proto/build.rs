//! Build script: compiles the project's own .proto files (the repository's `proto/`) with
//! protox, so no `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    protos()
}

fn protos() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from("../../proto");
    println!("cargo:rerun-if-changed=../../proto");
    let mut files = Vec::new();
    collect(&dir, &mut files)?;
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    let fds = protox::compile(&files, [&dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

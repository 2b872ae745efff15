//! Embeds every check metadata file (`checks/*.json`) and every compliance mapping file
//! (`compliance/*.json`) into the binary.
use std::{env, fs, path::Path};

/// Writes `OUT_DIR/<out>`: `pub static <name>: &[(file name, contents)]`, one entry per
/// `<dir>/*.json`, sorted by name.
fn embed(dir: &str, name: &str, out: &str) {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut text = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        text.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            f.file_name().unwrap().to_string_lossy(),
            f.display().to_string()
        ));
    }
    text.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join(out), text).unwrap();
}

fn main() {
    embed("checks", "EMBEDDED", "checks_embedded.rs");
    embed("compliance", "EMBEDDED", "compliance_embedded.rs");
}

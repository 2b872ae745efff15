//! A fresh clone with nothing beside it runs the whole test suite: no test, build script,
//! generator or benchmark reads a file outside the repository (issue 11 item 17).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file under `dir` (recursively) whose name ends in one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | ".venv" | "corpus" | "artifacts") {
                files(&p, exts, out);
            }
        } else if exts.iter().any(|x| name.ends_with(x)) {
            out.push(p);
        }
    }
}

#[test]
fn nothing_reads_outside_the_repository() {
    let root = root();
    let mut all = vec![root.join("build.rs"), root.join("Cargo.toml")];
    for dir in ["tests", "scripts", "bench", "fuzz", "src", ".ci"] {
        files(
            &root.join(dir),
            &[".rs", ".py", ".sh", ".toml", "run"],
            &mut all,
        );
    }
    assert!(all.len() > 40, "found only {} files", all.len());
    // The path the workspace keeps beside the clone, built from parts so that this file, which
    // only looks for it, does not name it itself (and needs no exception).
    let beside = ["..", "shared"].join("/");
    let mut outside = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.contains(&beside) {
                outside.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "files outside the clone are read (a fresh clone has nothing beside it):\n{}",
        outside.join("\n")
    );
}

/// The references the tests compare the code with are in the repository.
#[test]
fn the_references_are_carried_by_the_repository() {
    for f in [
        "reference/requirements.md",
        "reference/kms-xks-trusted-certificate-authorities.txt",
        "reference/README.md",
    ] {
        let p = root().join(f);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.len() > 100, "{f} is empty");
    }
}

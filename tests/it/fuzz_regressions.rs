//! Replays the fuzz inputs kept in the repository through the fuzz targets' own entry points
//! (`fuzz/harness.rs`, shared with `fuzz/fuzz_targets/`), without libFuzzer:
//!
//! - `fuzz/regressions/<target>/*`: minimized inputs that once made a target panic (kept when a
//!   fuzzing run finds a crash, see `scripts/fuzz.sh`); each must now run without a panic;
//! - `fuzz/corpus/<target>/*`: the seed corpora, so the harness itself keeps working.
//!
//! Every directory name must be a known target, so that a renamed target cannot silently drop
//! its inputs.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// (target, file) for every file under `fuzz/<kind>/<target>/`.
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let dir = root().join(kind);
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(&dir) else {
        return out;
    };
    for t in targets {
        let t = t.unwrap();
        if !t.file_type().unwrap().is_dir() {
            continue;
        }
        let name = t.file_name().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.iter().any(|(n, _)| *n == name),
            "{}: no fuzz target named {name:?} (known: {:?})",
            t.path().display(),
            harness::TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        for f in std::fs::read_dir(t.path()).unwrap() {
            let f = f.unwrap();
            if f.file_type().unwrap().is_file() && !f.file_name().to_string_lossy().starts_with('.')
            {
                out.push((name.clone(), f.path()));
            }
        }
    }
    out.sort();
    out
}

/// Runs every input, collecting panics instead of stopping at the first one.
fn replay(kind: &str) -> usize {
    let all = inputs(kind);
    let mut failures = Vec::new();
    for (target, path) in &all {
        let run = harness::TARGETS
            .iter()
            .find(|(n, _)| n == target)
            .unwrap()
            .1;
        let data = std::fs::read(path).unwrap();
        if let Err(p) = std::panic::catch_unwind(|| run(&data)) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{target}: {}: panicked: {msg}", path.display()));
        }
    }
    harness::remove_scratch();
    assert!(
        failures.is_empty(),
        "{} of {} inputs under fuzz/{kind}/ panic:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    all.len()
}

#[test]
fn fuzz_regressions_do_not_panic() {
    replay("regressions");
}

#[test]
fn seed_corpora_do_not_panic() {
    let n = replay("corpus");
    assert!(n > 0, "no seed inputs found under fuzz/corpus/");
    for (target, _) in harness::TARGETS {
        assert!(
            inputs("corpus").iter().any(|(t, _)| t == target),
            "fuzz/corpus/{target}/ has no seed"
        );
    }
}

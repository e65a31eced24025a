//! Replays every input kept for the fuzz targets: the seeds and each input that once
//! made a target fail.

use std::path::{Path, PathBuf};

use cas_fuzzing::{run, TARGETS};

fn kept_inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    files.sort();
    files
}

#[test]
fn kept_inputs_pass_every_target() {
    let mut replayed = 0;
    for target in TARGETS {
        for file in kept_inputs("seeds", target)
            .into_iter()
            .chain(kept_inputs("regressions", target))
        {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(run(target, &data), "unknown target {target}");
            replayed += 1;
        }
    }

    assert!(replayed >= TARGETS.len(), "only {replayed} kept inputs");
}

#[test]
fn unknown_target_is_reported() {
    assert!(!run("no_such_target", b""));
}

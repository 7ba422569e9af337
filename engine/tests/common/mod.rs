//! Helpers shared by the engine's integration tests.

use std::path::PathBuf;

/// ksqlDB's query-validation tests in `../shared` beside the workspace. `None` (with a
/// message) where a user's fresh clone has no `../shared`; under CI its absence fails.
pub fn qtt_folder() -> Option<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/ksql-qtt/query-validation-tests");
    if root.is_dir() {
        return Some(root);
    }
    assert!(
        std::env::var("CI").is_err(),
        "under CI the conformance suite must be present at {}",
        root.display()
    );
    eprintln!("skipping: {} is absent", root.display());
    None
}

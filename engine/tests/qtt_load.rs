//! Every file of ksqlDB's query-validation suite loads with the conformance model, and
//! expands into its variants.

use sluice_engine::conformance::model::load_file;

#[test]
fn the_whole_suite_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/ksql-qtt/query-validation-tests");
    let Ok(dir) = std::fs::read_dir(&root) else {
        assert!(
            std::env::var("CI").is_err(),
            "under CI the conformance suite must be present at {}",
            root.display()
        );
        eprintln!("skipping: {} is absent", root.display());
        return;
    };
    let mut files: Vec<_> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut cases, mut variants) = (0, 0);
    for f in &files {
        let file = load_file(f).unwrap();
        cases += file.cases.len();
        let vs = file.variants();
        assert!(
            vs.iter()
                .all(|v| !v.statements.iter().any(|s| s.contains("{FORMAT}"))),
            "{}",
            f.display()
        );
        variants += vs.len();
    }
    eprintln!("{} files, {cases} cases, {variants} variants", files.len());
    assert!(files.len() > 100 && cases > 1000 && variants >= cases);
}

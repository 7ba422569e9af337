//! Every file of ksqlDB's query-validation suite loads with the conformance model, and
//! expands into its variants.

mod common;

use sluice_engine::conformance::model::load_file;

#[test]
fn the_whole_suite_loads() {
    let Some(root) = common::qtt_folder() else {
        return;
    };
    let dir = std::fs::read_dir(&root).unwrap();
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

//! Parser tests: the shapes of ksqlDB's statements, errors with positions, and every
//! statement of ksqlDB's own query-validation suite that ksqlDB accepts.

use sluice_sql::ast::*;
use sluice_sql::{SqlType, parse, parse_statement};

#[test]
fn create_stream_with_columns_and_properties() {
    let s = parse_statement(
        "CREATE STREAM pageviews (id BIGINT KEY, `Name` VARCHAR, tags ARRAY<MAP<STRING, STRUCT<a INT, `b` DECIMAL(4, 2)>>>, h BYTES HEADER('trace'), hs ARRAY<STRUCT<key STRING, value BYTES>> HEADERS) \
         WITH (kafka_topic='pv', value_format='JSON', partitions=3, wrap_single_value=false);",
    )
    .unwrap();
    let Statement::CreateSource(c) = s else {
        panic!("{s:?}")
    };
    assert_eq!(c.kind, SourceKind::Stream);
    assert_eq!(c.name, "PAGEVIEWS");
    assert_eq!(c.columns[0].name, "ID");
    assert_eq!(c.columns[0].constraint, ColumnConstraint::Key);
    assert_eq!(c.columns[1].name, "Name");
    assert_eq!(
        c.columns[2].ty.to_string(),
        "ARRAY<MAP<STRING, STRUCT<`A` INTEGER, `b` DECIMAL(4, 2)>>>"
    );
    assert_eq!(
        c.columns[3].constraint,
        ColumnConstraint::Header("trace".into())
    );
    assert_eq!(c.columns[4].constraint, ColumnConstraint::Headers);
    assert_eq!(c.properties["KAFKA_TOPIC"], Literal::String("pv".into()));
    assert_eq!(c.properties["PARTITIONS"], Literal::Number("3".into()));
    assert_eq!(c.properties["WRAP_SINGLE_VALUE"], Literal::Boolean(false));
}

#[test]
fn csas_with_ksql_clauses() {
    let s = parse_statement(
        "CREATE TABLE t WITH (KAFKA_TOPIC='out') AS SELECT s.k, COUNT(*) AS n, s.st->f, TRANSFORM(arr, x => x + 1), MAP('a' := 1) \
         FROM s WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 1 MINUTE) WHERE s.v > 0 GROUP BY s.k HAVING COUNT(*) > 1 EMIT CHANGES LIMIT 5;",
    )
    .unwrap();
    let Statement::CreateAsSelect(c) = s else {
        panic!()
    };
    assert_eq!(c.kind, SourceKind::Table);
    let q = c.query;
    assert_eq!(q.select.len(), 5);
    assert!(matches!(&q.select[1], SelectItem::Expr { alias: Some(a), .. } if a == "N"));
    assert!(matches!(
        &q.select[3],
        SelectItem::Expr {
            expr: Expr::Function(_),
            ..
        }
    ));
    assert_eq!(
        q.window.unwrap(),
        Window {
            kind: WindowKind::Tumbling {
                size: Duration { millis: 10_000 }
            },
            retention: None,
            grace: Some(Duration { millis: 60_000 }),
        }
    );
    assert!(q.filter.is_some() && q.having.is_some());
    assert_eq!(q.group_by.len(), 1);
    assert_eq!(q.emit, Some(Emit::Changes));
    assert_eq!(q.limit, Some(5));
}

#[test]
fn joins_and_struct_wildcards() {
    let s = parse_statement(
        "SELECT a.*, b.x->* FROM orders a LEFT JOIN shipments AS b WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 5 MINUTES ON a.id = b.id \
         INNER JOIN c ON a.id = c.id EMIT CHANGES;",
    )
    .unwrap();
    let Statement::Select(q) = s else { panic!() };
    assert_eq!(q.select[0], SelectItem::QualifiedWildcard("A".into()));
    assert!(matches!(q.select[1], SelectItem::StructWildcard(_)));
    let Relation::Join { left, kind, .. } = q.from else {
        panic!()
    };
    assert_eq!(kind, JoinKind::Inner);
    let Relation::Join {
        kind,
        within,
        grace,
        ..
    } = *left
    else {
        panic!()
    };
    assert_eq!(kind, JoinKind::Left);
    assert_eq!(within.unwrap().after.millis, 7_200_000);
    assert_eq!(grace.unwrap().millis, 300_000);
}

#[test]
fn the_other_statements() {
    let all = parse(
        "-- a comment\nINSERT INTO s (a, b) VALUES (1, 'x'); INSERT INTO s SELECT * FROM t; DROP STREAM IF EXISTS s DELETE TOPIC;\n\
         TERMINATE ALL; TERMINATE CSAS_OUT_0; SHOW STREAMS EXTENDED; LIST TOPICS; DESCRIBE s EXTENDED; DESCRIBE FUNCTION ucase;\n\
         PRINT 'topic' FROM BEGINNING INTERVAL 2 LIMIT 10; SET 'auto.offset.reset' = 'earliest'; UNSET 'auto.offset.reset';\n\
         RUN SCRIPT '/tmp/x.sql'; CREATE TYPE address AS STRUCT<street STRING>; EXPLAIN SELECT * FROM s EMIT CHANGES; /* end */",
    )
    .unwrap();
    assert_eq!(all.len(), 15);
    assert!(
        matches!(&all[0], Statement::InsertValues { columns, values, .. } if columns.len() == 2 && values.len() == 2)
    );
    assert!(matches!(&all[3], Statement::Terminate(None)));
    assert!(matches!(
        &all[9],
        Statement::Print {
            from_beginning: true,
            interval: Some(2),
            limit: Some(10),
            ..
        }
    ));
    assert!(matches!(
        &all[13],
        Statement::CreateType {
            ty: SqlType::Struct(_),
            ..
        }
    ));
}

#[test]
fn errors_name_line_and_column() {
    let e = parse("SELECT * FROM s EMIT CHANGES;\nCREATE STREAM (x INT);").unwrap_err();
    assert_eq!((e.line, e.column), (2, 15), "{e}");
    let e = parse("CREATE STREAM s (x INT) WITH (a=);").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.to_string().starts_with("line 1:"), "{e}");
    assert!(parse("SELECT FROM").is_err());
    assert!(parse("CREATE STREAM s (x ARRAY<INT) WITH (a='b');").is_err());
    assert!(parse("'unterminated").is_err());
}

/// Every statement of ksqlDB's query-validation suite that ksqlDB itself accepts must parse.
#[test]
fn ksqldb_suite_statements_parse() {
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
    let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut ok, mut failed) = (0, Vec::new());
    for f in files {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for case in v["tests"].as_array().unwrap() {
            if case.get("expectedException").is_some() {
                continue;
            }
            for s in case["statements"].as_array().unwrap() {
                let s = s.as_str().unwrap();
                match parse(s) {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(format!(
                        "{}: {s}\n    {e}",
                        f.file_name().unwrap().to_string_lossy()
                    )),
                }
            }
        }
    }
    for f in failed.iter().take(40) {
        eprintln!("{f}");
    }
    eprintln!("{ok} statements parsed, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{} statements of ksqlDB's suite did not parse",
        failed.len()
    );
}

#[test]
fn expression_shapes_follow_ksqldb() {
    let Statement::Select(q) = parse_statement(
        "SELECT A->B['k']->C[1]->D, REDUCE(m, 0, (s, k, v) => s + v), TRANSFORM(a, x => x * 2), MAP('a' := 1), CAST(x AS MAP<STRING, ARRAY<INT>>), v AS 1R FROM s;",
    )
    .unwrap() else {
        panic!()
    };
    let texts: Vec<String> = q
        .select
        .iter()
        .map(|i| match i {
            SelectItem::Expr { expr, .. } => format!("{expr:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(texts[0].starts_with("CompoundFieldAccess"), "{}", texts[0]);
    assert_eq!(texts[0].matches("Subscript").count(), 2, "{}", texts[0]);
    assert!(
        texts[1].contains("Lambda") && texts[1].contains("Many"),
        "{}",
        texts[1]
    );
    assert!(texts[2].contains("Lambda"), "{}", texts[2]);
    assert!(texts[3].contains("Assignment"), "{}", texts[3]);
    assert!(
        texts[4].contains("MAP<STRING, ARRAY<INTEGER>>"),
        "{}",
        texts[4]
    );
    assert!(matches!(&q.select[5], SelectItem::Expr { alias: Some(a), .. } if a == "1R"));
}

#[test]
fn statement_texts_are_kept_for_the_command_log() {
    let sql = "CREATE STREAM s (id INT KEY, v STRING)\n  WITH (kafka_topic='t', value_format='JSON');\n-- a comment\nINSERT INTO s (id, v) VALUES (1, 'a;b');  ";
    let parsed = sluice_sql::parse_with_text(sql).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        parsed[0].1,
        "CREATE STREAM s (id INT KEY, v STRING)\n  WITH (kafka_topic='t', value_format='JSON')"
    );
    assert_eq!(parsed[1].1, "INSERT INTO s (id, v) VALUES (1, 'a;b')");
    // Each text parses back to the same statement.
    for (stmt, text) in &parsed {
        assert_eq!(&sluice_sql::parse_statement(text).unwrap(), stmt);
    }
}

#[test]
fn completeness_of_repl_input() {
    assert!(!sluice_sql::is_complete("SELECT * FROM s"));
    assert!(!sluice_sql::is_complete("SELECT * FROM s\nWHERE x = 'a;"));
    assert!(sluice_sql::is_complete(
        "SELECT * FROM s\nEMIT CHANGES;  -- done"
    ));
    assert!(!sluice_sql::is_complete("SELECT 1; /* open"));
    assert!(!sluice_sql::is_complete(""));
}

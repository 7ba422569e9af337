//! The Nexmark queries of `queries/nexmark/`, compiled in so the harness runs exactly the
//! files a user reads, with the output each one is judged by.

pub const SOURCES: &str = include_str!("../../queries/nexmark/sources.sql");

pub struct NexmarkQuery {
    pub name: &'static str,
    pub sql: &'static str,
    /// The topic whose contents are the query's result (`NEXMARK_<NAME>`).
    pub sink: &'static str,
    /// The sink is a table's changelog: its result is the last value of every key.
    pub table: bool,
}

/// `queries/nexmark/<name>.sql`, whose result is the stream or table `NEXMARK_<NAME>`.
macro_rules! query {
    ($name:literal, $sink:literal, table: $table:expr) => {
        NexmarkQuery {
            name: $name,
            sql: include_str!(concat!("../../queries/nexmark/", $name, ".sql")),
            sink: $sink,
            table: $table,
        }
    };
}

pub const QUERIES: &[NexmarkQuery] = &[
    query!("q0", "NEXMARK_Q0", table: false),
    query!("q1", "NEXMARK_Q1", table: false),
    query!("q2", "NEXMARK_Q2", table: false),
    query!("q3", "NEXMARK_Q3", table: false),
    query!("q4", "NEXMARK_Q4", table: true),
    query!("q5", "NEXMARK_Q5", table: true),
    query!("q7", "NEXMARK_Q7", table: false),
    query!("q8", "NEXMARK_Q8", table: true),
];

pub fn find(name: &str) -> Option<&'static NexmarkQuery> {
    QUERIES.iter().find(|q| q.name.eq_ignore_ascii_case(name))
}

/// The script a run executes: the sources, then the query.
pub fn script(q: &NexmarkQuery) -> String {
    format!("{SOURCES}\n{}", q.sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_parses_and_names_its_sink() {
        for q in QUERIES {
            let statements =
                sluice_sql::parse(&script(q)).unwrap_or_else(|e| panic!("{}: {e}", q.name));
            assert!(statements.len() >= 5, "{}", q.name);
            let sink = format!(
                "CREATE {} {}",
                if q.table { "TABLE" } else { "STREAM" },
                q.sink
            );
            assert!(
                q.sql.to_uppercase().contains(&sink),
                "{} does not create {}",
                q.name,
                q.sink
            );
        }
    }
}

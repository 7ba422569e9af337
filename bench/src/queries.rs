//! The Nexmark queries of `queries/nexmark/`, compiled in so the harness runs exactly the
//! files a user reads, with the output each one is judged by.

pub const SOURCES: &str = include_str!("../../queries/nexmark/sources.sql");

pub struct NexmarkQuery {
    pub name: &'static str,
    pub sql: &'static str,
    /// The topic whose contents are the query's result.
    pub sink: &'static str,
    /// The sink is a table's changelog: its result is the last value of every key.
    pub table: bool,
}

pub const QUERIES: &[NexmarkQuery] = &[
    NexmarkQuery {
        name: "q0",
        sql: include_str!("../../queries/nexmark/q0.sql"),
        sink: "NEXMARK_Q0",
        table: false,
    },
    NexmarkQuery {
        name: "q1",
        sql: include_str!("../../queries/nexmark/q1.sql"),
        sink: "NEXMARK_Q1",
        table: false,
    },
    NexmarkQuery {
        name: "q2",
        sql: include_str!("../../queries/nexmark/q2.sql"),
        sink: "NEXMARK_Q2",
        table: false,
    },
    NexmarkQuery {
        name: "q3",
        sql: include_str!("../../queries/nexmark/q3.sql"),
        sink: "NEXMARK_Q3",
        table: false,
    },
    NexmarkQuery {
        name: "q4",
        sql: include_str!("../../queries/nexmark/q4.sql"),
        sink: "NEXMARK_Q4",
        table: true,
    },
    NexmarkQuery {
        name: "q5",
        sql: include_str!("../../queries/nexmark/q5.sql"),
        sink: "NEXMARK_Q5",
        table: true,
    },
    NexmarkQuery {
        name: "q7",
        sql: include_str!("../../queries/nexmark/q7.sql"),
        sink: "NEXMARK_Q7",
        table: false,
    },
    NexmarkQuery {
        name: "q8",
        sql: include_str!("../../queries/nexmark/q8.sql"),
        sink: "NEXMARK_Q8",
        table: true,
    },
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

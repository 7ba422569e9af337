//! The command line: every subcommand and flag, with the names a Kafka user already knows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a streaming SQL engine over its own durable, Kafka-format event log",
    long_about = None
)]
pub struct Cli {
    /// Data directory of the event log (one process owns it at a time) [default:
    /// ./sluice-data, or `log.dirs` of `sluice server --config`].
    #[arg(long, global = true, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The REPL and `sluice sql` work against a running server's ksqlDB REST API
    /// (`http://host:port`, or `http://user:password@host:port`) instead of opening the
    /// data directory.
    #[arg(long, global = true, value_name = "URL", env = "SLUICE_SERVER")]
    pub server: Option<String>,

    /// `topics`, `produce`, `consume` and `groups` work against a running Kafka broker
    /// (`sluice server` or Apache Kafka) at `host:port` instead of the data directory.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The data directory: the flag (or SLUICE_DATA_DIR), else `fallback` (a server
    /// properties file's `log.dirs`), else ./sluice-data.
    pub fn data_dir_or(&self, fallback: Option<&std::path::Path>) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| fallback.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./sluice-data"))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Write one record per line of standard input to a topic.
    Produce(ProduceArgs),
    /// Print a topic's records to standard output, one per line.
    Consume(ConsumeArgs),
    /// List and inspect consumer groups, and move their committed offsets.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Measure produce and consume throughput against the local log.
    #[command(subcommand)]
    Perf(PerfCommand),
    /// Run ksqlDB query-validation test files (a file or a folder of them).
    Test(TestArgs),
    /// Run SQL without the REPL: statements from --execute or --file.
    Sql(SqlArgs),
    /// Serve the data directory over the Kafka wire protocol and ksqlDB's REST API, running
    /// its persistent queries, until SIGTERM or Ctrl-C.
    Server(ServerArgs),
    /// Benchmarks: generate Nexmark events, run the Nexmark queries and measure them.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// A Kafka broker's `server.properties` (listeners, log.dirs, num.partitions,
    /// log.retention.*, log.segment.bytes, auto.create.topics.enable, group.*); flags win.
    #[arg(long, value_name = "server.properties")]
    pub config: Option<PathBuf>,
    /// Address of the Kafka listener (port 0 picks a free one; the address is printed)
    /// [default: 127.0.0.1:9092].
    #[arg(long)]
    pub kafka: Option<String>,
    /// Topics that Metadata and Produce requests name are created when missing
    /// (`auto.create.topics.enable`) [default: true].
    #[arg(long, action = clap::ArgAction::Set)]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic (`num.partitions`) [default: 1].
    #[arg(long)]
    pub num_partitions: Option<u32>,
    /// Address of ksqlDB's REST API (port 0 picks a free one; `off` serves none)
    /// [default: 127.0.0.1:8088].
    #[arg(long)]
    pub http: Option<String>,
    /// Require HTTP basic auth on the REST API: a file of `user:password` lines.
    #[arg(long, value_name = "PASSWORD_FILE")]
    pub http_auth: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["execute", "file"])))]
pub struct SqlArgs {
    /// Statements to run, separated by `;`.
    #[arg(long, short = 'e')]
    pub execute: Option<String>,
    /// A file of statements to run.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Exit as soon as the statements ran, without waiting for persistent queries to
    /// consume their inputs.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// A QTT .json file or a folder of them.
    pub path: PathBuf,
    /// Write a JSON report of every case here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run only cases whose full name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Accepted for Kafka compatibility; a single node stores one replica.
        #[arg(long, default_value_t = 1)]
        replication_factor: u32,
        /// A topic config override, `name=value` (repeatable), e.g. retention.ms=3600000.
        #[arg(long = "config", value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Succeed quietly if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names.
    List,
    /// Show partitions, offsets, sizes and configs of one topic (or all).
    Describe { topic: Option<String> },
    /// Change a topic's configs or grow its partitions (kafka-configs / kafka-topics --alter).
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["configs", "delete_configs", "partitions"])))]
    Alter {
        topic: String,
        /// Set a topic config, `name=value` (repeatable).
        #[arg(long = "config", value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Set a topic config back to its default (repeatable).
        #[arg(long = "delete-config", value_name = "NAME")]
        delete_configs: Vec<String>,
        /// Grow the topic to this many partitions (keys map to partitions by the count).
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// Delete a topic and its data.
    Delete {
        topic: String,
        /// Succeed quietly if the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line into key and value at the first occurrence of SEP.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Write every record to this partition instead of choosing by key.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset (when no --offset is given).
    #[arg(long)]
    pub from_beginning: bool,
    /// Consumer group: start at its committed offsets and commit what was printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Start offset in --partition: a number, `earliest` or `latest`.
    #[arg(long, requires = "partition")]
    pub offset: Option<String>,
    /// Print the key before the value, separated by a tab.
    #[arg(long)]
    pub print_key: bool,
    /// Print `CreateTime:<ms>` before the record, separated by a tab.
    #[arg(long)]
    pub print_timestamp: bool,
    /// Also print the partition and offset (`Partition:<p>` and `Offset:<o>`).
    #[arg(long)]
    pub print_offset: bool,
    /// Exit after printing this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List consumer groups with committed offsets.
    List,
    /// Show a group's committed offsets, log-end offsets and lag per partition.
    Describe { group: String },
    /// Move a group's committed offsets for a topic.
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
pub struct ResetArgs {
    pub group: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "N")]
    pub to_offset: Option<u64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Accepted for Kafka compatibility (resetting is the default here).
    #[arg(long)]
    pub execute: bool,
}

#[derive(Subcommand, Debug)]
pub enum PerfCommand {
    /// Append N records of B bytes in batches of K and report records/s, MB/s and latency.
    Produce {
        topic: String,
        #[arg(long)]
        records: u64,
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Concurrent appenders (they share fsyncs under flush.policy=always).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Read N records from the beginning and report records/s and MB/s.
    Consume {
        topic: String,
        #[arg(long)]
        records: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Generate Nexmark events (persons, auctions, bids: 1:3:46) as JSON into the topics
    /// `<prefix>-person`, `<prefix>-auction` and `<prefix>-bid` of the data directory.
    NexmarkGen(NexmarkGenArgs),
    /// Run Nexmark queries as persistent queries over freshly generated events and report
    /// events/s per CPU-second, wall time, peak memory and the outputs' row counts and sums.
    Nexmark(NexmarkArgs),
}

#[derive(Args, Debug)]
pub struct NexmarkGenArgs {
    /// How many events (all three kinds together).
    #[arg(long)]
    pub events: u64,
    /// Offer this many events per second by the wall clock (event time then follows the
    /// clock); without it, as fast as possible with 10,000 events/s of event time.
    #[arg(long)]
    pub rate: Option<u64>,
    #[arg(long, default_value = "nexmark")]
    pub topic_prefix: String,
    /// Partitions of each topic when it is created.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Also write the events as JSON lines here (`{"event_type":0|1|2,"person"|"auction"|"bid":{…}}`),
    /// the input of the peer engines in bench/peers/.
    #[arg(long, value_name = "FILE.jsonl")]
    pub export: Option<PathBuf>,
    /// Event time of the first event, epoch milliseconds [default: the current minute].
    #[arg(long, value_name = "MS")]
    pub base_time: Option<u64>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["query", "all"])))]
pub struct NexmarkArgs {
    /// The query to run: q0, q1, q2, q3, q4, q5, q7 or q8 (queries/nexmark/).
    #[arg(long)]
    pub query: Option<String>,
    /// Run every query and write a table (markdown and JSON) to --results-dir.
    #[arg(long)]
    pub all: bool,
    /// Events to generate and process.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Pin the query process to this many CPUs (sched_setaffinity).
    #[arg(long)]
    pub cores: Option<usize>,
    /// Also measure end-to-end latency (append to sink) with events offered at this rate
    /// per second, for --latency-seconds.
    #[arg(long)]
    pub rate: Option<u64>,
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Where data directories are made (and removed) [default: the system's temp dir].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the generated events as JSON lines for the peers (bench/peers/).
    #[arg(long, value_name = "FILE.jsonl")]
    pub export: Option<PathBuf>,
    /// Where --all writes its tables.
    #[arg(long, default_value = "bench/results")]
    pub results_dir: PathBuf,
    /// Write the run's figures as JSON here too (one query or all).
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

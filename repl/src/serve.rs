//! `sluice server`: the data directory served over the Kafka wire protocol and ksqlDB's REST
//! API while the engine runs its persistent queries, until SIGTERM or SIGINT; then the
//! listeners stop, the queries checkpoint and stop, and the log closes cleanly (its
//! clean-shutdown marker).

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use sluice_engine::engine::Engine;
use sluice_server::kafka::KafkaServer;
use sluice_server::properties::BrokerProperties;
use sluice_server::rest::{RestConfig, RestServer};
use sluice_storage::LogStore;

use crate::cli::ServerArgs;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(
    store: &Arc<LogStore>,
    engine: Engine,
    args: &ServerArgs,
    properties: Option<BrokerProperties>,
) -> Result<()> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            libc::signal(
                signal,
                on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    // Flags win over the properties file, which wins over the defaults.
    let properties = properties.unwrap_or_default();
    if !properties.ignored.is_empty() {
        eprintln!(
            "note: server.properties settings Sluice does not use: {}",
            properties.ignored.join(", ")
        );
    }
    let address = args
        .kafka
        .clone()
        .or(properties.listener)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let mut config = properties.kafka;
    if let Some(create) = args.auto_create_topics {
        config.auto_create_topics = create;
    }
    if let Some(n) = args.num_partitions {
        config.default_partitions = n.max(1);
    }
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
    let http = match args.http.as_deref() {
        Some("off") => None,
        Some(a) => Some(a),
        None => Some("127.0.0.1:8088"),
    };
    let http_listener = http
        .map(|a| TcpListener::bind(a).with_context(|| format!("cannot listen on {a}")))
        .transpose()?;
    let rest_config = RestConfig {
        credentials: match &args.http_auth {
            Some(path) => RestConfig::read_credentials(path).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        },
    };
    let engine = Arc::new(Mutex::new(engine));
    lock(&engine).start();
    let kafka = KafkaServer::start(listener, store.clone(), config)
        .context("cannot start the Kafka listener")?;
    println!("Kafka protocol listening on {}", kafka.local_addr());
    let rest = match http_listener {
        Some(l) => {
            let rest = RestServer::start(l, engine.clone(), rest_config)
                .context("cannot start the REST listener")?;
            println!("ksqlDB REST API listening on http://{}", rest.local_addr());
            Some(rest)
        }
        None => None,
    };
    std::io::stdout().flush()?;
    // The signal handler only sets a flag: look at it a few times a second.
    while !STOP.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(100));
    }
    tracing::info!("stopping: closing the listeners, then the queries and the log");
    if let Some(rest) = rest {
        rest.stop();
    }
    kafka.stop();
    lock(&engine).stop();
    println!("Stopped.");
    Ok(())
}

fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|p| p.into_inner())
}

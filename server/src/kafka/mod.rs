//! The Kafka wire protocol over Sluice's log: a listener, one thread per connection that
//! reads size-prefixed frames and answers them in request order, and the APIs
//! (`apis`): ApiVersions (with the v0 fallback), Metadata, Produce, Fetch (long poll),
//! ListOffsets, Create/DeleteTopics, DescribeConfigs, consumer groups (`coordinator`) and
//! their offsets. Codecs come from the `kafka-protocol` crate; record batches go to and
//! from the log as they are (Kafka's own byte format), never re-encoded.
//!
//! A malformed or oversized frame closes that connection with a logged reason; the listener
//! and every other connection go on.

mod apis;
mod connection;
mod coordinator;
mod producers;

pub use coordinator::GroupSettings;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sluice_storage::{EventLog, TopicConfig};

/// Broker settings a Kafka user knows from `server.properties`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `auto.create.topics.enable`: Metadata and Produce create unknown topics.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub default_partitions: u32,
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub max_request_bytes: usize,
    /// Settings of topics created over the protocol (`log.retention.*`, `log.segment.bytes`…).
    pub topic_defaults: TopicConfig,
    /// Consumer group timings (`group.*`).
    pub groups: GroupSettings,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            auto_create_topics: true,
            default_partitions: 1,
            max_request_bytes: 100 * 1024 * 1024,
            topic_defaults: TopicConfig::default(),
            groups: GroupSettings::default(),
        }
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    pub log: Arc<dyn EventLog>,
    pub config: KafkaConfig,
    /// The address clients are told to connect to (Metadata's one broker).
    pub advertised: SocketAddr,
    pub stopping: AtomicBool,
    pub coordinator: coordinator::Coordinator,
    /// Idempotent producers' ids and sequence numbers.
    pub producers: producers::Producers,
    /// Open connections (a handle to shut each down at stop) and their threads.
    open: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

/// Connections served at once; more are closed as they arrive (logged).
const MAX_CONNECTIONS: usize = 1024;

/// A running Kafka listener.
pub struct KafkaServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    /// Evicts group members whose session timed out.
    group_timer: Option<JoinHandle<()>>,
}

impl KafkaServer {
    /// Serves the protocol on `listener` (bound already: tests bind port 0).
    pub fn start(
        listener: TcpListener,
        log: Arc<dyn EventLog>,
        config: KafkaConfig,
    ) -> std::io::Result<KafkaServer> {
        let advertised = listener.local_addr()?;
        let shared = Arc::new(Shared {
            log,
            coordinator: coordinator::Coordinator::new(config.groups.clone()),
            producers: producers::Producers::default(),
            config,
            advertised,
            stopping: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("kafka-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        let s = shared.clone();
        let group_timer = std::thread::Builder::new()
            .name("kafka-groups".into())
            .spawn(move || while s.coordinator.tick() {})?;
        Ok(KafkaServer {
            shared,
            accept: Some(accept),
            group_timer: Some(group_timer),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.advertised
    }

    /// Stops accepting, closes every connection (a request being answered finishes first)
    /// and waits for their threads.
    pub fn stop(mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect(self.shared.advertised);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        // Calls blocked in JoinGroup/SyncGroup return, so their connections can finish.
        self.shared.coordinator.shut_down();
        if let Some(t) = self.group_timer.take() {
            let _ = t.join();
        }
        let open = std::mem::take(&mut *lock(&self.shared.open));
        for (stream, _) in &open {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for (_, thread) in open {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut open = lock(&shared.open);
        open.retain(|(_, t)| !t.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "too many connections: closing this one");
            continue;
        }
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let s = shared.clone();
        match std::thread::Builder::new()
            .name("kafka-conn".into())
            .spawn(move || connection::serve(stream, &s))
        {
            Ok(thread) => open.push((handle, thread)),
            Err(e) => tracing::error!(%peer, error = %e, "cannot start a connection thread"),
        }
    }
}

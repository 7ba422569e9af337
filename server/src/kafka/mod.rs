//! The Kafka wire protocol over Sluice's log: a listener, one thread per connection that
//! reads size-prefixed frames and answers them in request order, and the APIs
//! (`apis`): ApiVersions (with the v0 fallback), Metadata, Produce, Fetch (long poll),
//! ListOffsets. Codecs come from the `kafka-protocol` crate; record batches go to and from
//! the log as they are (Kafka's own byte format), never re-encoded.
//!
//! A malformed or oversized frame closes that connection with a logged reason; the listener
//! and every other connection go on.

mod apis;
mod connection;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use sluice_storage::EventLog;

/// Broker settings a Kafka user knows from `server.properties`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `auto.create.topics.enable`: Metadata and Produce create unknown topics.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub default_partitions: u32,
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub max_request_bytes: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            auto_create_topics: true,
            default_partitions: 1,
            max_request_bytes: 100 * 1024 * 1024,
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
}

/// A running Kafka listener.
pub struct KafkaServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
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
            config,
            advertised,
            stopping: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("kafka-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(KafkaServer {
            shared,
            accept: Some(accept),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.advertised
    }

    /// Stops accepting; connections end after their current request.
    pub fn stop(mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect(self.shared.advertised);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => {
                let s = shared.clone();
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let spawned = std::thread::Builder::new()
                    .name("kafka-conn".into())
                    .spawn(move || connection::serve(stream, &s));
                if let Err(e) = spawned {
                    tracing::error!(%peer, error = %e, "cannot start a connection thread");
                }
            }
            Err(e) => tracing::warn!(error = %e, "accept failed"),
        }
    }
}

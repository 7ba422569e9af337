//! ksqlDB's REST API over Sluice's engine (axum): `POST /ksql`, `/query` (chunked),
//! `/query-stream` (HTTP/1.1 and HTTP/2, delimited JSON), `/close-query`, `/inserts-stream`,
//! `GET /info`, `/healthcheck`, `/status`, with ksqlDB's request and response JSON and
//! optional HTTP basic auth.
//!
//! The server runs on its own thread with a current-thread tokio runtime; statements run on
//! the blocking pool with the engine locked, and each streaming query runs on its own
//! thread feeding its response body through a channel (a client that goes away ends it).

pub mod client;
mod inserts;
mod ksql;
mod query;
mod rows;
pub mod rqtt;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use sluice_engine::Engine;

/// The REST listener's settings.
#[derive(Debug, Clone, Default)]
pub struct RestConfig {
    /// Basic-auth credentials (user, password); none: no authentication.
    pub credentials: Vec<(String, String)>,
}

impl RestConfig {
    /// Reads `user:password` lines (also Jetty's `user: password[,role…]`), `#` comments.
    pub fn read_credentials(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, rest)) = line.split_once(':') else {
                return Err(format!(
                    "{}:{}: expected user:password",
                    path.display(),
                    n + 1
                ));
            };
            let password = rest.split(',').next().unwrap_or_default().trim();
            out.push((user.trim().to_string(), password.to_string()));
        }
        if out.is_empty() {
            return Err(format!("{}: no user:password line", path.display()));
        }
        Ok(out)
    }
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub engine: Arc<Mutex<Engine>>,
    pub config: RestConfig,
    pub stopping: AtomicBool,
    /// Push queries running for `/query-stream` (and `/query`): id -> stop flag.
    pub running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Statement outcomes by command id, for `/status` (`stream/NAME/create` …).
    pub statuses: Mutex<BTreeMap<String, Value>>,
    pub command_sequence: AtomicU64,
    pub query_serial: AtomicU64,
}

impl Shared {
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running REST listener.
pub struct RestServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RestServer {
    /// Serves the API on `listener` (bound already: tests bind port 0).
    pub fn start(
        listener: std::net::TcpListener,
        engine: Arc<Mutex<Engine>>,
        config: RestConfig,
    ) -> std::io::Result<RestServer> {
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            engine,
            config,
            stopping: AtomicBool::new(false),
            running: Mutex::new(HashMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            command_sequence: AtomicU64::new(0),
            query_serial: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
        let app = router(shared.clone());
        let thread = std::thread::Builder::new()
            .name("rest".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot serve the REST API");
                            return;
                        }
                    };
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = on_shutdown.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the REST API stopped");
                    }
                });
            })?;
        Ok(RestServer {
            shared,
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Ends every streaming query, stops accepting and waits for open requests to finish.
    pub fn stop(mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for flag in lock(&self.shared.running).values() {
            flag.store(true, Ordering::SeqCst);
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ksql", post(ksql::ksql))
        .route("/query", post(query::query))
        .route("/query-stream", post(query::query_stream))
        .route("/close-query", post(query::close_query))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/info", get(info))
        .route("/", get(info))
        .route("/healthcheck", get(healthcheck))
        .route("/status", get(all_statuses))
        .route("/status/{kind}/{entity}/{action}", get(one_status))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(middleware::from_fn(refuse_oversized))
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

/// ksqlDB's error body: `{"@type": "generic_error", "error_code": …, "message": …}`.
pub(crate) fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({"@type": "generic_error", "error_code": code, "message": message.into()}),
    )
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error answer not yet rendered (small, unlike a `Response`).
pub(crate) struct ApiError(pub StatusCode, pub Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.0, &self.1)
    }
}

/// A request body as JSON, or ksqlDB's 400 for one that is not.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                json!({"@type": "generic_error", "error_code": 40000,
                       "message": "Invalid JSON in request: the body must be a JSON object"}),
            )
        })
}

/// A request's JSON body and its text field `field` (`what` it holds, for the error), or
/// ksqlDB's 400.
pub(crate) fn body_with_text(
    body: &Bytes,
    field: &str,
    what: &str,
) -> Result<(Value, String), ApiError> {
    let request = parse_body(body)?;
    let Some(text) = request
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            json!({"@type": "generic_error", "error_code": 40000,
                   "message": format!("The request must have a \"{field}\" field with {what}")}),
        ));
    };
    Ok((request, text))
}

/// The largest request body read whole (`/inserts-stream` streams, row by row).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// A body announced larger than the limit is refused (413) before any of it is read,
/// instead of keeping the connection until the limit is reached.
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if request.uri().path() != "/inserts-stream"
        && announced.is_some_and(|n| n > MAX_REQUEST_BYTES as u64)
    {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            41300,
            format!("the request body is larger than {MAX_REQUEST_BYTES} bytes"),
        );
    }
    next.run(request).await
}

async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.config.credentials.is_empty() {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok());
    let allowed = given
        .as_deref()
        .and_then(|g| g.split_once(':'))
        .is_some_and(|(u, p)| {
            shared
                .config
                .credentials
                .iter()
                .any(|(user, password)| user == u && password == p)
        });
    if allowed {
        return next.run(request).await;
    }
    let mut response = error(StatusCode::UNAUTHORIZED, 40100, "Unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"sluice\""),
    );
    response
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, 40400, "Not found: no such endpoint")
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let status = if shared.stopping.load(Ordering::SeqCst) {
        "TERMINATING"
    } else {
        "RUNNING"
    };
    json_response(
        StatusCode::OK,
        &json!({"KsqlServerInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "kafkaClusterId": "sluice",
            "ksqlServiceId": "default_",
            "serverStatus": status,
        }}),
    )
}

async fn healthcheck(State(shared): State<Arc<Shared>>) -> Response {
    // The metastore check lists the catalog, as ksqlDB's does; the log is in-process.
    let engine = shared.clone();
    let metastore =
        tokio::task::spawn_blocking(move || engine.engine().catalog().sources().count())
            .await
            .is_ok();
    let healthy = metastore && !shared.stopping.load(Ordering::SeqCst);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "isHealthy": healthy,
            "details": {
                "metastore": {"isHealthy": metastore},
                "kafka": {"isHealthy": true},
                "commandRunner": {"isHealthy": healthy},
            },
            "serverState": if healthy { "READY" } else { "TERMINATING" },
        }),
    )
}

async fn all_statuses(State(shared): State<Arc<Shared>>) -> Response {
    let statuses = lock(&shared.statuses);
    let map: serde_json::Map<String, Value> = statuses
        .iter()
        .map(|(id, s)| (id.clone(), s["status"].clone()))
        .collect();
    json_response(StatusCode::OK, &json!({"commandStatuses": map}))
}

async fn one_status(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((kind, entity, action)): axum::extract::Path<(String, String, String)>,
) -> Response {
    let id = format!("{kind}/{entity}/{action}");
    match lock(&shared.statuses).get(&id) {
        Some(status) => json_response(StatusCode::OK, status),
        None => error(
            StatusCode::NOT_FOUND,
            40400,
            format!("Command not found: {id}"),
        ),
    }
}

/// A response body fed from a channel: each message one chunk, the end when the sender
/// is dropped.
pub(crate) struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChannelBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// A streaming response of `content_type` whose chunks a thread sends.
pub(crate) fn streaming(
    content_type: &'static str,
) -> (tokio::sync::mpsc::Sender<Bytes>, Response) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut response = Response::new(Body::from_stream(ChannelBody(rx)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (tx, response)
}

/// Applies a request's `streamsProperties`/`properties` to the engine for one statement and
/// puts the previous values back after (ksqlDB's per-request overrides).
pub(crate) fn with_properties<T>(
    engine: &mut Engine,
    properties: Option<&Value>,
    run: impl FnOnce(&mut Engine) -> T,
) -> T {
    let overrides: Vec<(String, String)> = properties
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let name = k.strip_prefix("ksql.streams.").unwrap_or(k).to_string();
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (name, value)
                })
                .collect()
        })
        .unwrap_or_default();
    let before: Vec<(String, Option<String>)> = overrides
        .iter()
        .map(|(k, _)| (k.clone(), engine.properties().get(k).cloned()))
        .collect();
    for (k, v) in &overrides {
        engine.set_property(k, v);
    }
    let out = run(engine);
    for (k, v) in before {
        match v {
            Some(v) => engine.set_property(&k, &v),
            None => engine.unset_property(&k),
        }
    }
    out
}

//! One client connection: size-prefixed frames in, responses out in request order.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::Shared;
use super::apis::{self, Conn, Reply};

/// Why a connection is closed.
#[derive(Debug)]
pub(crate) struct Close(pub String);

pub(crate) fn serve(stream: TcpStream, shared: &Shared) {
    let closer = stream.try_clone();
    serve_frames(stream, shared);
    // Close the socket itself: the listener keeps a handle to it (for stop), which would
    // otherwise keep it open after this thread is done.
    if let Ok(s) = closer {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

fn serve_frames(stream: TcpStream, shared: &Shared) {
    let peer_addr = stream.peer_addr().ok();
    let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    // One runtime per connection for the waits of long-polling fetches.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%peer, error = %e, "cannot start a connection runtime");
            return;
        }
    };
    let conn = Conn {
        runtime,
        peer_host: peer_addr.map(|a| a.ip().to_string()).unwrap_or_default(),
    };
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let frame = match read_frame(&mut reader, shared.config.max_request_bytes) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(Close(why)) => {
                tracing::warn!(%peer, reason = %why, "closing Kafka connection");
                return;
            }
        };
        match answer(frame, shared, &conn) {
            Ok(Some(response)) => {
                if writer.write_all(&response).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(Close(why)) => {
                tracing::warn!(%peer, reason = %why, "closing Kafka connection");
                return;
            }
        }
    }
}

/// The next frame's bytes; `None` at a clean end of stream.
fn read_frame(reader: &mut impl Read, max: usize) -> Result<Option<Bytes>, Close> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Close(format!("read failed: {e}"))),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > max {
        return Err(Close(format!(
            "frame of {size} bytes (socket.request.max.bytes is {max})"
        )));
    }
    let mut body = vec![0u8; size as usize];
    reader
        .read_exact(&mut body)
        .map_err(|e| Close(format!("truncated frame: {e}")))?;
    Ok(Some(Bytes::from(body)))
}

/// The framed response to one request (`None`: the request wants none, as a Produce with
/// acks=0).
fn answer(mut frame: Bytes, shared: &Shared, conn: &Conn) -> Result<Option<Vec<u8>>, Close> {
    if frame.len() < 4 {
        return Err(Close("frame shorter than a request header".into()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|()| Close(format!("unknown API key {key}")))?;
    // ApiVersions of a version we do not know: answered in v0 with the versions we have
    // (its header is v1 or v2 whatever the version; the fallback client reads v0).
    let header_version = if api == ApiKey::ApiVersions {
        api.request_header_version(version.clamp(0, 4))
    } else {
        api.request_header_version(version)
    };
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| Close(format!("bad {api:?} request header: {e}")))?;
    let reply = apis::handle(api, &header, &mut frame, shared, conn)
        .map_err(|e| Close(format!("bad {api:?} v{version} request: {e}")))?;
    let (body, response_version) = match reply {
        Reply::None => return Ok(None),
        Reply::Body(body, v) => (body, v),
    };
    let response_header_version = api.response_header_version(response_version);
    let mut out = BytesMut::with_capacity(body.len() + 16);
    out.put_i32(0); // size, below
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut out, response_header_version)
        .map_err(|e| Close(format!("cannot encode a response header: {e}")))?;
    out.put_slice(&body);
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(Some(out.to_vec()))
}

//! One blocking connection to a Kafka broker (a `sluice server` or Apache Kafka): framed
//! requests with a header, responses matched by correlation id, and the broker's API
//! version ranges (ApiVersions at connect) so a request is only sent at a version the
//! broker serves.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The largest response read (the size comes from the network).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

pub(super) struct BrokerConnection {
    address: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    correlation: i32,
    /// API key → (min, max) version the broker serves.
    versions: HashMap<i16, (i16, i16)>,
}

impl BrokerConnection {
    pub fn connect(address: &str, timeout: Duration) -> Result<BrokerConnection, String> {
        let stream = TcpStream::connect(address)
            .map_err(|e| format!("cannot connect to the Kafka broker at {address}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut connection = BrokerConnection {
            address: address.to_string(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            correlation: 0,
            versions: HashMap::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse =
            connection.send_unchecked(ApiKey::ApiVersions, 3, &request)?;
        if response.error_code != 0 {
            return Err(format!(
                "the broker at {address} refused ApiVersions v3 (error {})",
                response.error_code
            ));
        }
        connection.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` at `version` and reads its response, after checking that the
    /// broker serves that version.
    pub fn send<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, String> {
        match self.versions.get(&(api as i16)) {
            Some((min, max)) if (*min..=*max).contains(&version) => {}
            Some((min, max)) => {
                return Err(format!(
                    "the broker at {} serves {api:?} versions {min}..={max}, not {version}",
                    self.address
                ));
            }
            None => {
                return Err(format!(
                    "the broker at {} does not serve {api:?}",
                    self.address
                ));
            }
        }
        self.send_unchecked(api, version, request)
    }

    fn send_unchecked<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, String> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("sluice")));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, api.request_header_version(version))
            .map_err(|e| format!("cannot encode a {api:?} header: {e}"))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| format!("cannot encode a {api:?} v{version} request: {e}"))?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let lost = |e: std::io::Error| format!("the connection to {} failed: {e}", self.address);
        self.writer.write_all(&frame).map_err(lost)?;
        let mut size = [0u8; 4];
        self.reader.read_exact(&mut size).map_err(lost)?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_RESPONSE {
            return Err(format!(
                "the broker at {} sent a response of {size} bytes",
                self.address
            ));
        }
        let mut body = vec![0u8; size as usize];
        self.reader.read_exact(&mut body).map_err(lost)?;
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, api.response_header_version(version))
                .map_err(|e| format!("a bad {api:?} response header: {e}"))?;
        if response_header.correlation_id != self.correlation {
            return Err(format!(
                "the broker at {} answered request {} to request {}",
                self.address, response_header.correlation_id, self.correlation
            ));
        }
        let response = Resp::decode(&mut body, version)
            .map_err(|e| format!("a bad {api:?} v{version} response: {e}"))?;
        if body.has_remaining() {
            tracing::debug!(api = ?api, left = body.remaining(), "response bytes left over");
        }
        Ok(response)
    }
}

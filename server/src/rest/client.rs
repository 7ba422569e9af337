//! A small blocking HTTP/1.1 client for ksqlDB's REST API: JSON requests, whole or
//! chunked-streamed responses, optional basic auth. What `sluice test` (the REST cases) and
//! the tests use to talk to a running server; one connection per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// The largest response chunk read (the size comes from the network).
const MAX_CHUNK: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`.
    address: String,
    /// `Basic …` header value.
    authorization: Option<String>,
    timeout: Option<Duration>,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("response is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response whose body is read as it arrives.
pub struct Streaming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    finished: bool,
}

impl Client {
    /// `http://host:port` (or `host:port`).
    pub fn new(url: &str) -> Result<Client, String> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        if url.starts_with("https://") {
            return Err("https is not supported: use http://".into());
        }
        let address = rest.trim_end_matches('/').to_string();
        if address.is_empty() || address.contains('/') {
            return Err(format!("not a server address: {url}"));
        }
        Ok(Client {
            address,
            authorization: None,
            timeout: None,
        })
    }

    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Client {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {token}"));
        self
    }

    /// A read timeout for every response (none by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        self.send("GET", path, None, "application/json")?.whole()
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        self.send(
            "POST",
            path,
            Some(body.to_string().as_bytes()),
            "application/json",
        )?
        .whole()
    }

    /// A POST whose response is read as it streams.
    pub fn post_streaming(
        &self,
        path: &str,
        body: &[u8],
        accept: &str,
    ) -> Result<Streaming, String> {
        self.send("POST", path, Some(body), accept)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        accept: &str,
    ) -> Result<Streaming, String> {
        let stream = TcpStream::connect(&self.address)
            .map_err(|e| format!("cannot connect to {}: {e}", self.address))?;
        stream
            .set_read_timeout(self.timeout)
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: close\r\n",
            self.address
        );
        if let Some(auth) = &self.authorization {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(body.unwrap_or_default()))
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(|e| format!("no response: {e}"))?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("truncated response headers: {e}"))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        Ok(Streaming {
            status,
            headers,
            reader,
            chunked,
            finished: false,
        })
    }
}

impl Streaming {
    /// A handle on the connection that can shut it down from another thread (ending a
    /// read that waits for the next chunk).
    pub fn closer(&self) -> Result<TcpStream, String> {
        self.reader.get_ref().try_clone().map_err(|e| e.to_string())
    }

    /// The next piece of the body as it arrived; `None` at its end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.finished {
            return Ok(None);
        }
        if !self.chunked {
            let mut buf = vec![0u8; 64 * 1024];
            let n = self.reader.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                self.finished = true;
                return Ok(None);
            }
            buf.truncate(n);
            return Ok(Some(buf));
        }
        let mut size_line = String::new();
        self.reader
            .read_line(&mut size_line)
            .map_err(|e| e.to_string())?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        if size_text.is_empty() {
            self.finished = true;
            return Ok(None);
        }
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        if size == 0 {
            self.finished = true;
            return Ok(None);
        }
        if size > MAX_CHUNK {
            return Err(format!(
                "a chunk of {size} bytes (at most {MAX_CHUNK} are read)"
            ));
        }
        let mut chunk = vec![0u8; size + 2];
        self.reader
            .read_exact(&mut chunk)
            .map_err(|e| format!("truncated chunk: {e}"))?;
        chunk.truncate(size);
        Ok(Some(chunk))
    }

    /// Reads the rest of the body.
    pub fn whole(mut self) -> Result<Reply, String> {
        let mut body = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

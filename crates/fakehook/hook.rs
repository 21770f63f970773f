//! The receiver of fakehook (std only), also compiled into tests that run it
//! on a thread or behind TLS (`#[path]` module).
//!
//! Each request is read whole (headers and a `Content-Length` body), written
//! to `DIR/requests/NNNN.http` exactly as received (through a temporary name
//! and a rename, so a reader never sees half a request), then answered with
//! the next configured response; the last one repeats. One request per
//! connection (`Connection: close`).

#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to answer one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This status, with a short text body.
    Status(u16),
    /// A redirect: this status and `Location`.
    Redirect(u16, String),
    /// No answer: wait until the client closes the connection.
    Hang,
    /// Close the connection without answering.
    Close,
}

impl Reply {
    /// `200`, `500`, `307=http://127.0.0.1:9/x`, `hang`, `close`.
    pub fn parse(s: &str) -> Result<Reply, String> {
        match s {
            "hang" => return Ok(Reply::Hang),
            "close" => return Ok(Reply::Close),
            _ => {}
        }
        let (code, location) = match s.split_once('=') {
            Some((c, l)) => (c, Some(l)),
            None => (s, None),
        };
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (100..600).contains(c))
            .ok_or_else(|| {
                format!("not a reply: {s:?} (a status, CODE=LOCATION, hang or close)")
            })?;
        Ok(match location {
            Some(l) => Reply::Redirect(code, l.to_string()),
            None => Reply::Status(code),
        })
    }
}

pub struct Hook {
    pub dir: PathBuf,
    pub replies: Vec<Reply>,
    count: AtomicUsize,
}

impl Hook {
    pub fn new(dir: &Path, replies: Vec<Reply>) -> io::Result<Arc<Hook>> {
        fs::create_dir_all(dir.join("requests"))?;
        Ok(Arc::new(Hook {
            dir: dir.to_path_buf(),
            replies,
            count: AtomicUsize::new(0),
        }))
    }

    /// Accepts connections forever, each on a thread of its own.
    pub fn serve(self: &Arc<Hook>, listener: TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let hook = self.clone();
            std::thread::spawn(move || {
                let _ = hook.handle(stream);
            });
        }
    }

    /// Binds 127.0.0.1 on a free port, serves on a thread; returns the port.
    pub fn spawn(self: &Arc<Hook>) -> io::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let hook = self.clone();
        std::thread::spawn(move || hook.serve(listener));
        Ok(port)
    }

    /// Reads one request from `stream`, records it, answers it.
    pub fn handle(&self, stream: impl Read + Write) -> io::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut raw = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(()); // closed before a whole request
            }
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            if let Some((name, value)) = text.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
        }
        let mut body = vec![0; length.min(16 << 20)];
        reader.read_exact(&mut body)?;
        raw.extend_from_slice(&body);
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let final_name = self.dir.join("requests").join(format!("{n:04}.http"));
        let tmp = self.dir.join("requests").join(format!(".{n:04}.tmp"));
        fs::write(&tmp, &raw)?;
        fs::rename(&tmp, &final_name)?;
        let reply = self
            .replies
            .get(n)
            .or(self.replies.last())
            .cloned()
            .unwrap_or(Reply::Status(200));
        let mut stream = reader.into_inner();
        let (status, extra) = match reply {
            Reply::Status(s) => (s, String::new()),
            Reply::Redirect(s, location) => (s, format!("Location: {location}\r\n")),
            Reply::Hang => {
                // Until the client gives up and closes.
                let mut sink = [0u8; 256];
                while stream.read(&mut sink)? > 0 {}
                return Ok(());
            }
            Reply::Close => return Ok(()),
        };
        let body = format!("fakehook {status}\n");
        write!(
            stream,
            "HTTP/1.1 {status} Fake\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every request recorded in `dir` so far, in order.
pub fn requests(dir: &Path) -> Vec<Request> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir.join("requests"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "http"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .map(|raw| parse(&raw))
        .collect()
}

/// Parses a raw request as written by [`Hook::handle`].
pub fn parse(raw: &[u8]) -> Request {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..end.0]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Request {
        method,
        target,
        headers,
        body: raw[end.1..].to_vec(),
    }
}

/// Writes `port` to `DIR/port` (through a rename): a test waits for it.
pub fn write_port(dir: &Path, port: u16) -> io::Result<()> {
    let tmp = dir.join(".port.tmp");
    fs::write(&tmp, port.to_string())?;
    fs::rename(tmp, dir.join("port"))
}

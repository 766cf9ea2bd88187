//! `hukou enrol --bulk FILE`: streams an NDJSON file to `POST /v1/enrol/bulk` while reading the
//! node's NDJSON answer (progress per batch, one error per refused line, then the totals) as it
//! comes.
//!
//! The node answers while it is still reading the upload, so the two directions must run at once:
//! a client that sends the whole body before reading (as `ureq` does) shows no progress, and
//! deadlocks once the node's unread answer (say, an error for each of a million bad lines) fills
//! the socket buffers. Hence this small HTTP/1.1 client: a thread writes the file as a chunked
//! body while the caller reads the answer. `Expect: 100-continue` lets the node refuse (a wrong
//! token) before the file is sent.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal as _, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::{CONNECT_TIMEOUT, Client, refusal_json};
use crate::cli::{EXIT_REFUSED, Exit};

/// How long to wait for `100 Continue` (or an early answer) before sending the body anyway.
const CONTINUE_WAIT: Duration = Duration::from_secs(2);
/// Upload chunk size.
const CHUNK_BYTES: usize = 64 * 1024;
/// Longest line read in an answer's head or chunk framing.
const HEAD_LINE_BYTES_MAX: u64 = 16 * 1024;
/// Most header lines in an answer's head.
const HEAD_LINES_MAX: usize = 200;
/// Longest NDJSON answer line (an error line quotes at most a short part of the input).
const ANSWER_LINE_BYTES_MAX: u64 = 1 << 20;

/// Runs the import. Exit 0 if every line was enrolled; 1 if any was refused, the node refused
/// the call, or the stream broke off.
pub(super) fn enrol_bulk(client: &Client, file: &Path) -> anyhow::Result<()> {
    let input: Box<dyn Read + Send> = if file == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(file).with_context(|| format!("cannot read {}", file.display()))?)
    };
    let stream = connect(client).map_err(|e| client.unreachable(&e.to_string()))?;
    let mut head = format!(
        "POST {}/v1/enrol/bulk HTTP/1.1\r\nHost: {}\r\nUser-Agent: hukou/{}\r\n\
         Content-Type: application/x-ndjson\r\nAccept: application/x-ndjson\r\n\
         Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n",
        client.path_prefix(),
        client.authority,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = &client.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let broke_off = |e: io::Error| client.unreachable(&format!("the call broke off: {e}"));
    (&stream).write_all(head.as_bytes()).map_err(broke_off)?;
    let writer_stream = stream.try_clone().map_err(broke_off)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(broke_off)?);

    // Wait briefly for 100 Continue or an early refusal; then send the body in any case.
    stream
        .set_read_timeout(Some(CONTINUE_WAIT))
        .map_err(broke_off)?;
    let answered = match reader.fill_buf() {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(e) => return Err(broke_off(e)),
    };
    stream.set_read_timeout(None).map_err(broke_off)?;
    // The upload starts once the node is ready for it: on 100 Continue, on an early 2xx, or
    // when it stays silent.
    let mut upload = Some((writer_stream, input));
    let mut writer = None;
    let mut start_upload = || {
        if let Some((stream, input)) = upload.take() {
            writer = Some(std::thread::spawn(move || send_body(stream, input)));
        }
    };
    if !answered {
        start_upload();
    }
    let head = loop {
        let head = read_head(&mut reader).map_err(broke_off)?;
        if head.status >= 200 {
            break head;
        }
        start_upload();
    };
    if !(200..300).contains(&head.status) {
        // A refusal before the body was read (a missing or wrong token, say).
        let mut body = Vec::new();
        body_reader(reader, &head)
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(broke_off)?;
        let _ = stream.shutdown(Shutdown::Both);
        return Err(client.refused(&refusal_json(head.status, &body)));
    }
    start_upload();
    let writer = writer.expect("the upload has started");
    let mut answer = body_reader(reader, &head);
    let mut display = Display::new(client.json);
    let read_result = read_answer(&mut answer, &mut display);
    display.clear_progress();
    let sent = writer.join().expect("the upload thread does not panic");
    if let Err(e) = read_result {
        return Err(client.unreachable(&format!("the answer broke off: {e}")));
    }
    let Some(done) = display.done.take() else {
        let why = match sent {
            Err(SendError::Input(e)) => format!("reading {}: {e}", file.display()),
            Err(SendError::Node(e)) => format!("the upload broke off: {e}"),
            Ok(()) => "the node's answer ended before its totals".to_string(),
        };
        let message = format!(
            "the import did not finish ({why}); lines the node had not yet enrolled were not \
             recorded: run `hukou enrol --bulk` again on the rest"
        );
        return Err(
            client.refused(&serde_json::json!({"error": "bulk_incomplete", "message": message}))
        );
    };
    let refused = done["refused"].as_u64().unwrap_or(0);
    if !client.json {
        outln!(
            "enrolled {} of {} lines, refused {}, in {:.2} s",
            done["enrolled"].as_u64().unwrap_or(0),
            done["lines"].as_u64().unwrap_or(0),
            refused,
            done["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    if refused > 0 || display.failed {
        return Err(Exit { code: EXIT_REFUSED }.into());
    }
    Ok(())
}

/// Connects to the node's address, trying each address its name resolves to.
fn connect(client: &Client) -> io::Result<TcpStream> {
    let authority = &client.authority;
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.clone()
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in with_port.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Why the upload stopped early.
enum SendError {
    /// The input file could not be read.
    Input(io::Error),
    /// The connection failed (the node closed it, say, after refusing the call).
    Node(io::Error),
}

/// Sends `input` as a chunked body. On an input error the connection's write side is shut
/// without the final chunk, so the node sees a truncated body rather than a complete one.
fn send_body(stream: TcpStream, mut input: Box<dyn Read + Send>) -> Result<(), SendError> {
    let mut out = BufWriter::with_capacity(CHUNK_BYTES + 16, &stream);
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.flush();
                let _ = stream.shutdown(Shutdown::Write);
                return Err(SendError::Input(e));
            }
        };
        write!(out, "{n:x}\r\n")
            .and_then(|()| out.write_all(&buf[..n]))
            .and_then(|()| out.write_all(b"\r\n"))
            .map_err(SendError::Node)?;
    }
    out.write_all(b"0\r\n\r\n")
        .and_then(|()| out.flush())
        .map_err(SendError::Node)
}

/// What the printing needs from an answer's head.
struct Head {
    status: u16,
    chunked: bool,
    length: Option<u64>,
}

fn bad_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One CRLF- (or LF-) terminated line, without its terminator.
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.take(HEAD_LINE_BYTES_MAX).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(if line.is_empty() {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection",
            )
        } else {
            bad_data("an over-long or unterminated line in the node's answer")
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad_data("the node's answer head is not UTF-8"))
}

fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let status_line = read_line(r)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad_data(format!("not an HTTP answer: {status_line:?}")))?;
    let mut head = Head {
        status,
        chunked: false,
        length: None,
    };
    for _ in 0..HEAD_LINES_MAX {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad_data(format!("malformed header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            head.length = Some(
                value
                    .parse()
                    .map_err(|_| bad_data(format!("bad content-length {value:?}")))?,
            );
        }
    }
    Err(bad_data("too many header lines in the node's answer"))
}

/// The answer's body, decoded.
fn body_reader(reader: BufReader<TcpStream>, head: &Head) -> Box<dyn BufRead> {
    if head.chunked {
        Box::new(BufReader::new(Chunked {
            inner: reader,
            left: 0,
            need_crlf: false,
            done: false,
        }))
    } else if let Some(length) = head.length {
        Box::new(reader.take(length))
    } else {
        Box::new(reader)
    }
}

/// A chunked transfer-coding decoder (RFC 9112 §7.1).
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    /// The CRLF after a chunk's data is still to be read.
    need_crlf: bool,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            if self.need_crlf {
                if !read_line(&mut self.inner)?.is_empty() {
                    return Err(bad_data("chunk data longer than its size"));
                }
                self.need_crlf = false;
            }
            let line = read_line(&mut self.inner)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| bad_data(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(&mut self.inner)?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
            self.left = size;
            self.need_crlf = true;
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection inside a chunk",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Shows the answer's lines as they come.
struct Display {
    json: bool,
    tty: bool,
    /// A progress line is on the terminal, without its newline.
    progress_shown: bool,
    /// The node reported an error not tied to a line (the body broke off, say).
    failed: bool,
    /// The final totals.
    done: Option<Value>,
}

impl Display {
    fn new(json: bool) -> Display {
        Display {
            json,
            tty: io::stderr().is_terminal(),
            progress_shown: false,
            failed: false,
            done: None,
        }
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            eprint!("\r\x1b[K");
            self.progress_shown = false;
        }
    }

    fn line(&mut self, raw: &[u8]) -> io::Result<()> {
        if self.json {
            let mut out = io::stdout().lock();
            let written = out
                .write_all(raw)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                crate::cli::stdout_failed(e);
            }
        }
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| bad_data(format!("the node sent a line that is not JSON: {e}")))?;
        if v["done"].as_bool() == Some(true) {
            self.done = Some(v);
            return Ok(());
        }
        let error = v["error"].as_str();
        if error.is_some() && v["line"].is_null() {
            self.failed = true;
        }
        if self.json {
            return Ok(());
        }
        if let Some(p) = v.get("progress") {
            let text = format!(
                "enrolled {} / lines {} (refused {}) {:.0}/s",
                p["enrolled"].as_u64().unwrap_or(0),
                p["lines"].as_u64().unwrap_or(0),
                p["refused"].as_u64().unwrap_or(0),
                p["per_s"].as_f64().unwrap_or(0.0)
            );
            if self.tty {
                eprint!("\r\x1b[K{text}");
                self.progress_shown = true;
            } else {
                eprintln!("{text}");
            }
        } else if let Some(error) = error {
            self.clear_progress();
            let message = v["message"].as_str().unwrap_or("");
            match v["line"].as_u64() {
                Some(line) => eprintln!("line {line}: {error}: {message}"),
                None => eprintln!("error: {error}: {message}"),
            }
        }
        Ok(())
    }
}

/// Reads the NDJSON answer to its end, showing each line.
fn read_answer(answer: &mut dyn BufRead, display: &mut Display) -> io::Result<()> {
    let mut raw = Vec::new();
    loop {
        raw.clear();
        answer
            .take(ANSWER_LINE_BYTES_MAX)
            .read_until(b'\n', &mut raw)?;
        if raw.is_empty() {
            return Ok(());
        }
        let line = raw.trim_ascii();
        if !line.is_empty() {
            display.line(line)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n world\n\r\n0\r\nTrailer: x\r\n\r\nafter";
        let mut decoded = String::new();
        Chunked {
            inner: &wire[..],
            left: 0,
            need_crlf: false,
            done: false,
        }
        .read_to_string(&mut decoded)
        .unwrap();
        assert_eq!(decoded, "hello world\n");
    }

    #[test]
    fn truncated_chunks_are_errors() {
        let mut decoded = String::new();
        let e = Chunked {
            inner: &b"a\r\nhello"[..],
            left: 0,
            need_crlf: false,
            done: false,
        }
        .read_to_string(&mut decoded)
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn heads_parse() {
        let mut wire = &b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nX: y\r\n\r\nbody"[..];
        let head = read_head(&mut wire).unwrap();
        assert_eq!(head.status, 401);
        assert_eq!(head.length, Some(12));
        assert!(!head.chunked);
        assert_eq!(wire, b"body");
        let mut wire = &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..];
        assert!(read_head(&mut wire).unwrap().chunked);
        assert!(read_head(&mut &b"SMTP ready\r\n"[..]).is_err());
    }
}

//! What an attack on a node's API costs it, measured on a real `hukou node run` process: its
//! peak memory (`VmHWM`), file descriptors and CPU time from `/proc/PID`, and the time to the
//! answer. Each test prints its figures (`cargo nextest run --no-capture`).
//!
//! - a 50 MB body to a JSON route is refused (413) after a few KiB are read;
//! - 2,000 half-sent requests are closed within the head timeout, the node's descriptors stay
//!   bounded, and a clerk's request is answered meanwhile; an idle keep-alive is closed too;
//! - a bulk import costs CPU linear in its body, and a line is one line however it is split
//!   across reads: an over-long one is refused whole, nothing of it enrolled;
//! - `/ui/lang` with a control character in `back` answers 400;
//! - a CLI command writing into a closed pipe ends by SIGPIPE, silently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hukou_tests::{Testnet, citizen_id, get_text, hukou_bin, try_get, wait_until};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
/// The node's `API_HEADER_READ_TIMEOUT` (node/src/api.rs).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The node's `API_CONNECTIONS_MAX`.
const CONNECTIONS_MAX: usize = 512;

// ---------------------------------------------------------------------------------------------
// Measuring the node process.

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// Open file descriptors of the process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count()
}

/// User + system CPU time of the process so far (`/proc/PID/stat`, ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat, so 11 and 12 after the command name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.

fn socket_addr(net: &Testnet) -> SocketAddr {
    net.api(0)
        .strip_prefix("http://")
        .expect("http URL")
        .parse()
        .expect("host:port")
}

/// Reads an HTTP/1.1 response until the server closes the connection (or `timeout`):
/// status and body (de-chunked if chunked). Whatever arrived before a reset counts.
fn read_response(stream: &mut TcpStream, timeout: Duration) -> (u16, Vec<u8>) {
    let (status, body, _) = read_response_timed(stream, timeout);
    (status, body)
}

/// As [`read_response`], with when its first byte arrived.
fn read_response_timed(stream: &mut TcpStream, timeout: Duration) -> (u16, Vec<u8>, Instant) {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut first_byte = None;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                first_byte.get_or_insert_with(Instant::now);
                raw.extend_from_slice(&buf[..n]);
            }
        }
    }
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = &raw[head_end + 4..];
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, body, first_byte.expect("bytes arrived"))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// What a client got for sending `body_bytes` of spaces to `path`.
struct Sent {
    status: u16,
    body: Value,
    /// From the first byte sent to the answer's arrival.
    answered_in: Duration,
    /// Body bytes the client managed to write before the node closed the connection.
    written: usize,
}

/// Posts `body_bytes` of JSON whitespace to `path` in 64 KiB writes, with a declared length
/// or chunked, reading the answer while writing.
fn send_big_body(net: &Testnet, path: &str, body_bytes: usize, chunked: bool) -> Sent {
    let mut stream = TcpStream::connect(socket_addr(net)).expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
        net.token(0)
    );
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {body_bytes}\r\n\r\n"));
    }
    let started = Instant::now();
    stream.write_all(head.as_bytes()).expect("head");
    let mut writer = stream.try_clone().expect("clone");
    let write = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        let mut written = 0;
        while written < body_bytes {
            let n = chunk.len().min(body_bytes - written);
            let sent = if chunked {
                writer
                    .write_all(format!("{n:x}\r\n").as_bytes())
                    .and_then(|()| writer.write_all(&chunk[..n]))
                    .and_then(|()| writer.write_all(b"\r\n"))
            } else {
                writer.write_all(&chunk[..n])
            };
            if sent.is_err() {
                break;
            }
            written += n;
        }
        if chunked && written == body_bytes {
            let _ = writer.write_all(b"0\r\n\r\n");
        }
        written
    });
    let (status, body, first_byte) = read_response_timed(&mut stream, Duration::from_secs(30));
    let answered_in = first_byte - started;
    let written = write.join().expect("writer");
    Sent {
        status,
        body: json_of(&body),
        answered_in,
        written,
    }
}

#[test]
fn a_huge_body_is_refused_while_it_is_read() {
    let net = Testnet::new(1);
    let pid = net.nodes[0].pid().expect("running");
    let peak_before = status_bytes(pid, "VmHWM");
    let rss_before = status_bytes(pid, "VmRSS");

    let mut figures = Vec::new();
    let mut answers = Vec::new();
    for (path, chunked) in [
        ("/v1/enrol", true),
        ("/v1/enrol", false),
        ("/v1/permits", true),
    ] {
        let sent = send_big_body(&net, path, 50 * MIB, chunked);
        figures.push(format!(
            "{path} ({}): {} in {:.0} ms, client wrote {:.1} MiB before the node closed",
            if chunked {
                "chunked"
            } else {
                "declared length"
            },
            sent.status,
            sent.answered_in.as_secs_f64() * 1000.0,
            mib(sent.written)
        ));
        answers.push((path, sent));
    }
    // A streamed route: a declared 2 GiB is refused before a byte is read.
    let mut stream = TcpStream::connect(socket_addr(&net)).expect("connect");
    let started = Instant::now();
    write!(
        stream,
        "POST /v1/enrol/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        net.token(0),
        2u64 << 30
    )
    .expect("head");
    let (status, body) = read_response(&mut stream, Duration::from_secs(5));
    figures.push(format!(
        "/v1/enrol/bulk (declared 2 GiB): {status} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));

    let peak_after = status_bytes(pid, "VmHWM");
    let rss_after = status_bytes(pid, "VmRSS");
    eprintln!(
        "huge bodies: {}; node peak RSS {:.1} -> {:.1} MiB (+{:.1}), RSS {:.1} -> {:.1} MiB",
        figures.join("; "),
        mib(peak_before),
        mib(peak_after),
        mib(peak_after - peak_before),
        mib(rss_before),
        mib(rss_after)
    );
    for (path, sent) in answers {
        assert_eq!(sent.status, 413, "{path}: {}", sent.body);
        assert_eq!(sent.body["error"], "body_too_large", "{}", sent.body);
        assert!(
            sent.answered_in < Duration::from_secs(2),
            "{path}: answered in {:?}",
            sent.answered_in
        );
        // What the client wrote sits in the kernel's socket buffers, not in the node.
        assert!(
            sent.written < 50 * MIB,
            "{path}: the node read the whole body"
        );
    }
    assert_eq!(
        (status, json_of(&body)["error"].clone()),
        (413, json!("body_too_large"))
    );
    // Buffering one of these bodies whole would raise the peak by 50 MiB or more.
    assert!(
        peak_after - peak_before < 16 * MIB,
        "the node's peak RSS grew by {:.1} MiB",
        mib(peak_after - peak_before)
    );
    // Still answering.
    let (status, _) = try_get(&format!("{}/healthz", net.api(0))).expect("healthz");
    assert_eq!(status, 200);
}

#[test]
fn half_sent_requests_are_closed_and_cost_bounded_descriptors() {
    const ATTACKERS: usize = 2_000;
    let net = Testnet::new(1);
    let pid = net.nodes[0].pid().expect("running");
    let addr = socket_addr(&net);
    let fds_before = fd_count(pid);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (closed_after, fds_during, answered) = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut attackers = Vec::new();
        for _ in 0..ATTACKERS {
            let opened = opened.clone();
            attackers.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .expect("connect (raise `ulimit -n` above 2,100 if this fails)");
                stream
                    .write_all(b"POST /v1/enrol HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
                    .await
                    .expect("half a head");
                let at = Instant::now();
                opened.fetch_add(1, Ordering::Relaxed);
                // Closed: the read ends (EOF, or a reset) whatever the node sent first.
                let mut buf = [0u8; 1024];
                let closed = tokio::time::timeout(Duration::from_secs(60), async {
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                closed.ok().map(|()| at.elapsed())
            }));
        }
        while opened.load(Ordering::Relaxed) < ATTACKERS {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "only {} of {ATTACKERS} connections opened",
                opened.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // While the attack is on: the node's descriptors, and a clerk's request.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fds_during = fd_count(pid);
        let url = format!("{}/healthz", net.api(0));
        let answered = tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let (status, _) = try_get(&url).expect("healthz during the attack");
            (status, asked.elapsed())
        })
        .await
        .expect("request");
        let mut closed_after = Vec::new();
        for a in attackers {
            closed_after.push(a.await.expect("attacker"));
        }
        (closed_after, fds_during, answered)
    });
    let all_opened_in = started.elapsed();
    let slowest = closed_after
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    let still_open = closed_after.iter().filter(|c| c.is_none()).count();
    let closed_at_once = closed_after
        .iter()
        .flatten()
        .filter(|c| **c < Duration::from_secs(1))
        .count();
    assert!(wait_until(Duration::from_secs(10), || fd_count(pid) <= fds_before + 8));
    let fds_after = fd_count(pid);
    eprintln!(
        "{ATTACKERS} half-sent requests: node fds {fds_before} before, {fds_during} during, {fds_after} after; \
         {closed_at_once} closed within 1 s (their places taken), the slowest closed after {:.1} s, {still_open} never closed; \
         /healthz during the attack: {} in {:.0} ms; whole attack {:.1} s",
        slowest.as_secs_f64(),
        answered.0,
        answered.1.as_secs_f64() * 1000.0,
        all_opened_in.as_secs_f64()
    );
    assert_eq!(still_open, 0, "connections the node never closed");
    assert!(
        slowest <= HEADER_READ_TIMEOUT + Duration::from_secs(3),
        "a half-sent request stayed open {slowest:?}"
    );
    assert!(
        fds_during <= fds_before + CONNECTIONS_MAX + 16,
        "{fds_during} descriptors during the attack ({fds_before} before)"
    );
    assert_eq!(answered.0, 200);
    assert!(answered.1 < Duration::from_secs(2), "{:?}", answered.1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let net = Testnet::new(1);
    let mut stream = TcpStream::connect(socket_addr(&net)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The whole answer (it has a Content-Length), then nothing until the node closes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let answered_at = loop {
        let n = stream.read(&mut buf).expect("answer");
        assert!(n > 0, "closed before answering");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("content-length");
            if raw.len() >= end + 4 + length {
                assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                break Instant::now();
            }
        }
    };
    let n = stream.read(&mut buf).map_or(0, |n| n);
    let idle_for = answered_at.elapsed();
    eprintln!(
        "idle keep-alive connection closed by the node after {:.1} s",
        idle_for.as_secs_f64()
    );
    assert_eq!(n, 0, "the node sent more after the answer");
    assert!(
        idle_for >= HEADER_READ_TIMEOUT - Duration::from_secs(1)
            && idle_for <= HEADER_READ_TIMEOUT + Duration::from_secs(3),
        "closed after {idle_for:?}"
    );
}

#[test]
fn a_bulk_import_reads_lines_in_linear_time_and_whole() {
    let net = Testnet::new(1);
    let pid = net.nodes[0].pid().expect("running");
    let addr = socket_addr(&net);
    let token = net.token(0).to_string();

    // 4 MiB of blank lines: one pass over the body.
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let body = vec![b'\n'; 4 * MIB];
    let lines = post_in_parts(addr, &token, &[&body], Duration::ZERO);
    let cpu = cpu_time(pid) - cpu_before;
    let done = lines.last().expect("a done line");
    assert_eq!(
        (&done["done"], &done["lines"], &done["enrolled"]),
        (&json!(true), &json!(4 * MIB), &json!(0)),
        "{lines:?}"
    );
    eprintln!(
        "4 MiB of blank lines: {:.0} ms of node CPU, answered in {:.0} ms",
        cpu.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0
    );
    // Quadratic splitting took about 20 s of CPU.
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");

    // A line split across two reads is one line; an over-long line split across reads is
    // refused once, whole: its tail, a valid enrolment after 5,000 spaces, is not enrolled.
    let (first, tail_person, last) = (citizen_id(1), citizen_id(2), citizen_id(3));
    let part1 = format!("{{\"person\": \"{}", &first[..9]);
    let part2 = format!("{}\"}}\n{}", &first[9..], " ".repeat(5_000));
    let part3 = format!("{{\"person\": \"{tail_person}\"}}\n{{\"person\": \"{last}\"}}\n");
    let lines = post_in_parts(
        addr,
        &token,
        &[part1.as_bytes(), part2.as_bytes(), part3.as_bytes()],
        Duration::from_millis(300),
    );
    let errors: Vec<(&Value, &Value)> = lines
        .iter()
        .filter(|l| l.get("error").is_some())
        .map(|l| (&l["line"], &l["error"]))
        .collect();
    assert_eq!(
        errors,
        vec![(&json!(2), &json!("line_too_long"))],
        "{lines:?}"
    );
    let done = lines.last().expect("done");
    assert_eq!(
        (&done["lines"], &done["enrolled"], &done["refused"]),
        (&json!(3), &json!(2), &json!(1)),
        "{lines:?}"
    );
    let registered = |id: &str| {
        let (status, person) = net.post(0, "/v1/person", &json!({ "person": id }));
        assert_eq!(status, 200, "{person}");
        person["registered_at"].clone()
    };
    assert_eq!(registered(&first), json!(net.code(0)));
    assert_eq!(registered(&last), json!(net.code(0)));
    assert_eq!(registered(&tail_person), Value::Null);
}

/// Posts `parts` as one NDJSON body to `/v1/enrol/bulk`, pausing `pause` between them so
/// each arrives in its own read; returns the answer's lines.
fn post_in_parts(addr: SocketAddr, token: &str, parts: &[&[u8]], pause: Duration) -> Vec<Value> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let length: usize = parts.iter().map(|p| p.len()).sum();
    write!(
        stream,
        "POST /v1/enrol/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .expect("head");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        stream.write_all(part).expect("part");
        stream.flush().expect("flush");
    }
    let (status, body) = read_response(&mut stream, Duration::from_secs(60));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(json_of)
        .collect()
}

#[test]
fn a_control_character_in_the_language_toggle_answers_400() {
    let net = Testnet::new(1);
    let (status, page) = get_text(&format!(
        "{}/ui/lang?to=en&back=%2Fui%2Fnetwork%0A",
        net.api(0)
    ));
    assert_eq!(status, 400, "{page}");
    // The console speaks Chinese by default: "the return address (back) holds a control
    // character".
    assert!(page.contains("含有控制字符"), "{page}");
    // The same toggle without it still redirects.
    let (status, _) = get_text(&format!(
        "{}/ui/lang?to=en&back=%2Fui%2Fnetwork",
        net.api(0)
    ));
    assert_eq!(status, 200, "followed to the page");
}

#[test]
fn a_command_writing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let net = Testnet::new(1);
    let id = citizen_id(7);
    for args in [
        vec!["inbox", "--node", net.api(0)],
        vec!["id", "check", id.as_str()],
    ] {
        // The reader is gone before the command writes its first byte (`| head -1` once head
        // has its line).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = std::process::Command::new(hukou_bin())
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("hukou runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "hukou {args:?} into a closed pipe: {:?}, stderr {stderr:?}",
            out.status
        );
        assert_eq!(stderr, "", "hukou {args:?} said something");
        // Killed by SIGPIPE (13), as `cat` is; a panic would be exit status 101.
        assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    }
}

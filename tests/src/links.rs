//! Network links between the nodes of a [`Testnet`] that a test can cut and restore.
//!
//! Every ordered pair of nodes (i, j) gets its own TCP proxy on 127.0.0.1 that forwards to j's
//! libp2p port, and node i's config says, in its `[peers]` table, to dial j at that proxy. So
//! every connection between two nodes runs through exactly one proxy, whichever side dialled.
//! [`Links::cut`] of node x closes every connection through a proxy to or from x and makes those
//! proxies refuse new ones (they accept and close at once, so the port stays theirs), while x's
//! process, API and store keep running: a bureau cut off from the network. [`Links::restore`]
//! reopens them. Nothing in the node knows about the proxies: pnet, Noise and the member allow
//! list run end to end through them.
//!
//! Each proxy is one accepting thread plus two copying threads per connection; all of them end
//! when the [`Links`] is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{READY_TIMEOUT, Testnet};

/// How long a proxy waits to reach the node behind it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Copy buffer per direction of a connection.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// One direction of the links: the proxy node `from` dials to reach node `to`.
struct Proxy {
    from: usize,
    to: usize,
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    thread: Option<JoinHandle<()>>,
}

struct ProxyShared {
    /// False while the link is cut.
    open: AtomicBool,
    /// Set when the [`Links`] is dropped.
    stopping: AtomicBool,
    /// Both sockets of every live connection, to close them on a cut.
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    /// Connections forwarded and refused so far (for test diagnostics).
    forwarded: AtomicU64,
    refused: AtomicU64,
}

impl ProxyShared {
    fn close_all(&self) {
        let live = std::mem::take(&mut *self.live.lock().expect("proxy lock"));
        for (_, a, b) in live {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    fn forget(&self, id: u64) {
        self.live
            .lock()
            .expect("proxy lock")
            .retain(|(live, _, _)| *live != id);
    }
}

/// The proxies between every pair of a testnet's nodes.
pub struct Links {
    proxies: Vec<Proxy>,
}

impl Links {
    /// Creates a testnet of `n` bureaus whose nodes reach each other only through [`Links`],
    /// starts every node and waits until all are healthy and connected.
    pub fn testnet(n: usize) -> (Testnet, Links) {
        let mut net = Testnet::create(n);
        let links = Links::install(&mut net);
        for i in 0..n {
            net.start(i);
        }
        let all: Vec<usize> = (0..n).collect();
        net.wait_ready(&all, READY_TIMEOUT);
        (net, links)
    }

    /// Starts a proxy for every ordered pair of `net`'s nodes and appends a `[peers]` table to
    /// each node's config naming them. Call before starting the nodes.
    pub fn install(net: &mut Testnet) -> Links {
        let n = net.nodes.len();
        let mut proxies = Vec::new();
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    proxies.push(Proxy::start(from, to, net.nodes[to].p2p_port));
                }
            }
        }
        for (from, node) in net.nodes.iter().enumerate() {
            let mut table = String::from("\n[peers]\n");
            for p in proxies.iter().filter(|p| p.from == from) {
                table.push_str(&format!(
                    "{} = \"/ip4/127.0.0.1/tcp/{}\"\n",
                    net.nodes[p.to].code,
                    p.addr.port()
                ));
            }
            let mut config = std::fs::OpenOptions::new()
                .append(true)
                .open(&node.config)
                .expect("open node.toml");
            config
                .write_all(table.as_bytes())
                .expect("append [peers] to node.toml");
        }
        Links { proxies }
    }

    /// Cuts node `x` off: closes every connection to or from it and refuses new ones.
    pub fn cut(&self, x: usize) {
        for p in self.proxies.iter().filter(|p| p.from == x || p.to == x) {
            p.shared.open.store(false, Ordering::SeqCst);
            p.shared.close_all();
        }
    }

    /// Restores every link of node `x` that does not lead to another cut node.
    pub fn restore(&self, x: usize) {
        let cut: Vec<usize> = (0..=self.proxies.iter().map(|p| p.from).max().unwrap_or(0))
            .filter(|&i| i != x && self.is_cut(i))
            .collect();
        for p in self.proxies.iter().filter(|p| p.from == x || p.to == x) {
            let other = if p.from == x { p.to } else { p.from };
            if !cut.contains(&other) {
                p.shared.open.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Whether every link of node `x` is cut.
    pub fn is_cut(&self, x: usize) -> bool {
        let mut of_x = self
            .proxies
            .iter()
            .filter(|p| p.from == x || p.to == x)
            .peekable();
        of_x.peek().is_some() && of_x.all(|p| !p.shared.open.load(Ordering::SeqCst))
    }

    /// Connections forwarded and refused so far by the proxies of node `x` (both directions).
    pub fn counts(&self, x: usize) -> (u64, u64) {
        self.proxies
            .iter()
            .filter(|p| p.from == x || p.to == x)
            .fold((0, 0), |(f, r), p| {
                (
                    f + p.shared.forwarded.load(Ordering::Relaxed),
                    r + p.shared.refused.load(Ordering::Relaxed),
                )
            })
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for p in &self.proxies {
            p.shared.stopping.store(true, Ordering::SeqCst);
            p.shared.open.store(false, Ordering::SeqCst);
            p.shared.close_all();
            // Wake the accepting thread.
            let _ = TcpStream::connect_timeout(&p.addr, Duration::from_millis(200));
        }
        for p in &mut self.proxies {
            if let Some(t) = p.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Proxy {
    fn start(from: usize, to: usize, target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let target = SocketAddr::from(([127, 0, 0, 1], target_port));
        let shared = Arc::new(ProxyShared {
            open: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let accept_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{from}-{to}"))
            .spawn(move || accept_loop(&listener, target, &accept_shared))
            .expect("spawn proxy thread");
        Proxy {
            from,
            to,
            addr,
            shared,
            thread: Some(thread),
        }
    }
}

fn accept_loop(listener: &TcpListener, target: SocketAddr, shared: &Arc<ProxyShared>) {
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else {
            continue;
        };
        if !shared.open.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            // The node behind is down: the dialler sees the connection close.
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut live = shared.live.lock().expect("proxy lock");
            // Checked again under the lock, so a cut between the check above and here still
            // closes this connection.
            if !shared.open.load(Ordering::SeqCst) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                shared.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            live.push((id, c3, s3));
        }
        shared.forwarded.fetch_add(1, Ordering::Relaxed);
        let up = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                pump(client, server);
                shared.forget(id);
            })
        };
        std::thread::spawn(move || {
            pump(s2, c2);
            let _ = up.join();
        });
    }
}

/// Copies `from` to `to` until either ends, then closes both ways of both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

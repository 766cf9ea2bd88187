//! The API's listener: accepts TCP connections and serves HTTP/1.1 on each with hyper, within
//! bounds no client can push, so a client can exhaust neither the node's file descriptors nor
//! its memory (the limits are named at the top of `api.rs`):
//!
//! - At most [`API_CONNECTIONS_MAX`] connections are open. When that many are, a new connection
//!   takes the place of the one that has waited longest without a request in progress (an idle
//!   keep-alive connection, or one whose request head has not arrived); if every connection is
//!   busy with a request, the new one is closed at once. A request in progress is never cut.
//! - A request head must arrive within [`API_HEADER_READ_TIMEOUT`] of the connection opening or
//!   of the previous answer, which also bounds how long a keep-alive connection stays idle.
//! - A connection buffers at most [`API_READ_BUFFER_BYTES_MAX`] (a bigger head is refused).
//!
//! Bodies are bounded where they are read: `ApiJson` for JSON bodies, `lines` for NDJSON.
//! Shutdown comes in as a future: the listener closes, connections finish the request in
//! progress and close, and any still open after [`API_SHUTDOWN_WAIT`] are dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::{
    API_CONNECTIONS_MAX, API_HEADER_READ_TIMEOUT, API_READ_BUFFER_BYTES_MAX, API_SHUTDOWN_WAIT,
};

/// Pause after an accept error that is not about one connection (out of file descriptors, say),
/// so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes; returns once every connection closed
/// (or [`API_SHUTDOWN_WAIT`] passed).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let table = Arc::new(Table::new(API_CONNECTIONS_MAX));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(API_HEADER_READ_TIMEOUT)
        .max_buf_size(API_READ_BUFFER_BYTES_MAX);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The peer gave up before we took the connection: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!("the API listener cannot accept a connection: {e}");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let Some(slot) = table.admit() else {
            tracing::debug!(
                "refused an API connection: all {API_CONNECTIONS_MAX} connections are busy with a request"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = {
            let (app, slot) = (app.clone(), slot.clone());
            hyper::service::service_fn(move |request| answer(app.clone(), slot.clone(), request))
        };
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    // Dropping the connection closes its socket.
                    () = slot.evicted.notified() => break,
                    _ = stop.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(API_SHUTDOWN_WAIT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} API connections still open {API_SHUTDOWN_WAIT:?} after shutdown began; closing them",
            connections.len()
        );
        connections.shutdown().await;
    }
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Answers one request of a connection: the connection counts as busy until the answer has
/// been sent whole (an NDJSON answer streams while the upload goes on).
async fn answer(
    app: Router,
    slot: Arc<Slot>,
    request: Request<Incoming>,
) -> Result<axum::response::Response, Infallible> {
    let busy = Busy::new(slot);
    let response = app
        .oneshot(request.map(Body::new))
        .await
        .unwrap_or_else(|never| match never {});
    Ok(response.map(|body| Body::new(BusyBody { body, _busy: busy })))
}

/// The open connections.
struct Table {
    max: usize,
    state: Mutex<TableState>,
}

#[derive(Default)]
struct TableState {
    next_id: u64,
    open: HashMap<u64, Open>,
}

/// One open connection.
struct Open {
    /// Requests in progress (at most one on HTTP/1.1 without pipelining).
    busy: u32,
    /// Since when no request has been in progress.
    idle_since: Instant,
    evicted: Arc<Notify>,
}

/// A connection's place in the [`Table`]; freed when dropped.
struct Slot {
    id: u64,
    table: Arc<Table>,
    /// Notified when a new connection takes this one's place.
    evicted: Arc<Notify>,
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            max,
            state: Mutex::new(TableState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection, taking that of the longest-idle connection when full;
    /// `None` if every open connection is busy with a request.
    fn admit(self: &Arc<Table>) -> Option<Arc<Slot>> {
        let mut state = self.lock();
        if state.open.len() >= self.max {
            let (&longest_idle, _) = state
                .open
                .iter()
                .filter(|(_, c)| c.busy == 0)
                .min_by_key(|(_, c)| c.idle_since)?;
            let evicted = state.open.remove(&longest_idle).expect("found just now");
            evicted.evicted.notify_one();
        }
        let id = state.next_id;
        state.next_id += 1;
        let evicted = Arc::new(Notify::new());
        state.open.insert(
            id,
            Open {
                busy: 0,
                idle_since: Instant::now(),
                evicted: evicted.clone(),
            },
        );
        Some(Arc::new(Slot {
            id,
            table: self.clone(),
            evicted,
        }))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.lock().open.remove(&self.id);
    }
}

/// A request in progress on a connection.
struct Busy {
    slot: Arc<Slot>,
}

impl Busy {
    fn new(slot: Arc<Slot>) -> Busy {
        if let Some(open) = slot.table.lock().open.get_mut(&slot.id) {
            open.busy += 1;
        }
        Busy { slot }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(open) = self.slot.table.lock().open.get_mut(&self.slot.id) {
            open.busy -= 1;
            if open.busy == 0 {
                open.idle_since = Instant::now();
            }
        }
    }
}

/// An answer's body that keeps its connection marked busy until it has been sent (or dropped).
struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_gives_the_longest_idle_place_away_and_never_a_busy_one() {
        let table = Arc::new(Table::new(2));
        let first = table.admit().expect("room");
        let second = table.admit().expect("room");
        let busy_first = Busy::new(first.clone());
        // Full: the idle one (second) makes room, the busy one (first) keeps its place.
        let third = table.admit().expect("second is idle");
        assert_eq!(
            table
                .lock()
                .open
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            [first.id, third.id].into()
        );
        let busy_third = Busy::new(third.clone());
        assert!(table.admit().is_none(), "every connection is busy");
        // An answer sent frees its connection for eviction again.
        drop(busy_first);
        let fourth = table.admit().expect("first is idle now");
        assert_eq!(
            table
                .lock()
                .open
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            [third.id, fourth.id].into()
        );
        drop((busy_third, second));
        drop((first, third, fourth));
        assert!(table.lock().open.is_empty());
    }
}

//! The listener every API port runs on. `axum::serve` has no timeouts and
//! no connection limit, so a client that opens connections and never
//! finishes a request holds them (and the process's file descriptors)
//! forever. Here every connection is bounded:
//!
//! - the request head (and the wait for the next request on a kept-alive
//!   connection) must arrive within `header_read_timeout`;
//! - a request body must keep arriving: a gap longer than
//!   `body_read_timeout` ends it with 408 ([`BodyReadTimeout`]);
//! - a listener holds at most `max_connections`; at the limit it closes
//!   its oldest connection that is not in the middle of a request, so a
//!   flood of idle connections cannot lock real clients out, and waits
//!   only when every connection is busy.

use crate::http::BodyReadTimeout;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

/// The bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// File descriptors kept back from the listeners for everything else the
/// process opens: database files, agents' `ip`/`nft` children, guests'
/// sockets, image files.
const RESERVED_DESCRIPTORS: u64 = 2048;

/// Raise the soft open-files limit to the hard one and split what is left
/// after [`RESERVED_DESCRIPTORS`] among `listeners`, capped at
/// `configured` (0 = no cap of its own). Returns the per-listener limit.
pub fn connection_budget(listeners: usize, configured: usize) -> usize {
    let nofile = raise_nofile_limit();
    let usable = nofile.saturating_sub(RESERVED_DESCRIPTORS).max(256);
    let share = (usable / listeners.max(1) as u64).max(64) as usize;
    if configured == 0 {
        share
    } else {
        configured.min(share)
    }
}

fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        lim.rlim_cur
    }
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes;
/// then stop accepting, let in-flight requests finish (30 s at most).
/// Handlers can extract `ConnectInfo<SocketAddr>` as with `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conns = Arc::new(Connections::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        conns.make_room(limits.max_connections).await;
        let _ = stream.set_nodelay(true);
        let conn = conns.register();
        let app = app.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, &conn).await;
            conns.unregister(conn.id);
        });
    }
    conns.close_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    while conns.len() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    conn: &Connection,
) {
    let busy = conn.busy.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_request = InRequest::enter(&busy);
        let mut req = req.map(|body| TimedBody::new(body, limits.body_read_timeout));
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(in_request);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Large enough that the service layer, not hyper, answers 414/431
        // with a proper body for anything short of abuse.
        .max_buf_size(1 << 20)
        .max_headers(crate::http::MAX_HEADERS * 2);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = conn.evict.notified() => {
            // Chosen because no request of it is being served: dropping it
            // closes the socket now, even one half-way through its headers
            // (a graceful shutdown would wait for those to finish).
            return;
        }
        _ = conn.close.notified() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Counts a connection as busy while one of its requests is being served.
struct InRequest(Arc<AtomicUsize>);

impl InRequest {
    fn enter(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::SeqCst);
        InRequest(busy.clone())
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Connection {
    id: u64,
    opened: Instant,
    busy: Arc<AtomicUsize>,
    /// Close now: the listener needs the slot.
    evict: Arc<Notify>,
    /// Finish the request in flight, then close: the process is stopping.
    close: Arc<Notify>,
}

#[derive(Default)]
struct Connections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Connection>>,
    freed: Notify,
}

impl Connections {
    fn register(&self) -> Connection {
        let conn = Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            opened: Instant::now(),
            busy: Arc::new(AtomicUsize::new(0)),
            evict: Arc::new(Notify::new()),
            close: Arc::new(Notify::new()),
        };
        self.open
            .lock()
            .expect("connections lock")
            .insert(conn.id, conn.clone());
        conn
    }

    fn unregister(&self, id: u64) {
        self.open.lock().expect("connections lock").remove(&id);
        self.freed.notify_waiters();
    }

    fn len(&self) -> usize {
        self.open.lock().expect("connections lock").len()
    }

    /// Below `max` open connections, return at once; at it, close the
    /// oldest idle one (it leaves the count now), or wait for one to end.
    async fn make_room(&self, max: usize) {
        loop {
            let freed = self.freed.notified();
            {
                let mut open = self.open.lock().expect("connections lock");
                if open.len() < max.max(1) {
                    return;
                }
                let oldest_idle = open
                    .values()
                    .filter(|c| c.busy.load(Ordering::SeqCst) == 0)
                    .min_by_key(|c| c.opened)
                    .map(|c| c.id);
                if let Some(id) = oldest_idle {
                    if let Some(conn) = open.remove(&id) {
                        conn.evict.notify_one();
                    }
                    return;
                }
            }
            tracing::warn!(max, "every connection of the listener is busy; waiting");
            let _ = tokio::time::timeout(Duration::from_secs(1), freed).await;
        }
    }

    fn close_all(&self) {
        for conn in self.open.lock().expect("connections lock").values() {
            conn.close.notify_one();
        }
    }
}

/// A request body whose every frame must arrive within the timeout of the
/// previous one (the clock starts when the handler first reads).
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        TimedBody {
            inner,
            timeout,
            sleep: None,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! A TCP load balancer on loopback, the way a hard-way cluster puts its kube-apiservers
//! behind one address (haproxy or nginx in TCP mode): each new connection goes to the
//! next backend in turn; a backend that refuses the connection is skipped. TLS passes
//! through untouched, so clients see the kube-apiservers' own certificates.
//!
//! A backend can be taken out of the rotation while it starts ([`TcpBalancer::set_in_rotation`]),
//! as an operator's health check (`option httpchk GET /readyz`) would: a kube-apiserver
//! that listens but is not ready yet answers bootstrap tokens 401 until its Secret
//! informer has synced.
//!
//! It runs on a thread of its own with its own tokio runtime, so it outlives any one
//! test runtime and stops (dropping every connection) when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result, io};

/// Counters of what the balancer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalancerStats {
    /// Connections handed to each backend, by index.
    pub per_backend: Vec<u64>,
    /// Connection attempts a backend refused (or did not answer in time); the client
    /// was sent to the next one.
    pub failovers: u64,
    /// Clients closed because no backend took them.
    pub dropped: u64,
}

struct Counters {
    per_backend: Vec<AtomicU64>,
    in_rotation: Vec<std::sync::atomic::AtomicBool>,
    failovers: AtomicU64,
    dropped: AtomicU64,
}

/// The running balancer; stops when dropped.
pub struct TcpBalancer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TcpBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpBalancer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// How long a backend may take to accept before the client goes to the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

impl TcpBalancer {
    /// Listens on `127.0.0.1:<random>` in front of `backends` (loopback ports).
    pub fn start(backends: &[u16]) -> Result<TcpBalancer> {
        if backends.is_empty() {
            return Err(Error::Invalid("a load balancer needs a backend".into()));
        }
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(io("load balancer: bind 127.0.0.1:0"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(io("load balancer: non-blocking listener"))?;
        let addr = std_listener
            .local_addr()
            .map_err(io("load balancer: local address"))?;
        let counters = Arc::new(Counters {
            per_backend: backends.iter().map(|_| AtomicU64::new(0)).collect(),
            in_rotation: backends
                .iter()
                .map(|_| std::sync::atomic::AtomicBool::new(true))
                .collect(),
            failovers: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tlsboot-lb")
            .enable_all()
            .build()
            .map_err(io("load balancer: tokio runtime"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let backends: Arc<Vec<SocketAddr>> = Arc::new(
            backends
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect(),
        );
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("tlsboot-lb".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = accept_loop(listener, backends, c) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends every connection task: clients see the
                // balancer go away, as they would a dead haproxy.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(io("load balancer: thread"))?;
        Ok(TcpBalancer {
            addr,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Takes backend `i` out of the rotation (`false`) or puts it back (`true`). New
    /// connections only; open ones stay where they are.
    pub fn set_in_rotation(&self, i: usize, on: bool) {
        if let Some(flag) = self.counters.in_rotation.get(i) {
            flag.store(on, Ordering::SeqCst);
        }
    }

    pub fn stats(&self) -> BalancerStats {
        let c = &self.counters;
        BalancerStats {
            per_backend: c
                .per_backend
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
            failovers: c.failovers.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TcpBalancer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, backends: Arc<Vec<SocketAddr>>, c: Arc<Counters>) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let backends = backends.clone();
        let c = c.clone();
        let start = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let Some((i, upstream)) = connect_any(&backends, start, &c).await else {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            c.per_backend[i].fetch_add(1, Ordering::Relaxed);
            let (mut client, mut upstream) = (client, upstream);
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

/// The first backend, from `start` round the ring, that accepts a connection.
async fn connect_any(
    backends: &[SocketAddr],
    start: usize,
    c: &Counters,
) -> Option<(usize, TcpStream)> {
    for k in 0..backends.len() {
        let i = (start + k) % backends.len();
        if !c.in_rotation[i].load(Ordering::SeqCst) {
            continue;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backends[i])).await {
            Ok(Ok(s)) => return Some((i, s)),
            _ => {
                c.failovers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server that prefixes its answers with `tag`.
    async fn tagged_echo(tag: u8) -> (u16, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 1];
                    if s.read_exact(&mut b).await.is_ok() {
                        let _ = s.write_all(&[tag, b[0]]).await;
                    }
                });
            }
        });
        (port, task)
    }

    async fn ask(port: u16) -> Option<[u8; 2]> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"x").await.ok()?;
        let mut out = [0u8; 2];
        s.read_exact(&mut out).await.ok()?;
        Some(out)
    }

    #[tokio::test]
    async fn connections_alternate_and_skip_a_dead_backend() {
        let (a, _ta) = tagged_echo(b'a').await;
        let (b, tb) = tagged_echo(b'b').await;
        let lb = TcpBalancer::start(&[a, b]).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(ask(lb.port()).await.unwrap()[0]);
        }
        seen.sort();
        assert_eq!(seen, b"aabb", "round robin over both backends");

        // Backend b goes away: its port refuses, every client lands on a.
        tb.abort();
        let _ = tb.await;
        for _ in 0..4 {
            assert_eq!(ask(lb.port()).await.unwrap(), *b"ax");
        }
        let stats = lb.stats();
        assert_eq!(stats.per_backend, vec![6, 2]);
        assert!(stats.failovers >= 2, "{stats:?}");
        assert_eq!(stats.dropped, 0);
    }

    #[tokio::test]
    async fn a_backend_out_of_rotation_gets_no_connections() {
        let (a, _ta) = tagged_echo(b'a').await;
        let (b, _tb) = tagged_echo(b'b').await;
        let lb = TcpBalancer::start(&[a, b]).unwrap();
        lb.set_in_rotation(1, false);
        for _ in 0..4 {
            assert_eq!(ask(lb.port()).await.unwrap(), *b"ax");
        }
        lb.set_in_rotation(1, true);
        let mut seen: Vec<u8> = Vec::new();
        for _ in 0..2 {
            seen.push(ask(lb.port()).await.unwrap()[0]);
        }
        seen.sort();
        assert_eq!(seen, b"ab");
        assert_eq!(lb.stats().failovers, 0, "skipped, not tried");
    }

    #[tokio::test]
    async fn no_live_backend_closes_the_client() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let lb = TcpBalancer::start(&[dead]).unwrap();
        assert_eq!(ask(lb.port()).await, None);
        // The accept and the failed connect run on the balancer's thread.
        for _ in 0..100 {
            if lb.stats().dropped == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lb.stats().dropped, 1);
    }
}

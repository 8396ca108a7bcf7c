//! A fault-injecting HTTPS proxy between a client (the tlsboot daemon) and the real
//! kube-apiserver, for the reliability suite (`tests/fault_*.rs`).
//!
//! The proxy terminates TLS with a serving certificate from the harness CA, so a
//! kubeconfig that points at it verifies exactly as one pointing at kube-apiserver
//! does; it forwards each request with the client's own `Authorization` header, so
//! clients must authenticate with bearer tokens (ServiceAccount or bootstrap tokens),
//! not client certificates. Faults are read per request from a shared [`Faults`]
//! value that tests change at run time through a [`FaultHandle`].
//!
//! ```no_run
//! # async fn t(cp: &tlsboot_harness::ControlPlane) -> tlsboot_harness::Result<()> {
//! use tlsboot_harness::faultproxy::{FaultProxy, Faults};
//! let proxy = FaultProxy::start(cp, Faults { error_500: 0.2, ..Faults::default() }).await?;
//! proxy.handle().set(|f| f.error_500 = 0.0);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controlplane::ControlPlane;
use crate::error::{Error, Result, io};
use crate::kubeconfig::{Credential, UserKubeconfig};
/// Re-exported so tests can match methods without depending on `http` themselves.
pub use http::Method as HttpMethod;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;
type Upstream = HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

/// A fault answered instead of forwarding, for requests of one identity.
#[derive(Debug, Clone)]
pub struct IdentityFault {
    /// The name given to a token with [`FaultHandle::name_identity`].
    pub identity: String,
    /// `None` = every method.
    pub method: Option<Method>,
    /// Matches when the request path contains this (e.g. `/leases/`).
    pub path_contains: String,
    /// The HTTP status answered (a Kubernetes `Status` body goes with it).
    pub status: u16,
}

/// What goes wrong, and how often. Fractions are per request, in 0.0..=1.0.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answered 500 without forwarding.
    pub error_500: f64,
    /// Answered 429 with `Retry-After: retry_after_secs` without forwarding.
    pub error_429: f64,
    pub retry_after_secs: u32,
    /// Requests whose path contains one of these never get the random 500/429
    /// (e.g. keep the Lease out of an error-rate test that is about CSRs).
    pub random_exempt: Vec<String>,
    /// Added before forwarding every request.
    pub latency: Duration,
    /// Added (after `latency`) before forwarding or answering each `PUT …/approval`: a
    /// writer's approval is then still on its way while a second writer reads the CSR.
    pub approval_latency: Duration,
    /// Watch responses are cut (the connection aborted mid-stream) after this long.
    pub watch_cut_every: Option<Duration>,
    /// This many next watch requests get a `410 Gone` ERROR event (what
    /// kube-apiserver sends when the resourceVersion is too old) and end.
    pub gone_next_watches: u32,
    /// Fraction of `PUT …/approval` answered 409 Conflict without forwarding.
    pub conflict_on_approval: f64,
    /// Per-identity faults, checked before everything else.
    pub identity: Vec<IdentityFault>,
    /// Holds the first approval write for one CSR until the test releases it
    /// (see [`ApprovalHold`]); checked before every other fault.
    pub hold_approval: Option<ApprovalHold>,
    /// (identity, `https://host:port`): that identity's requests go to this upstream
    /// instead of the proxy's own — e.g. each replica to its own kube-apiserver, so one
    /// replica can be cut off with its server while the other is not.
    pub routes: Vec<(String, String)>,
}

/// Holds the first `PUT …/certificatesigningrequests/<name>/approval` that reaches the
/// proxy until the test calls [`ApprovalHold::release`], then forwards it unchanged: the
/// test can change the CSR between a client's read and its write (e.g. delete it and
/// create another under the same name), and kube-apiserver answers the stale write
/// itself (a real 409). Only the first matching request is held; later ones pass.
#[derive(Debug, Clone)]
pub struct ApprovalHold(Arc<HoldState>);

#[derive(Debug)]
struct HoldState {
    name: String,
    taken: std::sync::atomic::AtomicBool,
    arrived: tokio::sync::Notify,
    released: tokio::sync::Notify,
}

impl ApprovalHold {
    /// Armed for CSR `name`.
    pub fn new(name: &str) -> ApprovalHold {
        ApprovalHold(Arc::new(HoldState {
            name: name.to_owned(),
            taken: std::sync::atomic::AtomicBool::new(false),
            arrived: tokio::sync::Notify::new(),
            released: tokio::sync::Notify::new(),
        }))
    }

    /// Waits until the held write has arrived (returns at once if it already did).
    pub async fn arrived(&self) {
        self.0.arrived.notified().await;
    }

    /// Lets the held write go on to kube-apiserver (or, released before it arrives,
    /// lets it pass without waiting).
    pub fn release(&self) {
        self.0.released.notify_one();
    }

    /// Whether a write was caught.
    pub fn caught(&self) -> bool {
        self.0.taken.load(Ordering::SeqCst)
    }

    /// True once, for the first approval write to the armed name.
    fn take(&self, method: &Method, path: &str) -> bool {
        *method == Method::PUT
            && approval_target(path) == Some(self.0.name.as_str())
            && !self.0.taken.swap(true, Ordering::SeqCst)
    }

    async fn hold(&self) {
        // notify_one stores a permit: neither side can miss the other.
        self.0.arrived.notify_one();
        self.0.released.notified().await;
    }
}

/// One request that was not a read, as the proxy saw it. Logged when it arrives, so a
/// request still in flight, or one whose client went away before the answer, is in the
/// log too.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// When the request reached the proxy (before any added latency).
    pub at: Instant,
    /// When the client got its answer (a request can wait long in kube-apiserver, e.g.
    /// while etcd is down); when the client went away, the moment it did; `at` while
    /// the request is still in flight.
    pub done: Instant,
    /// The name given to the bearer token, or `"other"`.
    pub identity: String,
    pub method: Method,
    pub path: String,
    /// The status the client received; 0 while in flight, and for a request whose
    /// client went away (or whose connection the proxy dropped) before the answer.
    pub status: u16,
    /// The proxy answered itself (a fault) rather than kube-apiserver.
    pub injected: bool,
}

impl WriteRecord {
    /// Reached the proxy, not answered yet, and its client still waits.
    pub fn in_flight(&self) -> bool {
        self.status == 0 && self.done == self.at
    }
}

/// Counters of what passed through.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub requests: u64,
    pub forwarded: u64,
    pub injected_500: u64,
    pub injected_429: u64,
    pub injected_409: u64,
    pub injected_identity: u64,
    pub injected_410_watches: u64,
    pub watches_cut: u64,
    pub upstream_errors: u64,
    pub refused_connections: u64,
    pub restarts: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    injected_500: AtomicU64,
    injected_429: AtomicU64,
    injected_409: AtomicU64,
    injected_identity: AtomicU64,
    injected_410_watches: AtomicU64,
    watches_cut: AtomicU64,
    upstream_errors: AtomicU64,
    refused_connections: AtomicU64,
    restarts: AtomicU64,
}

struct Shared {
    faults: Mutex<Faults>,
    identities: Mutex<HashMap<String, String>>,
    writes: Mutex<Vec<WriteRecord>>,
    refuse_until: Mutex<Option<Instant>>,
    generation: watch::Sender<u64>,
    counters: Counters,
    rng: AtomicU64,
}

/// Locks even when a panicking test thread poisoned the mutex: the data are
/// counters and settings, still meaningful.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// splitmix64: fast, lock-free and good enough to pick which requests fail.
    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn identity_of(&self, req: &Request<Incoming>) -> String {
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        lock(&self.identities)
            .get(token)
            .cloned()
            .unwrap_or_else(|| "other".to_owned())
    }
}

/// Changes the faults of a running proxy and reads what it saw. Cheap to clone.
#[derive(Clone)]
pub struct FaultHandle(Arc<Shared>);

impl FaultHandle {
    /// Changes the faults; requests already being forwarded are not affected.
    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut lock(&self.0.faults));
    }

    pub fn faults(&self) -> Faults {
        lock(&self.0.faults).clone()
    }

    /// Requests bearing `token` are logged and matched as `name`.
    pub fn name_identity(&self, token: &str, name: &str) {
        lock(&self.0.identities).insert(token.to_owned(), name.to_owned());
    }

    /// Like a kube-apiserver restart seen from the client: every connection
    /// (watches included) is dropped at once, and new connections are closed
    /// on accept for `pause`.
    pub fn restart(&self, pause: Duration) {
        *lock(&self.0.refuse_until) = Some(Instant::now() + pause);
        self.0.counters.restarts.fetch_add(1, Ordering::Relaxed);
        self.0.generation.send_modify(|g| *g += 1);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: get(&c.requests),
            forwarded: get(&c.forwarded),
            injected_500: get(&c.injected_500),
            injected_429: get(&c.injected_429),
            injected_409: get(&c.injected_409),
            injected_identity: get(&c.injected_identity),
            injected_410_watches: get(&c.injected_410_watches),
            watches_cut: get(&c.watches_cut),
            upstream_errors: get(&c.upstream_errors),
            refused_connections: get(&c.refused_connections),
            restarts: get(&c.restarts),
        }
    }

    /// Every non-GET request so far, in arrival order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        lock(&self.0.writes).clone()
    }

    /// Approval writes kube-apiserver accepted (status 200), per CSR name.
    pub fn approvals_accepted(&self) -> HashMap<String, Vec<WriteRecord>> {
        let mut out = self.approval_requests();
        for v in out.values_mut() {
            v.retain(|w| w.status == 200);
        }
        out.retain(|_, v| !v.is_empty());
        out
    }

    /// Every `PUT …/approval` request, whatever became of it — accepted, refused by
    /// kube-apiserver, answered by an injected fault, still in flight, or abandoned by
    /// its client — per CSR name, in arrival order.
    pub fn approval_requests(&self) -> HashMap<String, Vec<WriteRecord>> {
        let mut out: HashMap<String, Vec<WriteRecord>> = HashMap::new();
        for w in self.writes() {
            if w.method == Method::PUT
                && let Some(name) = approval_target(&w.path)
            {
                out.entry(name.to_owned()).or_default().push(w);
            }
        }
        out
    }
}

/// The CSR name of a `…/certificatesigningrequests/<name>/approval` path.
pub fn approval_target(path: &str) -> Option<&str> {
    let rest = path.strip_suffix("/approval")?;
    let (_, name) = rest.rsplit_once("/certificatesigningrequests/")?;
    Some(name)
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    handle: FaultHandle,
    ca_pem: String,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Connection tasks are separate: dropping them ends every stream too.
        self.handle.0.generation.send_modify(|g| *g += 1);
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (random port) in front of `cp`'s kube-apiserver.
    /// Runs on the current tokio runtime.
    pub async fn start(cp: &ControlPlane, faults: Faults) -> Result<FaultProxy> {
        let tls = |e: rustls::Error| Error::Invalid(format!("fault proxy TLS: {e}"));
        let pem =
            |e: rustls::pki_types::pem::Error| Error::Invalid(format!("fault proxy PEM: {e}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let serving = cp
            .ca()
            .serving_cert("tlsboot-fault-proxy", &["127.0.0.1", "localhost"])?;
        let chain = CertificateDer::pem_slice_iter(serving.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem)?;
        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(pem)?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(tls)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(cp.ca_pem().as_bytes()) {
            roots.add(c.map_err(pem)?).map_err(tls)?;
        }
        let client_tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls)
            .https_only()
            .enable_http1()
            .build();
        let upstream: Upstream = HttpClient::builder(TokioExecutor::new()).build(connector);
        let base: Uri = cp
            .server_url()
            .parse()
            .map_err(|e| Error::Invalid(format!("server URL {}: {e}", cp.server_url())))?;

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("fault proxy: bind 127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(io("fault proxy: local address"))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        let (generation, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            identities: Mutex::new(HashMap::new()),
            writes: Mutex::new(Vec::new()),
            refuse_until: Mutex::new(None),
            generation,
            counters: Counters::default(),
            rng: AtomicU64::new(seed),
        });
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            shared.clone(),
            upstream,
            base,
        ));
        Ok(FaultProxy {
            addr,
            handle: FaultHandle(shared),
            ca_pem: cp.ca_pem().to_owned(),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// Writes a kubeconfig for `token` that points at this proxy, and names the
    /// token `identity` for per-identity faults and the write log.
    pub async fn kubeconfig(
        &self,
        path: &Path,
        identity: &str,
        token: &str,
    ) -> Result<UserKubeconfig> {
        self.handle.name_identity(token, identity);
        UserKubeconfig::write(
            path,
            &self.url(),
            &self.ca_pem,
            identity,
            &Credential::Token(token.to_owned()),
        )
        .await
    }
}

/// The bearer token embedded in a kubeconfig written by this harness.
pub fn kubeconfig_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(io(format!("read {}", path.display())))?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)?;
    v.get("users")
        .and_then(|u| u.get(0))
        .and_then(|u| u.get("user"))
        .and_then(|u| u.get("token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid(format!("{} holds no bearer token", path.display())))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    upstream: Upstream,
    base: Uri,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // EMFILE and the like: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let refusing = lock(&shared.refuse_until).is_some_and(|t| Instant::now() < t);
        if refusing {
            shared
                .counters
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        }
        let mut gen_rx = shared.generation.subscribe();
        gen_rx.mark_unchanged();
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let upstream = upstream.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let serve = async {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    handle(shared.clone(), upstream.clone(), base.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            };
            // A restart (or the proxy's drop) ends the connection and its streams.
            tokio::select! {
                _ = serve => {}
                _ = gen_rx.changed() => {}
            }
        });
    }
}

fn status_response(code: u16, reason: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
    .to_string();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn full(s: String) -> ProxyBody {
    Full::new(Bytes::from(s))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// What kube-apiserver streams when a watch's resourceVersion is too old.
fn gone_watch() -> Response<ProxyBody> {
    let event = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "too old resource version (injected by the fault proxy)",
            "reason": "Expired",
            "code": 410,
        },
    });
    let mut resp = Response::new(full(format!("{event}\n")));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response body that fails after a deadline: the client sees the stream break
/// mid-way, as when a load balancer or kube-apiserver drops a watch.
struct CutBody {
    inner: ProxyBody,
    deadline: Pin<Box<tokio::time::Sleep>>,
    shared: Arc<Shared>,
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.shared
                .counters
                .watches_cut
                .fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err("watch cut by the fault proxy".into())));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }
}

fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

async fn handle(
    shared: Arc<Shared>,
    upstream: Upstream,
    base: Uri,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let arrived = Instant::now();
    let c = &shared.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    let identity = shared.identity_of(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let watch = is_watch(req.uri());
    let faults = lock(&shared.faults).clone();

    // Logged on arrival: hyper drops this future when the client goes away, and such a
    // request must stay in the log (with status 0).
    let logged = (method != Method::GET).then(|| {
        let mut writes = lock(&shared.writes);
        writes.push(WriteRecord {
            at: arrived,
            done: arrived,
            identity: identity.clone(),
            method: method.clone(),
            path: path.clone(),
            status: 0,
            injected: false,
        });
        Logged {
            shared: shared.clone(),
            index: writes.len() - 1,
        }
    });

    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if method == Method::PUT && path.ends_with("/approval") && !faults.approval_latency.is_zero() {
        tokio::time::sleep(faults.approval_latency).await;
    }

    if let Some(hold) = &faults.hold_approval
        && hold.take(&method, &path)
    {
        hold.hold().await;
    }

    let injected = decide(&shared, &faults, &identity, &method, &path, watch);
    let (resp, was_injected) = match injected {
        Some(resp) => (resp, true),
        None => {
            let routed = faults
                .routes
                .iter()
                .find(|(who, _)| *who == identity)
                .and_then(|(_, url)| url.parse::<Uri>().ok());
            let base = routed.as_ref().unwrap_or(&base);
            (
                forward(&shared, &upstream, base, req, watch, &faults).await,
                false,
            )
        }
    };
    if let Some(logged) = logged {
        logged.answered(resp.status().as_u16(), was_injected);
    }
    Ok(resp)
}

/// A logged write until it is answered; dropped unanswered (the client went away), it
/// records when that happened and keeps status 0.
struct Logged {
    shared: Arc<Shared>,
    index: usize,
}

impl Logged {
    fn answered(self, status: u16, injected: bool) {
        if let Some(w) = lock(&self.shared.writes).get_mut(self.index) {
            w.done = Instant::now();
            w.status = status;
            w.injected = injected;
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.shared.writes).get_mut(self.index)
            && w.status == 0
        {
            w.done = Instant::now();
        }
    }
}

/// The fault to answer with, if any, in order of precedence.
fn decide(
    shared: &Shared,
    faults: &Faults,
    identity: &str,
    method: &Method,
    path: &str,
    watch: bool,
) -> Option<Response<ProxyBody>> {
    let c = &shared.counters;
    for f in &faults.identity {
        if f.identity == identity
            && f.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&f.path_contains)
        {
            c.injected_identity.fetch_add(1, Ordering::Relaxed);
            return Some(status_response(
                f.status,
                "InternalError",
                "injected by the fault proxy for this identity",
            ));
        }
    }
    if watch && faults.gone_next_watches > 0 {
        let mut live = lock(&shared.faults);
        if live.gone_next_watches > 0 {
            live.gone_next_watches -= 1;
            c.injected_410_watches.fetch_add(1, Ordering::Relaxed);
            return Some(gone_watch());
        }
    }
    if *method == Method::PUT
        && path.ends_with("/approval")
        && shared.roll(faults.conflict_on_approval)
    {
        c.injected_409.fetch_add(1, Ordering::Relaxed);
        return Some(status_response(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your \
             changes to the latest version and try again (injected by the fault proxy)",
        ));
    }
    if faults
        .random_exempt
        .iter()
        .any(|p| path.contains(p.as_str()))
    {
        return None;
    }
    if shared.roll(faults.error_500) {
        c.injected_500.fetch_add(1, Ordering::Relaxed);
        return Some(status_response(
            500,
            "InternalError",
            "injected by the fault proxy",
        ));
    }
    if shared.roll(faults.error_429) {
        c.injected_429.fetch_add(1, Ordering::Relaxed);
        let mut resp = status_response(
            429,
            "TooManyRequests",
            "too many requests (injected by the fault proxy)",
        );
        if let Ok(v) = HeaderValue::from_str(&faults.retry_after_secs.to_string()) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return Some(resp);
    }
    None
}

async fn forward(
    shared: &Arc<Shared>,
    upstream: &Upstream,
    base: &Uri,
    req: Request<Incoming>,
    watch: bool,
    faults: &Faults,
) -> Response<ProxyBody> {
    let c = &shared.counters;
    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let target = match Uri::builder()
        .scheme("https")
        .authority(base.authority().map(|a| a.as_str()).unwrap_or("127.0.0.1"))
        .path_and_query(pq)
        .build()
    {
        Ok(u) => u,
        Err(e) => return status_response(400, "BadRequest", &format!("fault proxy: {e}")),
    };
    parts.uri = target;
    parts.headers.remove(http::header::HOST);
    parts.headers.remove(http::header::CONNECTION);
    match upstream.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            c.forwarded.fetch_add(1, Ordering::Relaxed);
            let (mut parts, body) = resp.into_parts();
            parts.headers.remove(http::header::CONNECTION);
            parts.headers.remove(http::header::TRANSFER_ENCODING);
            let body: ProxyBody = body.map_err(BoxError::from).boxed();
            let body = match faults.watch_cut_every {
                Some(after) if watch => BoxBody::new(CutBody {
                    inner: body,
                    deadline: Box::pin(tokio::time::sleep(after)),
                    shared: shared.clone(),
                }),
                _ => body,
            };
            Response::from_parts(parts, body)
        }
        Err(e) => {
            c.upstream_errors.fetch_add(1, Ordering::Relaxed);
            status_response(
                503,
                "ServiceUnavailable",
                &format!("fault proxy: kube-apiserver unreachable: {e}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn approval_paths_name_their_csr() {
        assert_eq!(
            approval_target(
                "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x/approval"
            ),
            Some("node-csr-x")
        );
        assert_eq!(
            approval_target("/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x"),
            None
        );
    }

    #[test]
    fn watch_query_is_recognised() {
        assert!(is_watch(&"/api?watch=true&x=1".parse().unwrap()));
        assert!(is_watch(&"/api?a=b&watch=1".parse().unwrap()));
        assert!(!is_watch(&"/api?watch=false".parse().unwrap()));
        assert!(!is_watch(&"/api".parse().unwrap()));
    }
}

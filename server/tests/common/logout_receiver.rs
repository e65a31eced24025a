//! A local HTTP or HTTPS endpoint that records the single logout requests a test server
//! posts to it, and responds as the test requests: accept, fail first, or hang. It
//! records other requests too, so an HTTPS receiver can also serve as a proxy callback.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Maximum wait for an expected request before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// The receiver's response policy.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 200 to every request.
    Accept,
    /// 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Records the request, then responds 200 only after [`LogoutReceiver::release`].
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct ReceivedPost {
    pub method: String,
    pub path: String,
    /// The query string, empty when the URL had none.
    pub query: String,
    pub content_type: String,
    /// The `logoutRequest` form field, when the body had exactly one.
    pub logout_request: Option<String>,
}

/// A running receiver on 127.0.0.1 with a port the OS chose.
pub struct LogoutReceiver {
    pub port: u16,
    scheme: &'static str,
    posts: mpsc::UnboundedReceiver<ReceivedPost>,
    responded: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The CA that signed an HTTPS receiver's certificate, for `outbound_ca_file`.
    pub ca_cert: Option<PathBuf>,
    _certs: Option<TempDir>,
}

impl LogoutReceiver {
    /// Starts a plain HTTP receiver.
    pub async fn http(behaviour: Behaviour) -> Self {
        Self::start(behaviour, None).await
    }

    /// Starts an HTTPS receiver with a new development CA and certificate.
    pub async fn https(behaviour: Behaviour) -> Self {
        let certs = tempfile::tempdir().expect("temp dir");
        let names = vec!["127.0.0.1".to_owned()];
        let report = cas_server::dev_certs::ensure_dev_certs(certs.path(), &names).expect("certs");
        let tls = cas_server::tls::load_server_config(&report.server_cert, &report.server_key)
            .expect("TLS config");

        let mut receiver = Self::start(behaviour, Some(TlsAcceptor::from(tls))).await;
        receiver.ca_cert = Some(report.ca_cert);
        receiver._certs = Some(certs);
        receiver
    }

    async fn start(behaviour: Behaviour, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (post_sender, posts) = mpsc::unbounded_channel();
        let (release, released) = watch::channel(false);
        let responded = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            behaviour,
            posts: post_sender,
            received: AtomicUsize::new(0),
            responded: Arc::clone(&responded),
            released,
        });

        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(accept_loop(listener, tls, state));
        Self {
            port,
            scheme,
            posts,
            responded,
            release,
            task,
            ca_cert: None,
            _certs: None,
        }
    }

    /// Returns a URL on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// Waits for the next request, failing the test after 30 s.
    pub async fn next_post(&mut self) -> ReceivedPost {
        tokio::time::timeout(WAIT, self.posts.recv())
            .await
            .unwrap_or_else(|_| panic!("no request on port {} within {WAIT:?}", self.port))
            .expect("receiver running")
    }

    /// Returns a request that has already arrived, if any.
    pub fn try_post(&mut self) -> Option<ReceivedPost> {
        self.posts.try_recv().ok()
    }

    /// Returns how many requests got their response so far.
    pub fn responded(&self) -> usize {
        self.responded.load(Ordering::SeqCst)
    }

    /// Lets a hanging receiver respond.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

impl Drop for LogoutReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    behaviour: Behaviour,
    posts: mpsc::UnboundedSender<ReceivedPost>,
    received: AtomicUsize,
    responded: Arc<AtomicUsize>,
    released: watch::Receiver<bool>,
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, request).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

async fn respond(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let logout_request = match fields.as_slice() {
        [(name, value)] if name == "logoutRequest" => Some(value.clone()),
        _ => None,
    };
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();

    let number = state.received.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = state.posts.send(ReceivedPost {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        content_type,
        logout_request,
    });

    let status = match state.behaviour {
        Behaviour::Accept => StatusCode::OK,
        Behaviour::FailFirst(failures) if number <= failures => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailFirst(_) => StatusCode::OK,
        Behaviour::Hang => {
            let mut released = state.released.clone();
            let _ = released.wait_for(|released| *released).await;
            StatusCode::OK
        }
    };
    state.responded.fetch_add(1, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

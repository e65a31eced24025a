//! The ceiling: a minimal hyper server that returns a fixed 200 to every request, over
//! the CAS server's own TLS settings, so a CAS figure divided by it shows the CAS cost.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::client::BenchError;

/// Serves the fixed response on `listen` until the process is stopped.
pub async fn serve(listen: SocketAddr, cert: &Path, key: &Path) -> Result<(), BenchError> {
    let config = cas_server::tls::load_server_config(cert, key)?;
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind(listen).await?;
    println!("ceiling server listening on {}", listener.local_addr()?);

    loop {
        let (stream, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(|_request: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

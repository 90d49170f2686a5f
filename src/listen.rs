//! The accept loop of our loopback HTTP listeners (the local credentials endpoint, the
//! browser login's redirect listener): a task per connection, HTTP/1.1, a request head of at
//! most 8 KiB (longer is refused with 431), sent within 10 s.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

pub type Reply = hyper::Response<Full<Bytes>>;

/// Serve `listener` with `answer` until the future is dropped (it never ends by itself).
/// `what` names the listener in the log.
pub async fn accept_loop<F, Fut>(
    listener: &tokio::net::TcpListener,
    what: &'static str,
    keep_alive: bool,
    answer: F,
) where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{what}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = answer(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                // the smallest bound hyper takes
                .max_buf_size(8192)
                .keep_alive(keep_alive)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                log::debug!("{what}: connection ended: {e}");
            }
        });
    }
}

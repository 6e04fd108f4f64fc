//! A bare hyper HTTP/1 server that reads each request's body and answers a fixed JSON body:
//! the ceiling the HTTP benches compare WaddleBot with. Shared by `benches/http_load.rs` and
//! `examples/stand_in.rs` (`#[path]`), which are separate targets of this package.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Serves `answer` to every request on `listener`, one task per connection, until the
/// listener fails.
pub(crate) async fn serve(listener: tokio::net::TcpListener, answer: &'static str) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: http::Request<hyper::body::Incoming>| async move {
                    // Read the body, as the bot's endpoints must.
                    let _ = request.into_body().collect().await;
                    let mut response =
                        http::Response::new(Full::new(Bytes::from_static(answer.as_bytes())));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

//! What the HTTP providers share: the client (timeouts, an extra CA, verification switch),
//! HTTP errors as [`AiError`]s, and a response body as a stream of lines.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use waddlebot::AiError;

/// How a provider's HTTP client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The longest a whole answer may take without streaming, and the longest silence while
    /// streaming.
    pub timeout: Duration,
    /// A PEM file with an extra CA to trust (a private Ollama behind its own certificate).
    pub extra_ca: Option<PathBuf>,
    /// Verify the server's certificate (turn off only for testing).
    pub verify_tls: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            extra_ca: None,
            verify_tls: true,
        }
    }
}

impl HttpSettings {
    /// The client these settings describe.
    pub fn client(&self) -> Result<reqwest::Client, AiError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(self.timeout))
            .read_timeout(self.timeout);
        if let Some(path) = &self.extra_ca {
            let pem = std::fs::read(path).map_err(|err| {
                AiError::NotConfigured(format!("cannot read the CA file {}: {err}", path.display()))
            })?;
            let not_pem = |why: String| {
                AiError::NotConfigured(format!(
                    "{} is not a PEM CA certificate: {why}",
                    path.display()
                ))
            };
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| not_pem(err.to_string()))?;
            if certificates.is_empty() {
                return Err(not_pem("no certificate in it".to_owned()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if !self.verify_tls {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder
            .build()
            .map_err(|err| AiError::NotConfigured(format!("cannot build the HTTP client: {err}")))
    }
}

/// A transport failure as an [`AiError`].
pub(crate) fn transport(err: &reqwest::Error, timeout: Duration) -> AiError {
    if err.is_timeout() {
        AiError::Timeout(timeout)
    } else {
        AiError::Unavailable(err.to_string())
    }
}

/// Sends `request`; a transport failure or a non-success status is the matching error.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, AiError> {
    let response = request
        .send()
        .await
        .map_err(|err| transport(&err, timeout))?;
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    Ok(response)
}

/// A GET answered with JSON (a model list), within `timeout`.
pub(crate) async fn get_json(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<serde_json::Value, AiError> {
    send(request.timeout(timeout), timeout)
        .await?
        .json()
        .await
        .map_err(|err| AiError::Unavailable(format!("{what}: {err}")))
}

/// A non-success answer as an [`AiError`]: 401/403 auth, 429 rate limited (with
/// `Retry-After`), other 4xx a bad request, 5xx unavailable; the message from the body's
/// `error` (a string for Ollama, `{message}` for OpenAI) when there is one.
pub(crate) async fn status_error(response: reqwest::Response) -> AiError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
    let body = response.text().await.unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| {
        let text: String = body.chars().take(200).collect();
        if text.trim().is_empty() {
            status.to_string()
        } else {
            text
        }
    });
    match status.as_u16() {
        401 | 403 => AiError::Auth(message),
        429 => AiError::RateLimited { retry_after },
        400..=499 => AiError::BadRequest(message),
        _ => AiError::Unavailable(format!("HTTP {status}: {message}")),
    }
}

/// The error text of an error body: `{"error": "…"}` (Ollama) or
/// `{"error": {"message": "…"}}` (OpenAI).
pub(crate) fn error_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    error
        .as_str()
        .or_else(|| error.get("message").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
}

/// Checks the answer is of the expected content type (`application/json`,
/// `text/event-stream`, `application/x-ndjson`); a proxy's HTML error page is not an answer.
pub(crate) fn expect_content_type(
    response: &reqwest::Response,
    expected: &[&str],
) -> Result<(), AiError> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if expected.iter().any(|e| content_type.starts_with(e)) {
        Ok(())
    } else {
        Err(AiError::Unavailable(format!(
            "expected {} but the provider sent '{content_type}'",
            expected.join(" or ")
        )))
    }
}

/// The body as lines (without `\n` or `\r\n`), however the network splits it; a last line
/// without a newline is still a line.
pub(crate) fn lines(
    response: reqwest::Response,
    timeout: Duration,
) -> impl Stream<Item = Result<String, AiError>> + Send {
    struct State<S> {
        bytes: S,
        buffer: Vec<u8>,
        done: bool,
    }
    let state = State {
        bytes: response.bytes_stream(),
        buffer: Vec::new(),
        done: false,
    };
    futures_util::stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(end) = state.buffer.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = state.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some((Ok(String::from_utf8_lossy(&line).into_owned()), state));
            }
            if state.done {
                if state.buffer.is_empty() {
                    return None;
                }
                let line = String::from_utf8_lossy(&std::mem::take(&mut state.buffer)).into_owned();
                return Some((Ok(line), state));
            }
            match state.bytes.next().await {
                Some(Ok(bytes)) => state.buffer.extend_from_slice(&bytes),
                Some(Err(err)) => {
                    state.done = true;
                    state.buffer.clear();
                    return Some((Err(transport(&err, timeout)), state));
                }
                None => state.done = true,
            }
        }
    })
}

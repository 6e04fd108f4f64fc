//! What every request goes through besides its handler: URI length, a deadline, CORS, the
//! admin API's per-client rate limit and security headers.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use waddlebot_router::limit::{Limit, MemoryLimiter, Verdict};

use crate::app::ResponseBody;

/// The HTTP limits and policies of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPolicy {
    /// How long a handler may take to start its answer (503 after).
    pub request_timeout: Duration,
    /// Admin API requests per client per minute; 0 turns the limit off.
    pub admin_rate_per_minute: u32,
    /// Failed authentications (a credential given and refused, 401) one address may cause per
    /// minute; past it, every request from there gets 429 until the minute is over, which
    /// bounds what guessing costs whatever credentials are tried. 0 turns it off.
    pub failed_auth_per_minute: u32,
    /// Origins browsers may call the API from (`https://dash.example`, or `*`); empty: none.
    pub cors_origins: Vec<String>,
    /// Longest request target (path and query), in bytes; longer gets 414.
    pub max_uri_bytes: usize,
    /// How long a new connection may stay silent before it is closed
    /// (`WADDLEBOT_FIRST_BYTE_TIMEOUT`, seconds).
    pub first_byte_timeout: Duration,
    /// How long a connection may move no byte before it is asked to close: an idle HTTP/1
    /// keep-alive or HTTP/2 connection (`WADDLEBOT_IDLE_TIMEOUT`, seconds).
    pub idle_timeout: Duration,
    /// The most connections open at once (`WADDLEBOT_MAX_CONNECTIONS`); past it new ones wait
    /// in the kernel's accept queue. Lowered at start to what the open-file limit allows.
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers name the client
    /// (`WADDLEBOT_TRUSTED_PROXIES`: addresses or CIDR ranges). From any other peer those
    /// headers are ignored, so a client cannot pick the address it is counted as.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            admin_rate_per_minute: 300,
            failed_auth_per_minute: 30,
            cors_origins: Vec::new(),
            max_uri_bytes: 8 * 1024,
            first_byte_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The admin API's limiter: one sliding minute per client, and the failed authentications
/// per address.
#[derive(Debug)]
pub(crate) struct AdminLimiter {
    limiter: MemoryLimiter,
    /// When the last failed authentication was counted (ms after `started`; 0: never), so
    /// the lock-out check every request makes is free while nobody has failed for a minute.
    last_failure: AtomicU64,
    started: Instant,
}

impl Default for AdminLimiter {
    fn default() -> Self {
        Self {
            limiter: MemoryLimiter::default(),
            last_failure: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

/// The window of the failed-authentication limit.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// A client's standing after a request was counted.
pub(crate) struct Standing {
    limit: u32,
    remaining: u32,
    reset: Duration,
    /// Set when the request was refused.
    retry_after: Option<Duration>,
}

fn failure_limit(peer: Option<std::net::IpAddr>, per_minute: u32) -> Limit {
    Limit {
        key: format!(
            "failed:{}",
            peer.map_or_else(|| "local".to_owned(), |ip| ip.to_string())
        ),
        max: per_minute,
        window: FAILURE_WINDOW,
    }
}

impl AdminLimiter {
    /// How long `peer` must wait, when it has used up its `per_minute` failed authentications.
    pub(crate) fn locked_out(
        &self,
        peer: Option<std::net::IpAddr>,
        per_minute: u32,
    ) -> Option<Duration> {
        let last = self.last_failure.load(Ordering::Relaxed);
        if per_minute == 0 || last == 0 || self.millis() >= last + FAILURE_WINDOW.as_millis() as u64
        {
            return None;
        }
        let (remaining, reset) = self.limiter.remaining(&failure_limit(peer, per_minute));
        (remaining == 0).then_some(reset.max(Duration::from_secs(1)))
    }

    /// Counts a failed authentication from `peer`.
    pub(crate) fn record_failure(&self, peer: Option<std::net::IpAddr>, per_minute: u32) {
        if per_minute > 0 {
            self.limiter.record(&[failure_limit(peer, per_minute)]);
            self.last_failure
                .store(self.millis().max(1), Ordering::Relaxed);
        }
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts a request of `client` against `per_minute`.
    pub(crate) fn check(&self, client: &str, per_minute: u32) -> Standing {
        let limit = Limit {
            key: client.to_owned(),
            max: per_minute,
            window: Duration::from_secs(60),
        };
        let retry_after = match self.limiter.acquire_now(std::slice::from_ref(&limit)) {
            Verdict::Allowed => None,
            Verdict::Refused { retry_after, .. } => Some(retry_after),
        };
        let (remaining, reset) = self.limiter.remaining(&limit);
        Standing {
            limit: per_minute,
            remaining,
            reset,
            retry_after,
        }
    }
}

impl Standing {
    /// Whether the request must be refused with 429.
    pub(crate) fn refused(&self) -> Option<Duration> {
        self.retry_after
    }

    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds), and `Retry-After` on a refusal.
    pub(crate) fn annotate(&self, headers: &mut HeaderMap) {
        let secs = |d: Duration| d.as_millis().div_ceil(1000).to_string();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set("x-ratelimit-limit", self.limit.to_string());
        set("x-ratelimit-remaining", self.remaining.to_string());
        set("x-ratelimit-reset", secs(self.reset));
        if let Some(wait) = self.retry_after {
            set(
                "retry-after",
                wait.as_millis().div_ceil(1000).max(1).to_string(),
            );
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` (else `Forwarded: for=`) that is not itself a trusted proxy.
/// Addresses a client wrote further left are never believed, since any client can send them.
pub(crate) fn client_address(
    policy: &HttpPolicy,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?;
    let trusted = |ip: &IpAddr| policy.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded_for: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| parse_node(part.trim()))
        .collect();
    let chain = if forwarded_for.is_empty() {
        headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect()
    } else {
        forwarded_for
    };
    Some(
        chain
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer),
    )
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711`
/// or `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// The credential a request presents: a bearer token or API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// None at all.
    Nothing,
    /// `Authorization: Bearer <it>` or `X-API-Key: <it>` (both, when they agree).
    Credential(&'a str),
    /// An `Authorization` header of another scheme (`Basic ...`): refused where a credential
    /// is needed.
    OtherScheme,
}

/// Reads the request's credential. Two different credentials (two `Authorization` headers,
/// or `Authorization` and `X-API-Key` that disagree) are refused: which one counts must never
/// depend on the reader.
pub(crate) fn presented(headers: &HeaderMap) -> Result<Presented<'_>, String> {
    let two = || "the request carries two different credentials; send one".to_owned();
    let single = |name: &str| -> Result<Option<&str>, String> {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(two());
        }
        first
            .map(|v| {
                v.to_str()
                    .map(str::trim)
                    .map_err(|_| "the credential header is not readable text".to_owned())
            })
            .transpose()
    };
    let authorization = single(header::AUTHORIZATION.as_str())?.map(|value| {
        // The scheme is case-insensitive (RFC 9110 §11.1); spaces around the token ignored.
        match value.split_once(char::is_whitespace) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Presented::Credential(token.trim())
            }
            _ => Presented::OtherScheme,
        }
    });
    let api_key = single("x-api-key")?.map(Presented::Credential);
    match (authorization, api_key) {
        (None, None) => Ok(Presented::Nothing),
        (Some(one), None) | (None, Some(one)) => Ok(one),
        (Some(a), Some(b)) if a == b => Ok(a),
        _ => Err(two()),
    }
}

/// A path as it may be logged: the secret segments (overlay keys, one-time login tokens)
/// replaced by `***`. Query strings (OAuth states and codes) are never logged.
pub(crate) fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    // The segment after each of these is a secret.
    for prefix in ["/overlay/", "/portal/login/"] {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            let tail = rest.find('/').map_or("", |at| &rest[at..]);
            return std::borrow::Cow::Owned(format!("{prefix}***{tail}"));
        }
    }
    std::borrow::Cow::Borrowed(path)
}

/// The request's `Origin` when the policy lets browsers call from it.
pub(crate) fn allowed_origin<'a>(
    policy: &HttpPolicy,
    headers: &'a HeaderMap,
) -> Option<&'a HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    policy
        .cors_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(text))
        .then_some(origin)
}

/// Whether a request is a CORS preflight.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from an allowed origin for a path taking `methods`.
pub(crate) fn preflight(origin: &HeaderValue, methods: &[&str]) -> Response<ResponseBody> {
    let mut response = Response::new(crate::app::full(""));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if let Ok(methods) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-api-key, x-request-id"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// CORS headers on an answer to an allowed origin.
pub(crate) fn allow_origin(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset",
        ),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Headers every answer gets, and those HTML pages get: no MIME sniffing anywhere; on pages a
/// strict content policy, no framing by other sites and no referrer (overlay URLs carry keys).
pub(crate) fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' https: data:; media-src 'self' https:; \
                 style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
                 frame-src https://clips.twitch.tv https://www.youtube-nocookie.com; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_get_a_content_policy_and_every_answer_nosniff() {
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        secure(&mut json);
        assert_eq!(json[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!json.contains_key(header::CONTENT_SECURITY_POLICY));
        let mut page = HeaderMap::new();
        page.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure(&mut page);
        assert!(
            page[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("text")
                .contains("script-src 'self'")
        );
        assert_eq!(page[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page[header::REFERRER_POLICY], "no-referrer");
    }

    #[test]
    fn an_address_that_keeps_failing_to_authenticate_is_locked_out_for_the_minute() {
        let limiter = AdminLimiter::default();
        let peer = Some(std::net::IpAddr::from([203, 0, 113, 7]));
        for _ in 0..30 {
            assert!(limiter.locked_out(peer, 30).is_none());
            limiter.record_failure(peer, 30);
        }
        assert!(limiter.locked_out(peer, 0).is_none(), "0 turns it off");
        let wait = limiter.locked_out(peer, 30).expect("locked out");
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(
            limiter
                .locked_out(Some(std::net::IpAddr::from([203, 0, 113, 8])), 30)
                .is_none(),
            "other addresses are not"
        );
    }

    #[test]
    fn secret_path_segments_are_not_logged() {
        assert_eq!(loggable_path("/overlay/abc123"), "/overlay/***");
        assert_eq!(
            loggable_path("/overlay/abc123/events"),
            "/overlay/***/events"
        );
        assert_eq!(loggable_path("/portal/login/tok"), "/portal/login/***");
        assert_eq!(loggable_path("/portal/login"), "/portal/login");
        assert_eq!(loggable_path("/portal/1/commands"), "/portal/1/commands");
        assert_eq!(
            loggable_path("/api/v1/communities/1"),
            "/api/v1/communities/1"
        );
    }

    #[test]
    fn a_client_gets_its_limit_then_429_with_the_wait() {
        let limiter = AdminLimiter::default();
        for left in (0..3).rev() {
            let standing = limiter.check("cred:a", 3);
            assert!(standing.refused().is_none());
            assert_eq!(standing.remaining, left);
        }
        let refused = limiter.check("cred:a", 3);
        let wait = refused.refused().expect("the fourth is refused");
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        let mut headers = HeaderMap::new();
        refused.annotate(&mut headers);
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["retry-after"], "60");
        assert!(
            limiter.check("cred:b", 3).refused().is_none(),
            "clients are counted apart"
        );
    }
}

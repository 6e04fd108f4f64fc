//! The server's web pages, served by the binary itself: plain HTML rendered with maud (which
//! escapes every value), a little CSS and JavaScript embedded in the binary under `/assets/`,
//! and live updates over server-sent events.
//!
//! - `/overlay/<key>` and `/overlay/<key>/<source>`: OBS browser sources ([`overlay`]);
//! - `/c/<community>/commands`: a community's public command page ([`commands_page`]);
//! - `/portal/...`: the community portal ([`portal`]).
//!
//! Pages are not part of the JSON API (nor of `/openapi.json`); they answer HTML, including
//! their 404 and 405 pages, and get the security headers every HTML answer gets (a content
//! security policy that allows only the server's own scripts).

mod commands_page;
mod overlay;
mod portal;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Body;
use maud::{DOCTYPE, Markup, html};

use crate::app::{App, BoxError, ResponseBody, full, match_pattern};

pub use overlay::OVERLAY_STREAMS;
pub use portal::{LINK_TTL, create_login_link};

/// The page routes, for metric labels (`route`): a path outside them is labelled `other`.
const PAGE_ROUTES: &[&str] = &[
    "/overlay/{key}",
    "/overlay/{key}/events",
    "/overlay/{key}/{source}",
    "/c/{community}/commands",
    "/portal",
    "/portal/login",
    "/portal/login/{token}",
    "/portal/logout",
    "/portal/{id}",
    "/portal/{id}/{page}",
    "/assets/{file}",
    "/oauth/spotify/callback",
];

/// Whether a path belongs to the web pages.
pub(crate) fn is_page(path: &str) -> bool {
    path == "/portal"
        || path == "/oauth/spotify/callback"
        || ["/overlay/", "/c/", "/portal/", "/assets/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// The metric label of a page path.
pub(crate) fn route_label(path: &str) -> Option<&'static str> {
    PAGE_ROUTES
        .iter()
        .find(|pattern| match_pattern(pattern, path).is_some())
        .copied()
}

/// An HTML answer. Pages hold per-user or live data, so nothing is cached.
pub(crate) fn page(status: StatusCode, markup: Markup) -> Response<ResponseBody> {
    let mut response = Response::new(full(markup.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A complete document around `body`, with the portal's stylesheet.
pub(crate) fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · WaddleBot" }
                link rel="stylesheet" href="/assets/site.css";
                script src="/assets/site.js" defer {}
            }
            body { (body) }
        }
    }
}

/// The same page for anything not found: it never tells which communities or keys exist.
pub(crate) fn not_found() -> Response<ResponseBody> {
    page(
        StatusCode::NOT_FOUND,
        document(
            "Not found",
            html! {
                main class="narrow" {
                    h1 { "Not found" }
                    p { "There is nothing here. Check the address you were given." }
                }
            },
        ),
    )
}

/// A page for a wrong method.
fn method_not_allowed(allowed: &'static str) -> Response<ResponseBody> {
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        document(
            "Method not allowed",
            html! { main class="narrow" { h1 { "Method not allowed" } } },
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// A 303 to `location` (after a form, or to the login page).
pub(crate) fn redirect(location: &str) -> Response<ResponseBody> {
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The embedded static files: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "overlay.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/overlay.js"),
    ),
    (
        "overlay.css",
        "text/css; charset=utf-8",
        include_str!("assets/overlay.css"),
    ),
    (
        "site.css",
        "text/css; charset=utf-8",
        include_str!("assets/site.css"),
    ),
    (
        "site.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/site.js"),
    ),
];

fn asset(name: &str) -> Response<ResponseBody> {
    let Some((_, content_type, content)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        return not_found();
    };
    let mut response = Response::new(full(*content));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Percent-decodes one path segment (community names may hold `:` or spaces).
pub(crate) fn decode_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

impl App {
    /// `GET /oauth/spotify/callback?code=…&state=…`: Spotify sends the broadcaster back here
    /// after `!spotify connect`.
    async fn spotify_callback(&self, query: &str) -> Response<ResponseBody> {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let message = |status: StatusCode, title: &str, text: String| {
            page(
                status,
                document(
                    title,
                    html! { main class="narrow" { h1 { (title) } p { (text) } } },
                ),
            )
        };
        let Some(spotify) = &self.state().spotify else {
            return not_found();
        };
        if let Some(error) = param("error") {
            return message(
                StatusCode::BAD_REQUEST,
                "Spotify not linked",
                format!("Spotify said: {error}. Run spotify connect again to retry."),
            );
        }
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return message(
                StatusCode::BAD_REQUEST,
                "Spotify not linked",
                "This address is for Spotify to send you back to.".to_owned(),
            );
        };
        let store = self.state().router.store();
        let now = self.state().router.clock().now_millis();
        match spotify.complete(store.as_ref(), state, code, now).await {
            Ok(community) => {
                tracing::info!(
                    category = "audit",
                    community = community.0,
                    "Spotify linked"
                );
                message(
                    StatusCode::OK,
                    "Spotify linked",
                    "The bot can see and control your Spotify player now. You can close this page."
                        .to_owned(),
                )
            }
            Err(reason) => message(StatusCode::BAD_REQUEST, "Spotify not linked", reason),
        }
    }

    /// Answers a page request (a path for which [`is_page`] holds).
    pub(crate) async fn page<B>(&self, request: Request<B>, path: &str) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = request.method().clone();
        match segments.as_slice() {
            ["assets", file] if method == Method::GET || method == Method::HEAD => asset(file),
            ["overlay", key] if method == Method::GET => {
                self.overlay_page(request.headers(), key, None).await
            }
            ["overlay", key, "events"] if method == Method::GET => {
                self.overlay_events(request.headers(), key).await
            }
            ["overlay", key, source] if method == Method::GET => {
                self.overlay_page(request.headers(), key, Some(source))
                    .await
            }
            ["c", community, "commands"] if method == Method::GET => {
                self.commands_page(community).await
            }
            ["portal", ..] => self.portal(request, &segments[1..]).await,
            ["oauth", "spotify", "callback"] if method == Method::GET => {
                self.spotify_callback(request.uri().query().unwrap_or(""))
                    .await
            }
            ["assets", _] | ["overlay", ..] | ["c", _, "commands"] => method_not_allowed("GET"),
            _ => not_found(),
        }
    }
}

//! The community portal (`/portal`): a community's owner, admins and moderators manage it in
//! the browser.
//!
//! - **Sign-in** with an API key (or admin token), or with a one-time link that
//!   `waddlebot portal link <community> <user>` prints (valid [`LINK_TTL`], single use; opening
//!   it shows a button, so link previews cannot use it up). A session is a random token in an
//!   `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind TLS), kept hashed in the store for
//!   [`SESSION_TTL`]; signing out deletes it.
//! - **CSRF**: every form carries the session's token (the sign-in forms a token bound to a
//!   cookie of their own), compared in constant time.
//! - **Authorization**: every page and every form goes through the admin API's own route
//!   table, checks and handlers with the session's principal ([`App::api`]), so the portal can
//!   do exactly what the same credential could do over `/api/v1`, audited the same way. The
//!   menu only lists the pages the role may open; a moderator gets 403 on an owner's page.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use waddlebot::clock::unix_millis;
use waddlebot::{CommunityId, Store, StoreError};

use super::commands_page::unavailable;
use super::{document, not_found, page, redirect};
use crate::app::{App, BoxError, Failure, ResponseBody};
use crate::auth::{Authenticator, Principal, Role, random_hex, same_secret, sha256_hex};

/// How long a login link works.
pub const LINK_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long a portal session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const SESSION_COOKIE: &str = "wb_portal";
const LOGIN_COOKIE: &str = "wb_login";
const LINKS: &str = "portal_links";
const SESSIONS: &str = "portal_sessions";

/// The portal's pages: path segment, menu label, the admin API route it reads.
const PAGES: &[(&str, &str, &str)] = &[
    ("", "Dashboard", "/api/v1/communities/{id}"),
    ("commands", "Commands", "/api/v1/communities/{id}/commands"),
    ("aliases", "Aliases", "/api/v1/communities/{id}/aliases"),
    ("modules", "Modules", "/api/v1/communities/{id}/modules"),
    ("roles", "Roles", "/api/v1/communities/{id}/grants"),
    (
        "reputation",
        "Reputation",
        "/api/v1/communities/{id}/reputation",
    ),
    ("overlay", "Overlay", "/api/v1/communities/{id}/overlay"),
    ("audit", "Audit log", "/api/v1/communities/{id}/audit"),
];

/// What a login link or a session stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    subject: String,
    role: Role,
    community: Option<i64>,
    expires_ms: u64,
    /// The session's CSRF token (sessions only).
    #[serde(default)]
    csrf: String,
    /// The API key a session was signed in with: the session lasts only while the key is
    /// neither revoked nor expired (checked on every request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    /// When the credential a session was signed in with expires (a token's `exp`); the session
    /// ends then, if not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_expires_ms: Option<u64>,
}

impl Grant {
    fn principal(&self) -> Principal {
        Principal {
            subject: self.subject.clone(),
            role: self.role,
            community: self.community.map(CommunityId),
        }
    }
}

fn random_token() -> Result<String, StoreError> {
    random_hex(32).map_err(|err| StoreError::Backend(err.into()))
}

/// Makes a one-time login link token for `subject` with `role` in `community` (valid [`LINK_TTL`]).
/// The URL to give out is `<server>/portal/login/<token>`.
pub async fn create_login_link(
    store: &dyn Store,
    community: CommunityId,
    subject: &str,
    role: Role,
) -> Result<String, StoreError> {
    let token = random_token()?;
    let grant = Grant {
        subject: subject.to_owned(),
        role,
        community: Some(community.0),
        expires_ms: unix_millis(SystemTime::now() + LINK_TTL),
        csrf: String::new(),
        key_id: None,
        credential_expires_ms: None,
    };
    store
        .put_document(
            LINKS,
            &sha256_hex(&token),
            &serde_json::to_value(&grant).unwrap_or_default(),
            waddlebot::store::Expect::Absent,
        )
        .await?;
    Ok(token)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Behind TLS (directly or through a proxy that says so), cookies are `Secure`.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(
    response: &mut Response<ResponseBody>,
    name: &str,
    value: String,
    max_age: Duration,
    secure: bool,
) {
    let cookie = Cookie::build((name.to_owned(), value))
        .path("/portal")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A signed-in visitor.
struct Visitor {
    grant: Grant,
    token_digest: String,
}

/// A submitted form.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

/// A page's frame: menu, sign-out, notices.
struct Frame<'a> {
    who: &'a Principal,
    community: CommunityId,
    current: &'a str,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
}

impl Frame<'_> {
    /// Where the forms of `section` post.
    fn action(&self, section: &str) -> String {
        format!("/portal/{}/{section}", self.community.0)
    }

    /// Whether the visitor may call the admin API route `pattern` with `method` here.
    fn may(&self, method: &Method, pattern: &str) -> bool {
        App::may(self.who, method, pattern, self.community)
    }
}

impl App {
    /// An admin API call made with `who`'s rights: the same route table, checks, handlers and
    /// audit as over HTTP. Answers the envelope's `data`, or the failure.
    async fn api(
        &self,
        who: &Principal,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let Some((pattern, need, params)) = crate::app::find_route(&method, path) else {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no route for {path}"),
            ));
        };
        let community = params
            .iter()
            .find(|(name, _)| *name == "id")
            .and_then(|(_, id)| id.parse().ok())
            .map(CommunityId);
        Authenticator::authorize(Some(who), need, community)
            .map_err(|err| Failure(StatusCode::FORBIDDEN, err.to_string()))?;
        let uri = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let body = body.map_or_else(Bytes::new, |value| Bytes::from(value.to_string()));
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|err| Failure(StatusCode::BAD_REQUEST, err.to_string()))?;
        let response = self.admin(request, pattern, &params, Some(who)).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let mut answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer["data"].take())
        } else {
            let message = answer["message"]
                .as_str()
                .unwrap_or("the request failed")
                .to_owned();
            Err(Failure(status, message))
        }
    }

    /// Whether `who` may call the admin API route `pattern` with `method` in `community`.
    fn may(who: &Principal, method: &Method, pattern: &str, community: CommunityId) -> bool {
        crate::app::ROUTES
            .iter()
            .find(|(p, m, _)| *p == pattern && m == method)
            .is_some_and(|(_, _, need)| {
                Authenticator::authorize(Some(who), *need, Some(community)).is_ok()
            })
    }

    /// The visitor behind the request's session cookie, if the session is live.
    async fn visitor(&self, headers: &HeaderMap) -> Result<Option<Visitor>, StoreError> {
        let Some(token) = cookie_value(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let key = sha256_hex(&token);
        let store = self.state().router.store();
        let Some(document) = store.get_document(SESSIONS, &key).await? else {
            return Ok(None);
        };
        let Ok(grant) = serde_json::from_value::<Grant>(document.value) else {
            return Ok(None);
        };
        if grant.expires_ms <= unix_millis(SystemTime::now())
            || !self.credential_holds(&grant).await?
        {
            store.delete_document(SESSIONS, &key).await?;
            return Ok(None);
        }
        Ok(Some(Visitor {
            grant,
            token_digest: key,
        }))
    }

    /// Whether the API key a session was made with is still valid (revoked or expired keys end
    /// their sessions at once). Sessions from tokens end at the token's expiry instead, kept in
    /// `expires_ms`; sessions from login links have no credential behind them.
    async fn credential_holds(&self, grant: &Grant) -> Result<bool, StoreError> {
        let Some(id) = &grant.key_id else {
            return Ok(true);
        };
        let now = SystemTime::now();
        Ok(self
            .state()
            .router
            .store()
            .api_key(id)
            .await?
            .is_some_and(|key| {
                key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now)
            }))
    }

    /// Starts a session for `grant` and sends the browser to its community.
    async fn sign_in(
        &self,
        mut grant: Grant,
        headers: &HeaderMap,
    ) -> Result<Response<ResponseBody>, StoreError> {
        let token = random_token()?;
        grant.csrf = random_token()?;
        // A session never outlives the credential it was made with.
        grant.expires_ms = unix_millis(SystemTime::now() + SESSION_TTL)
            .min(grant.credential_expires_ms.unwrap_or(u64::MAX));
        let lasts = Duration::from_millis(
            grant
                .expires_ms
                .saturating_sub(unix_millis(SystemTime::now())),
        );
        self.state()
            .router
            .store()
            .put_document(
                SESSIONS,
                &sha256_hex(&token),
                &serde_json::to_value(&grant).unwrap_or_default(),
                waddlebot::store::Expect::Absent,
            )
            .await?;
        tracing::info!(category = "auth", subject = %grant.subject, role = %grant.role, community = grant.community, "portal sign-in");
        let target = grant
            .community
            .map_or_else(|| "/portal".to_owned(), |id| format!("/portal/{id}"));
        let mut response = redirect(&target);
        set_cookie(
            &mut response,
            SESSION_COOKIE,
            token,
            lasts,
            behind_tls(headers),
        );
        set_cookie(
            &mut response,
            LOGIN_COOKIE,
            String::new(),
            Duration::ZERO,
            behind_tls(headers),
        );
        Ok(response)
    }

    /// Reads a form body (`application/x-www-form-urlencoded`, within the body limit).
    async fn form<B>(&self, request: Request<B>) -> Result<Form, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let form_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(Failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the form as application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let body = self.read_body(request).await?;
        Ok(Form(
            url::form_urlencoded::parse(&body).into_owned().collect(),
        ))
    }

    /// Everything under `/portal` (`rest` are the segments after it).
    pub(super) async fn portal<B>(
        &self,
        request: Request<B>,
        rest: &[&str],
    ) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let method = request.method().clone();
        match (rest, &method) {
            (["login"], &Method::GET) => login_page(request.headers(), None, StatusCode::OK),
            (["login"], &Method::POST) => self.login_with_key(request).await,
            (["login", token], &Method::GET) => self.link_page(request.headers(), token).await,
            (["login", token], &Method::POST) => {
                let token = (*token).to_owned();
                self.login_with_link(request, &token).await
            }
            _ => {
                let visitor = match self.visitor(request.headers()).await {
                    Ok(Some(visitor)) => visitor,
                    Ok(None) if method == Method::GET => return redirect("/portal/login"),
                    Ok(None) => {
                        return message_page(
                            StatusCode::UNAUTHORIZED,
                            "Signed out",
                            "Your session has ended. Sign in again.",
                        );
                    }
                    Err(err) => return unavailable(&err),
                };
                self.signed_in(request, rest, visitor).await
            }
        }
    }

    async fn signed_in<B>(
        &self,
        request: Request<B>,
        rest: &[&str],
        visitor: Visitor,
    ) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let method = request.method().clone();
        let who = visitor.grant.principal();
        if method == Method::POST {
            let secure = behind_tls(request.headers());
            let form = match self.form(request).await {
                Ok(form) => form,
                Err(Failure(status, message)) => return message_page(status, "Refused", &message),
            };
            if !same_secret(form.get("csrf"), &visitor.grant.csrf) {
                tracing::warn!(category = "auth", subject = %who.subject, "portal form without a valid CSRF token");
                return message_page(
                    StatusCode::FORBIDDEN,
                    "Refused",
                    "This form has expired. Go back, reload the page and try again.",
                );
            }
            if rest == ["logout"] {
                if let Err(err) = self
                    .state()
                    .router
                    .store()
                    .delete_document(SESSIONS, &visitor.token_digest)
                    .await
                {
                    return unavailable(&err);
                }
                let mut response = redirect("/portal/login");
                set_cookie(
                    &mut response,
                    SESSION_COOKIE,
                    String::new(),
                    Duration::ZERO,
                    secure,
                );
                return response;
            }
            return match rest {
                [id, section] => match id.parse::<i64>() {
                    Ok(id) => self.submit(&visitor, CommunityId(id), section, &form).await,
                    Err(_) => not_found(),
                },
                _ => not_found(),
            };
        }
        if method != Method::GET {
            return message_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "Use the forms on the pages.",
            );
        }
        let notice = request
            .uri()
            .query()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "done"))
            .and_then(|(_, code)| notice_text(&code));
        match rest {
            [] => match who.community {
                Some(id) => redirect(&format!("/portal/{}", id.0)),
                None => self.communities_page(&visitor).await,
            },
            [id] | [id, ""] => match id.parse::<i64>() {
                Ok(id) => {
                    self.section(&visitor, CommunityId(id), "", notice, None)
                        .await
                }
                Err(_) => not_found(),
            },
            [id, section] => match id.parse::<i64>() {
                Ok(id) => {
                    self.section(&visitor, CommunityId(id), section, notice, None)
                        .await
                }
                Err(_) => not_found(),
            },
            _ => not_found(),
        }
    }

    /// `POST /portal/login`: an API key (or token) pasted into the form.
    async fn login_with_key<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let headers = request.headers().clone();
        let form = match self.form(request).await {
            Ok(form) => form,
            Err(Failure(status, message)) => return login_page(&headers, Some(&message), status),
        };
        if !login_csrf_ok(&headers, &form) {
            return login_page(
                &headers,
                Some("The sign-in form expired; try again."),
                StatusCode::FORBIDDEN,
            );
        }
        let key = form.get("key").trim();
        let fallback;
        let auth = match &self.state().auth {
            Some(auth) => auth,
            None => {
                // `serve --dev`: the API is open, but the portal still needs to know who is
                // signing in, so keys are checked all the same.
                fallback = match Authenticator::new(
                    std::sync::Arc::clone(self.state().router.store()),
                    None,
                ) {
                    Ok(auth) => auth,
                    Err(err) => return unavailable(&err),
                };
                &fallback
            }
        };
        let checked = match auth.check_credential(key).await {
            Ok(checked) if checked.principal.role != Role::Collector => checked,
            Ok(_)
            | Err(
                crate::auth::AuthError::Unauthenticated(_) | crate::auth::AuthError::Forbidden(_),
            ) => {
                self.record_failed_sign_in();
                tracing::info!(category = "auth", result = 401, "portal sign-in refused");
                return login_page(
                    &headers,
                    Some("That key is not valid, has expired, or cannot sign in to the portal."),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(err) => return unavailable(&err),
        };
        let principal = checked.principal;
        let grant = Grant {
            subject: principal.subject,
            role: principal.role,
            community: principal.community.map(|c| c.0),
            expires_ms: 0,
            csrf: String::new(),
            key_id: checked.key_id,
            credential_expires_ms: checked.expires_at.map(unix_millis),
        };
        self.sign_in(grant, &headers)
            .await
            .unwrap_or_else(|err| unavailable(&err))
    }

    /// `GET /portal/login/<token>`: what the link is for, and a button to use it.
    async fn link_page(&self, headers: &HeaderMap, token: &str) -> Response<ResponseBody> {
        let store = self.state().router.store();
        let grant = match store.get_document(LINKS, &sha256_hex(token)).await {
            Ok(Some(document)) => serde_json::from_value::<Grant>(document.value).ok(),
            Ok(None) => None,
            Err(err) => return unavailable(&err),
        };
        let Some(grant) = grant.filter(|g| g.expires_ms > unix_millis(SystemTime::now())) else {
            return message_page(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "This sign-in link has been used or has expired. Ask for a new one.",
            );
        };
        let community = match grant.community {
            Some(id) => store
                .community(CommunityId(id))
                .await
                .ok()
                .flatten()
                .map_or_else(|| format!("community {id}"), |c| c.name),
            None => "every community".to_owned(),
        };
        let (csrf, fresh) = login_csrf(headers);
        let markup = document(
            "Sign in",
            html! {
                main class="narrow" {
                    h1 { "Sign in to WaddleBot" }
                    p { "This link signs you in as " strong { (grant.subject) } " (" (grant.role) ") to " strong { (community) } ". It works once." }
                    form class="stack" method="post" action=(format!("/portal/login/{token}")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Sign in" }
                    }
                }
            },
        );
        with_login_cookie(page(StatusCode::OK, markup), fresh, headers)
    }

    /// `POST /portal/login/<token>`: uses the link up (once) and signs in.
    async fn login_with_link<B>(&self, request: Request<B>, token: &str) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let headers = request.headers().clone();
        let form = match self.form(request).await {
            Ok(form) => form,
            Err(Failure(status, message)) => return message_page(status, "Refused", &message),
        };
        if !login_csrf_ok(&headers, &form) {
            return message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "The sign-in form expired; open the link again.",
            );
        }
        let store = self.state().router.store();
        let key = sha256_hex(token);
        let grant = match store.get_document(LINKS, &key).await {
            Ok(found) => found.and_then(|d| serde_json::from_value::<Grant>(d.value).ok()),
            Err(err) => return unavailable(&err),
        };
        // Whoever deletes the link uses it: two clicks cannot both sign in.
        let used = match store.delete_document(LINKS, &key).await {
            Ok(deleted) => deleted,
            Err(err) => return unavailable(&err),
        };
        match grant {
            Some(grant) if used && grant.expires_ms > unix_millis(SystemTime::now()) => self
                .sign_in(grant, &headers)
                .await
                .unwrap_or_else(|err| unavailable(&err)),
            _ => {
                self.record_failed_sign_in();
                message_page(
                    StatusCode::NOT_FOUND,
                    "Link not valid",
                    "This sign-in link has been used or has expired. Ask for a new one.",
                )
            }
        }
    }

    fn record_failed_sign_in(&self) {
        self.state()
            .admin_limiter
            .record_failure(self.peer(), self.state().http.failed_auth_per_minute);
    }

    /// `/portal` for a bot-wide admin: the communities.
    async fn communities_page(&self, visitor: &Visitor) -> Response<ResponseBody> {
        let who = visitor.grant.principal();
        let list = match self
            .api(&who, Method::GET, "/api/v1/communities", "limit=100", None)
            .await
        {
            Ok(list) => list,
            Err(Failure(status, message)) => return message_page(status, "Refused", &message),
        };
        let markup = document(
            "Communities",
            html! {
                main {
                    h1 { "Communities" }
                    ul {
                        @for community in list["items"].as_array().into_iter().flatten() {
                            li { a href=(format!("/portal/{}", community["id"])) { (text(&community["name"])) } }
                        }
                    }
                    (logout_form(&visitor.grant.csrf))
                }
            },
        );
        page(StatusCode::OK, markup)
    }

    /// A portal page of one community.
    async fn section(
        &self,
        visitor: &Visitor,
        community: CommunityId,
        section: &str,
        notice: Option<String>,
        error: Option<(StatusCode, String)>,
    ) -> Response<ResponseBody> {
        let who = visitor.grant.principal();
        let Some((_, label, route)) = PAGES.iter().find(|(name, _, _)| *name == section) else {
            return not_found();
        };
        let base = format!("/api/v1/communities/{}", community.0);
        let path = route.replace("/api/v1/communities/{id}", &base);
        let query = if ["audit", "commands", "modules", "reputation"].contains(&section) {
            "limit=100"
        } else {
            ""
        };
        let data = match self.api(&who, Method::GET, &path, query, None).await {
            Ok(data) => data,
            Err(Failure(StatusCode::FORBIDDEN, _)) => {
                return message_page(
                    StatusCode::FORBIDDEN,
                    "Not for your role",
                    &format!("A {} cannot open this page.", who.role),
                );
            }
            Err(Failure(StatusCode::NOT_FOUND, _)) => return not_found(),
            Err(Failure(status, message)) => return message_page(status, "Unavailable", &message),
        };
        let (status, error) = match error {
            Some((status, message)) => (status, Some(message)),
            None => (StatusCode::OK, None),
        };
        let frame = Frame {
            who: &who,
            community,
            current: section,
            csrf: &visitor.grant.csrf,
            notice,
            error,
        };
        let content = match section {
            "" => self.dashboard(&frame, &data).await,
            "commands" => commands_section(&frame, &data),
            "aliases" => aliases_section(&frame, &data),
            "modules" => modules_section(&frame, &data),
            "roles" => roles_section(&frame, &data),
            "overlay" => overlay_section(&frame, &data),
            "reputation" => reputation_section(&data),
            _ => audit_section(&data),
        };
        page(status, self.layout(&frame, label, content).await)
    }

    async fn layout(&self, frame: &Frame<'_>, label: &str, content: Markup) -> Markup {
        let name = self
            .state()
            .router
            .store()
            .community(frame.community)
            .await
            .ok()
            .flatten()
            .map_or_else(|| format!("Community {}", frame.community.0), |c| c.name);
        let id = frame.community.0;
        document(
            &format!("{label} · {name}"),
            html! {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "WaddleBot · " (name) }
                    nav aria-label="Portal" {
                        ul {
                            @for (section, title, route) in PAGES {
                                @if frame.may(&Method::GET, route) {
                                    li {
                                        a href=(format!("/portal/{id}/{section}").trim_end_matches('/'))
                                            aria-current=[(*section == frame.current).then_some("page")] { (title) }
                                    }
                                }
                            }
                            li { a href=(format!("/c/{id}/commands")) { "Public command page" } }
                        }
                    }
                    span class="muted" { (frame.who.subject) " · " (frame.who.role) }
                    (logout_form(frame.csrf))
                }
                main id="main" {
                    h1 { (label) }
                    @if let Some(notice) = &frame.notice { p class="notice" role="status" { (notice) } }
                    @if let Some(error) = &frame.error { p class="error" role="alert" { (error) } }
                    (content)
                }
            },
        )
    }

    async fn dashboard(&self, frame: &Frame<'_>, community: &Value) -> Markup {
        let base = format!("/api/v1/communities/{}", frame.community.0);
        let count = |data: &Result<Value, Failure>| {
            data.as_ref().ok().and_then(|d| {
                d["total"]
                    .as_u64()
                    .or_else(|| d["items"].as_array().map(|a| a.len() as u64))
            })
        };
        let who = frame.who;
        let commands = self
            .api(
                who,
                Method::GET,
                &format!("{base}/commands"),
                "limit=1",
                None,
            )
            .await;
        let grants = self
            .api(
                who,
                Method::GET,
                &format!("{base}/grants"),
                "limit=100",
                None,
            )
            .await;
        let entities = self
            .api(
                who,
                Method::GET,
                &format!("{base}/entities"),
                "limit=100",
                None,
            )
            .await;
        let modules = self
            .api(
                who,
                Method::GET,
                &format!("{base}/modules"),
                "limit=100&enabled=true",
                None,
            )
            .await;
        let audit = self
            .api(who, Method::GET, &format!("{base}/audit"), "limit=10", None)
            .await;
        html! {
            p { "Community " strong { (text(&community["name"])) } " (number " (frame.community.0) ")." }
            div class="cards" {
                @if let Some(n) = count(&commands) { div class="card" { strong { (n) } "custom commands" } }
                @if let Some(n) = count(&modules) { div class="card" { strong { (n) } "modules on" } }
                @if let Some(n) = count(&grants) { div class="card" { strong { (n) } "members with roles" } }
                @if let Some(n) = count(&entities) { div class="card" { strong { (n) } "channels" } }
            }
            @if let Ok(grants) = &grants {
                h2 { "Members with roles" }
                @if grants["items"].as_array().is_none_or(Vec::is_empty) {
                    p class="muted" { "Nobody has been given a role here yet." }
                } @else {
                    ul {
                        @for grant in grants["items"].as_array().into_iter().flatten() {
                            li { (text(&grant["platform"])) " " (text(&grant["user_id"])) ": " (text(&grant["level"])) }
                        }
                    }
                }
            }
            @if let Ok(entities) = &entities {
                h2 { "Channels" }
                ul {
                    @for entity in entities["items"].as_array().into_iter().flatten() {
                        li { (text(&entity["platform"])) " " (text(&entity["server_id"])) " / " (text(&entity["channel_id"])) }
                    }
                }
            }
            @if let Ok(audit) = &audit {
                h2 { "Recent activity" }
                (audit_table(&audit["items"]))
            }
        }
    }

    /// A submitted portal form: one admin API call, then back to the page.
    async fn submit(
        &self,
        visitor: &Visitor,
        community: CommunityId,
        section: &str,
        form: &Form,
    ) -> Response<ResponseBody> {
        let who = visitor.grant.principal();
        let base = format!("/api/v1/communities/{}", community.0);
        let enc = |segment: &str| {
            percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let action = form.get("action");
        let call = match (section, action) {
            ("commands", "add") => Some((
                Method::POST,
                format!("{base}/commands"),
                Some(json!({"name": form.get("name"), "response": form.get("response")})),
                "command-added",
            )),
            ("commands", "update") => Some((
                Method::PUT,
                format!("{base}/commands/{}", enc(form.get("name"))),
                Some(json!({"response": form.get("response")})),
                "command-saved",
            )),
            ("commands", "delete") => Some((
                Method::DELETE,
                format!("{base}/commands/{}", enc(form.get("name"))),
                None,
                "command-removed",
            )),
            ("aliases", "add") => Some((
                Method::POST,
                format!("{base}/aliases"),
                Some(json!({"name": form.get("name"), "target": form.get("target")})),
                "alias-added",
            )),
            ("aliases", "delete") => Some((
                Method::DELETE,
                format!("{base}/aliases/{}", enc(form.get("name"))),
                None,
                "alias-removed",
            )),
            ("modules", "enable" | "disable") => Some((
                Method::PATCH,
                format!("{base}/modules/{}", enc(form.get("name"))),
                Some(json!({"enabled": action == "enable"})),
                "module-saved",
            )),
            ("modules", "config") => match serde_json::from_str::<Value>(form.get("config")) {
                Ok(config @ Value::Object(_)) => Some((
                    Method::PATCH,
                    format!("{base}/modules/{}", enc(form.get("name"))),
                    Some(json!({"config": config})),
                    "module-saved",
                )),
                _ => {
                    return self
                        .section(
                            visitor,
                            community,
                            section,
                            None,
                            Some((StatusCode::BAD_REQUEST, "Settings must be a JSON object, like {\"timezone\": \"Europe/Berlin\"}.".to_owned())),
                        )
                        .await;
                }
            },
            ("roles", "grant") => Some((
                Method::PUT,
                format!(
                    "{base}/grants/{}/{}",
                    enc(form.get("platform")),
                    enc(form.get("user"))
                ),
                Some(json!({"level": form.get("level")})),
                "role-granted",
            )),
            ("roles", "revoke") => Some((
                Method::DELETE,
                format!(
                    "{base}/grants/{}/{}",
                    enc(form.get("platform")),
                    enc(form.get("user"))
                ),
                None,
                "role-revoked",
            )),
            ("overlay", "rotate") => {
                let grace = form.get("grace_secs").trim();
                let body = match grace.parse::<u64>() {
                    Ok(secs) => json!({"grace_secs": secs}),
                    Err(_) if grace.is_empty() => json!({}),
                    Err(_) => json!({"grace_secs": grace}),
                };
                Some((
                    Method::POST,
                    format!("{base}/overlay/rotate"),
                    Some(body),
                    "overlay-rotated",
                ))
            }
            _ => None,
        };
        let Some((method, path, body, done)) = call else {
            return message_page(
                StatusCode::BAD_REQUEST,
                "Refused",
                "That form does not exist.",
            );
        };
        match self.api(&who, method, &path, "", body).await {
            Ok(_) => redirect(&format!("/portal/{}/{section}?done={done}", community.0)),
            Err(Failure(StatusCode::FORBIDDEN, _)) => message_page(
                StatusCode::FORBIDDEN,
                "Not for your role",
                &format!("A {} cannot do this.", who.role),
            ),
            Err(Failure(status, message)) => {
                self.section(visitor, community, section, None, Some((status, message)))
                    .await
            }
        }
    }
}

/// The text of a JSON string (or the JSON itself for other values).
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn notice_text(code: &str) -> Option<String> {
    let text = match code {
        "command-added" => "Command added.",
        "command-saved" => "Command saved.",
        "command-removed" => "Command removed.",
        "alias-added" => "Alias added.",
        "alias-removed" => "Alias removed.",
        "module-saved" => "Module saved.",
        "role-granted" => "Role granted.",
        "role-revoked" => "Role revoked.",
        "overlay-rotated" => {
            "New overlay key made. Paste the new URL into OBS before the old one stops."
        }
        _ => return None,
    };
    Some(text.to_owned())
}

/// A scrolling table: a header row of `columns` (and `last`, for an actions or settings
/// column, when given), then `rows`.
fn data_table(columns: &[&str], last: Option<Markup>, rows: Markup) -> Markup {
    html! {
        div class="table-wrap" {
            table {
                thead { tr { @for column in columns { th scope="col" { (column) } } @if let Some(last) = last { th scope="col" { (last) } } } }
                tbody { (rows) }
            }
        }
    }
}

/// The header of a column of buttons: read by screen readers, not shown.
fn actions_header() -> Markup {
    html! { span class="skip" { "Actions" } }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A form that is one button: posts `action` and the hidden `fields` to `target`.
fn button_form(
    frame: &Frame<'_>,
    target: &str,
    action: &str,
    fields: &[(&str, &str)],
    class: &str,
    label: &str,
    described: &str,
) -> Markup {
    html! {
        form class="inline" method="post" action=(target) {
            (csrf_field(frame.csrf))
            input type="hidden" name="action" value=(action);
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class=(class) aria-label=(described) { (label) }
        }
    }
}

fn logout_form(csrf: &str) -> Markup {
    html! {
        form class="inline" method="post" action="/portal/logout" {
            (csrf_field(csrf))
            button type="submit" class="secondary" { "Sign out" }
        }
    }
}

/// The sign-in forms' CSRF token: the one in the visitor's cookie, or a new one (also
/// returned second, to be set as the cookie).
fn login_csrf(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie_value(headers, LOGIN_COOKIE).filter(|v| v.len() == 64) {
        Some(token) => (token, None),
        None => {
            let token = random_token().unwrap_or_default();
            (token.clone(), Some(token))
        }
    }
}

fn login_csrf_ok(headers: &HeaderMap, form: &Form) -> bool {
    cookie_value(headers, LOGIN_COOKIE)
        .is_some_and(|cookie| !cookie.is_empty() && same_secret(&cookie, form.get("csrf")))
}

/// Sets the sign-in forms' CSRF cookie when the page made a new token.
fn with_login_cookie(
    mut response: Response<ResponseBody>,
    fresh: Option<String>,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    if let Some(token) = fresh {
        set_cookie(
            &mut response,
            LOGIN_COOKIE,
            token,
            Duration::from_secs(3600),
            behind_tls(headers),
        );
    }
    response
}

fn login_page(
    headers: &HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Response<ResponseBody> {
    let (csrf, fresh) = login_csrf(headers);
    let markup = document(
        "Sign in",
        html! {
            main class="narrow" {
                h1 { "Sign in to WaddleBot" }
                @if let Some(error) = error { p class="error" role="alert" { (error) } }
                form class="stack" method="post" action="/portal/login" {
                    (csrf_field(&csrf))
                    label for="key" { "API key" }
                    input id="key" name="key" type="password" autocomplete="current-password" required placeholder="wbot_…";
                    button type="submit" { "Sign in" }
                }
                p class="muted" { "No key? Ask the bot's operator for a sign-in link (" code { "waddlebot portal link" } ")." }
            }
        },
    );
    with_login_cookie(page(status, markup), fresh, headers)
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response<ResponseBody> {
    page(
        status,
        document(
            title,
            html! {
                main class="narrow" {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/portal" { "Back to the portal" } }
                }
            },
        ),
    )
}

fn commands_section(frame: &Frame<'_>, data: &Value) -> Markup {
    let base = frame.action("commands");
    let editable = frame.may(&Method::POST, "/api/v1/communities/{id}/commands");
    html! {
        p class="muted" { "Custom text commands. Responses may use {user}, {args}, {arg1}… and {count}." }
        @if editable {
            h2 { "Add a command" }
            form class="stack" method="post" action=(base) {
                (csrf_field(frame.csrf))
                input type="hidden" name="action" value="add";
                label for="new-name" { "Name (without !)" }
                input id="new-name" name="name" required maxlength="50" pattern="[A-Za-z0-9_\\-]+";
                label for="new-response" { "Response" }
                textarea id="new-response" name="response" required maxlength="500" rows="3" {}
                button type="submit" { "Add command" }
            }
        }
        h2 { "Commands" }
        @let items = data["items"].as_array().cloned().unwrap_or_default();
        @if items.is_empty() { p class="muted" { "No custom commands yet." } }
        @for (n, command) in items.iter().enumerate() {
            @let name = text(&command["name"]);
            section class="card" aria-label=(format!("!{name}")) {
                h3 { code { "!" (name) } }
                @if editable {
                    form class="stack" method="post" action=(base) {
                        (csrf_field(frame.csrf))
                        input type="hidden" name="action" value="update";
                        input type="hidden" name="name" value=(name);
                        label for=(format!("response-{n}")) { "Response" }
                        textarea id=(format!("response-{n}")) name="response" required maxlength="500" rows="2" { (text(&command["response"])) }
                        button type="submit" { "Save" }
                    }
                    (button_form(frame, &base, "delete", &[("name", &name)], "danger", "Remove", &format!("Remove !{name}")))
                } @else {
                    p { (text(&command["response"])) }
                }
            }
        }
    }
}

fn aliases_section(frame: &Frame<'_>, data: &Value) -> Markup {
    let base = frame.action("aliases");
    let editable = frame.may(&Method::POST, "/api/v1/communities/{id}/aliases");
    html! {
        @if editable {
            form class="stack" method="post" action=(base) {
                (csrf_field(frame.csrf))
                input type="hidden" name="action" value="add";
                label for="alias-name" { "Alias (without !)" }
                input id="alias-name" name="name" required maxlength="50";
                label for="alias-target" { "Runs (command and arguments, {user} {args} {arg1}…)" }
                input id="alias-target" name="target" required maxlength="500" placeholder="so {arg1}";
                button type="submit" { "Add alias" }
            }
        }
        (data_table(&["Alias", "Runs", "By"], editable.then(actions_header), html! {
            @for alias in data["items"].as_array().into_iter().flatten() {
                @let name = text(&alias["name"]);
                tr {
                    td { code { "!" (name) } }
                    td { code { "!" (text(&alias["target"])) } }
                    td { (text(&alias["created_by"])) }
                    @if editable {
                        td {
                            (button_form(frame, &base, "delete", &[("name", &name)], "danger", "Remove", &format!("Remove alias !{name}")))
                        }
                    }
                }
            }
        }))
    }
}

fn modules_section(frame: &Frame<'_>, data: &Value) -> Markup {
    let base = frame.action("modules");
    let editable = frame.may(&Method::PATCH, "/api/v1/communities/{id}/modules/{name}");
    html! {
        (data_table(&["Module", "Commands", "State"], editable.then(|| html! { "Settings" }), html! {
            @for (n, module) in data["items"].as_array().into_iter().flatten().enumerate() {
                @let name = text(&module["name"]);
                @let enabled = module["enabled"].as_bool().unwrap_or(false);
                tr {
                    td { (name) }
                    td { @for command in module["commands"].as_array().into_iter().flatten() { code { "!" (text(command)) } " " } }
                    td {
                        (if enabled { "on" } else { "off" })
                        @if editable && name != "core" {
                            " "
                            @let (action, label) = if enabled { ("disable", "Turn off") } else { ("enable", "Turn on") };
                            (button_form(frame, &base, action, &[("name", &name)], "secondary", label, &format!("{label} {name}")))
                        }
                    }
                    @if editable {
                        td {
                            form class="stack" method="post" action=(base) {
                                (csrf_field(frame.csrf))
                                input type="hidden" name="name" value=(name);
                                input type="hidden" name="action" value="config";
                                label for=(format!("config-{n}")) { "Settings (JSON)" }
                                textarea id=(format!("config-{n}")) name="config" rows="2" { (module["config"].to_string()) }
                                button type="submit" class="secondary" { "Save settings" }
                            }
                        }
                    }
                }
            }
        }))
    }
}

fn roles_section(frame: &Frame<'_>, data: &Value) -> Markup {
    let base = frame.action("roles");
    let editable = frame.may(
        &Method::PUT,
        "/api/v1/communities/{id}/grants/{platform}/{user}",
    );
    html! {
        p class="muted" { "Levels given here add to what platform badges give." }
        @if editable {
            form class="stack" method="post" action=(base) {
                (csrf_field(frame.csrf))
                input type="hidden" name="action" value="grant";
                label for="grant-platform" { "Platform" }
                select id="grant-platform" name="platform" {
                    @for platform in ["twitch", "discord", "slack", "console"] { option value=(platform) { (platform) } }
                }
                label for="grant-user" { "User id" }
                input id="grant-user" name="user" required maxlength="100";
                label for="grant-level" { "Level" }
                select id="grant-level" name="level" {
                    @for level in ["vip", "moderator", "broadcaster", "admin"] { option value=(level) { (level) } }
                }
                button type="submit" { "Grant" }
            }
        }
        (data_table(&["Platform", "User", "Level", "By"], editable.then(actions_header), html! {
            @for grant in data["items"].as_array().into_iter().flatten() {
                tr {
                    td { (text(&grant["platform"])) }
                    td { (text(&grant["user_id"])) }
                    td { (text(&grant["level"])) }
                    td { (text(&grant["granted_by"])) }
                    @if editable {
                        td {
                            @let (platform, user) = (text(&grant["platform"]), text(&grant["user_id"]));
                            (button_form(frame, &base, "revoke", &[("platform", &platform), ("user", &user)], "danger", "Revoke", &format!("Revoke {platform} {user}")))
                        }
                    }
                }
            }
        }))
    }
}

fn overlay_section(frame: &Frame<'_>, data: &Value) -> Markup {
    let base = frame.action("overlay");
    let mut urls = vec![("all".to_owned(), text(&data["url"]))];
    if let Some(sources) = data["sources"].as_object() {
        urls.extend(sources.iter().map(|(name, url)| (name.clone(), text(url))));
    }
    html! {
        p { "Add these as browser sources in OBS (1920×1080). Keep them secret: anyone with the URL sees your overlay." }
        @for (name, url) in &urls {
            div class="stack" {
                label for=(format!("url-{name}")) { (name) }
                div class="copy" {
                    input id=(format!("url-{name}")) class="overlay-url" readonly value=(url) data-path=(url);
                    button type="button" class="secondary" data-copy=(format!("url-{name}")) { "Copy" }
                }
            }
        }
        @if let Some(until) = data["previous_key_valid_until_ms"].as_u64() {
            p class="muted" { "The previous key works until " (format_ms(until)) " (UTC)." }
        }
        h2 { "New key" }
        form class="stack" method="post" action=(base) {
            (csrf_field(frame.csrf))
            input type="hidden" name="action" value="rotate";
            label for="grace" { "Seconds the old URLs keep working" }
            input id="grace" name="grace_secs" type="number" min="0" max="86400" value="600";
            button type="submit" { "Make a new key" }
        }
    }
}

fn reputation_section(data: &Value) -> Markup {
    let items = data["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return html! { p class="muted" { "Nobody has a reputation here yet: scores start at 600 and move with what people do." } };
    }
    data_table(
        &["#", "Name", "Score", "Tier"],
        None,
        html! {
            @for (place, leader) in items.iter().enumerate() {
                tr {
                    td { (place + 1) }
                    td { (text(&leader["name"])) }
                    td { (text(&leader["score"])) }
                    td { (text(&leader["tier"])) }
                }
            }
        },
    )
}

fn audit_section(data: &Value) -> Markup {
    audit_table(&data["items"])
}

fn audit_table(items: &Value) -> Markup {
    if items.as_array().is_none_or(Vec::is_empty) {
        return html! { p class="muted" { "Nothing has been changed yet." } };
    }
    data_table(
        &["When (UTC)", "Who", "What", "On"],
        None,
        html! {
            @for entry in items.as_array().into_iter().flatten() {
                tr {
                    td { (format_ms(entry["at_ms"].as_u64().unwrap_or(0))) }
                    td { (text(&entry["actor"])) }
                    td { (text(&entry["action"])) }
                    td { (text(&entry["target"])) }
                }
            }
        },
    )
}

/// `2026-11-26 14:05` (UTC).
fn format_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

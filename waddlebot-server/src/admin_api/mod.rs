//! The admin API under `/api/v1`: communities and their entities, custom commands, aliases,
//! modules, role grants, string rules, remote modules, overlay keys, API keys and the audit
//! log. Credentials and the community check happen in [`App::route`] from the route table
//! before any of this runs; here the handlers check what the route table cannot (a role may
//! not hand out more than it has) and narrow lists to what the caller may see.
//!
//! Lists take `limit` (1–100, default 50) and `offset`, or `page` (from 1) and `per_page`
//! (1–100, default 50) as the original's clients send them, and the filters each list names
//! (`q` searches names; the others compare a field); each answer carries `items`, `limit`,
//! `offset`, `total` and `pagination: {page, per_page, total, pages}`. Answers use the envelope
//! `{"status":"success","data":…}` / `{"status":"error","message":…}`. Every change is
//! audited ([`App::audit`]). Read-modify-write changes to one object are serialized in the
//! process ([`WriteLocks`]), so concurrent writes lose nothing.

mod access;
mod commands;
mod community;
mod router_read;
mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Body;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use waddlebot::{CommunityId, Store, StoreError};

use crate::app::{App, BoxError, Failure, Params, ResponseBody};
use crate::auth::{Principal, Role};

/// The largest `offset` honoured.
const MAX_OFFSET: usize = 100_000;

/// Items per page when a list is not told.
const DEFAULT_PAGE: usize = 50;

/// Unix milliseconds, for answers.
pub(crate) use waddlebot::clock::unix_millis as millis;

fn success(status: StatusCode, data: Value) -> Response<ResponseBody> {
    crate::app::success(status, &data)
}

fn store_failure(err: StoreError) -> Failure {
    match err {
        StoreError::NotFound(what) => Failure(StatusCode::NOT_FOUND, what),
        StoreError::Conflict(what) => Failure(StatusCode::CONFLICT, what),
        other => {
            tracing::error!(error = %other, "admin API: store failed");
            Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; try again".to_owned(),
            )
        }
    }
}

fn not_found(what: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::NOT_FOUND, format!("no {what}"))
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.into())
}

fn forbidden(message: impl Into<String>) -> Failure {
    Failure(StatusCode::FORBIDDEN, message.into())
}

/// A path segment percent-decoded, or as it came when the bytes are not UTF-8.
fn decoded(raw: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .unwrap_or(std::borrow::Cow::Borrowed(raw))
}

/// Reads an admin body (see [`crate::app::parse_json`]: an object, whole numbers as
/// integers, naming where it is wrong).
fn read_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    crate::app::parse_json(body)
}

/// Per-object locks for read-modify-write changes. An entry lives while someone holds or waits
/// for it.
#[derive(Debug, Default)]
pub(crate) struct WriteLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl WriteLocks {
    /// Waits for the lock of `key` (`"<community>/modules/<name>"`...).
    pub(crate) async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(key).or_default())
        };
        lock.lock_owned().await
    }
}

/// One admin request, authorized, with its body read.
pub(crate) struct Call<'a> {
    app: &'a App,
    method: Method,
    params: &'a Params,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    principal: Option<&'a Principal>,
    /// The community the path names (checked to exist before the handler runs).
    community: Option<CommunityId>,
}

impl Call<'_> {
    /// The path's `{name}` placeholder, percent-decoded (`%20` is a space), so a name created
    /// through a body is found again in a path however the client encoded it. A value that is
    /// not UTF-8 once decoded is kept as it came.
    fn param(&self, name: &str) -> std::borrow::Cow<'_, str> {
        let raw = self
            .params
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| value.as_str());
        decoded(raw)
    }

    /// A query parameter's value (the first, when given twice).
    fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The community the path names.
    fn id(&self) -> Result<CommunityId, Failure> {
        self.community
            .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "no such community".to_owned()))
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.app.state().router.store()
    }

    fn router(&self) -> &waddlebot_router::Router {
        &self.app.state().router
    }

    /// Who is calling, for `created_by` fields and the audit log.
    fn actor(&self) -> String {
        self.principal.map_or_else(
            || "dev (no authentication)".to_owned(),
            |p| p.subject.clone(),
        )
    }

    /// The caller's role; a server without authentication (`--dev`) acts as an admin.
    fn role(&self) -> Role {
        self.principal.map_or(Role::Admin, |p| p.role)
    }

    /// The JSON body.
    fn body<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        crate::app::check_json_content_type(&self.headers)?;
        read_body(&self.body)
    }

    /// The JSON body, or `T::default()` when there is none.
    fn body_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Failure> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.body()
    }

    async fn audit(&self, action: &str, target: &str, detail: Value) {
        self.app
            .audit(self.principal, self.community, action, target, detail)
            .await;
    }

    /// `limit` and `offset`, or `page` and `per_page` (one pair, not both), refusing
    /// parameters other than those and `filters`.
    fn paging(&self, filters: &[&str]) -> Result<(usize, usize), Failure> {
        const PAIRS: [&str; 4] = ["limit", "offset", "page", "per_page"];
        let mut given: [Option<usize>; 4] = [None; 4];
        for (key, value) in &self.query {
            if let Some(slot) = PAIRS.iter().position(|name| name == key) {
                given[slot] = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad_request(format!("{key} must be a whole number")))?,
                );
            } else if !filters.contains(&key.as_str()) {
                let mut known = PAIRS.to_vec();
                known.extend_from_slice(filters);
                return Err(bad_request(format!(
                    "unknown query parameter '{key}'; this list takes {}",
                    known.join(", ")
                )));
            }
        }
        let [limit, offset, page, per_page] = given;
        let (limit, offset) = if page.is_some() || per_page.is_some() {
            if limit.is_some() || offset.is_some() {
                return Err(bad_request(
                    "give page and per_page, or limit and offset, not both",
                ));
            }
            let per_page = per_page.unwrap_or(DEFAULT_PAGE);
            let page = page.unwrap_or(1);
            if page == 0 {
                return Err(bad_request("page counts from 1"));
            }
            if !(1..=100).contains(&per_page) {
                return Err(bad_request("per_page must be from 1 to 100"));
            }
            let offset = (page - 1)
                .checked_mul(per_page)
                .filter(|offset| *offset <= MAX_OFFSET)
                .ok_or_else(|| {
                    bad_request(format!("page must start at most {MAX_OFFSET} items in"))
                })?;
            (per_page, offset)
        } else {
            (limit.unwrap_or(DEFAULT_PAGE), offset.unwrap_or(0))
        };
        if !(1..=100).contains(&limit) {
            return Err(bad_request("limit must be from 1 to 100"));
        }
        if offset > MAX_OFFSET {
            return Err(bad_request(format!("offset must be at most {MAX_OFFSET}")));
        }
        Ok((limit, offset))
    }

    /// A page of `items` after the query's filters: `q` finds a case-insensitive part of the
    /// `name` field; any other filter must equal the field of its name (`enabled=true`,
    /// `platform=twitch`).
    fn list(&self, items: Vec<Value>, filters: &[&str]) -> Result<Response<ResponseBody>, Failure> {
        let (limit, offset) = self.paging(filters)?;
        let wanted: Vec<(&str, String)> = self
            .query
            .iter()
            .filter(|(key, _)| filters.contains(&key.as_str()))
            .map(|(key, value)| (key.as_str(), value.to_lowercase()))
            .collect();
        let shown = |value: &Value| match value {
            Value::String(text) => text.to_lowercase(),
            other => other.to_string(),
        };
        let matching: Vec<Value> = items
            .into_iter()
            .filter(|item| {
                wanted.iter().all(|(key, value)| match *key {
                    "q" => shown(&item["name"]).contains(value.as_str()),
                    field => shown(&item[field]) == *value,
                })
            })
            .collect();
        let total = matching.len();
        let page: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
        Ok(success(StatusCode::OK, paged(page, limit, offset, total)))
    }
}

/// A list answer: the page's items, where it starts, and the pagination the original's clients
/// read (`page` is the one `offset` falls in).
fn paged(items: Vec<Value>, limit: usize, offset: usize, total: usize) -> Value {
    json!({
        "items": items, "limit": limit, "offset": offset, "total": total,
        "pagination": {
            "page": offset / limit + 1, "per_page": limit, "total": total,
            "pages": total.div_ceil(limit),
        },
    })
}

impl App {
    /// Records an admin change: a structured log line (category `audit`) and a row in the
    /// store's audit log. A failure to write the row is logged, not returned: the change itself
    /// was made.
    pub(crate) async fn audit(
        &self,
        principal: Option<&Principal>,
        community: Option<CommunityId>,
        action: &str,
        target: &str,
        detail: Value,
    ) {
        let actor = principal.map_or_else(
            || "dev (no authentication)".to_owned(),
            |p| p.subject.clone(),
        );
        tracing::info!(
            category = "audit",
            actor = %actor,
            community = community.map(|c| c.0),
            action,
            target,
            result = "success",
            "admin change"
        );
        let entry = waddlebot::store::AuditEntry {
            id: 0,
            community_id: community,
            actor,
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            at: SystemTime::now(),
        };
        if let Err(err) = self.state().router.store().append_audit(&entry).await {
            tracing::error!(error = %err, action, "cannot write the audit log");
        }
    }

    /// Dispatches the admin routes (already authorized).
    pub(crate) async fn admin<B>(
        &self,
        request: Request<B>,
        pattern: &'static str,
        params: &Params,
        principal: Option<&Principal>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let method = request.method().clone();
        let headers = request.headers().clone();
        let query = url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let body = if matches!(method, Method::GET | Method::HEAD) {
            Bytes::new()
        } else {
            self.read_body(request).await?
        };
        let community = params
            .iter()
            .find(|(name, _)| *name == "id")
            .and_then(|(_, id)| id.parse().ok())
            .map(CommunityId);
        if let Some(id) = community {
            self.known_community(id).await?;
        }
        let call = Call {
            app: self,
            method,
            params,
            query,
            headers,
            body,
            principal,
            community,
        };
        let method = call.method.clone();
        let base = "/api/v1/communities/{id}";
        match (pattern.strip_prefix(base), method) {
            (Some("/commands"), Method::GET) => commands::list(&call).await,
            (Some("/commands"), Method::POST) => commands::create(&call).await,
            (Some("/commands/{name}"), Method::GET) => commands::get(&call).await,
            (Some("/commands/{name}"), Method::PUT) => commands::update(&call).await,
            (Some("/commands/{name}"), Method::DELETE) => commands::delete(&call).await,
            (Some("/aliases"), Method::GET) => commands::list_aliases(&call).await,
            (Some("/aliases"), Method::POST) => commands::create_alias(&call).await,
            (Some("/aliases/{name}"), Method::DELETE) => commands::delete_alias(&call).await,
            (Some(""), Method::GET) => community::get(&call).await,
            (Some("/entities"), Method::GET) => community::list_entities(&call).await,
            (Some("/entities"), Method::PUT) => community::assign_entity(&call).await,
            (Some("/modules"), Method::GET) => community::list_modules(&call).await,
            (Some("/modules/{name}"), Method::PATCH) => community::update_module(&call).await,
            (Some("/grants"), Method::GET) => community::list_grants(&call).await,
            (Some("/reputation"), Method::GET) => community::reputation(&call).await,
            (Some("/grants/{platform}/{user}"), Method::PUT) => community::grant(&call).await,
            (Some("/grants/{platform}/{user}"), Method::DELETE) => community::revoke(&call).await,
            (Some("/rules"), Method::GET) => rules::list(&call).await,
            (Some("/rules"), Method::POST) => rules::create(&call).await,
            (Some("/rules/{rule}"), Method::DELETE) => rules::delete(&call).await,
            (Some("/remote-modules"), Method::GET) => rules::list_remote(&call).await,
            (Some("/remote-modules"), Method::POST) => rules::register_remote(&call).await,
            (Some("/remote-modules/{name}"), Method::DELETE) => rules::delete_remote(&call).await,
            (Some("/overlay"), Method::GET) => access::overlay(&call).await,
            (Some("/overlay/rotate"), Method::POST) => access::rotate_overlay(&call).await,
            (Some("/api-keys"), Method::GET) => access::list_keys(&call).await,
            (Some("/api-keys"), Method::POST) => access::create_key(&call).await,
            (Some("/api-keys/{key}"), Method::DELETE) => access::revoke_key(&call).await,
            (Some("/audit"), Method::GET) => access::audit_page(&call).await,
            (None, method) => match (pattern, method) {
                ("/api/v1/communities", Method::GET) => community::list(&call).await,
                ("/api/v1/communities", Method::POST) => community::create(&call).await,
                ("/api/v1/api-keys", Method::GET) => access::list_keys(&call).await,
                ("/api/v1/api-keys", Method::POST) => access::create_key(&call).await,
                ("/api/v1/api-keys/{key}", Method::DELETE) => access::revoke_key(&call).await,
                ("/api/v1/audit", Method::GET) => access::audit_page(&call).await,
                ("/router/commands", Method::GET) => router_read::commands(&call).await,
                ("/router/entities", Method::GET) => router_read::entities(&call).await,
                _ => Err(not_found("such route")),
            },
            _ => Err(not_found("such route")),
        }
    }

    /// 404 unless the community exists (asked only after the caller was found allowed there).
    async fn known_community(&self, id: CommunityId) -> Result<(), Failure> {
        self.state()
            .router
            .store()
            .community(id)
            .await
            .map_err(store_failure)?
            .map(|_| ())
            .ok_or_else(|| not_found(format!("community {}", id.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Numbers {
        count: u64,
        #[serde(default)]
        days: Option<u64>,
        #[serde(default)]
        action: Option<waddlebot::store::RuleAction>,
    }

    fn numbers(json: &str) -> Result<Numbers, String> {
        read_body(json.as_bytes()).map_err(|Failure(_, message)| message)
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_of_zero_are_the_same_numbers() {
        let parsed = numbers(
            r#"{"count": 1135.0, "days": 7.0, "action": {"type": "block", "timeout_secs": 60.0}}"#,
        )
        .expect("whole");
        assert_eq!((parsed.count, parsed.days), (1135, Some(7)));
        assert_eq!(
            parsed.action,
            Some(waddlebot::store::RuleAction::Block {
                message: None,
                timeout_secs: Some(60)
            })
        );
        let parsed = numbers(r#"{"count": 5, "days": null}"#).expect("plain");
        assert_eq!((parsed.count, parsed.days), (5, None));
        // Found by schemathesis: without exact float parsing this read as ...179.25.
        let parsed = numbers(r#"{"count": 2128766196217179.0}"#).expect("large whole");
        assert_eq!(parsed.count, 2_128_766_196_217_179);
    }

    #[test]
    fn fractions_and_other_mistakes_are_still_refused_saying_where() {
        assert!(numbers(r#"{"count": 1.5}"#).unwrap_err().contains("count"));
        assert!(numbers(r#"{"count": -1}"#).unwrap_err().contains("count"));
        assert!(
            numbers(r#"{"count": 1e300}"#)
                .unwrap_err()
                .contains("count")
        );
        assert!(
            numbers(r#"{"count": 1, "days": "7"}"#)
                .unwrap_err()
                .contains("days")
        );
        assert!(
            numbers(r#"{"count": 1, "colour": 1}"#)
                .unwrap_err()
                .contains("colour")
        );
        assert!(numbers("{").unwrap_err().contains("valid JSON"));
        assert!(
            numbers("[5, 7]").unwrap_err().contains("JSON object"),
            "an array is not read as the struct's fields in order"
        );
    }

    #[test]
    fn path_names_are_percent_decoded_as_created() {
        assert_eq!(decoded("%09Hello%20World"), "\tHello World");
        assert_eq!(decoded("plain"), "plain");
        assert_eq!(
            decoded("%FF"),
            "%FF",
            "not UTF-8 once decoded: kept as sent"
        );
    }
}

//! The admin API under `/api/v1` (so far: communities, their custom commands and aliases).
//! Credentials and the community check happen in [`App::route`] from the route table before
//! any of this runs; here the handlers also narrow lists to what the caller may see.
//!
//! Lists take `limit` (1–100, default 50) and `offset`; answers use the envelope
//! `{"status":"success","data":…}` / `{"status":"error","message":…}`.

use std::time::SystemTime;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Body;
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::store::{CustomCommand, Page};
use waddlebot::{CommunityId, StoreError};

use waddlebot_router::alias::CreateAliasError;

use crate::app::{App, BoxError, Failure, ResponseBody, json};
use crate::auth::Principal;

/// The largest `offset` honoured.
const MAX_OFFSET: usize = 100_000;

/// `limit` and `offset` from the query string.
fn paging(query: Option<&str>) -> Result<(usize, usize), Failure> {
    let mut limit = 50;
    let mut offset = 0;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let number = || {
            value.parse::<usize>().map_err(|_| {
                Failure(
                    StatusCode::BAD_REQUEST,
                    format!("{key} must be a whole number"),
                )
            })
        };
        match key.as_ref() {
            "limit" => limit = number()?,
            "offset" => offset = number()?,
            _ => {}
        }
    }
    if !(1..=100).contains(&limit) {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "limit must be from 1 to 100".to_owned(),
        ));
    }
    if offset > MAX_OFFSET {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            format!("offset must be at most {MAX_OFFSET}"),
        ));
    }
    Ok((limit, offset))
}

fn page_of<T: serde::Serialize>(items: &[T], limit: usize, offset: usize, total: usize) -> Value {
    json!({
        "items": items,
        "limit": limit,
        "offset": offset,
        "total": total,
    })
}

fn success(status: StatusCode, data: Value) -> Response<ResponseBody> {
    json(status, &json!({"status": "success", "data": data}))
}

fn store_failure(err: StoreError) -> Failure {
    match err {
        StoreError::NotFound(what) => Failure(StatusCode::NOT_FOUND, what),
        StoreError::Conflict(what) => Failure(StatusCode::CONFLICT, what),
        other => Failure(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
    }
}

fn command_json(command: &CustomCommand) -> Value {
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    json!({
        "name": command.name,
        "response": command.response,
        "created_by": command.created_by,
        "created_at_ms": millis(command.created_at),
        "updated_at_ms": millis(command.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCommand {
    name: String,
    response: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangedCommand {
    response: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAlias {
    name: String,
    target: String,
}

fn alias_json(alias: &waddlebot::store::Alias) -> Value {
    json!({
        "name": alias.name,
        "target": alias.target,
        "created_by": alias.created_by,
    })
}

/// The community's command `name`, or 404.
async fn existing_command(
    store: &dyn waddlebot::Store,
    community: CommunityId,
    name: &str,
) -> Result<CustomCommand, Failure> {
    store
        .custom_command(community, name)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no command {name}")))
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
}

impl App {
    /// Dispatches the `/api/v1/communities…` routes (already authorized).
    pub(crate) async fn admin<B>(
        &self,
        request: Request<B>,
        pattern: &str,
        params: &[(&'static str, String)],
        principal: Option<&Principal>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
                .unwrap_or_default()
        };
        let community = param("id").parse::<i64>().map(CommunityId).ok();
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        match (pattern, method, community) {
            ("/api/v1/communities", Method::GET, _) => {
                self.list_communities(principal, query.as_deref()).await
            }
            ("/api/v1/communities/{id}/commands", Method::GET, Some(id)) => {
                self.known_community(id).await?;
                let (limit, offset) = paging(query.as_deref())?;
                let commands = self
                    .state()
                    .router
                    .store()
                    .list_custom_commands(id)
                    .await
                    .map_err(store_failure)?;
                let items: Vec<Value> = commands
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(command_json)
                    .collect();
                Ok(success(
                    StatusCode::OK,
                    page_of(&items, limit, offset, commands.len()),
                ))
            }
            ("/api/v1/communities/{id}/commands", Method::POST, Some(id)) => {
                self.known_community(id).await?;
                let new: NewCommand = self.read_json(request).await?;
                let name =
                    waddlebot_modules::check_command_name(&new.name, self.state().router.catalog())
                        .map_err(|why| {
                            Failure(StatusCode::BAD_REQUEST, why.explain(&new.name, ""))
                        })?;
                waddlebot_modules::check_response(&new.response)
                    .map_err(|why| Failure(StatusCode::BAD_REQUEST, why))?;
                let store = self.state().router.store();
                if store
                    .alias(id, &name)
                    .await
                    .map_err(store_failure)?
                    .is_some()
                {
                    return Err(Failure(
                        StatusCode::CONFLICT,
                        format!("{name} is an alias; remove the alias first"),
                    ));
                }
                let now = SystemTime::now();
                let command = CustomCommand {
                    community_id: id,
                    name: name.clone(),
                    response: new.response.trim().to_owned(),
                    created_by: principal.map_or_else(|| "api".to_owned(), |p| p.subject.clone()),
                    created_at: now,
                    updated_at: now,
                };
                store
                    .create_custom_command(&command)
                    .await
                    .map_err(store_failure)?;
                self.audit(
                    principal,
                    Some(id),
                    "command.create",
                    &name,
                    json!({"response": command.response}),
                )
                .await;
                Ok(success(StatusCode::CREATED, command_json(&command)))
            }
            ("/api/v1/communities/{id}/commands/{name}", method, Some(id)) => {
                self.known_community(id).await?;
                let name = waddlebot::normalize_command_name(param("name"));
                let store = self.state().router.store();
                match method {
                    Method::GET => {
                        let command = existing_command(store.as_ref(), id, &name).await?;
                        Ok(success(StatusCode::OK, command_json(&command)))
                    }
                    Method::PUT => {
                        let changed: ChangedCommand = self.read_json(request).await?;
                        waddlebot_modules::check_response(&changed.response)
                            .map_err(|why| Failure(StatusCode::BAD_REQUEST, why))?;
                        let before = existing_command(store.as_ref(), id, &name).await?;
                        store
                            .update_custom_command(id, &name, changed.response.trim())
                            .await
                            .map_err(store_failure)?;
                        self.audit(
                            principal,
                            Some(id),
                            "command.update",
                            &name,
                            json!({"before": before.response, "after": changed.response.trim()}),
                        )
                        .await;
                        let command = existing_command(store.as_ref(), id, &name).await?;
                        Ok(success(StatusCode::OK, command_json(&command)))
                    }
                    Method::DELETE => {
                        if !store
                            .delete_custom_command(id, &name)
                            .await
                            .map_err(store_failure)?
                        {
                            return Err(Failure(
                                StatusCode::NOT_FOUND,
                                format!("no command {name}"),
                            ));
                        }
                        self.audit(principal, Some(id), "command.delete", &name, json!({}))
                            .await;
                        Ok(success(StatusCode::OK, json!({"deleted": name})))
                    }
                    _ => Err(Failure(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "use GET, PUT or DELETE".to_owned(),
                    )),
                }
            }
            ("/api/v1/communities/{id}/aliases", Method::GET, Some(id)) => {
                self.known_community(id).await?;
                let (limit, offset) = paging(query.as_deref())?;
                let aliases = self
                    .state()
                    .router
                    .store()
                    .list_aliases(id)
                    .await
                    .map_err(store_failure)?;
                let items: Vec<Value> = aliases
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(alias_json)
                    .collect();
                Ok(success(
                    StatusCode::OK,
                    page_of(&items, limit, offset, aliases.len()),
                ))
            }
            ("/api/v1/communities/{id}/aliases", Method::POST, Some(id)) => {
                self.known_community(id).await?;
                let new: NewAlias = self.read_json(request).await?;
                let by = principal.map_or_else(|| "api".to_owned(), |p| p.subject.clone());
                let alias = self
                    .state()
                    .router
                    .create_alias(id, &new.name, &new.target, &by)
                    .await
                    .map_err(|err| match err {
                        CreateAliasError::Invalid(why) => {
                            Failure(StatusCode::BAD_REQUEST, why.to_string())
                        }
                        CreateAliasError::Exists(name) => Failure(
                            StatusCode::CONFLICT,
                            format!("{name} is already an alias or a custom command"),
                        ),
                        other => Failure(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
                    })?;
                self.audit(
                    principal,
                    Some(id),
                    "alias.create",
                    &alias.name,
                    json!({"target": alias.target}),
                )
                .await;
                Ok(success(StatusCode::CREATED, alias_json(&alias)))
            }
            ("/api/v1/communities/{id}/aliases/{name}", Method::DELETE, Some(id)) => {
                self.known_community(id).await?;
                let name = waddlebot::normalize_command_name(param("name"));
                if !self
                    .state()
                    .router
                    .store()
                    .delete_alias(id, &name)
                    .await
                    .map_err(store_failure)?
                {
                    return Err(Failure(StatusCode::NOT_FOUND, format!("no alias {name}")));
                }
                self.audit(principal, Some(id), "alias.delete", &name, json!({}))
                    .await;
                Ok(success(StatusCode::OK, json!({"deleted": name})))
            }
            ("/api/v1/communities/{id}/audit", Method::GET, Some(id)) => {
                self.known_community(id).await?;
                self.audit_page(Some(id), query.as_deref()).await
            }
            ("/api/v1/audit", Method::GET, _) => self.audit_page(None, query.as_deref()).await,
            _ => Err(Failure(StatusCode::NOT_FOUND, "no such route".to_owned())),
        }
    }

    /// A page of a community's (or the bot-wide) audit log, newest first.
    async fn audit_page(
        &self,
        community: Option<CommunityId>,
        query: Option<&str>,
    ) -> Result<Response<ResponseBody>, Failure> {
        let (limit, offset) = paging(query)?;
        let entries = self
            .state()
            .router
            .store()
            .list_audit(community, limit, offset)
            .await
            .map_err(store_failure)?;
        let items: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id, "actor": e.actor, "action": e.action, "target": e.target,
                    "detail": e.detail,
                    "at_ms": e.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis()),
                })
            })
            .collect();
        Ok(success(
            StatusCode::OK,
            json!({"items": items, "limit": limit, "offset": offset}),
        ))
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
            .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no community {}", id.0)))
    }

    /// `GET /api/v1/communities`: every community for a bot-wide credential (or without
    /// authentication), only its own for a community credential.
    async fn list_communities(
        &self,
        principal: Option<&Principal>,
        query: Option<&str>,
    ) -> Result<Response<ResponseBody>, Failure> {
        let (limit, offset) = paging(query)?;
        let store = self.state().router.store();
        let as_json = |c: &waddlebot::store::Community| json!({"id": c.id.0, "name": c.name});
        if let Some(own) = principal.and_then(|p| p.community) {
            let found = store.community(own).await.map_err(store_failure)?;
            let items: Vec<Value> = found.iter().skip(offset).take(limit).map(as_json).collect();
            return Ok(success(
                StatusCode::OK,
                page_of(&items, limit, offset, usize::from(found.is_some())),
            ));
        }
        // Walk the id-ordered pages up to the offset and the limit.
        let mut items = Vec::new();
        let mut skipped = 0;
        let mut after = None;
        loop {
            let page = store
                .list_communities(&Page {
                    after: after.clone(),
                    limit: Page::MAX_LIMIT,
                })
                .await
                .map_err(store_failure)?;
            let last = page.last().map(|c| c.id.0.to_string());
            for community in &page {
                if skipped < offset {
                    skipped += 1;
                } else if items.len() < limit {
                    items.push(as_json(community));
                }
            }
            if items.len() >= limit || last.is_none() || page.len() < Page::MAX_LIMIT {
                break;
            }
            after = last;
        }
        Ok(success(
            StatusCode::OK,
            json!({"items": items, "limit": limit, "offset": offset}),
        ))
    }
}

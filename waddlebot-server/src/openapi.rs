//! The OpenAPI 3.1 description of the server, served at `/openapi.json`. Each route is written
//! down here by hand (what it is for, its parameters and body); a test checks that the routes
//! described and the routes in [`crate::ROUTES`] are the same set, so neither can drift.

use http::Method;
use serde_json::{Value, json};

use crate::auth::Need;

/// What one route is described with.
struct Doc {
    path: &'static str,
    method: Method,
    summary: &'static str,
    tag: &'static str,
    /// The JSON body's schema, when the route takes one.
    body: Option<Value>,
    /// The success status.
    ok: &'static str,
    /// For lists: the filters taken besides `limit` and `offset`.
    filters: Option<&'static [&'static str]>,
}

impl Doc {
    /// Marks the route a paged list taking `filters`.
    fn list(mut self, filters: &'static [&'static str]) -> Self {
        self.filters = Some(filters);
        self
    }
}

fn doc(
    path: &'static str,
    method: Method,
    tag: &'static str,
    summary: &'static str,
    ok: &'static str,
    body: Option<Value>,
) -> Doc {
    Doc {
        path,
        method,
        summary,
        tag,
        body,
        ok,
        filters: None,
    }
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn docs() -> Vec<Doc> {
    let text = json!({"type": "string"});
    let event = object(
        &["platform", "server_id", "channel_id", "user_id", "username"],
        json!({
            "platform": {"type": "string", "enum": ["twitch", "discord", "slack", "kick", "youtube", "console"]},
            "server_id": text, "channel_id": text, "user_id": text, "username": text,
            "message": text, "message_type": text, "display_name": text,
            "permission_level": text, "metadata": {"type": "object"},
        }),
    );
    let chat = object(
        &["messages"],
        json!({
            "model": text,
            "messages": {"type": "array", "items": object(&["role", "content"], json!({"role": text, "content": {}}))},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        }),
    );
    let key_body = object(
        &["name", "role"],
        json!({
            "name": text,
            "role": {"type": "string", "enum": ["admin", "owner", "community_admin", "moderator", "viewer", "collector"]},
            "community_id": {"type": "integer"},
            "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        }),
    );
    vec![
        doc(
            "/health",
            Method::GET,
            "health",
            "Liveness: the process answers",
            "200",
            None,
        ),
        doc(
            "/healthz",
            Method::GET,
            "health",
            "Readiness: the store (required) and the AI provider (reported)",
            "200",
            None,
        ),
        doc(
            "/metrics",
            Method::GET,
            "health",
            "Prometheus text: router and HTTP metrics",
            "200",
            None,
        ),
        doc(
            "/openapi.json",
            Method::GET,
            "health",
            "This document",
            "200",
            None,
        ),
        doc(
            "/router/events",
            Method::POST,
            "router",
            "Handle one event and answer its replies",
            "200",
            Some(event.clone()),
        ),
        doc(
            "/router/events/batch",
            Method::POST,
            "router",
            "Handle 1 to 100 events concurrently",
            "200",
            Some(object(
                &["events"],
                json!({"events": {"type": "array", "minItems": 1, "maxItems": 100, "items": event}}),
            )),
        ),
        doc(
            "/router/responses",
            Method::POST,
            "router",
            "A module's late answer to a live session",
            "200",
            Some(object(
                &["session_id", "entity_id"],
                json!({"session_id": text, "entity_id": {"type": "integer"}, "replies": {"type": "array"}}),
            )),
        ),
        doc(
            "/webhooks/twitch/eventsub",
            Method::POST,
            "webhooks",
            "Twitch EventSub deliveries (HMAC-signed)",
            "200",
            None,
        ),
        doc(
            "/webhooks/slack/events",
            Method::POST,
            "webhooks",
            "Slack Events API (signing secret)",
            "200",
            None,
        ),
        doc(
            "/webhooks/slack/commands",
            Method::POST,
            "webhooks",
            "Slack slash commands (signing secret)",
            "200",
            None,
        ),
        doc(
            "/webhooks/slack/interactivity",
            Method::POST,
            "webhooks",
            "Slack block actions and view submissions",
            "200",
            None,
        ),
        doc(
            "/webhooks/discord/interactions",
            Method::POST,
            "webhooks",
            "Discord interactions (Ed25519-signed)",
            "200",
            None,
        ),
        doc(
            "/api/v1/ai/chat/completions",
            Method::POST,
            "ai",
            "OpenAI-compatible chat completions (SSE when stream is true)",
            "200",
            Some(chat),
        ),
        doc(
            "/api/v1/ai/models",
            Method::GET,
            "ai",
            "The provider's models, in OpenAI's list shape",
            "200",
            None,
        ),
        doc(
            "/api/v1/ai/interaction",
            Method::POST,
            "ai",
            "A chat message or event answered by the AI module",
            "200",
            Some(object(
                &["message_type", "user_id", "entity_id", "platform"],
                json!({
                    "session_id": text, "message_type": text, "message_content": text, "user_id": text,
                    "username": text, "display_name": text, "entity_id": text, "platform": text,
                }),
            )),
        ),
        doc(
            "/api/v1/ai/config",
            Method::GET,
            "ai",
            "The AI settings in force, without secrets",
            "200",
            None,
        ),
        doc(
            "/api/v1/ai/config",
            Method::PUT,
            "ai",
            "Replace the AI settings (the environment's names)",
            "200",
            Some(object(
                &["settings"],
                json!({"settings": {"type": "object", "additionalProperties": text}}),
            )),
        ),
        doc(
            "/api/v1/communities",
            Method::GET,
            "communities",
            "The communities the caller may see",
            "200",
            None,
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities",
            Method::POST,
            "communities",
            "Create a community (bot admins)",
            "201",
            Some(object(&["name"], json!({"name": text}))),
        ),
        doc(
            "/api/v1/communities/{id}",
            Method::GET,
            "communities",
            "One community",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/entities",
            Method::GET,
            "communities",
            "The channels whose chat the community gets",
            "200",
            None,
        )
        .list(&["platform", "server_id"]),
        doc(
            "/api/v1/communities/{id}/entities",
            Method::PUT,
            "communities",
            "Give a channel's chat to the community (bot admins; it may move from another)",
            "200",
            Some(object(
                &["platform", "server_id", "channel_id"],
                json!({"platform": text, "server_id": text, "channel_id": text}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/commands",
            Method::GET,
            "commands",
            "A community's custom commands",
            "200",
            None,
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities/{id}/commands",
            Method::POST,
            "commands",
            "Create a custom command",
            "201",
            Some(object(
                &["name", "response"],
                json!({"name": text, "response": text}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            Method::GET,
            "commands",
            "One custom command",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            Method::PUT,
            "commands",
            "Change a custom command's response",
            "200",
            Some(object(&["response"], json!({"response": text}))),
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            Method::DELETE,
            "commands",
            "Delete a custom command",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/aliases",
            Method::GET,
            "commands",
            "A community's aliases",
            "200",
            None,
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities/{id}/aliases",
            Method::POST,
            "commands",
            "Create an alias",
            "201",
            Some(object(
                &["name", "target"],
                json!({"name": text, "target": text}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/aliases/{name}",
            Method::DELETE,
            "commands",
            "Delete an alias",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/modules",
            Method::GET,
            "modules",
            "The modules and whether each is on here, with its settings",
            "200",
            None,
        )
        .list(&["q", "enabled"]),
        doc(
            "/api/v1/communities/{id}/modules/{name}",
            Method::PATCH,
            "modules",
            "Install, turn on or off, or change a module's settings (config is a JSON merge patch)",
            "200",
            Some(object(
                &[],
                json!({"enabled": {"type": "boolean"}, "config": {"type": "object"}}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/grants",
            Method::GET,
            "roles",
            "Levels granted to users on top of their platform badges",
            "200",
            None,
        )
        .list(&["platform", "level"]),
        doc(
            "/api/v1/communities/{id}/grants/{platform}/{user}",
            Method::PUT,
            "roles",
            "Grant a user a level (above moderator: owners only)",
            "200",
            Some(object(
                &["level"],
                json!({"level": {"type": "string", "enum": waddlebot::PermissionLevel::ALL.map(|l| l.as_str())}}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/grants/{platform}/{user}",
            Method::DELETE,
            "roles",
            "Take a granted level back",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/rules",
            Method::GET,
            "rules",
            "String-match rules, with match counts",
            "200",
            None,
        )
        .list(&["enabled", "match_type"]),
        doc(
            "/api/v1/communities/{id}/rules",
            Method::POST,
            "rules",
            "Add a string-match rule (regexes are checked here)",
            "201",
            Some(object(
                &["pattern", "match_type", "action"],
                json!({
                    "pattern": text,
                    "match_type": {"type": "string", "enum": ["exact", "contains", "word", "regex"]},
                    "case_sensitive": {"type": "boolean"},
                    "priority": {"type": "integer"},
                    "enabled": {"type": "boolean"},
                    "action": object(&["type"], json!({
                        "type": {"type": "string", "enum": ["warn", "block", "command", "webhook"]},
                        "message": text, "timeout_secs": {"type": "integer"}, "command": text, "url": text,
                    })),
                }),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/rules/{rule}",
            Method::DELETE,
            "rules",
            "Remove a rule",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/remote-modules",
            Method::GET,
            "remote modules",
            "Remote modules, with their health (never their secrets)",
            "200",
            None,
        )
        .list(&["q", "enabled"]),
        doc(
            "/api/v1/communities/{id}/remote-modules",
            Method::POST,
            "remote modules",
            "Register a remote module; the answer shows its signing secret once",
            "201",
            Some(object(
                &["name", "url"],
                json!({
                    "name": text, "url": text, "secret": text,
                    "commands": {"type": "array", "items": text},
                    "events": {"type": "array", "items": text},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 30000},
                    "kind": {"type": "object"}, "enabled": {"type": "boolean"},
                }),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/remote-modules/{name}",
            Method::DELETE,
            "remote modules",
            "Remove a remote module",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/overlay",
            Method::GET,
            "overlay",
            "The overlay key and the browser-source URLs",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/overlay/rotate",
            Method::POST,
            "overlay",
            "A new overlay key; the old one works for grace_secs more (default 600)",
            "200",
            Some(object(
                &[],
                json!({"grace_secs": {"type": "integer", "minimum": 0, "maximum": 86400}}),
            )),
        ),
        doc(
            "/api/v1/communities/{id}/api-keys",
            Method::GET,
            "api keys",
            "The community's API keys (never the keys themselves)",
            "200",
            None,
        )
        .list(&["q", "role", "revoked"]),
        doc(
            "/api/v1/communities/{id}/api-keys",
            Method::POST,
            "api keys",
            "A new key for the community, shown once (at most the caller's role)",
            "201",
            Some(key_body.clone()),
        ),
        doc(
            "/api/v1/communities/{id}/api-keys/{key}",
            Method::DELETE,
            "api keys",
            "Revoke one of the community's keys",
            "200",
            None,
        ),
        doc(
            "/api/v1/api-keys",
            Method::GET,
            "api keys",
            "Every API key (bot admins)",
            "200",
            None,
        )
        .list(&["q", "role", "revoked"]),
        doc(
            "/api/v1/api-keys",
            Method::POST,
            "api keys",
            "A new key of any role, shown once (bot admins)",
            "201",
            Some(key_body),
        ),
        doc(
            "/api/v1/api-keys/{key}",
            Method::DELETE,
            "api keys",
            "Revoke a key (bot admins)",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/reputation",
            Method::GET,
            "reputation",
            "The reputation leaderboard, best first: person, name, score (300–850) and tier",
            "200",
            None,
        )
        .list(&[]),
        doc(
            "/api/v1/communities/{id}/audit",
            Method::GET,
            "audit",
            "A community's audit log, newest first",
            "200",
            None,
        )
        .list(&["action", "actor"]),
        doc(
            "/api/v1/audit",
            Method::GET,
            "audit",
            "The whole audit log, newest first",
            "200",
            None,
        )
        .list(&["action", "actor"]),
    ]
}

/// The routes this document describes, as `(path, method)`.
pub fn described_routes() -> Vec<(&'static str, Method)> {
    docs().into_iter().map(|d| (d.path, d.method)).collect()
}

/// The path's `{placeholders}`, then paging and filters for lists.
fn parameters(route: &Doc) -> Vec<Value> {
    let mut list: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| match name {
            "id" => json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "The community"}),
            "rule" => json!({"name": "rule", "in": "path", "required": true, "schema": {"type": "integer"}}),
            other => json!({"name": other, "in": "path", "required": true, "schema": {"type": "string"}}),
        })
        .collect();
    if let Some(filters) = route.filters {
        list.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}));
        list.push(json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 0}}));
        for filter in filters {
            let description = if *filter == "q" {
                "Part of the name (case-insensitive)"
            } else if *filter == "action" {
                "The start of the action (command.)"
            } else {
                "Equal to this field"
            };
            list.push(json!({"name": filter, "in": "query", "schema": {"type": "string"}, "description": description}));
        }
    }
    list
}

/// What a route answers: the envelope, and the errors it can give.
fn responses(route: &Doc) -> Value {
    let error = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let described = |text: &str| {
        let mut answer = error.clone();
        answer["description"] = json!(text);
        answer
    };
    // The OpenAI-compatible routes, webhooks and plain-text routes answer in their own shapes.
    let enveloped = route.path.starts_with("/router/")
        || (route.path.starts_with("/api/v1/")
            && !route.path.starts_with("/api/v1/ai/chat")
            && route.path != "/api/v1/ai/models");
    let mut out = json!({
        route.ok: if enveloped {
            json!({"description": "Success", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}}})
        } else {
            json!({"description": "Success"})
        },
        "400": described("Invalid request (the message says what and where)"),
        "401": described("No valid credential"),
        "403": described("The credential may not do this"),
        "404": described("Not found"),
    });
    if route.body.is_some() {
        out["413"] = described("The body is larger than the limit");
        out["415"] = described("The body is not JSON");
    }
    if route.path.starts_with("/api/v1/") {
        out["429"] = described("Too many admin requests; see Retry-After and X-RateLimit-*");
    }
    out
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in docs() {
        let need = crate::app::ROUTES
            .iter()
            .find(|(p, m, _)| *p == route.path && *m == route.method)
            .map_or(Need::Nothing, |(_, _, need)| *need);
        let mut operation = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters(&route),
            "responses": responses(&route),
        });
        let security = match need {
            Need::Nothing => json!([]),
            _ => json!([{"bearerAuth": []}]),
        };
        operation["security"] = security;
        operation["x-waddlebot-needs"] = json!(format!("{need:?}"));
        if let Some(schema) = route.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "WaddleBot",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The WaddleBot reference server: router API, platform webhooks, AI and admin API. Answers use {\"status\":\"success\",\"data\":…} or {\"status\":\"error\",\"message\":…} (the AI completion routes use OpenAI's shapes).",
        },
        "components": {
            "schemas": {
                "Success": {"type": "object", "required": ["status", "data"], "properties": {"status": {"const": "success"}, "data": {}}},
                "Error": {"type": "object", "required": ["status", "message"], "properties": {"status": {"const": "error"}, "message": {"type": "string"}}},
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key (wbot_…) or a JWT (HS256 or RS256, as configured)"}
            }
        },
        "paths": paths,
    })
}

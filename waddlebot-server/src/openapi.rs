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
            "admin",
            "The communities the caller may see",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/commands",
            Method::GET,
            "admin",
            "A community's custom commands",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/commands",
            Method::POST,
            "admin",
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
            "admin",
            "One custom command",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            Method::PUT,
            "admin",
            "Change a custom command's response",
            "200",
            Some(object(&["response"], json!({"response": text}))),
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            Method::DELETE,
            "admin",
            "Delete a custom command",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/aliases",
            Method::GET,
            "admin",
            "A community's aliases",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/aliases",
            Method::POST,
            "admin",
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
            "admin",
            "Delete an alias",
            "200",
            None,
        ),
        doc(
            "/api/v1/communities/{id}/audit",
            Method::GET,
            "admin",
            "A community's audit log, newest first",
            "200",
            None,
        ),
        doc(
            "/api/v1/audit",
            Method::GET,
            "admin",
            "The bot-wide audit log (AI settings...), newest first",
            "200",
            None,
        ),
    ]
}

/// The routes this document describes, as `(path, method)`.
pub fn described_routes() -> Vec<(&'static str, Method)> {
    docs().into_iter().map(|d| (d.path, d.method)).collect()
}

fn parameters(path: &str) -> Vec<Value> {
    let mut list = Vec::new();
    if path.contains("{id}") {
        list.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "The community"}));
    }
    if path.contains("{name}") {
        list.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    if !path.contains("{name}")
        && ["/commands", "/aliases", "/communities", "/audit"]
            .iter()
            .any(|end| path.ends_with(end))
    {
        list.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}));
        list.push(json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}));
    }
    list
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
            "parameters": parameters(route.path),
            "responses": {
                route.ok: {"description": "Success"},
                "400": {"description": "Invalid request"},
                "401": {"description": "No valid credential"},
                "403": {"description": "The credential may not do this"},
                "404": {"description": "Not found"},
            },
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
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key (wbot_…) or an HS256 token"}
            }
        },
        "paths": paths,
    })
}

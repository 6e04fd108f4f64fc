//! The OpenAPI 3.1 description of the server, served at `/openapi.json`. Each route is written
//! down here by hand (what it is for, its parameters, body and answers; the schemas are in
//! `schemas`); a test checks that the routes described and the routes in [`crate::ROUTES`]
//! are the same set, so neither can drift, and `.ci/schemathesis.sh` checks the document
//! against a running server.

mod schemas;

use http::Method;
use serde_json::{Value, json};

use crate::auth::Need;

/// What one route is described with.
struct Doc {
    path: &'static str,
    method: Method,
    summary: &'static str,
    tag: &'static str,
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

    /// The JSON body's schema, when the route takes one.
    fn body(&self) -> Option<Value> {
        match (self.path, &self.method) {
            ("/router/events", _) => Some(schemas::event()),
            ("/router/events/batch", _) => Some(schemas::closed(
                &["events"],
                json!({"events": {"type": "array", "minItems": 1, "maxItems": crate::wire::MAX_BATCH, "items": schemas::event()}}),
            )),
            ("/router/responses", _) => Some(schemas::late_response()),
            ("/api/v1/ai/chat/completions", _) => Some(schemas::chat_completion()),
            ("/api/v1/ai/interaction", _) => Some(schemas::interaction()),
            ("/api/v1/ai/config", &Method::PUT) => Some(schemas::ai_settings()),
            (path, method) => schemas::admin_body(path, method),
        }
    }

    /// Whether the body may be left out (the overlay rotation's grace period has a default).
    fn body_optional(&self) -> bool {
        self.path.ends_with("/overlay/rotate")
    }

    /// The OpenAI-compatible routes answer in OpenAI's shapes.
    fn openai_shaped(&self) -> bool {
        matches!(
            self.path,
            "/api/v1/ai/chat/completions" | "/api/v1/ai/models"
        )
    }

    /// Routes answering `{"status":"success","data":…}`.
    fn enveloped(&self) -> bool {
        (self.path.starts_with("/router/") || self.path.starts_with("/api/v1/"))
            && !self.openai_shaped()
    }
}

fn doc(
    path: &'static str,
    method: Method,
    tag: &'static str,
    summary: &'static str,
    ok: &'static str,
) -> Doc {
    Doc {
        path,
        method,
        summary,
        tag,
        ok,
        filters: None,
    }
}

fn docs() -> Vec<Doc> {
    use Method as M;
    vec![
        doc(
            "/health",
            M::GET,
            "health",
            "Liveness: the process answers",
            "200",
        ),
        doc(
            "/healthz",
            M::GET,
            "health",
            "Readiness: the store (required) and the AI provider (reported)",
            "200",
        ),
        doc(
            "/metrics",
            M::GET,
            "health",
            "Prometheus text: router and HTTP metrics",
            "200",
        ),
        doc("/openapi.json", M::GET, "health", "This document", "200"),
        doc(
            "/router/commands",
            M::GET,
            "router",
            "Every command a community can run (built-in, custom, aliases, remote) with its module, level, cooldowns and whether it is on; a credential limited to a community reads that one",
            "200",
        )
        .list(&["community", "module", "q", "enabled"]),
        doc(
            "/router/entities",
            M::GET,
            "router",
            "The channels of every community (bot-wide credentials) or of the caller's",
            "200",
        )
        .list(&["platform", "community"]),
        doc(
            "/router/metrics",
            M::GET,
            "router",
            "A JSON summary of the metrics: uptime, events, commands, refusals, errors, latency, caches, the rate limiter",
            "200",
        ),
        doc(
            "/router/health",
            M::GET,
            "router",
            "The readiness checks of /healthz, behind the collector credential",
            "200",
        ),
        doc(
            "/router/events",
            M::POST,
            "router",
            "Handle one event and answer its replies",
            "200",
        ),
        doc(
            "/router/events/batch",
            M::POST,
            "router",
            "Handle 1 to 100 events concurrently",
            "200",
        ),
        doc(
            "/router/responses",
            M::POST,
            "router",
            "A module's late answer to a live session",
            "200",
        ),
        doc(
            "/webhooks/twitch/eventsub",
            M::POST,
            "webhooks",
            "Twitch EventSub deliveries (HMAC-signed)",
            "200",
        ),
        doc(
            "/webhooks/slack/events",
            M::POST,
            "webhooks",
            "Slack Events API (signing secret)",
            "200",
        ),
        doc(
            "/webhooks/slack/commands",
            M::POST,
            "webhooks",
            "Slack slash commands (signing secret)",
            "200",
        ),
        doc(
            "/webhooks/slack/interactivity",
            M::POST,
            "webhooks",
            "Slack block actions and view submissions",
            "200",
        ),
        doc(
            "/webhooks/discord/interactions",
            M::POST,
            "webhooks",
            "Discord interactions (Ed25519-signed)",
            "200",
        ),
        doc(
            "/api/v1/ai/chat/completions",
            M::POST,
            "ai",
            "OpenAI-compatible chat completions (SSE when stream is true)",
            "200",
        ),
        doc(
            "/api/v1/ai/models",
            M::GET,
            "ai",
            "The provider's models, in OpenAI's list shape",
            "200",
        ),
        doc(
            "/api/v1/ai/interaction",
            M::POST,
            "ai",
            "A chat message or event answered by the AI module",
            "200",
        ),
        doc(
            "/api/v1/ai/config",
            M::GET,
            "ai",
            "The AI settings in force, without secrets",
            "200",
        ),
        doc(
            "/api/v1/ai/config",
            M::PUT,
            "ai",
            "Replace the AI settings (the environment's names)",
            "200",
        ),
        doc(
            "/api/v1/communities",
            M::GET,
            "communities",
            "The communities the caller may see",
            "200",
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities",
            M::POST,
            "communities",
            "Create a community (bot admins)",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}",
            M::GET,
            "communities",
            "One community",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/entities",
            M::GET,
            "communities",
            "The channels whose chat the community gets",
            "200",
        )
        .list(&["platform", "server_id"]),
        doc(
            "/api/v1/communities/{id}/entities",
            M::PUT,
            "communities",
            "Give a channel's chat to the community (bot admins; it may move from another)",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/commands",
            M::GET,
            "commands",
            "A community's custom commands",
            "200",
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities/{id}/commands",
            M::POST,
            "commands",
            "Create a custom command (a name taken by a built-in command or an alias is 409)",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            M::GET,
            "commands",
            "One custom command",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            M::PUT,
            "commands",
            "Change a custom command's response",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/commands/{name}",
            M::DELETE,
            "commands",
            "Delete a custom command",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/aliases",
            M::GET,
            "commands",
            "A community's aliases",
            "200",
        )
        .list(&["q"]),
        doc(
            "/api/v1/communities/{id}/aliases",
            M::POST,
            "commands",
            "Create an alias (a name taken by a built-in, platform or custom command, or a target naming the alias itself, is 409)",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}/aliases/{name}",
            M::DELETE,
            "commands",
            "Delete an alias",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/modules",
            M::GET,
            "modules",
            "The modules and whether each is on here, with its settings",
            "200",
        )
        .list(&["q", "enabled"]),
        doc(
            "/api/v1/communities/{id}/modules/{name}",
            M::PATCH,
            "modules",
            "Install, turn on or off, or change a module's settings (config is a JSON merge patch; turning core off is 409)",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/grants",
            M::GET,
            "roles",
            "Levels granted to users on top of their platform badges",
            "200",
        )
        .list(&["platform", "level"]),
        doc(
            "/api/v1/communities/{id}/grants/{platform}/{user}",
            M::PUT,
            "roles",
            "Grant a user a level (above moderator: owners only)",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/grants/{platform}/{user}",
            M::DELETE,
            "roles",
            "Take a granted level back",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/rules",
            M::GET,
            "rules",
            "String-match rules, with match counts",
            "200",
        )
        .list(&["enabled", "match_type"]),
        doc(
            "/api/v1/communities/{id}/rules",
            M::POST,
            "rules",
            "Add a string-match rule (regexes are checked here)",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}/rules/{rule}",
            M::DELETE,
            "rules",
            "Remove a rule",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/remote-modules",
            M::GET,
            "remote modules",
            "Remote modules, with their health (never their secrets)",
            "200",
        )
        .list(&["q", "enabled"]),
        doc(
            "/api/v1/communities/{id}/remote-modules",
            M::POST,
            "remote modules",
            "Register a remote module; the answer shows its signing secret once",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}/remote-modules/{name}",
            M::DELETE,
            "remote modules",
            "Remove a remote module",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/overlay",
            M::GET,
            "overlay",
            "The overlay key and the browser-source URLs",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/overlay/rotate",
            M::POST,
            "overlay",
            "A new overlay key; the old one works for grace_secs more (default 600)",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/api-keys",
            M::GET,
            "api keys",
            "The community's API keys (never the keys themselves)",
            "200",
        )
        .list(&["q", "role", "revoked"]),
        doc(
            "/api/v1/communities/{id}/api-keys",
            M::POST,
            "api keys",
            "A new key for the community, shown once (at most the caller's role)",
            "201",
        ),
        doc(
            "/api/v1/communities/{id}/api-keys/{key}",
            M::DELETE,
            "api keys",
            "Revoke one of the community's keys",
            "200",
        ),
        doc(
            "/api/v1/api-keys",
            M::GET,
            "api keys",
            "Every API key (bot admins)",
            "200",
        )
        .list(&["q", "role", "revoked"]),
        doc(
            "/api/v1/api-keys",
            M::POST,
            "api keys",
            "A new key of any role, shown once (bot admins)",
            "201",
        ),
        doc(
            "/api/v1/api-keys/{key}",
            M::DELETE,
            "api keys",
            "Revoke a key (bot admins)",
            "200",
        ),
        doc(
            "/api/v1/communities/{id}/reputation",
            M::GET,
            "reputation",
            "The reputation leaderboard, best first: person, name, score (300–850) and tier",
            "200",
        )
        .list(&[]),
        doc(
            "/api/v1/communities/{id}/audit",
            M::GET,
            "audit",
            "A community's audit log, newest first",
            "200",
        )
        .list(&["action", "actor"]),
        doc(
            "/api/v1/audit",
            M::GET,
            "audit",
            "The whole audit log, newest first",
            "200",
        )
        .list(&["action", "actor"]),
    ]
}

/// The routes this document describes, as `(path, method)`.
pub fn described_routes() -> Vec<(&'static str, Method)> {
    docs().into_iter().map(|d| (d.path, d.method)).collect()
}

/// A path placeholder's schema.
fn path_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "id" => (json!({"type": "integer"}), "The community (its number)"),
        "rule" => (json!({"type": "integer"}), "The rule's id"),
        "platform" => (schemas::platform(), "The user's platform"),
        "key" => (json!({"type": "string"}), "The key's public id"),
        "user" => (json!({"type": "string"}), "The user's id on the platform"),
        _ => (json!({"type": "string"}), "The name"),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema, "description": description})
}

/// The path's `{placeholders}`, then paging and filters for lists.
fn parameters(route: &Doc) -> Vec<Value> {
    let mut list: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(path_parameter)
        .collect();
    if route.path.ends_with("/api-keys/{key}") {
        list.push(json!({"name": "cascade", "in": "query", "schema": {"type": "string"},
            "description": "true also revokes the keys this key made (as far as the caller may); any other value does not"}));
    }
    if let Some(filters) = route.filters {
        let pair = "Give limit and offset, or page and per_page: not both pairs";
        list.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}, "description": pair}));
        list.push(json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 0}, "description": pair}));
        list.push(json!({"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100_001, "default": 1}, "description": pair}));
        list.push(json!({"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}, "description": pair}));
        for filter in filters {
            let description = match *filter {
                "q" => "Part of the name (case-insensitive)",
                "action" => "The start of the action (command.)",
                "actor" => "Equal to the actor",
                _ => "Equal to this field (case-insensitive)",
            };
            if (route.path, *filter) == ("/router/commands", "community") {
                // Collectors and admins are bot-wide: they name the community.
                list.push(json!({"name": "community", "in": "query", "required": true,
                    "schema": {"type": "integer", "minimum": 1, "maximum": i64::MAX},
                    "description": "The community's number"}));
                continue;
            }
            list.push(json!({"name": filter, "in": "query", "schema": {"type": "string"}, "description": description}));
        }
    }
    list
}

/// A header an answer may carry.
fn header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "string"}})
}

/// What a route answers: its success, and every error it can give.
fn responses(route: &Doc) -> Value {
    let error_schema = if route.openai_shaped() {
        // The credential and server policies answer in the envelope before the route runs.
        json!({"anyOf": [{"$ref": "#/components/schemas/Error"}, schemas::openai_error()]})
    } else {
        json!({"$ref": "#/components/schemas/Error"})
    };
    let described = |text: &str| json!({"description": text, "content": {"application/json": {"schema": error_schema}}});
    let success = match (route.path, &route.method) {
        ("/metrics", _) => json!({"description": "Prometheus text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}}}),
        ("/api/v1/ai/chat/completions", _) => {
            json!({"description": "The answer; server-sent events when stream is true",
            "content": {
                "application/json": {"schema": schemas::chat_completion_answer()},
                "text/event-stream": {"schema": {"type": "object", "required": ["data"],
                    "properties": {"data": {"type": "string", "description": "A chat.completion.chunk as JSON, or [DONE]"}}}},
            }})
        }
        ("/api/v1/ai/models", _) => json!({"description": "The models",
            "content": {"application/json": {"schema": schemas::model_list()}}}),
        ("/health" | "/healthz" | "/router/health", _) => json!({"description": "Healthy",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}),
        ("/openapi.json", _) => json!({"description": "This document",
            "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}),
        _ if route.enveloped() => {
            let data = schemas::success_data(route.path, &route.method);
            json!({"description": "Success", "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Success"}, {"properties": {"data": data}}],
            }}}})
        }
        _ => json!({"description": "Success"}),
    };
    let mut out = json!({ route.ok: success });
    let open = route.path == "/health" || route.path == "/openapi.json";
    let authenticated = !open && route.path != "/healthz" && !route.path.starts_with("/webhooks/");
    out["400"] = described(if authenticated {
        "Invalid request (the message says what and where), or two different credentials"
    } else {
        "Invalid request"
    });
    if authenticated {
        let mut unauthorized = described("No valid credential");
        unauthorized["headers"] = json!({"WWW-Authenticate": header("Bearer")});
        out["401"] = unauthorized;
        out["403"] = described("The credential may not do this");
    }
    out["404"] = described("Not found (the community, the object, or the route)");
    if !open {
        // Every route can be refused while an address is locked out after failed credentials;
        // the admin API (and the AI routes' budgets) also count requests per principal.
        let mut limited = described(
            "Too many requests (admin rate limit, failed-credential lockout, or an AI budget); see Retry-After",
        );
        limited["headers"] = json!({"Retry-After": header("Seconds to wait")});
        out["429"] = limited;
    }
    out["414"] = described("The path and query are longer than the limit");
    if route.body().is_some() {
        out["413"] = described("The body is larger than the limit");
        out["415"] = described("The body is not JSON");
    }
    let conflicts = route.method == Method::POST && route.ok == "201"
        || route.path.ends_with("/modules/{name}")
        || route.path.ends_with("/api-keys/{key}")
        || route.path == "/router/responses";
    if conflicts {
        out["409"] =
            described("Conflicts with what exists (a name taken, a key already revoked...)");
    }
    if route.path.starts_with("/api/v1/ai/") && route.path != "/api/v1/ai/config" {
        out["502"] = described("The AI provider failed");
        out["504"] = described("The AI provider took too long");
    }
    if route.path == "/router/responses" {
        out["502"] = described("The platform refused the reply");
    }
    let mut unavailable = described(
        "The store (or the AI provider) is unavailable, or the request took too long; see Retry-After",
    );
    if route.path == "/healthz" || route.path == "/router/health" {
        unavailable = json!({"description": "A required check failed",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}});
    }
    unavailable["headers"] = json!({"Retry-After": header("Seconds to wait")});
    out["503"] = unavailable;
    out
}

/// A stable operation id: `put_api_v1_ai_config`.
fn operation_id(route: &Doc) -> String {
    let path: String = route
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut id = format!("{}_{path}", route.method.as_str().to_ascii_lowercase());
    while id.contains("__") {
        id = id.replace("__", "_");
    }
    id.trim_end_matches('_').to_owned()
}

/// Writes the models callers may name (`AI_API_MODELS`, else the providers') into the chat
/// completion request's `model`, so the document says what the server will accept; with none
/// offered, `model` must be left out or null.
pub(crate) fn offer_models(document: &mut Value, models: &[String]) {
    let model = document.pointer_mut(
        "/paths/~1api~1v1~1ai~1chat~1completions/post/requestBody/content/application~1json/schema/properties/model",
    );
    if let Some(model) = model {
        let mut allowed: Vec<Value> = models.iter().map(|m| json!(m)).collect();
        allowed.push(Value::Null);
        *model = json!({
            "description": "One of the models this server offers (GET /api/v1/ai/models lists the provider's); left out or null: the server's own",
            "type": ["string", "null"],
            "enum": allowed,
        });
    }
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
            "operationId": operation_id(&route),
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
        if let Some(schema) = route.body() {
            operation["requestBody"] = json!({
                "required": !route.body_optional(),
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
            "description": "The WaddleBot reference server: router API, platform webhooks, AI and admin API. Answers use {\"status\":\"success\",\"data\":…} or {\"status\":\"error\",\"message\":…} (the AI completion routes use OpenAI's shapes). A method a path does not take is 405 with Allow.",
        },
        "components": {
            "schemas": {
                "Success": {"type": "object", "required": ["status", "data"], "properties": {"status": {"const": "success"}, "data": {}}},
                "Error": {"type": "object", "required": ["status", "message"], "properties": {"status": {"const": "error"}, "message": {"type": "string"}}},
                "Health": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["healthy", "degraded"]}, "checks": {"type": "object"}}},
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key (wbot_…) or a JWT (HS256 or RS256, as configured); X-API-Key: <key> works too"}
            }
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_once_with_a_unique_operation_id() {
        let routes = docs();
        let mut ids: Vec<String> = routes.iter().map(operation_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), routes.len());
        assert!(ids.contains(&"put_api_v1_ai_config".to_owned()));
    }

    #[test]
    fn bodies_refuse_unknown_fields_where_the_handlers_do() {
        let document = document();
        let create = &document["paths"]["/api/v1/communities"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(create["additionalProperties"], json!(false));
        assert_eq!(create["required"], json!(["name"]));
    }
}

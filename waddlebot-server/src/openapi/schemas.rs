//! The JSON Schemas of request bodies and answers. Each says what the handler accepts, no more
//! and no less: lengths, patterns and enumerations are the handler's own checks written as
//! schema, so a client (or a fuzzer) that follows the document is accepted and one that breaks
//! it is refused. `.ci/schemathesis.sh` holds the two to each other against a running server.
//!
//! Patterns are ECMA-262 regexes; where a handler trims or tests characters with Rust's
//! `char` methods, the pattern spells out the same classes ([`SPACE`], [`NAME_CHAR`]) instead
//! of ECMA's `\s` and `\w`, which differ from them.

use serde_json::{Value, json};

/// Longest id or name in an event (the router API's limit).
const MAX_ID: usize = crate::wire::MAX_ID_CHARS;

/// What Rust's `trim` and `char::is_whitespace` count as white space, as a class. Patterns are
/// ECMA-262 regexes, whose `\s` differs (it has U+FEFF, and lacks U+0085).
const SPACE: &str =
    "[\t-\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";
/// Any character but [`SPACE`].
const NOT_SPACE: &str =
    "[^\t-\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";
/// A character of a command or module name: what `char::is_alphanumeric` takes, `-` and `_`.
/// (U+0130 is left out: names are lower-cased before they are checked, and its lower case,
/// `i` and a combining dot, is not alphanumeric.)
const NAME_CHAR: &str = r"(?:(?!\u0130)[\p{Alpha}\p{N}_-])";

/// A text with something besides whitespace in it, at most `max` characters.
pub(super) fn nonblank(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": NOT_SPACE})
}

/// A name: not blank, no control characters, at most `max` characters.
pub(super) fn label(max: usize) -> Value {
    // `char::is_control` is the Cc category: U+0000-U+001F and U+007F-U+009F.
    const ANY: &str = r"[^\x00-\x1f\x7f-\x9f]";
    const VISIBLE: &str = "[^\\x00-\\x1f\\x7f-\\x9f \u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";
    json!({
        "type": "string", "minLength": 1, "maxLength": max,
        "pattern": format!("^{ANY}*{VISIBLE}{ANY}*$"),
    })
}

/// A command or module name as chat writes it: one optional `!`, `#` or `/`, then 1 to 32
/// letters, digits, `-` or `_` (surrounding whitespace is ignored).
pub(super) fn command_name() -> Value {
    json!({"type": "string", "pattern": format!("^{SPACE}*[!#/]?{NAME_CHAR}{{1,32}}{SPACE}*$")})
}

/// `schema`, or `null` (an optional field the handler reads as absent).
pub(super) fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// An object with exactly these properties (the handlers refuse unknown fields).
pub(super) fn closed(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties, "additionalProperties": false})
}

/// An object with these properties; others are ignored (OpenAI's and the original system's
/// shapes, which grow).
pub(super) fn open(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn integer(min: i64, max: i64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

fn text() -> Value {
    json!({"type": "string"})
}

/// The built-in platforms.
pub(super) fn platform() -> Value {
    let names: Vec<&str> = waddlebot::PlatformKind::BUILT_IN
        .iter()
        .map(waddlebot::PlatformKind::as_str)
        .collect();
    json!({"type": "string", "enum": names})
}

/// A custom command's response: at most 2000 characters, not blank, braces only as `{{`, `}}`
/// or a known variable (`{user}`, `{arg1}`, `{random 0-6}`...). The server takes any
/// `{random A-B}` with A ≤ B, which a pattern cannot compare; the one written here starts at
/// zero or below and ends at zero or above.
fn template(max: usize) -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": max,
        "pattern": template_text(true),
        "allOf": [{"pattern": NOT_SPACE}],
    })
}

/// Text in which braces are only `{{`, `}}` or a known variable (`{count}` when `count`).
fn template_text(count: bool) -> String {
    let count = if count { "|count" } else { "" };
    let var = format!(
        "{SPACE}*(?i:user|username|touser|args|all_args|channel|platform{count}|arg0*[1-9][0-9]{{0,8}}|random{SPACE}+(?:-[0-9]{{1,18}}|0+){SPACE}*-{SPACE}*[0-9]{{1,18}}){SPACE}*"
    );
    format!(r"^(?:[^{{}}]|\{{\{{|\}}\}}|\{{{var}\}})*$")
}

/// One event, as a collector sends it to `/router/events`.
pub(super) fn event() -> Value {
    let id = nonblank(MAX_ID);
    closed(
        &[
            "platform",
            "server_id",
            "channel_id",
            "user_id",
            "username",
            "message",
        ],
        json!({
            "platform": platform(),
            "server_id": id, "channel_id": id, "user_id": id, "username": id,
            "display_name": nullable(json!({"type": "string", "maxLength": MAX_ID})),
            "message": {"type": "string", "maxLength": crate::wire::MAX_MESSAGE_CHARS},
            "message_type": nullable(json!({"type": "string", "enum": crate::wire::MESSAGE_TYPES})),
            "metadata": nullable(json!({"type": "object"})),
            "event_id": nullable(id.clone()),
            "entity_id": {"description": "Accepted for compatibility; the router finds the entity itself"},
            "command": nullable(text()),
            "timestamp": {"description": "Unix seconds (a number); anything else means now"},
        }),
    )
}

/// A module's late answer, `/router/responses`: what each `response_action` needs.
pub(super) fn late_response() -> Value {
    let base = json!({
        "session_id": text(), "entity_id": integer(i64::MIN, i64::MAX), "module_name": text(),
        "success": {"type": "boolean"}, "response_action": text(),
        "chat_message": nullable(text()), "response_data": nullable(json!({"type": "object"})),
        "media_type": nullable(text()), "media_url": nullable(text()),
        "ticker_text": nullable(text()), "ticker_duration": nullable(integer(0, u32::MAX.into())),
        "content": nullable(text()), "duration": nullable(integer(0, u32::MAX.into())),
        "error_message": nullable(text()),
    });
    let required = ["session_id", "entity_id", "module_name", "response_action"];
    let with = |action: &str, field: Option<(&str, Value)>| {
        let mut properties = base.clone();
        properties["success"] = json!({"const": true});
        properties["response_action"] = json!({"const": action});
        let mut needed = required.to_vec();
        if let Some((name, schema)) = field {
            properties[name] = schema;
            needed.push(name);
        }
        open(&needed, properties)
    };
    let filled = json!({"type": "string", "pattern": NOT_SPACE});
    let mut failed = base.clone();
    failed["success"] = json!({"const": false});
    json!({
        "description": "success false records the module's failure and delivers nothing; otherwise each response_action needs its field",
        "oneOf": [
            open(&[&required[..], &["success"]].concat(), failed),
            with("chat", Some(("chat_message", filled.clone()))),
            with("ticker", Some(("ticker_text", nonblank(crate::wire::MAX_TICKER_CHARS)))),
            with("media", Some(("media_url", filled.clone()))),
            with("general", Some(("content", filled))),
        ],
    })
}

/// An OpenAI chat completion request (the fields WaddleBot reads; others are ignored).
pub(super) fn chat_completion() -> Value {
    let tokens = nullable(integer(0, u32::MAX.into()));
    let mut request = open(
        &["messages"],
        json!({
            "model": nullable(text()),
            "messages": {"type": "array", "minItems": 1, "items": open(&["role", "content"], json!({
                "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
                "content": {
                    "description": "Text, or OpenAI's content parts (the text of each is joined); at most 10000 characters in all the messages",
                    "type": ["string", "array", "null"], "maxLength": 10_000,
                },
            }))},
            "temperature": nullable(json!({"type": "number", "minimum": 0, "maximum": 2})),
            "max_tokens": tokens,
            "max_completion_tokens": tokens,
            "stream": {"type": "boolean"},
            "stream_options": nullable(open(&[], json!({"include_usage": {"type": "boolean"}}))),
        }),
    );
    // max_completion_tokens, when given, is the limit, and max_tokens is then only read; a
    // limit above the server's maximum (AI_API_MAX_TOKENS) is lowered to it.
    request["anyOf"] = json!([
        {"required": ["max_completion_tokens"],
         "properties": {"max_completion_tokens": integer(1, u32::MAX.into())}},
        {"properties": {"max_completion_tokens": {"type": "null"}, "max_tokens": nullable(integer(1, u32::MAX.into()))}},
    ]);
    request
}

/// The original's `/api/v1/ai/interaction` body.
pub(super) fn interaction() -> Value {
    closed(
        &["message_type", "user_id", "entity_id", "platform"],
        json!({
            "session_id": nullable(text()),
            "message_type": {"type": "string", "minLength": 1, "description": "chatMessage, follow, subscription, raid, cheer; any other name is a custom event"},
            "message_content": {"type": "string", "maxLength": 10_000},
            "user_id": {"type": "string", "pattern": NOT_SPACE},
            "username": nullable(text()),
            "display_name": nullable(text()),
            "entity_id": {"type": "string", "pattern": NOT_SPACE, "description": "The channel"},
            "platform": platform(),
        }),
    )
}

/// `PUT /api/v1/ai/config`: the environment's names, string values.
pub(super) fn ai_settings() -> Value {
    closed(
        &["settings"],
        json!({"settings": {
            "type": "object",
            "propertyNames": {"enum": waddlebot_ai::SETTING_NAMES},
            "additionalProperties": text(),
            "description": "AI_PROVIDER (ollama, waddleai, openai or a chain) and the settings of the providers it names; without AI_PROVIDER, AI is off",
        }}),
    )
}

/// A new API key; `bot_wide` adds `community_id` (the community route takes it from the path
/// and hands out community roles only).
pub(super) fn new_key(bot_wide: bool) -> Value {
    let name = label(64);
    let days = nullable(integer(1, 3650));
    let community_roles =
        json!({"type": "string", "enum": ["owner", "community_admin", "moderator", "viewer"]});
    if !bot_wide {
        return closed(
            &["name", "role"],
            json!({"name": name, "role": community_roles, "expires_in_days": days}),
        );
    }
    json!({"oneOf": [
        closed(&["name", "role"], json!({
            "name": name, "role": {"type": "string", "enum": ["admin", "collector"]},
            "community_id": {"type": "null"}, "expires_in_days": days,
        })),
        closed(&["name", "role", "community_id"], json!({
            "name": name, "role": community_roles,
            "community_id": integer(i64::MIN, i64::MAX), "expires_in_days": days,
        })),
    ]})
}

/// A string-match rule. A regex must compile; a command action is a command line; a webhook
/// is an http(s) URL with a public host.
pub(super) fn new_rule() -> Value {
    let max = waddlebot_router::rules::MAX_PATTERN_LEN;
    let common = |match_types: Value, pattern: Value| {
        closed(
            &["pattern", "match_type", "action"],
            json!({
                "pattern": pattern,
                "match_type": match_types,
                "case_sensitive": {"type": "boolean"},
                "priority": integer(i32::MIN.into(), i32::MAX.into()),
                "enabled": {"type": "boolean"},
                "action": {"oneOf": [
                    open(&["type"], json!({"type": {"const": "warn"}, "message": nullable(text())})),
                    open(&["type"], json!({"type": {"const": "block"}, "message": nullable(text()),
                        "timeout_secs": nullable(integer(0, i64::MAX))})),
                    open(&["type", "command"], json!({"type": {"const": "command"},
                        "command": {"type": "string", "pattern": format!("^{SPACE}*[!#]")}})),
                    open(&["type", "url"], json!({"type": {"const": "webhook"}, "url": public_url()})),
                ]},
            }),
        )
    };
    json!({"oneOf": [
        common(json!({"type": "string", "enum": ["exact", "contains", "word"]}), nonblank(max)),
        common(json!({"const": "regex"}), json!({
            "type": "string", "minLength": 1, "maxLength": max, "format": "regex",
            "pattern": NOT_SPACE, "description": "A regular expression (Rust regex syntax)",
        })),
    ]})
}

/// An http(s) URL whose host is a public name (loopback, private and link-local addresses are
/// refused).
fn public_url() -> Value {
    json!({
        "type": "string", "format": "uri",
        "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?::[0-9]{1,4})?(?:/[!-~]*)?$",
        "description": "http(s), a public host",
    })
}

/// A remote module registration.
pub(super) fn new_remote() -> Value {
    let name = json!({"type": "string", "pattern": format!("^{NAME_CHAR}{{1,32}}$")});
    let list = json!({"type": "array", "items": command_name()});
    let events = json!({"type": "array", "items": text()});
    let properties = |commands: Value, events: Value| {
        json!({
            "name": name, "url": public_url(),
            "secret": nullable(json!({"type": "string", "minLength": 16, "description": "At least 16 bytes; generated when left out"})),
            "commands": commands, "events": events,
            "timeout_ms": integer(1, 30_000),
            "kind": nullable(json!({"oneOf": [
                open(&["type"], json!({"type": {"const": "webhook"}})),
                open(&["type", "namespace", "action", "auth"], json!({
                    "type": {"enum": ["openwhisk", "open_whisk"]}, "namespace": {"type": "string", "minLength": 1},
                    "action": {"type": "string", "minLength": 1}, "auth": {"type": "string", "pattern": ":"},
                })),
            ]})),
            "enabled": {"type": "boolean"},
        })
    };
    let mut with_commands = list.clone();
    with_commands["minItems"] = json!(1);
    let mut with_events = events.clone();
    with_events["minItems"] = json!(1);
    json!({
        "description": "at least one command or event kind",
        "anyOf": [
            closed(&["name", "url", "commands"], properties(with_commands, events)),
            closed(&["name", "url", "events"], properties(list, with_events)),
        ],
    })
}

/// The bodies of the admin routes that take one, by route.
pub(super) fn admin_body(path: &str, method: &http::Method) -> Option<Value> {
    use http::Method;
    let base = "/api/v1/communities/{id}";
    Some(match (path.strip_prefix(base).unwrap_or(path), method) {
        ("/api/v1/communities", &Method::POST) => closed(&["name"], json!({"name": label(100)})),
        ("/entities", &Method::PUT) => closed(
            &["platform", "server_id", "channel_id"],
            json!({"platform": platform(), "server_id": nonblank(MAX_ID), "channel_id": nonblank(MAX_ID)}),
        ),
        ("/commands", &Method::POST) => closed(
            &["name", "response"],
            json!({"name": command_name(), "response": template(2000)}),
        ),
        ("/commands/{name}", &Method::PUT) => {
            closed(&["response"], json!({"response": template(2000)}))
        }
        ("/aliases", &Method::POST) => closed(
            &["name", "target"],
            json!({"name": command_name(), "target": {
                "type": "string", "description": "A command line (!quote search); ! is added when missing",
                "allOf": [{"pattern": template_text(false)}],
                "pattern": format!(r#"^{SPACE}*["']?{SPACE}*[!#]?{}"#, NOT_SPACE.replace(']', r#"!#"'{}]"#)),
            }}),
        ),
        ("/modules/{name}", &Method::PATCH) => json!({
            "anyOf": [
                closed(&["enabled"], json!({"enabled": {"type": "boolean"}, "config": nullable(json!({"type": "object"}))})),
                closed(&["config"], json!({"enabled": nullable(json!({"type": "boolean"})), "config": {"type": "object", "description": "A JSON merge patch on the settings"}})),
            ],
        }),
        ("/grants/{platform}/{user}", &Method::PUT) => closed(
            &["level"],
            json!({"level": {"type": "string", "enum": waddlebot::PermissionLevel::ALL.map(|l| l.as_str())}}),
        ),
        ("/rules", &Method::POST) => new_rule(),
        ("/remote-modules", &Method::POST) => new_remote(),
        ("/overlay/rotate", &Method::POST) => {
            closed(&[], json!({"grace_secs": nullable(integer(0, 86_400))}))
        }
        ("/api-keys", &Method::POST) => new_key(false),
        ("/api/v1/api-keys", &Method::POST) => new_key(true),
        _ => return None,
    })
}

/// What a successful answer's `data` holds, by route (`{}` when not described further).
pub(super) fn success_data(path: &str, method: &http::Method) -> Value {
    use http::Method;
    let int = json!({"type": "integer"});
    let ms = nullable(int.clone());
    let community = open(
        &["id", "name", "created_at_ms"],
        json!({"id": int, "name": text(), "created_at_ms": int}),
    );
    let command = open(
        &["name", "response", "created_by"],
        json!({"name": text(), "response": text(), "created_by": text(), "created_at_ms": int, "updated_at_ms": int}),
    );
    let alias = open(
        &["name", "target"],
        json!({"name": text(), "target": text(), "created_by": text(), "created_at_ms": int}),
    );
    let module = open(
        &["name", "enabled", "config"],
        json!({"name": text(), "known": {"type": "boolean"}, "optional": {"type": "boolean"},
               "commands": {"type": "array", "items": text()}, "enabled": {"type": "boolean"},
               "installed": {"type": "boolean"}, "config": {"type": "object"},
               "updated_by": nullable(text()), "updated_at_ms": ms}),
    );
    let grant = open(
        &["platform", "user_id", "level"],
        json!({"platform": text(), "user_id": text(), "level": text(), "granted_by": text(), "granted_at_ms": int}),
    );
    let rule = open(
        &["id", "pattern", "match_type", "action", "enabled"],
        json!({"id": int, "pattern": text(), "match_type": text(), "action": {"type": "object"},
               "enabled": {"type": "boolean"}, "match_count": int, "last_matched_ms": ms}),
    );
    let remote = open(
        &["name", "url", "commands", "events", "enabled"],
        json!({"name": text(), "url": text(), "commands": {"type": "array"}, "events": {"type": "array"},
               "timeout_ms": int, "kind": {"type": "object"}, "enabled": {"type": "boolean"},
               "health": {"type": "object"}}),
    );
    let key = open(
        &["id", "name", "role", "revoked"],
        json!({"id": text(), "name": text(), "role": text(), "community_id": ms,
               "created_at_ms": int, "expires_at_ms": ms, "last_used_at_ms": ms,
               "revoked_at_ms": ms, "revoked": {"type": "boolean"}}),
    );
    let overlay = open(
        &["key", "url", "sources"],
        json!({"key": text(), "url": text(), "sources": {"type": "object"}}),
    );
    let audit = open(
        &["id", "actor", "action", "target", "at_ms"],
        json!({"id": int, "actor": text(), "action": text(), "target": text(), "community_id": ms, "at_ms": int}),
    );
    let leader = open(
        &["person", "score", "tier"],
        json!({"person": text(), "name": text(), "tier": text(),
               "score": {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "description": "300.00 to 850.00"}}),
    );
    let pagination = open(
        &["page", "per_page", "total", "pages"],
        json!({"page": integer(1, 100_001), "per_page": integer(1, 100), "total": int, "pages": int}),
    );
    let page = |item: &Value| {
        open(
            &["items", "limit", "offset", "total", "pagination"],
            json!({"items": {"type": "array", "items": item}, "limit": integer(1, 100), "offset": int,
                   "total": int, "pagination": pagination}),
        )
    };
    let deleted = open(&["deleted"], json!({}));
    let entity = open(
        &["id", "platform", "server_id", "channel_id"],
        json!({"id": int, "platform": text(), "server_id": text(), "channel_id": text(), "created_at_ms": int}),
    );
    let base = "/api/v1/communities/{id}";
    match (path.strip_prefix(base).unwrap_or(path), method) {
        ("/api/v1/communities", &Method::GET) => page(&community),
        ("/api/v1/communities", &Method::POST) | ("", &Method::GET) => community,
        ("/entities", &Method::GET) => page(&entity),
        ("/entities", &Method::PUT) => open(
            &["id", "community_id"],
            json!({"id": int, "community_id": int}),
        ),
        ("/commands", &Method::GET) => page(&command),
        ("/commands", &Method::POST) | ("/commands/{name}", &Method::GET | &Method::PUT) => command,
        ("/aliases", &Method::GET) => page(&alias),
        ("/aliases", &Method::POST) => alias,
        ("/modules", &Method::GET) => page(&module),
        ("/modules/{name}", &Method::PATCH) => module,
        ("/grants", &Method::GET) => page(&grant),
        ("/grants/{platform}/{user}", &Method::PUT) => grant,
        ("/rules", &Method::GET) => page(&rule),
        ("/rules", &Method::POST) => rule,
        ("/remote-modules", &Method::GET) => page(&remote),
        ("/remote-modules", &Method::POST) => {
            let mut shown = remote;
            shown["properties"]["secret"] = text();
            shown["required"] = json!(["name", "url", "commands", "events", "enabled", "secret"]);
            shown
        }
        ("/overlay", &Method::GET) | ("/overlay/rotate", &Method::POST) => overlay,
        ("/api-keys" | "/api/v1/api-keys", &Method::GET) => page(&key),
        ("/api-keys" | "/api/v1/api-keys", &Method::POST) => {
            let mut shown = key;
            shown["properties"]["key"] =
                json!({"type": "string", "pattern": "^wbot_[0-9a-f]{80}$"});
            shown["required"] = json!(["id", "name", "role", "revoked", "key"]);
            shown
        }
        ("/api-keys/{key}" | "/api/v1/api-keys/{key}", &Method::DELETE) => open(
            &["revoked"],
            json!({"revoked": text(), "also_revoked": {"type": "array", "items": text()},
                       "not_revoked": {"type": "array", "items": text()}}),
        ),
        ("/router/commands", &Method::GET) => page(&open(
            &["name", "kind", "community", "module", "enabled"],
            json!({"name": text(), "kind": {"enum": ["builtin", "custom", "alias", "remote"]},
                   "community": int, "module": text(), "enabled": {"type": "boolean"},
                   "level": text(), "user_cooldown_secs": int, "global_cooldown_secs": int}),
        )),
        ("/router/entities", &Method::GET) => {
            let mut shown = entity.clone();
            shown["properties"]["community"] = int.clone();
            page(&shown)
        }
        ("/router/metrics", &Method::GET) => open(
            &[
                "uptime_secs",
                "events",
                "commands",
                "refusals",
                "errors",
                "latency_ms",
                "caches",
                "rate_limiter",
            ],
            json!({"uptime_secs": int, "events": {"type": "object"}, "commands": {"type": "object"},
                   "refusals": {"type": "object"}, "errors": {"type": "object"},
                   "latency_ms": {"type": "object"}, "caches": {"type": "object"},
                   "rate_limiter": {"type": "object"}}),
        ),
        ("/reputation", &Method::GET) => page(&leader),
        ("/audit" | "/api/v1/audit", &Method::GET) => page(&audit),
        (_, &Method::DELETE) => deleted,
        ("/router/events", _) => open(
            &[
                "session_id",
                "community_id",
                "entity_id",
                "processed",
                "replies",
            ],
            json!({"session_id": text(), "community_id": int, "entity_id": int,
                   "processed": {"type": "boolean"}, "command": nullable(text()),
                   "replies": {"type": "array"}}),
        ),
        ("/router/events/batch", _) => open(
            &["results", "count"],
            json!({"results": {"type": "array", "items": open(&["status"], json!({
                "status": {"enum": ["success", "error"]}}))}, "count": integer(1, 100)}),
        ),
        ("/router/responses", _) => open(&["delivered"], json!({"delivered": integer(0, 1)})),
        ("/api/v1/ai/interaction", _) => open(
            &["session_id", "responses"],
            json!({"session_id": text(), "response": nullable(text()),
                   "responses": {"type": "array", "items": text()}}),
        ),
        ("/api/v1/ai/config", _) => open(&["enabled"], json!({"enabled": {"type": "boolean"}})),
        _ => json!({}),
    }
}

/// OpenAI's error envelope.
pub(super) fn openai_error() -> Value {
    open(
        &["error"],
        json!({"error": open(&["message", "type"], json!({"message": text(), "type": text()}))}),
    )
}

/// `POST /api/v1/ai/chat/completions` answered whole.
pub(super) fn chat_completion_answer() -> Value {
    open(
        &["id", "object", "created", "model", "choices"],
        json!({
            "id": text(), "object": {"const": "chat.completion"}, "created": {"type": "integer"},
            "model": text(),
            "choices": {"type": "array", "items": open(&["index", "message"], json!({
                "index": {"type": "integer"},
                "message": open(&["role", "content"], json!({"role": {"const": "assistant"}, "content": text()})),
            }))},
            "usage": {"type": "object"},
        }),
    )
}

/// `GET /api/v1/ai/models`.
pub(super) fn model_list() -> Value {
    open(
        &["object", "data"],
        json!({"object": {"const": "list"}, "data": {"type": "array", "items": open(&["id", "object"], json!({
            "id": text(), "object": {"const": "model"},
        }))}}),
    )
}

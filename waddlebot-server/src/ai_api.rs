//! The AI endpoints: an OpenAI-compatible `POST /api/v1/ai/chat/completions` (whole, or
//! streamed as server-sent events when `stream` is true, so OpenAI's client libraries work
//! against it unchanged), `GET /api/v1/ai/models`, and the original's
//! `POST /api/v1/ai/interaction`, which runs a chat message or event through the bot's AI
//! module.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::{AiError, ChatMessage, ChatRequest, Event, EventKind, PlatformKind, Role, Sender};

use crate::app::{App, BoxError, Failure, ResponseBody, json};

/// The longest conversation accepted, in characters of content.
const MAX_PROMPT_CHARS: usize = 10_000;

/// What callers of `/api/v1/ai/chat/completions` may spend of the operator's provider: the
/// models they may name, the tokens one answer may take, and a budget per caller (credential,
/// or address without one) per minute. A request's tokens are counted before it is sent: its
/// `max_tokens` (after clamping) plus its prompt at four characters a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiApiPolicy {
    /// Models a request may name (`AI_API_MODELS`); empty: those of the configured providers.
    pub models: Vec<String>,
    /// The most tokens one answer may take (`AI_API_MAX_TOKENS`, default 1,024); a larger
    /// `max_tokens` is lowered to it, and a request without one gets it.
    pub max_tokens: u32,
    /// Requests per caller per minute (`AI_API_REQUESTS_PER_MINUTE`, default 20; 0: no limit).
    pub requests_per_minute: u32,
    /// Tokens per caller per minute (`AI_API_TOKENS_PER_MINUTE`, default 20,000; 0: no
    /// limit).
    pub tokens_per_minute: u64,
}

impl Default for AiApiPolicy {
    fn default() -> Self {
        Self {
            models: Vec::new(),
            max_tokens: 1024,
            requests_per_minute: 20,
            tokens_per_minute: 20_000,
        }
    }
}

/// Each caller's spending in the current minute.
#[derive(Debug, Default)]
pub(crate) struct AiBudgets {
    spent: std::sync::Mutex<std::collections::HashMap<String, Spent>>,
}

#[derive(Debug, Clone, Copy)]
struct Spent {
    since: std::time::Instant,
    requests: u32,
    tokens: u64,
}

/// Most callers tracked at once; past it, finished minutes are dropped.
const MAX_BUDGETS: usize = 100_000;
const BUDGET_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl AiBudgets {
    /// Charges `tokens` and one request to `caller`; the wait when that goes over its budget.
    fn charge(
        &self,
        caller: &str,
        tokens: u64,
        policy: &AiApiPolicy,
    ) -> Result<(), std::time::Duration> {
        let now = std::time::Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if spent.len() >= MAX_BUDGETS {
            spent.retain(|_, s| now.duration_since(s.since) < BUDGET_WINDOW);
        }
        let entry = spent.entry(caller.to_owned()).or_insert(Spent {
            since: now,
            requests: 0,
            tokens: 0,
        });
        if now.duration_since(entry.since) >= BUDGET_WINDOW {
            *entry = Spent {
                since: now,
                requests: 0,
                tokens: 0,
            };
        }
        let over_requests =
            policy.requests_per_minute > 0 && entry.requests >= policy.requests_per_minute;
        let over_tokens =
            policy.tokens_per_minute > 0 && entry.tokens + tokens > policy.tokens_per_minute;
        if over_requests || over_tokens {
            return Err(BUDGET_WINDOW.saturating_sub(now.duration_since(entry.since)));
        }
        entry.requests += 1;
        entry.tokens += tokens;
        Ok(())
    }
}

/// An OpenAI chat completion request (the fields WaddleBot uses; others are ignored).
#[derive(Debug, Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<IncomingMessage>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct IncomingMessage {
    role: String,
    /// A string, or OpenAI's list of content parts (their text is joined).
    content: Value,
}

/// OpenAI's error envelope.
fn openai_error(status: StatusCode, message: &str, kind: &str) -> Response<ResponseBody> {
    json(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

/// An [`AiError`] as the status and error body an OpenAI client expects.
fn ai_failure(err: &AiError) -> Response<ResponseBody> {
    let message = err.to_string();
    match err {
        AiError::NotConfigured(_) => {
            openai_error(StatusCode::SERVICE_UNAVAILABLE, &message, "not_configured")
        }
        AiError::Auth(_) => openai_error(StatusCode::BAD_GATEWAY, &message, "upstream_auth_error"),
        AiError::RateLimited { retry_after } => {
            let mut response =
                openai_error(StatusCode::TOO_MANY_REQUESTS, &message, "rate_limit_error");
            if let Some(wait) = retry_after
                && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        AiError::BadRequest(_) => {
            openai_error(StatusCode::BAD_REQUEST, &message, "invalid_request_error")
        }
        AiError::Timeout(_) => openai_error(StatusCode::GATEWAY_TIMEOUT, &message, "timeout"),
        _ => openai_error(StatusCode::BAD_GATEWAY, &message, "upstream_error"),
    }
}

fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Checks the request and makes it a [`ChatRequest`]; the message says what is wrong.
fn to_chat_request(request: CompletionRequest) -> Result<(ChatRequest, bool, bool), String> {
    if request.messages.is_empty() {
        return Err("messages must hold at least one message".to_owned());
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    let mut total = 0;
    for (i, message) in request.messages.iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => return Err(format!("messages[{i}].role '{other}' is not supported")),
        };
        let content = text_of(&message.content)
            .ok_or_else(|| format!("messages[{i}].content must be text"))?;
        total += content.chars().count();
        messages.push(ChatMessage { role, content });
    }
    if total > MAX_PROMPT_CHARS {
        return Err(format!(
            "the messages hold {total} characters; at most {MAX_PROMPT_CHARS} are accepted"
        ));
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err("temperature must be from 0 to 2".to_owned());
    }
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    if max_tokens == Some(0) {
        return Err("max_tokens must be at least 1".to_owned());
    }
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    Ok((
        ChatRequest {
            model: request.model.filter(|m| !m.is_empty()),
            messages,
            temperature: request.temperature,
            max_tokens,
        },
        request.stream,
        include_usage,
    ))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn usage_json(usage: waddlebot::Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    })
}

fn sse_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

impl App {
    fn ai(&self) -> Result<std::sync::Arc<dyn waddlebot::AiProvider>, Box<Response<ResponseBody>>> {
        self.state().ai.get().ok_or_else(|| {
            Box::new(openai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "AI is not configured on this server: {}",
                    waddlebot_ai::HOW_TO_CONFIGURE
                ),
                "not_configured",
            ))
        })
    }

    /// `POST /api/v1/ai/chat/completions`.
    pub(crate) async fn ai_completions<B>(
        &self,
        request: Request<B>,
        caller: Option<&crate::auth::Principal>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let provider = match self.ai() {
            Ok(provider) => provider,
            Err(response) => return Ok(*response),
        };
        let incoming: CompletionRequest = match self.read_json(request).await {
            Ok(incoming) => incoming,
            Err(Failure(status, message)) => {
                return Ok(openai_error(status, &message, "invalid_request_error"));
            }
        };
        let (mut chat, stream, include_usage) = match to_chat_request(incoming) {
            Ok(parts) => parts,
            Err(message) => {
                return Ok(openai_error(
                    StatusCode::BAD_REQUEST,
                    &message,
                    "invalid_request_error",
                ));
            }
        };
        if let Err(refused) = self.within_ai_policy(&mut chat, caller) {
            return Ok(*refused);
        }
        let id = completion_id();
        let created = now_secs();
        if !stream {
            return Ok(match provider.chat(chat).await {
                Ok(answer) => {
                    let mut body = json!({
                        "id": id, "object": "chat.completion", "created": created, "model": answer.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.content},
                                     "finish_reason": "stop"}],
                    });
                    if let Some(usage) = answer.usage {
                        body["usage"] = usage_json(usage);
                    }
                    json(StatusCode::OK, &body)
                }
                Err(err) => ai_failure(&err),
            });
        }
        let fallback_model = chat
            .model
            .clone()
            .unwrap_or_else(|| provider.name().to_owned());
        let chunks = match provider.chat_stream(chat).await {
            Ok(chunks) => chunks,
            Err(err) => return Ok(ai_failure(&err)),
        };
        // Each provider chunk becomes one `chat.completion.chunk` event; the role comes with
        // the first, usage (when asked for) in a chunk of its own, then `[DONE]`. A failure
        // mid-stream is an error event, and the stream ends.
        let mut first = true;
        let mut usage = None;
        let chunk_id = id.clone();
        let events = chunks
            .scan(false, |stopped, item| {
                if *stopped {
                    return std::future::ready(None);
                }
                *stopped = item.is_err();
                std::future::ready(Some(item))
            })
            .map(move |item| match item {
                Ok(chunk) => {
                    if chunk.usage.is_some() {
                        usage = chunk.usage;
                    }
                    let mut delta = json!({"content": chunk.content});
                    if first {
                        delta["role"] = json!("assistant");
                        first = false;
                    }
                    let event = json!({
                        "id": chunk_id, "object": "chat.completion.chunk", "created": created,
                        "model": chunk.model.unwrap_or_else(|| fallback_model.clone()),
                        "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
                    });
                    let mut bytes = sse_event(&event).to_vec();
                    if include_usage && chunk.finish_reason.is_some()
                        && let Some(usage) = usage
                    {
                        let closing = json!({
                            "id": chunk_id, "object": "chat.completion.chunk", "created": created,
                            "model": event["model"], "choices": [], "usage": usage_json(usage),
                        });
                        bytes.extend_from_slice(&sse_event(&closing));
                    }
                    Bytes::from(bytes)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "AI stream failed mid-answer");
                    sse_event(&json!({"error": {"message": err.to_string(), "type": "upstream_error"}}))
                }
            })
            .chain(futures_util::stream::once(async {
                Bytes::from_static(b"data: [DONE]\n\n")
            }))
            .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
        let body = http_body_util::StreamBody::new(events).boxed_unsync();
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(response)
    }

    /// The models callers may name: the configured list, else the configured providers'.
    pub(crate) fn offered_models(&self) -> Vec<String> {
        let policy = &self.state().ai_api;
        if !policy.models.is_empty() {
            return policy.models.clone();
        }
        let settings = self
            .state()
            .ai_settings
            .read()
            .unwrap_or_else(|p| p.into_inner());
        settings
            .iter()
            .flat_map(|s| &s.providers)
            .filter_map(|provider| match provider {
                waddlebot_ai::ProviderSettings::Ollama(c) => Some(c.model.clone()),
                waddlebot_ai::ProviderSettings::OpenAi(c) => Some(c.model.clone()),
                _ => None,
            })
            .collect()
    }

    /// Holds a completion request to what the operator allows: an offered model, at most
    /// the configured tokens, within the caller's budget (429 with `Retry-After` past it).
    fn within_ai_policy(
        &self,
        chat: &mut ChatRequest,
        caller: Option<&crate::auth::Principal>,
    ) -> Result<(), Box<Response<ResponseBody>>> {
        let policy = &self.state().ai_api;
        if let Some(model) = &chat.model {
            let offered = self.offered_models();
            if !offered.iter().any(|m| m == model) {
                let message = if offered.is_empty() {
                    format!(
                        "model '{model}' is not offered here; leave model out to use the server's"
                    )
                } else {
                    format!(
                        "model '{model}' is not offered here; choose one of: {}",
                        offered.join(", ")
                    )
                };
                return Err(Box::new(openai_error(
                    StatusCode::BAD_REQUEST,
                    &message,
                    "invalid_request_error",
                )));
            }
        }
        let max_tokens = chat
            .max_tokens
            .map_or(policy.max_tokens, |n| n.min(policy.max_tokens));
        chat.max_tokens = Some(max_tokens);
        let prompt_chars: usize = chat
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum();
        let tokens = u64::from(max_tokens) + (prompt_chars as u64).div_ceil(4);
        let who = match caller {
            Some(principal) => principal.limit_key(),
            None => format!(
                "ip:{}",
                self.peer()
                    .map_or_else(|| "local".to_owned(), |ip| ip.to_string())
            ),
        };
        if let Err(wait) = self.state().ai_budgets.charge(&who, tokens, policy) {
            tracing::info!(category = "authz", caller = who, "AI budget used up");
            let secs = wait.as_secs().max(1);
            let mut response = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "this caller's AI budget for the minute is used up ({} requests, {} tokens a minute); try again in {secs} s",
                    policy.requests_per_minute, policy.tokens_per_minute
                ),
                "rate_limit_error",
            );
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Err(Box::new(response));
        }
        Ok(())
    }

    /// `GET /api/v1/ai/models`, in OpenAI's list shape.
    pub(crate) async fn ai_models(&self) -> Result<Response<ResponseBody>, Failure> {
        let provider = match self.ai() {
            Ok(provider) => provider,
            Err(response) => return Ok(*response),
        };
        Ok(match provider.models().await {
            Ok(models) => json(
                StatusCode::OK,
                &json!({
                    "object": "list",
                    "data": models.iter().map(|m| json!({
                        "id": m.id, "object": "model", "created": 0, "owned_by": provider.name()
                    })).collect::<Vec<_>>(),
                }),
            ),
            Err(err) => ai_failure(&err),
        })
    }

    /// `GET /api/v1/ai/config` (admins): the settings in force, secrets left out.
    pub(crate) fn ai_config(&self) -> Response<ResponseBody> {
        let settings = self
            .state()
            .ai_settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let data = match settings {
            Some(settings) => json!({"enabled": true, "settings": settings.describe()}),
            None => json!({"enabled": false, "how_to_enable": waddlebot_ai::HOW_TO_CONFIGURE}),
        };
        json(StatusCode::OK, &json!({"status": "success", "data": data}))
    }

    /// `PUT /api/v1/ai/config` (admins): `{"settings": {"AI_PROVIDER": "ollama", "OLLAMA_HOST":
    /// "gpu", …}}` with the environment's names, checked as at start; the new provider answers
    /// from the next request. Without `AI_PROVIDER`, AI is turned off.
    pub(crate) async fn put_ai_config<B>(
        &self,
        request: Request<B>,
        principal: Option<&crate::auth::Principal>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Put {
            settings: std::collections::BTreeMap<String, String>,
        }
        let put: Put = self.read_json(request).await?;
        if let Some(unknown) = put
            .settings
            .keys()
            .find(|k| !waddlebot_ai::SETTING_NAMES.contains(&k.as_str()))
        {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown AI setting '{unknown}' (known: {})",
                    waddlebot_ai::SETTING_NAMES.join(", ")
                ),
            ));
        }
        let settings = waddlebot_ai::AiSettings::from_env(|key| put.settings.get(key).cloned())
            .map_err(|err| Failure(StatusCode::BAD_REQUEST, err.to_string()))?;
        let provider = settings
            .as_ref()
            .map(waddlebot_ai::AiSettings::build)
            .transpose()
            .map_err(|err| Failure(StatusCode::BAD_REQUEST, err.to_string()))?;
        let providers = provider.as_ref().map_or("off", |p| p.name()).to_owned();
        self.audit(
            principal,
            None,
            "ai.config.update",
            "ai",
            json!({"providers": providers}),
        )
        .await;
        self.state().ai.set(provider);
        *self
            .state()
            .ai_settings
            .write()
            .unwrap_or_else(|p| p.into_inner()) = settings;
        Ok(self.ai_config())
    }

    /// `POST /api/v1/ai/interaction`: a chat message or channel event, answered by the AI
    /// module as it would be in chat (the community's settings, budgets and canned replies).
    pub(crate) async fn ai_interaction<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let interaction: Interaction = self.read_json(request).await?;
        let event = interaction.into_event()?;
        // Without a provider the AI module would answer with its canned replies, or not at all:
        // say what to set instead, as the completions route does.
        if self.state().ai.get().is_none() {
            return Err(Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "AI is not configured on this server: {}",
                    waddlebot_ai::HOW_TO_CONFIGURE
                ),
            ));
        }
        let outcome = self
            .state()
            .router
            .handle(event)
            .await
            .map_err(|err| Failure(StatusCode::SERVICE_UNAVAILABLE, err.to_string()))?;
        let texts: Vec<String> = outcome.replies.iter().map(|r| r.to_plain_text()).collect();
        Ok(json(
            StatusCode::OK,
            &json!({"status": "success", "data": {
                "session_id": outcome.session_id.to_string(),
                "response": texts.first(),
                "responses": texts,
            }}),
        ))
    }
}

/// The original's interaction body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interaction {
    #[serde(default)]
    session_id: Option<String>,
    /// `chatMessage`, `follow`, `subscription`, `raid`, `cheer`, `donation`, `boost`...
    message_type: String,
    #[serde(default)]
    message_content: String,
    user_id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    /// The channel (the original's entity id).
    entity_id: String,
    platform: String,
}

impl Interaction {
    fn into_event(self) -> Result<Event, Failure> {
        let bad = |m: String| Failure(StatusCode::BAD_REQUEST, m);
        let platform: PlatformKind = self
            .platform
            .parse()
            .map_err(|e: waddlebot::UnknownPlatform| bad(e.to_string()))?;
        let kind = match self.message_type.as_str() {
            "chatMessage" | "chat_message" => EventKind::ChatMessage,
            "follow" => EventKind::Follow,
            "subscription" => EventKind::Subscription {
                tier: waddlebot::SubscriptionTier::default(),
                months: 1,
                gift: None,
            },
            "raid" => EventKind::Raid { viewers: 0 },
            "cheer" => EventKind::Cheer { bits: 0 },
            other if !other.is_empty() => EventKind::Custom {
                name: other.to_owned(),
            },
            _ => return Err(bad("message_type must not be empty".to_owned())),
        };
        if self.entity_id.trim().is_empty() || self.user_id.trim().is_empty() {
            return Err(bad("entity_id and user_id must not be empty".to_owned()));
        }
        if self.message_content.chars().count() > MAX_PROMPT_CHARS {
            return Err(bad(format!(
                "message_content is longer than {MAX_PROMPT_CHARS} characters"
            )));
        }
        let mut user = Sender::new(self.username.unwrap_or_else(|| self.user_id.clone()));
        user.id = self.user_id;
        user.display_name = self.display_name;
        let mut event = Event::new(
            platform,
            self.entity_id.clone(),
            self.entity_id,
            user,
            kind,
            self.message_content,
        );
        if let Some(session) = self.session_id {
            event
                .metadata
                .insert("session_id".to_owned(), Value::from(session));
        }
        Ok(event)
    }
}

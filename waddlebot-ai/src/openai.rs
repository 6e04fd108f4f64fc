//! OpenAI-compatible servers (the WaddleAI proxy, OpenAI, vLLM, LM Studio, Ollama's `/v1`...):
//! `POST /v1/chat/completions`, streamed as server-sent events or in one answer, and
//! `GET /v1/models`.

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};
use waddlebot::{
    AiError, AiProvider, ChatChunk, ChatRequest, ChatResponse, ChatStream, ModelInfo, Usage,
};

use crate::http::{HttpSettings, error_message, expect_content_type, get_json, lines, send};

/// How to reach an OpenAI-compatible server.
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The name in logs and chains (`waddleai`, `openai`).
    pub name: String,
    /// The server (`WADDLEAI_BASE_URL`, `OPENAI_BASE_URL`): a bare address gets `/v1`, an
    /// address with a path is used as it is.
    pub base_url: String,
    /// The bearer key (`WADDLEAI_API_KEY`, a `wa-…` key; `OPENAI_API_KEY`).
    pub api_key: Option<String>,
    /// The model (`auto` lets the WaddleAI proxy choose).
    pub model: String,
    /// Sampling temperature.
    pub temperature: f32,
    /// Longest answer in tokens.
    pub max_tokens: u32,
    /// Timeouts and TLS.
    pub http: HttpSettings,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// An OpenAI-compatible server as an [`AiProvider`].
#[derive(Debug)]
pub struct OpenAi {
    config: OpenAiConfig,
    /// `…/v1`.
    api: String,
    client: reqwest::Client,
}

impl OpenAi {
    /// A client for this server. Fails only when the TLS settings cannot be used.
    pub fn new(config: OpenAiConfig) -> Result<Self, AiError> {
        let client = config.http.client()?;
        // A bare server address gets OpenAI's `/v1`; an address with a path is used as it is
        // (`https://api.openai.com/v1`, `http://bot:8000/api/v1/ai`), as OpenAI's libraries do.
        let base = config.base_url.trim_end_matches('/');
        let has_path = base
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        let api = if has_path {
            base.to_owned()
        } else {
            format!("{base}/v1")
        };
        Ok(Self {
            config,
            api,
            client,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}/{path}", self.api));
        match &self.config.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn post(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, AiError> {
        let timeout = self.config.http.timeout;
        let mut body = json!({
            "model": request.model.as_deref().unwrap_or(&self.config.model),
            "messages": request.messages,
            "temperature": request.temperature.unwrap_or(self.config.temperature),
            "max_tokens": request.max_tokens.unwrap_or(self.config.max_tokens),
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        let mut call = self
            .request(reqwest::Method::POST, "chat/completions")
            .json(&body);
        if !stream {
            call = call.timeout(timeout);
        }
        send(call, timeout).await
    }
}

fn usage(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    let count = |key: &str| {
        usage
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
    })
}

/// Reads server-sent events: `data:` lines gathered until a blank line make one event;
/// comments (`: ping`) and other fields are skipped.
#[derive(Default)]
struct Events {
    data: Vec<String>,
}

impl Events {
    /// Feeds one line; an event's data when the line ends it.
    fn line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            if self.data.is_empty() {
                return None;
            }
            return Some(std::mem::take(&mut self.data).join("\n"));
        }
        if let Some(data) = line.strip_prefix("data:") {
            self.data
                .push(data.strip_prefix(' ').unwrap_or(data).to_owned());
        }
        None
    }
}

/// One event's data as a chunk; `None` for `[DONE]` and for chunks with nothing in them.
fn event_chunk(data: &str) -> Option<Result<ChatChunk, AiError>> {
    if data.trim() == "[DONE]" {
        return None;
    }
    let value: Value = match serde_json::from_str(data) {
        Ok(value) => value,
        Err(err) => {
            return Some(Err(AiError::Unavailable(format!(
                "the provider sent an event that is not JSON: {err}"
            ))));
        }
    };
    if value.get("error").is_some() {
        let message = error_message(data).unwrap_or_else(|| "unknown error".to_owned());
        return Some(Err(AiError::Unavailable(format!(
            "the provider failed mid-answer: {message}"
        ))));
    }
    let choice = value.pointer("/choices/0");
    Some(Ok(ChatChunk {
        content: choice
            .and_then(|c| c.pointer("/delta/content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model: value
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned),
        finish_reason: choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: usage(&value),
    }))
}

#[async_trait]
impl AiProvider for OpenAi {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let response = self.post(&request, false).await?;
        expect_content_type(&response, &["application/json"])?;
        let body: Value = response.json().await.map_err(|err| {
            AiError::Unavailable(format!(
                "{} sent an answer that is not JSON: {err}",
                self.name()
            ))
        })?;
        let content = body
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| AiError::Unavailable(format!("{} sent no choices", self.name())))?;
        Ok(ChatResponse {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(&self.config.model)
                .to_owned(),
            content: content.to_owned(),
            usage: usage(&body),
        })
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, AiError> {
        let response = self.post(&request, true).await?;
        expect_content_type(&response, &["text/event-stream"])?;
        let mut events = Events::default();
        let chunks = lines(response, self.config.http.timeout)
            .filter_map(move |line| {
                let item = match line {
                    Err(err) => Some(Err(err)),
                    Ok(line) => events.line(&line).and_then(|data| event_chunk(&data)),
                };
                std::future::ready(item)
            })
            // Nothing after an error matters.
            .scan(false, |stop, item| {
                if *stop {
                    return std::future::ready(None);
                }
                *stop = item.is_err();
                std::future::ready(Some(item))
            });
        Ok(Box::pin(chunks))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        let body = get_json(
            self.request(reqwest::Method::GET, "models"),
            self.config.http.timeout,
            "the model list",
        )
        .await?;
        Ok(body
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .map(|id| ModelInfo { id: id.to_owned() })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_gather_data_lines_until_a_blank_line_and_skip_comments() {
        let mut events = Events::default();
        assert_eq!(events.line(": ping"), None);
        assert_eq!(events.line("data: {\"a\":"), None);
        assert_eq!(events.line("data: 1}"), None);
        assert_eq!(events.line(""), Some("{\"a\":\n1}".to_owned()));
        assert_eq!(events.line(""), None, "a blank line alone is no event");
    }
}

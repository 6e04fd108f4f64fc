//! Ollama, spoken to directly: `POST /api/chat` (streamed as NDJSON or in one answer),
//! `GET /api/tags` for the models and for health.

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};
use waddlebot::{
    AiError, AiProvider, ChatChunk, ChatRequest, ChatResponse, ChatStream, ModelInfo, Usage,
};

use crate::http::{HttpSettings, expect_content_type, get_json, lines, send, transport};

/// How to reach an Ollama server.
#[derive(Debug, Clone, PartialEq)]
pub struct OllamaConfig {
    /// `http(s)://host:port` (from `OLLAMA_HOST`, `OLLAMA_PORT`, `OLLAMA_USE_TLS`).
    pub base_url: String,
    /// The model (`OLLAMA_MODEL`, default `llama3.2`).
    pub model: String,
    /// Sampling temperature (`OLLAMA_TEMPERATURE`, default 0.7).
    pub temperature: f32,
    /// Longest answer in tokens (`OLLAMA_MAX_TOKENS`, default 500; Ollama's `num_predict`).
    pub max_tokens: u32,
    /// Timeouts, extra CA (`OLLAMA_CERT_PATH`), verification (`OLLAMA_VERIFY_SSL`).
    pub http: HttpSettings,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:11434".to_owned(),
            model: "llama3.2".to_owned(),
            temperature: 0.7,
            max_tokens: 500,
            http: HttpSettings::default(),
        }
    }
}

/// An Ollama server as an [`AiProvider`].
#[derive(Debug)]
pub struct Ollama {
    config: OllamaConfig,
    client: reqwest::Client,
}

impl Ollama {
    /// A client for this server. Fails only when the TLS settings cannot be used.
    pub fn new(config: OllamaConfig) -> Result<Self, AiError> {
        let client = config.http.client()?;
        Ok(Self {
            config: OllamaConfig {
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                ..config
            },
            client,
        })
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        json!({
            "model": request.model.as_deref().unwrap_or(&self.config.model),
            "messages": request.messages,
            "stream": stream,
            "options": {
                "temperature": request.temperature.unwrap_or(self.config.temperature),
                "num_predict": request.max_tokens.unwrap_or(self.config.max_tokens),
            },
        })
    }

    async fn post(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, AiError> {
        let timeout = self.config.http.timeout;
        let mut call = self
            .client
            .post(format!("{}/api/chat", self.config.base_url))
            .json(&self.body(request, stream));
        if !stream {
            call = call.timeout(timeout);
        }
        send(call, timeout).await
    }
}

/// One NDJSON line of `/api/chat` as a chunk; an `error` line (Ollama failing after the 200)
/// is an error.
fn chunk(line: &str) -> Result<Option<ChatChunk>, AiError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line).map_err(|err| {
        AiError::Unavailable(format!("Ollama sent a line that is not JSON: {err}"))
    })?;
    if let Some(error) = value.get("error") {
        return Err(AiError::Unavailable(format!(
            "Ollama failed mid-answer: {}",
            error.as_str().unwrap_or("unknown error")
        )));
    }
    let done = value.get("done").and_then(Value::as_bool) == Some(true);
    let count = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    Ok(Some(ChatChunk {
        content: value
            .pointer("/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model: value
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned),
        finish_reason: done.then(|| {
            value
                .get("done_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop")
                .to_owned()
        }),
        usage: (done && (count("prompt_eval_count").is_some() || count("eval_count").is_some()))
            .then(|| Usage {
                prompt_tokens: count("prompt_eval_count").unwrap_or(0),
                completion_tokens: count("eval_count").unwrap_or(0),
            }),
    }))
}

#[async_trait]
impl AiProvider for Ollama {
    fn name(&self) -> &str {
        "ollama"
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let response = self.post(&request, false).await?;
        expect_content_type(&response, &["application/json"])?;
        let text = response
            .text()
            .await
            .map_err(|err| transport(&err, self.config.http.timeout))?;
        let chunk =
            chunk(&text)?.ok_or_else(|| AiError::Unavailable("Ollama sent nothing".to_owned()))?;
        Ok(ChatResponse {
            model: chunk.model.unwrap_or_else(|| self.config.model.clone()),
            content: chunk.content,
            usage: chunk.usage,
        })
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, AiError> {
        let response = self.post(&request, true).await?;
        expect_content_type(&response, &["application/x-ndjson", "application/json"])?;
        let chunks = lines(response, self.config.http.timeout).filter_map(|line| async move {
            match line {
                Ok(line) => chunk(&line).transpose(),
                Err(err) => Some(Err(err)),
            }
        });
        Ok(Box::pin(chunks))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        let body = get_json(
            self.client
                .get(format!("{}/api/tags", self.config.base_url)),
            self.config.http.timeout,
            "Ollama's model list",
        )
        .await?;
        Ok(body
            .get("models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("name").or_else(|| m.get("model")))
            .filter_map(Value::as_str)
            .map(|id| ModelInfo { id: id.to_owned() })
            .collect())
    }
}

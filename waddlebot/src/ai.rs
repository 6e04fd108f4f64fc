//! Chat-completion providers. Providers are plain clients; prompts, triggers and budgets live in
//! the AI module.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who said a message in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A chat-completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model; `None` uses the provider's configured model.
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Longest answer, in tokens.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request with these messages and provider defaults for the rest.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            model: None,
            messages,
            temperature: None,
            max_tokens: None,
        }
    }
}

/// Token counts, when the provider reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens in the answer.
    pub completion_tokens: u32,
}

/// A chat-completion answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The model that answered.
    pub model: String,
    /// The answer.
    pub content: String,
    /// Token counts, if reported.
    pub usage: Option<Usage>,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The next piece of the answer's text (may be empty, e.g. in the closing chunk).
    pub content: String,
    /// The model answering, when the provider says.
    pub model: Option<String>,
    /// Why the answer ended (`stop`, `length`), on the last content chunk.
    pub finish_reason: Option<String>,
    /// Token counts, usually on the last chunk.
    pub usage: Option<Usage>,
}

/// A streamed answer: chunks as the provider produces them, then the end of the stream. An
/// error part-way (a provider failing mid-answer) is an `Err` item.
pub type ChatStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<ChatChunk, AiError>> + Send>>;

/// A stream of these chunks, already known.
pub fn stream_of(chunks: Vec<Result<ChatChunk, AiError>>) -> ChatStream {
    struct Ready(std::collections::VecDeque<Result<ChatChunk, AiError>>);
    impl futures_core::Stream for Ready {
        type Item = Result<ChatChunk, AiError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Box::pin(Ready(chunks.into()))
}

/// A model a provider offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model's id (`llama3.2`, `gpt-4o-mini`).
    pub id: String,
}

/// Why a provider did not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AiError {
    /// The provider is not configured; the text says what to set.
    #[error("AI provider not configured: {0}")]
    NotConfigured(String),
    /// Credentials were refused.
    #[error("AI provider refused the credentials: {0}")]
    Auth(String),
    /// Too many requests; retry after this long if known.
    #[error("AI provider rate limited the request")]
    RateLimited {
        /// When to retry, if the provider said.
        retry_after: Option<Duration>,
    },
    /// The request was malformed (unknown model, bad parameter).
    #[error("AI provider rejected the request: {0}")]
    BadRequest(String),
    /// The provider failed or could not be reached.
    #[error("AI provider unavailable: {0}")]
    Unavailable(String),
    /// The provider did not answer in time.
    #[error("AI provider timed out after {0:?}")]
    Timeout(Duration),
}

/// A chat-completion provider (Ollama, an OpenAI-compatible server, a fallback chain...).
///
/// ```
/// use waddlebot::{async_trait, AiError, AiProvider, ChatMessage, ChatRequest, ChatResponse};
///
/// struct Parrot;
///
/// #[async_trait]
/// impl AiProvider for Parrot {
///     fn name(&self) -> &str { "parrot" }
///     async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
///         let last = request.messages.last().map(|m| m.content.clone()).unwrap_or_default();
///         Ok(ChatResponse { model: "parrot".into(), content: last, usage: None })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let answer = Parrot.chat(ChatRequest::new(vec![ChatMessage::user("squawk")])).await.unwrap();
/// assert_eq!(answer.content, "squawk");
/// assert!(Parrot.health().await.is_ok());
/// # });
/// ```
#[async_trait]
pub trait AiProvider: Send + Sync {
    /// A short name for logs and errors (`ollama`, `openai`).
    fn name(&self) -> &str;

    /// Answers a conversation.
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError>;

    /// Answers a conversation piece by piece. Defaults to the whole [`chat`](Self::chat)
    /// answer as one chunk; providers that can stream override it.
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, AiError> {
        let answer = self.chat(request).await?;
        Ok(stream_of(vec![Ok(ChatChunk {
            content: answer.content,
            model: Some(answer.model),
            finish_reason: Some("stop".to_owned()),
            usage: answer.usage,
        })]))
    }

    /// The models on offer. Defaults to none listed.
    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        Ok(Vec::new())
    }

    /// Whether the provider is reachable. Defaults to asking for [`models`](Self::models).
    async fn health(&self) -> Result<(), AiError> {
        self.models().await.map(|_| ())
    }
}

/// The AI provider in use, replaceable while the bot runs (an admin changing the AI settings):
/// everyone holding a clone sees the change at their next request.
#[derive(Clone, Default)]
pub struct AiSlot(std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn AiProvider>>>>);

impl AiSlot {
    /// A slot holding `provider` (`None`: AI off).
    pub fn new(provider: Option<std::sync::Arc<dyn AiProvider>>) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(provider)))
    }

    /// The provider now.
    pub fn get(&self) -> Option<std::sync::Arc<dyn AiProvider>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts another provider in (or `None` to turn AI off).
    pub fn set(&self, provider: Option<std::sync::Arc<dyn AiProvider>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = provider;
    }
}

impl std::fmt::Debug for AiSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AiSlot")
            .field(&self.get().map(|p| p.name().to_owned()))
            .finish()
    }
}

impl From<Option<std::sync::Arc<dyn AiProvider>>> for AiSlot {
    fn from(provider: Option<std::sync::Arc<dyn AiProvider>>) -> Self {
        Self::new(provider)
    }
}

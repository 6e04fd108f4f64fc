//! # WaddleBot AI
//!
//! [`AiProvider`](waddlebot::AiProvider) implementations and combinators:
//!
//! - [`Ollama`]: an Ollama server, directly (`/api/chat`, NDJSON streaming, `/api/tags`);
//! - [`OpenAi`]: any OpenAI-compatible server — the WaddleAI proxy, OpenAI, vLLM, LM Studio —
//!   (`/v1/chat/completions` with server-sent events, `/v1/models`);
//! - [`CircuitBreaker`]: stops asking a provider that keeps failing, for a while;
//! - [`FallbackChain`]: asks providers in order until one answers;
//! - [`RecordReplay`]: records exchanges to a file and replays them, for deterministic tests;
//! - [`AiSettings`]: all of the above from the environment (`AI_PROVIDER` and the original's
//!   `OLLAMA_*`, `WADDLEAI_*`, `OPENAI_*` names).
//!
//! ```no_run
//! use waddlebot::{AiProvider, ChatMessage, ChatRequest};
//! use waddlebot_ai::AiSettings;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = AiSettings::from_env(|key| std::env::var(key).ok())?
//!     .ok_or(waddlebot_ai::HOW_TO_CONFIGURE)?;
//! let ai = settings.build()?;
//! let answer = ai.chat(ChatRequest::new(vec![ChatMessage::user("Hi!")])).await?;
//! println!("{}", answer.content);
//! # Ok(()) }
//! ```
//!
//! The clients use rustls with the process's default crypto provider only through reqwest,
//! which brings its own; nothing needs installing.

mod breaker;
mod config;
mod fallback;
mod http;
mod ollama;
mod openai;
mod record;

pub use breaker::{BreakerSettings, CircuitBreaker};
pub use config::{AiConfigError, AiSettings, HOW_TO_CONFIGURE, ProviderSettings, SETTING_NAMES};
pub use fallback::FallbackChain;
pub use http::HttpSettings;
pub use ollama::{Ollama, OllamaConfig};
pub use openai::{OpenAi, OpenAiConfig};
pub use record::{RecordReplay, request_key};

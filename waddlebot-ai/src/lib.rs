//! # WaddleBot AI
//!
//! [`AiProvider`](waddlebot::AiProvider) implementations and combinators. Today: the
//! [`FallbackChain`], which asks providers in order until one answers. The Ollama and
//! OpenAI-compatible clients come next.

mod fallback;

pub use fallback::FallbackChain;

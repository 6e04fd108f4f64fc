//! Try providers in order until one answers.

use std::sync::Arc;

use async_trait::async_trait;
use waddlebot::{AiError, AiProvider, ChatRequest, ChatResponse, ChatStream, ModelInfo};

/// An [`AiProvider`] that asks each of its providers in turn and returns the first answer. When
/// all fail, the last provider's error is returned (each failure is logged).
///
/// ```
/// use std::sync::Arc;
/// use waddlebot::testing::ScriptedAi;
/// use waddlebot::{AiProvider, ChatMessage, ChatRequest};
/// use waddlebot_ai::FallbackChain;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let broken = Arc::new(ScriptedAi::new(Vec::<String>::new()).then_fail("down"));
/// let backup = Arc::new(ScriptedAi::new(["hello from the backup"]));
/// let chain = FallbackChain::new(vec![broken, backup]).unwrap();
/// let answer = chain.chat(ChatRequest::new(vec![ChatMessage::user("hi")])).await.unwrap();
/// assert_eq!(answer.content, "hello from the backup");
/// # });
/// ```
pub struct FallbackChain {
    providers: Vec<Arc<dyn AiProvider>>,
    name: String,
}

impl FallbackChain {
    /// A chain of these providers, first preferred. `None` if the list is empty.
    pub fn new(providers: Vec<Arc<dyn AiProvider>>) -> Option<Self> {
        if providers.is_empty() {
            return None;
        }
        let name = providers
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(",");
        Some(Self { providers, name })
    }
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackChain")
            .field("providers", &self.name)
            .finish()
    }
}

#[async_trait]
impl AiProvider for FallbackChain {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let mut last = None;
        for provider in &self.providers {
            match provider.chat(request.clone()).await {
                Ok(response) => return Ok(response),
                Err(err) => {
                    tracing::warn!(provider = provider.name(), error = %err, "AI provider failed; trying the next");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| AiError::NotConfigured("no AI provider in the chain".into())))
    }

    /// The first provider that starts a stream streams it; one failing mid-stream is not
    /// replaced (part of its answer is already out).
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, AiError> {
        let mut last = None;
        for provider in &self.providers {
            match provider.chat_stream(request.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(err) => {
                    tracing::warn!(provider = provider.name(), error = %err, "AI provider failed; trying the next");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| AiError::NotConfigured("no AI provider in the chain".into())))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        let mut models = Vec::new();
        let mut last = None;
        for provider in &self.providers {
            match provider.models().await {
                Ok(found) => models.extend(found),
                Err(err) => last = Some(err),
            }
        }
        match (models.is_empty(), last) {
            (true, Some(err)) => Err(err),
            _ => Ok(models),
        }
    }

    async fn health(&self) -> Result<(), AiError> {
        let mut last = None;
        for provider in &self.providers {
            match provider.health().await {
                Ok(()) => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| AiError::NotConfigured("no AI provider in the chain".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::ChatMessage;
    use waddlebot::testing::ScriptedAi;

    fn request() -> ChatRequest {
        ChatRequest::new(vec![ChatMessage::user("hi")])
    }

    #[tokio::test]
    async fn the_first_healthy_provider_answers_and_later_ones_are_not_asked() {
        let first = Arc::new(ScriptedAi::new(["first"]));
        let second = Arc::new(ScriptedAi::new(["second"]));
        let chain = FallbackChain::new(vec![first.clone(), second.clone()]).expect("non-empty");
        assert_eq!(
            chain.chat(request()).await.expect("answered").content,
            "first"
        );
        assert!(second.requests().is_empty());
        assert_eq!(chain.name(), "scripted,scripted");
    }

    #[tokio::test]
    async fn when_all_fail_the_last_error_is_returned() {
        let a = Arc::new(ScriptedAi::default().then_fail("a down"));
        let b = Arc::new(ScriptedAi::default().then_fail("b down"));
        let chain = FallbackChain::new(vec![a, b]).expect("non-empty");
        let err = chain.chat(request()).await.expect_err("all failed");
        assert!(err.to_string().contains("b down"), "{err}");
    }

    #[test]
    fn an_empty_chain_is_refused() {
        assert!(FallbackChain::new(Vec::new()).is_none());
    }
}

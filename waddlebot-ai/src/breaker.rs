//! A circuit breaker per provider: after a run of failures the provider is not asked for a
//! while (callers get an immediate error, and a fallback chain moves on at once), then one
//! trial call decides whether it is back.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use waddlebot::{AiError, AiProvider, ChatRequest, ChatResponse, ChatStream, ModelInfo};

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open it.
    pub failures: u32,
    /// How long it stays open before a trial call.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out.
    HalfOpen,
}

/// Wraps a provider with a circuit breaker. Only failures of the provider count (unreachable,
/// timeouts, 5xx, rate limits); a request it rejects as malformed does not.
pub struct CircuitBreaker<P> {
    inner: P,
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl<P: AiProvider> std::fmt::Debug for CircuitBreaker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("provider", &self.inner.name())
            .field("state", &*self.lock())
            .finish()
    }
}

fn counts(err: &AiError) -> bool {
    !matches!(err, AiError::BadRequest(_) | AiError::NotConfigured(_))
}

impl<P: AiProvider> CircuitBreaker<P> {
    /// `inner` behind a breaker.
    pub fn new(inner: P, settings: BreakerSettings) -> Self {
        Self {
            inner,
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether calls are refused right now.
    pub fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
    }

    /// May a call go through? Moves an expired open breaker to half-open (one trial).
    fn admit(&self) -> Result<(), AiError> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                Ok(())
            }
            State::Open { until } => Err(AiError::Unavailable(format!(
                "{} is failing; not asked again for {:?}",
                self.inner.name(),
                until.saturating_duration_since(Instant::now())
            ))),
            State::HalfOpen => Err(AiError::Unavailable(format!(
                "{} is failing; a trial call is under way",
                self.inner.name()
            ))),
        }
    }

    fn record<T>(&self, result: &Result<T, AiError>) {
        let mut state = self.lock();
        match result {
            Ok(_) => *state = State::Closed { failures: 0 },
            Err(err) if counts(err) => {
                let failures = match *state {
                    State::Closed { failures } => failures + 1,
                    _ => self.settings.failures,
                };
                *state = if failures >= self.settings.failures {
                    tracing::warn!(provider = self.inner.name(), open_for = ?self.settings.open_for, "AI provider keeps failing; circuit opened");
                    State::Open {
                        until: Instant::now() + self.settings.open_for,
                    }
                } else {
                    State::Closed { failures }
                };
            }
            Err(_) => {
                if *state == State::HalfOpen {
                    *state = State::Closed { failures: 0 };
                }
            }
        }
    }
}

#[async_trait]
impl<P: AiProvider> AiProvider for CircuitBreaker<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        self.admit()?;
        let result = self.inner.chat(request).await;
        self.record(&result);
        result
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, AiError> {
        self.admit()?;
        // Only starting the stream is judged; a failure mid-stream reaches the caller.
        let result = self.inner.chat_stream(request).await;
        self.record(&result);
        result
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        self.inner.models().await
    }

    async fn health(&self) -> Result<(), AiError> {
        if self.is_open() {
            return Err(AiError::Unavailable(format!(
                "{}: circuit open after repeated failures",
                self.inner.name()
            )));
        }
        self.inner.health().await
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

    #[tokio::test(start_paused = true)]
    async fn repeated_failures_open_the_circuit_until_a_trial_succeeds() {
        let script = ScriptedAi::new(Vec::<String>::new())
            .then_fail("down")
            .then_fail("down");
        let breaker = CircuitBreaker::new(
            script,
            BreakerSettings {
                failures: 2,
                open_for: Duration::from_secs(30),
            },
        );
        assert!(breaker.chat(request()).await.is_err());
        assert!(!breaker.is_open(), "one failure is not a run");
        assert!(breaker.chat(request()).await.is_err());
        assert!(breaker.is_open());
        let refused = breaker.chat(request()).await.expect_err("open");
        assert!(refused.to_string().contains("not asked again"), "{refused}");
        assert_eq!(
            breaker.inner.requests().len(),
            2,
            "the open circuit asked nobody"
        );

        tokio::time::advance(Duration::from_secs(31)).await;
        // The script is exhausted, so the trial fails and the circuit opens again.
        assert!(breaker.chat(request()).await.is_err());
        assert_eq!(breaker.inner.requests().len(), 3, "one trial call");
        assert!(breaker.is_open());
    }
}

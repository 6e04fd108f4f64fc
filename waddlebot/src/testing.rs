//! Fakes for tests (feature `test-util`): a platform that records what it was asked to send and
//! can answer "slow down", and an AI provider that answers from a script.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::ai::{AiError, AiProvider, ChatRequest, ChatResponse};
use crate::platform::{Outbound, Platform, PlatformError, PlatformKind, PlatformLimits};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A [`Platform`] that records every outbound message.
///
/// ```
/// use waddlebot::testing::RecordingPlatform;
/// use waddlebot::{Outbound, Platform, PlatformKind, Reply};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let platform = RecordingPlatform::new(PlatformKind::Twitch);
/// platform.rate_limit_next(1, std::time::Duration::from_secs(2));
/// let outbound = Outbound { platform: PlatformKind::Twitch, server_id: "s".into(), channel_id: "c".into(),
///     user_id: "u".into(), in_reply_to: None, reply: Reply::text("hi") };
/// assert!(platform.send(outbound.clone()).await.is_err(), "first send is rate limited");
/// platform.send(outbound).await.unwrap();
/// assert_eq!(platform.sent_texts(), ["hi"]);
/// # });
/// ```
#[derive(Debug)]
pub struct RecordingPlatform {
    kind: PlatformKind,
    limits: PlatformLimits,
    sent: Mutex<Vec<Outbound>>,
    rate_limited: Mutex<(u32, Duration)>,
}

impl RecordingPlatform {
    /// A recorder posing as `kind`, with default limits.
    pub fn new(kind: PlatformKind) -> Self {
        Self {
            kind,
            limits: PlatformLimits::default(),
            sent: Mutex::new(Vec::new()),
            rate_limited: Mutex::new((0, Duration::ZERO)),
        }
    }

    /// The same recorder with other limits.
    pub fn with_limits(mut self, limits: PlatformLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Makes the next `count` sends fail with [`PlatformError::RateLimited`].
    pub fn rate_limit_next(&self, count: u32, retry_after: Duration) {
        *lock(&self.rate_limited) = (count, retry_after);
    }

    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Outbound> {
        lock(&self.sent).clone()
    }

    /// The plain text of everything sent so far.
    pub fn sent_texts(&self) -> Vec<String> {
        lock(&self.sent)
            .iter()
            .map(|outbound| outbound.reply.to_plain_text())
            .collect()
    }
}

#[async_trait]
impl Platform for RecordingPlatform {
    fn kind(&self) -> PlatformKind {
        self.kind.clone()
    }

    fn limits(&self) -> PlatformLimits {
        self.limits
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        {
            let mut limited = lock(&self.rate_limited);
            if limited.0 > 0 {
                limited.0 -= 1;
                return Err(PlatformError::RateLimited {
                    retry_after: limited.1,
                });
            }
        }
        lock(&self.sent).push(outbound);
        Ok(())
    }
}

/// An [`AiProvider`] that answers from a script, in order, and records the requests.
#[derive(Debug, Default)]
pub struct ScriptedAi {
    script: Mutex<VecDeque<Result<String, String>>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedAi {
    /// A provider that will answer with these texts, one per request.
    pub fn new(answers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            script: Mutex::new(answers.into_iter().map(|a| Ok(a.into())).collect()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Appends a failure ([`AiError::Unavailable`] with this text) to the script.
    pub fn then_fail(self, message: impl Into<String>) -> Self {
        lock(&self.script).push_back(Err(message.into()));
        self
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl AiProvider for ScriptedAi {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| "scripted".to_owned());
        lock(&self.requests).push(request);
        match lock(&self.script).pop_front() {
            Some(Ok(content)) => Ok(ChatResponse {
                model,
                content,
                usage: None,
            }),
            Some(Err(message)) => Err(AiError::Unavailable(message)),
            None => Err(AiError::Unavailable("script exhausted".to_owned())),
        }
    }
}

//! AI chat: `!ai <question>` / `!ask`, answers to chat that greets, says goodbye, asks a
//! question or mentions the bot, and thanks for follows, subscriptions, raids and the like —
//! through any [`AiProvider`] (Ollama, an OpenAI-compatible server, a fallback chain).
//!
//! - Prompt: the community's system prompt (module config `system_prompt`, default a friendly
//!   assistant for a streaming community), the platform, the last messages of the channel
//!   (default 5), the user's name and an instruction for the kind of trigger.
//! - Answer: trimmed, markdown emphasis and wrapping quotes removed, whitespace collapsed, cut on
//!   a word boundary with an ellipsis at 400 characters, with the `RESPONSE_PREFIX` (default
//!   "🤖 ").
//! - Budgets: a per-user cooldown on `!ai` (10 s), at most 20 requests a minute per channel
//!   and 10 at once for the whole bot. Over budget, `!ai` says so briefly; chat triggers stay
//!   silent.
//! - Failure (the provider down or slow): the original's canned reply for the trigger kind;
//!   without a provider, `!ai` says what to configure and chat triggers stay silent.
//!
//! Per community (the `ai` module's config): `system_prompt`, `respond_to_chat` (default
//! true), `respond_to_events` (default true), `event_types` (default follow, subscription,
//! raid, cheer, donation, boost).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use waddlebot::{
    AiProvider, AiSlot, ChatMessage, ChatRequest, CommandError, CommandHandler, CommandSpec,
    Context, EntityId, EventHandler, EventKind, Reply, Subscription,
};

/// The module's name (installs, config).
pub const AI_MODULE: &str = "ai";

/// The default system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, helpful assistant in a live-streaming community's chat. Answer in one or two short sentences, plainly, without markdown.";

/// Settings shared by every community (from the environment in the reference server).
#[derive(Debug, Clone, PartialEq)]
pub struct AiChatSettings {
    /// The bot's name, for mentions (`@waddlebot`).
    pub bot_name: String,
    /// The system prompt when a community sets none (`SYSTEM_PROMPT`).
    pub system_prompt: String,
    /// What makes a chat message a question (`QUESTION_TRIGGERS`, default `?`).
    pub question_triggers: Vec<String>,
    /// Put before every answer (`RESPONSE_PREFIX`, default "🤖 ").
    pub response_prefix: String,
    /// Channel messages given as context (`CONTEXT_HISTORY_LIMIT`, default 5).
    pub context_messages: usize,
    /// Longest answer, in characters (default 400).
    pub max_len: usize,
    /// Requests the whole bot makes at once (`MAX_CONCURRENT_REQUESTS`, default 10).
    pub max_concurrent: usize,
    /// Requests per minute per channel (default 20).
    pub channel_per_minute: usize,
    /// How long one user waits between `!ai` questions (default 10 s).
    pub user_cooldown: Duration,
    /// How long an answer may take before the canned reply is used (default 25 s, inside the
    /// router's 30 s handler deadline).
    pub timeout: Duration,
    /// Over budget, `!ai` says so (`true`) or stays silent.
    pub refuse_over_budget: bool,
}

impl Default for AiChatSettings {
    fn default() -> Self {
        Self {
            bot_name: "waddlebot".to_owned(),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            question_triggers: vec!["?".to_owned()],
            response_prefix: "🤖 ".to_owned(),
            context_messages: 5,
            max_len: 400,
            max_concurrent: 10,
            channel_per_minute: 20,
            user_cooldown: Duration::from_secs(10),
            timeout: Duration::from_secs(25),
            refuse_over_budget: true,
        }
    }
}

/// A community's settings (the `ai` module install's config).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct CommunityAi {
    system_prompt: Option<String>,
    respond_to_chat: bool,
    respond_to_events: bool,
    event_types: Vec<String>,
}

impl Default for CommunityAi {
    fn default() -> Self {
        Self {
            system_prompt: None,
            respond_to_chat: true,
            respond_to_events: true,
            event_types: EVENT_KINDS.map(str::to_owned).to_vec(),
        }
    }
}

/// The channel events the AI can thank for (event kind names).
const EVENT_KINDS: [&str; 6] = [
    "follow",
    "subscription",
    "raid",
    "cheer",
    "donation",
    "boost",
];

/// Why the AI is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `!ai <question>`.
    Command,
    /// Someone said hello.
    Greeting,
    /// Someone said goodbye.
    Farewell,
    /// A question, or a mention of the bot.
    Question,
    /// A follow, subscription, raid...
    Event,
}

const GREETINGS: [&str; 8] = [
    "o7",
    "hi",
    "hello",
    "hey",
    "howdy",
    "greetings",
    "sup",
    "hiya",
];
const FAREWELLS: [&str; 5] = ["!lurk", "bye", "goodbye", "later", "cya"];

/// The words of a message, lower-cased: letters, digits, `!` and `'` kept together.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '!' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches('!').to_lowercase())
        .map(|w| if w == "lurk" { "!lurk".to_owned() } else { w })
}

/// Whether plain chat should be answered, and as what: a mention of the bot or a question
/// first, then greetings, then farewells — matched on whole words (the original matched
/// substrings, so "this" was a greeting).
pub fn chat_trigger(text: &str, bot_name: &str, question_triggers: &[String]) -> Option<Trigger> {
    let lower = text.to_lowercase();
    let mention = format!("@{}", bot_name.to_lowercase());
    let mentioned = lower
        .split_whitespace()
        .any(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()) == mention);
    if mentioned
        || question_triggers
            .iter()
            .any(|t| !t.is_empty() && lower.contains(t.as_str()))
    {
        return Some(Trigger::Question);
    }
    let said: Vec<String> = words(&lower).collect();
    let has = |list: &[&str]| {
        said.iter().any(|w| list.contains(&w.as_str()))
            || (list.contains(&"!lurk") && lower.trim_start().starts_with("!lurk"))
    };
    if has(&GREETINGS) {
        Some(Trigger::Greeting)
    } else if has(&FAREWELLS) {
        Some(Trigger::Farewell)
    } else {
        None
    }
}

/// An answer made fit for chat: trimmed, `**`/`__`/`*` emphasis and wrapping quotes removed,
/// whitespace collapsed, cut at `max_len` characters on a word boundary with an ellipsis.
pub fn clean_answer(raw: &str, max_len: usize) -> String {
    let mut text = raw.replace("**", "").replace("__", "").replace('*', "");
    let trimmed = text.trim();
    if trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"') {
        text = trimmed[1..trimmed.len() - 1].to_owned();
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max_len {
        return text;
    }
    let room = max_len.saturating_sub(1);
    let cut: String = text.chars().take(room).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > room / 2 => cut[..space].trim_end().to_owned(),
        _ => cut,
    };
    format!("{cut}…")
}

/// The original's reply when the AI cannot answer.
pub fn fallback_reply(trigger: Trigger, event: Option<&EventKind>) -> &'static str {
    match (trigger, event) {
        (Trigger::Greeting, _) => "Hello! 👋",
        (Trigger::Farewell, _) => "See you later! 👋",
        (Trigger::Event, Some(EventKind::Subscription { .. })) => "Thanks for subscribing! 🎉",
        (Trigger::Event, Some(EventKind::Follow)) => "Welcome to the community! 👋",
        (Trigger::Event, Some(EventKind::Raid { .. })) => "Welcome raiders! 🚀",
        (Trigger::Event, Some(EventKind::Cheer { .. })) => "Thanks for the bits! 💎",
        (Trigger::Event, Some(EventKind::Donation { .. })) => "Thank you for the donation! 💖",
        (Trigger::Event, _) => "Thanks for the support! 💜",
        (Trigger::Command | Trigger::Question, _) => {
            "I'm having trouble processing that right now. Please try again!"
        }
    }
}

struct Inner {
    provider: AiSlot,
    settings: AiChatSettings,
    /// Recent chat per channel: (speaker, text), oldest first.
    history: Mutex<HashMap<EntityId, VecDeque<(String, String)>>>,
    /// Request times per channel in the last minute.
    requests: Mutex<HashMap<EntityId, VecDeque<Instant>>>,
    running: tokio::sync::Semaphore,
}

/// Channels whose history is kept at once; beyond this the memory starts again.
const MAX_CHANNELS: usize = 10_000;

/// The AI chat module: a [`CommandHandler`] for `!ai`/`!ask`; its
/// [`listener`](Self::listener) is the [`EventHandler`] for chat and channel events.
#[derive(Clone)]
pub struct AiChat {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiChat")
            .field("provider", &self.inner.provider)
            .finish_non_exhaustive()
    }
}

/// What `!ai` says when no provider is configured.
pub const NOT_CONFIGURED: &str = "AI is not set up on this bot. The bot's owner can set AI_PROVIDER to ollama, waddleai or openai (see the README).";

impl AiChat {
    /// The module answering through `provider` (`None`: AI not configured).
    pub fn new(provider: Option<Arc<dyn AiProvider>>, settings: AiChatSettings) -> Self {
        Self::with_slot(AiSlot::new(provider), settings)
    }

    /// The module answering through whatever provider `slot` holds at each request, so the
    /// provider can be changed while the bot runs.
    pub fn with_slot(provider: AiSlot, settings: AiChatSettings) -> Self {
        let running = tokio::sync::Semaphore::new(settings.max_concurrent.max(1));
        Self {
            inner: Arc::new(Inner {
                provider,
                settings,
                history: Mutex::new(HashMap::new()),
                requests: Mutex::new(HashMap::new()),
                running,
            }),
        }
    }

    /// The event side: chat triggers and channel events.
    pub fn listener(&self) -> AiListener {
        AiListener(self.clone())
    }

    async fn community(&self, ctx: &Context) -> CommunityAi {
        match ctx.store.module_install(ctx.community, AI_MODULE).await {
            Ok(Some(install)) => serde_json::from_value(install.config).unwrap_or_default(),
            _ => CommunityAi::default(),
        }
    }

    fn remember(&self, channel: EntityId, speaker: &str, text: &str) {
        let mut history = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() >= MAX_CHANNELS && !history.contains_key(&channel) {
            history.clear();
        }
        let lines = history.entry(channel).or_default();
        lines.push_back((speaker.to_owned(), text.to_owned()));
        while lines.len() > self.inner.settings.context_messages {
            lines.pop_front();
        }
    }

    fn recent(&self, channel: EntityId) -> Vec<(String, String)> {
        let history = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        history
            .get(&channel)
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes one request from the channel's per-minute budget, if there is room.
    fn take_channel_budget(&self, channel: EntityId) -> bool {
        let mut requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if requests.len() >= MAX_CHANNELS && !requests.contains_key(&channel) {
            requests.clear();
        }
        let times = requests.entry(channel).or_default();
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= self.inner.settings.channel_per_minute {
            return false;
        }
        times.push_back(now);
        true
    }

    fn prompt(
        &self,
        ctx: &Context,
        community: &CommunityAi,
        trigger: Trigger,
        text: &str,
    ) -> ChatRequest {
        let settings = &self.inner.settings;
        let user = ctx.user().shown_name().to_owned();
        let system = format!(
            "{}\nPlatform: {}. Keep every answer under {} characters.",
            community
                .system_prompt
                .as_deref()
                .unwrap_or(&settings.system_prompt),
            ctx.event.platform,
            settings.max_len
        );
        let mut messages = vec![ChatMessage::system(system)];
        let recent = self.recent(ctx.entity);
        if !recent.is_empty() {
            let context: Vec<String> = recent
                .iter()
                .map(|(speaker, said)| format!("{speaker}: {said}"))
                .collect();
            messages.push(ChatMessage::user(format!(
                "Recent chat, for context:\n{}",
                context.join("\n")
            )));
        }
        let instruction = match trigger {
            Trigger::Command | Trigger::Question => {
                format!("{user} asks: {text}\nGive a helpful, short answer.")
            }
            Trigger::Greeting => format!("{user} says: {text}\nGreet them back warmly."),
            Trigger::Farewell => format!("{user} says: {text}\nSay a friendly goodbye."),
            Trigger::Event => text.to_owned(),
        };
        messages.push(ChatMessage::user(instruction));
        ChatRequest::new(messages)
    }

    /// Asks the provider within the budgets and the timeout. `None` when over budget.
    async fn answer(
        &self,
        ctx: &Context,
        community: &CommunityAi,
        trigger: Trigger,
        text: &str,
    ) -> Option<Result<String, String>> {
        let provider = self.inner.provider.get()?;
        if !self.take_channel_budget(ctx.entity) {
            return None;
        }
        let _slot = self.inner.running.try_acquire().ok()?;
        let request = self.prompt(ctx, community, trigger, text);
        let settings = &self.inner.settings;
        let result = match tokio::time::timeout(settings.timeout, provider.chat(request)).await {
            Ok(Ok(answer)) => Ok(clean_answer(&answer.content, settings.max_len)),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {:?}", settings.timeout)),
        };
        Some(match result {
            Ok(answer) if !answer.is_empty() => Ok(answer),
            Ok(_) => Err("an empty answer".to_owned()),
            Err(why) => {
                tracing::warn!(provider = provider.name(), reason = %why, "AI answer failed; using the canned reply");
                Err(why)
            }
        })
    }

    fn reply(&self, text: &str) -> Reply {
        Reply::text(format!("{}{text}", self.inner.settings.response_prefix))
    }
}

#[async_trait]
impl CommandHandler for AiChat {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("ai")
                .alias("ask")
                .usage("ai <question>")
                .description("Ask the bot's AI a question")
                .cooldown(self.inner.settings.user_cooldown)
                .module(AI_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let question = ctx.args.rest(0);
        if question.trim().is_empty() {
            return Err(ctx.usage_error());
        }
        if self.inner.provider.get().is_none() {
            return Ok(vec![Reply::text(NOT_CONFIGURED)]);
        }
        let community = self.community(&ctx).await;
        match self
            .answer(&ctx, &community, Trigger::Command, question.trim())
            .await
        {
            Some(Ok(answer)) => Ok(vec![self.reply(&answer)]),
            Some(Err(_)) => Ok(vec![self.reply(fallback_reply(Trigger::Command, None))]),
            None if self.inner.settings.refuse_over_budget => Ok(vec![Reply::text(
                "The AI is busy right now; try again in a minute.",
            )]),
            None => Ok(Vec::new()),
        }
    }
}

/// The AI module's [`EventHandler`]: see [`AiChat::listener`].
#[derive(Debug, Clone)]
pub struct AiListener(AiChat);

/// The line telling the AI what happened, for a channel event.
fn event_line(user: &str, kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Follow => {
            format!("{user} just followed the channel. Welcome them in one short sentence.")
        }
        EventKind::Subscription {
            gift: Some(gift), ..
        } => format!(
            "{user} just gifted {} subscription(s). Thank them in one short sentence.",
            gift.count
        ),
        EventKind::Subscription { months, .. } if *months > 1 => {
            format!("{user} just subscribed for {months} months. Thank them in one short sentence.")
        }
        EventKind::Subscription { .. } => {
            format!("{user} just subscribed. Thank them in one short sentence.")
        }
        EventKind::Raid { viewers } => format!(
            "{user} just raided with {viewers} viewers. Welcome the raiders in one short sentence."
        ),
        EventKind::Cheer { bits } => {
            format!("{user} just cheered {bits} bits. Thank them in one short sentence.")
        }
        EventKind::Donation { .. } => {
            format!("{user} just donated. Thank them in one short sentence.")
        }
        EventKind::Custom { name } if name == "boost" => {
            format!("{user} just boosted the server. Thank them in one short sentence.")
        }
        _ => return None,
    })
}

#[async_trait]
impl EventHandler for AiListener {
    fn subscription(&self) -> Subscription {
        let mut kinds = vec!["chat_message"];
        kinds.extend(EVENT_KINDS);
        Subscription::new(AI_MODULE, &kinds)
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let ai = &self.0;
        let settings = &ai.inner.settings;
        let event = Arc::clone(&ctx.event);
        let user = ctx.user().shown_name().to_owned();
        if event.kind == EventKind::ChatMessage {
            let trigger =
                chat_trigger(&event.text, &settings.bot_name, &settings.question_triggers);
            let mut answer = None;
            if let Some(trigger) = trigger {
                let community = ai.community(&ctx).await;
                if community.respond_to_chat {
                    answer = ai
                        .answer(&ctx, &community, trigger, &event.text)
                        .await
                        .map(|a| (trigger, a));
                }
            }
            // Remembered after the prompt was built, so the message is not its own context.
            ai.remember(ctx.entity, &user, &event.text);
            return Ok(match answer {
                Some((_, Ok(text))) => vec![ai.reply(&text)],
                Some((trigger, Err(_))) => vec![ai.reply(fallback_reply(trigger, None))],
                None => Vec::new(),
            });
        }
        let community = ai.community(&ctx).await;
        let kind_name = event.kind.name();
        if !community.respond_to_events || !community.event_types.iter().any(|t| t == kind_name) {
            return Ok(Vec::new());
        }
        let Some(line) = event_line(&user, &event.kind) else {
            return Ok(Vec::new());
        };
        Ok(
            match ai.answer(&ctx, &community, Trigger::Event, &line).await {
                Some(Ok(text)) => vec![ai.reply(&text)],
                Some(Err(_)) => vec![ai.reply(fallback_reply(Trigger::Event, Some(&event.kind)))],
                None => Vec::new(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_and_farewells_match_whole_words_only() {
        let q = vec!["?".to_owned()];
        let trigger = |text| chat_trigger(text, "waddlebot", &q);
        assert_eq!(trigger("hi everyone"), Some(Trigger::Greeting));
        assert_eq!(trigger("Hello!"), Some(Trigger::Greeting));
        assert_eq!(trigger("o7"), Some(Trigger::Greeting));
        assert_eq!(
            trigger("this is fine"),
            None,
            "'hi' inside 'this' is no greeting"
        );
        assert_eq!(trigger("shipping soon"), None);
        assert_eq!(trigger("ok bye all"), Some(Trigger::Farewell));
        assert_eq!(trigger("!lurk"), Some(Trigger::Farewell));
        assert_eq!(trigger("maybe later"), Some(Trigger::Farewell));
        assert_eq!(trigger("what game is this?"), Some(Trigger::Question));
        assert_eq!(trigger("@WaddleBot tell a joke"), Some(Trigger::Question));
        assert_eq!(
            trigger("@waddlebotfan hello"),
            Some(Trigger::Greeting),
            "not a mention"
        );
    }

    #[test]
    fn answers_are_cleaned_and_cut_on_a_word() {
        assert_eq!(
            clean_answer("  **Sure!**  Here is   *one*\n thing. ", 400),
            "Sure! Here is one thing."
        );
        assert_eq!(clean_answer("\"Quoted answer\"", 400), "Quoted answer");
        let long = "word ".repeat(200);
        let cut = clean_answer(&long, 40);
        assert!(cut.chars().count() <= 40, "{cut}");
        assert!(cut.ends_with("word…"), "{cut}");
        assert_eq!(
            clean_answer("snake_case_name stays", 400),
            "snake_case_name stays"
        );
    }
}

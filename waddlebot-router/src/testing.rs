//! A transcript harness for testing modules the way chat users meet them (feature `test-util`).
//!
//! Write what people say and what the bot should answer; the harness plays it through a real
//! router on an in-memory store and a manual clock, and fails with the line that differs.
//!
//! ```
//! use waddlebot::{command_fn, CommandSpec, Context};
//! use waddlebot_router::{Router, testing::Transcript};
//!
//! async fn hug(ctx: Context) -> String {
//!     format!("{} hugs {}", ctx.user().name, ctx.args.get(0).unwrap_or("everyone"))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let transcript = Transcript::new(
//!     Router::builder().handler(command_fn(CommandSpec::new("hug"), hug)),
//! ).unwrap();
//! transcript.play(r#"
//!     alice: !hug bob
//!     < alice hugs bob
//!     bob@moderator: just chatting
//!     alice: !nope
//!     <~ Unknown command
//! "#).await;
//! # });
//! ```
//!
//! Script lines:
//!
//! | line | meaning |
//! |---|---|
//! | `alice: text` | `alice` (level everyone) says `text` |
//! | `alice@moderator: text` | the same at a permission level |
//! | `< reply` | the next reply is exactly `reply` |
//! | `<~ part` | the next reply contains `part` |
//! | `~ wait 30s` | the clock moves on (`ms`, `s`, `m`, `h`) |
//! | `// comment` | ignored, as are blank lines |
//!
//! After an input, the bot must give exactly the replies listed under it: none listed means it
//! must stay silent.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::clock::ManualClock;
use waddlebot::store::MemoryStore;
use waddlebot::{Event, PermissionLevel, PlatformKind};

use crate::{BuildError, Router, RouterBuilder};

/// A router on a manual clock with a chat-like way to drive it.
pub struct Transcript {
    router: Router,
    clock: Arc<ManualClock>,
    platform: PlatformKind,
    channel: String,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("platform", &self.platform)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

enum Expect {
    Exactly(String),
    Contains(String),
}

impl Transcript {
    /// Builds the router with a manual clock and, unless the builder has one, an in-memory
    /// store. Messages come from Twitch channel `pond` until [`on`](Self::on) says otherwise.
    pub fn new(builder: RouterBuilder) -> Result<Self, BuildError> {
        let clock = Arc::new(ManualClock::new());
        let builder = if builder.has_store() {
            builder
        } else {
            builder.store(Arc::new(MemoryStore::new()))
        };
        let router = builder.clock(clock.clone()).build()?;
        Ok(Self {
            router,
            clock,
            platform: PlatformKind::Twitch,
            channel: "pond".to_owned(),
        })
    }

    /// Messages from now on come from this platform and channel (its own community).
    pub fn on(mut self, platform: PlatformKind, channel: impl Into<String>) -> Self {
        self.platform = platform;
        self.channel = channel.into();
        self
    }

    /// The router under test.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The community the transcript's channel belongs to (created on first use).
    pub async fn community(&self) -> waddlebot::CommunityId {
        let key = waddlebot::store::EntityKey {
            platform: self.platform.clone(),
            server_id: self.channel.clone(),
            channel_id: self.channel.clone(),
        };
        match self.router.store().resolve_entity(&key).await {
            Ok(entity) => entity.community_id,
            Err(err) => panic!("the store failed resolving the transcript's channel: {err}"),
        }
    }

    /// Turns `module` on in the transcript's community with `config` as its settings, through
    /// the router's store (so the next message sees them).
    pub async fn configure(&self, module: &str, config: serde_json::Value) {
        let install = waddlebot::store::ModuleInstall {
            community_id: self.community().await,
            module: module.to_owned(),
            enabled: true,
            config,
            updated_by: "transcript".to_owned(),
            updated_at: waddlebot::clock::Clock::now(self.clock.as_ref()),
        };
        if let Err(err) = self.router.store().put_module_install(&install).await {
            panic!("the store failed configuring {module}: {err}");
        }
    }

    /// The clock the router runs on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// `user` says `text` at `level`; returns the replies as plain text.
    pub async fn say(&self, user: &str, level: PermissionLevel, text: &str) -> Vec<String> {
        let event = Event::chat(
            self.platform.clone(),
            self.channel.clone(),
            self.channel.clone(),
            user,
            text,
        )
        .with_level(level);
        match self.router.handle(event).await {
            Ok(outcome) => outcome.replies.iter().map(|r| r.to_plain_text()).collect(),
            Err(err) => panic!("the router failed on {user}: {text}: {err}"),
        }
    }

    /// Plays a script (see the module docs), panicking at the first difference.
    pub async fn play(&self, script: &str) {
        let lines: Vec<(usize, &str)> = script
            .lines()
            .enumerate()
            .map(|(n, line)| (n + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with("//"))
            .collect();
        let mut index = 0;
        while index < lines.len() {
            let (number, line) = lines[index];
            index += 1;
            if let Some(wait) = line.strip_prefix("~ wait ") {
                self.clock.advance(parse_wait(wait, number));
                continue;
            }
            let (speaker, text) = line.split_once(": ").unwrap_or_else(|| {
                panic!("transcript line {number}: expected `user: text`, got `{line}`")
            });
            let (user, level) = match speaker.split_once('@') {
                Some((user, level)) => (
                    user,
                    level
                        .parse()
                        .unwrap_or_else(|err| panic!("transcript line {number}: {err}")),
                ),
                None => (speaker, PermissionLevel::Everyone),
            };
            let mut expected = Vec::new();
            while let Some(&(_, next)) = lines.get(index) {
                if let Some(part) = next.strip_prefix("<~") {
                    expected.push(Expect::Contains(part.trim().to_owned()));
                } else if let Some(reply) = next.strip_prefix('<') {
                    expected.push(Expect::Exactly(reply.trim().to_owned()));
                } else {
                    break;
                }
                index += 1;
            }
            let got = self.say(user, level, text).await;
            let matches = got.len() == expected.len()
                && got.iter().zip(&expected).all(|(got, want)| match want {
                    Expect::Exactly(want) => got == want,
                    Expect::Contains(part) => got.contains(part.as_str()),
                });
            if !matches {
                let want: Vec<String> = expected
                    .iter()
                    .map(|e| match e {
                        Expect::Exactly(text) => format!("< {text}"),
                        Expect::Contains(text) => format!("<~ {text}"),
                    })
                    .collect();
                panic!(
                    "transcript line {number}: `{line}`\n  expected: {want:#?}\n  got:      {got:#?}"
                );
            }
        }
    }
}

fn parse_wait(spec: &str, number: usize) -> Duration {
    let spec = spec.trim();
    let split = spec
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(spec.len());
    let amount: u64 = spec[..split]
        .parse()
        .unwrap_or_else(|_| panic!("transcript line {number}: bad wait `{spec}`"));
    match &spec[split..] {
        "ms" => Duration::from_millis(amount),
        "s" | "" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount * 60),
        "h" => Duration::from_secs(amount * 3600),
        other => panic!("transcript line {number}: unknown unit `{other}` (ms, s, m, h)"),
    }
}

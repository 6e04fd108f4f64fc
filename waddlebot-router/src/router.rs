//! The router: event in, decision, handler, replies out.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use tracing::Instrument;
use waddlebot::store::{Entity, community_namespace};
use waddlebot::template::{Var, Vars};
use waddlebot::{
    CommandCatalog, CommandError, CommandHandler, CommunityId, Context, DuplicateCommand, EntityId,
    Event, EventId, EventKind, Platform, PlatformKind, Reply, SessionId, Store, StoreError,
};

use crate::cache::{CacheTtl, CachedCommand, CachedStore, CommunityView};
use crate::fanout::{HandlerReport, Reports, Subscriber};

use crate::meters::CommandOutcome;
use crate::parse::{Invocation, Prefixes, command_line};
use crate::policy::{CommandRules, Policy, PolicyConfig};
use crate::remote::RemoteCaller;
use crate::rules::{self, RuleEffect};
use crate::session::SessionStore;
use waddlebot::clock::Clock;

/// Router settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Prefixes of local commands (built-in modules, custom commands, aliases); default `!`.
    pub prefixes: Vec<String>,
    /// Prefix of remote (community/marketplace) module commands; default `#`.
    pub remote_prefix: String,
    /// How long a handler may run before the user is told it took too long
    /// (`ROUTER_REQUEST_TIMEOUT`, default 30 s).
    pub handler_timeout: Duration,
    /// Cache lifetimes.
    pub cache_ttl: CacheTtl,
    /// Rate limits and cooldown exemptions.
    pub policy: PolicyConfig,
    /// How many events of one batch are handled at once (`ROUTER_MAX_CONCURRENT`, default 100).
    pub max_concurrent: usize,
    /// The most string rules one community may have (`ROUTER_MAX_RULES`, default 100); more
    /// are refused when added, and only the first this many by priority are ever compiled.
    pub max_rules_per_community: usize,
    /// How long a session (where an event came from, for late answers) lives
    /// (`SESSION_TTL`, default an hour).
    pub session_ttl: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            prefixes: vec!["!".to_owned()],
            remote_prefix: "#".to_owned(),
            handler_timeout: Duration::from_secs(30),
            cache_ttl: CacheTtl::default(),
            policy: PolicyConfig::default(),
            max_concurrent: 100,
            max_rules_per_community: 100,
            session_ttl: crate::session::SESSION_TTL,
        }
    }
}

/// Why the router could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No store was given.
    #[error("the router needs a store: call RouterBuilder::store")]
    MissingStore,
    /// Two handlers declare one command name.
    #[error(transparent)]
    DuplicateCommand(#[from] DuplicateCommand),
    /// Two platforms of one kind were registered.
    #[error("platform '{0}' is registered twice")]
    DuplicatePlatform(PlatformKind),
    /// A setting is unusable.
    #[error("invalid router config: {0}")]
    InvalidConfig(String),
}

/// Why an event could not be handled. User mistakes are not errors: they are replies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// The store failed while resolving where the event belongs.
    #[error("store unavailable: {0}")]
    Store(#[from] StoreError),
    /// `dispatch` was called for a platform nobody registered.
    #[error("no platform registered for '{0}'")]
    NoPlatform(PlatformKind),
    /// A task running the event failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What handling one event decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Correlates later replies with this event.
    pub session_id: SessionId,
    /// The event handled.
    pub event_id: EventId,
    /// The community it belongs to.
    pub community_id: CommunityId,
    /// The place it happened.
    pub entity_id: EntityId,
    /// Whether the event was a command (known or not) that the router answered.
    pub processed: bool,
    /// The command as recognised (`!ping`), if any.
    pub command: Option<String>,
    /// What to deliver, in order.
    pub replies: Vec<Reply>,
    /// The string rule that matched this message, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_rule: Option<i64>,
    /// What each event handler did: for events that are not commands, every handler run;
    /// for commands, the [`COMMAND_USED`](waddlebot::COMMAND_USED) observers that answered
    /// or failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<HandlerReport>,
    /// The command failed because the store failed: what it was to write may not be written,
    /// and sending the event again may succeed. Chat still gets the apology in `replies`; the
    /// server answers a collector 503 so it retries.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub store_failed: bool,
}

pub use crate::builder::RouterBuilder;

/// The engine. Cheap to share (`Arc<Router>`); every method takes `&self`.
pub struct Router {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) catalog: Arc<CommandCatalog>,
    pub(crate) handlers: Vec<Arc<dyn CommandHandler>>,
    /// `owners[i]` is the index in `handlers` of the handler of `catalog.specs()[i]`.
    pub(crate) owners: Vec<usize>,
    /// Event handlers, by priority.
    pub(crate) subscribers: Vec<Subscriber>,
    /// Whether some event handler subscribed to [`waddlebot::COMMAND_USED`].
    pub(crate) observes_commands: bool,
    pub(crate) platforms: Arc<HashMap<PlatformKind, Arc<dyn Platform>>>,
    pub(crate) policy: Policy,
    pub(crate) clock: Arc<dyn Clock>,
    /// The same store, typed, for its shared lists.
    pub(crate) cached: Arc<CachedStore>,
    /// Compiled string rules per community, with the list they were compiled from.
    pub(crate) rules: crate::rules::CompiledRules,
    /// For rule webhooks.
    pub(crate) http: reqwest::Client,
    /// Whether remote modules and rule webhooks may call private addresses.
    pub(crate) egress: crate::egress::Egress,
    /// Where sessions live.
    pub(crate) sessions: Arc<dyn SessionStore>,
    /// What each community's OBS overlay shows; overlay replies go here.
    pub(crate) overlays: Arc<crate::overlay::OverlayHub>,
    /// Calls remote modules and tracks their health.
    pub(crate) remote: RemoteCaller,
    /// The prefixes of communities that set none of their own.
    pub(crate) prefixes: Prefixes,
    pub(crate) config: RouterConfig,
    /// Work that outlives a call (replies after the answer window, rule webhooks), so a
    /// shutdown can wait for it.
    pub(crate) tasks: tokio_util::task::TaskTracker,
    pub(crate) meters: crate::meters::Meters,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("commands", &self.catalog.specs().len())
            .field("platforms", &self.platforms.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The umbrella slash command: Slack's `/waddlebot <sub> <args>` runs `!<sub> <args>`.
pub const UMBRELLA_SLASH_COMMAND: &str = "waddlebot";

/// A platform slash command as an invocation: `/<name> <text>`, or for the umbrella command the
/// first word of the text is the command.
fn slash_invocation(name: &str, text: &str) -> Option<Invocation> {
    let name = waddlebot::normalize_command_name(name);
    if name == UMBRELLA_SLASH_COMMAND {
        if text.trim().is_empty() {
            return Some(Invocation {
                prefix: "/".to_owned(),
                name: "help".to_owned(),
                args: waddlebot::Args::default(),
                remote: false,
            });
        }
        let mut invocation = command_line(&format!("/{}", text.trim_start()), &["/".to_owned()])?;
        invocation.prefix = "/".to_owned();
        return Some(invocation);
    }
    (!name.is_empty()).then(|| Invocation {
        prefix: "/".to_owned(),
        name,
        args: waddlebot::Args::parse(text),
        remote: false,
    })
}

/// A module a router knows, from [`Router::modules`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    /// Its name (`core`, `custom_commands`, `quotes`...).
    pub name: String,
    /// Off in a community until installed there; core modules are on until turned off.
    pub optional: bool,
    /// The commands it answers, without prefix.
    pub commands: Vec<String>,
}

/// Where a command name led.
enum Target<'a> {
    Builtin(usize, &'a waddlebot::CommandSpec),
    Custom(Arc<CachedCommand>),
    Unknown,
}

impl Router {
    /// Starts building a router.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Runs `work` in the background as part of the router's work, so [`drain`](Self::drain)
    /// waits for it (a reply delivered after the platform's answer window...).
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(work)
    }

    /// For a shutdown: waits up to `within` for background work to finish (late replies, rule
    /// webhooks, whatever was [`spawn`](Self::spawn)ed), then writes the bookkeeping still
    /// waiting ([`Store::write_behind`](waddlebot::Store::write_behind)). `true` when all of
    /// it is done. Work started afterwards is still run and still waited for by a later call.
    pub async fn drain(&self, within: std::time::Duration) -> bool {
        self.tasks.close();
        let started = tokio::time::Instant::now();
        let done = tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok();
        self.tasks.reopen();
        let left = within.saturating_sub(started.elapsed());
        let written = match tokio::time::timeout(left, self.store.flush()).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "bookkeeping could not be written at shutdown");
                false
            }
            Err(_) => false,
        };
        done && written
    }

    /// The built-in commands.
    pub fn catalog(&self) -> &Arc<CommandCatalog> {
        &self.catalog
    }

    /// The modules this router knows (those of its handlers' commands and event handlers,
    /// `core` and `custom_commands`), sorted by name, each with its commands and whether it is optional
    /// (off in a community until installed there).
    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut modules: std::collections::BTreeMap<&str, Vec<String>> = [
            ("core", Vec::new()),
            (waddlebot::store::CUSTOM_COMMANDS_MODULE, Vec::new()),
        ]
        .into();
        for spec in self.catalog.specs() {
            modules
                .entry(spec.module.as_str())
                .or_default()
                .push(spec.name.clone());
        }
        for subscriber in &self.subscribers {
            modules
                .entry(subscriber.subscription.module.as_str())
                .or_default();
        }
        modules
            .into_iter()
            .map(|(name, commands)| ModuleInfo {
                optional: self.catalog.is_optional(name),
                name: name.to_owned(),
                commands,
            })
            .collect()
    }

    pub(crate) fn subscribers(&self) -> &[Subscriber] {
        &self.subscribers
    }

    /// The rate limits and cooldown rules every command passes.
    pub fn policy_config(&self) -> &PolicyConfig {
        &self.policy.config
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock the router's time-based rules use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The communities' overlays: every overlay reply lands here, and overlay pages subscribe.
    pub fn overlays(&self) -> &Arc<crate::overlay::OverlayHub> {
        &self.overlays
    }

    /// Puts the overlay replies among `replies` on the community's overlay and leaves the
    /// rest to be delivered to the platform.
    pub(crate) fn show_overlays(&self, community: CommunityId, replies: &mut Vec<Reply>) {
        if !replies
            .iter()
            .any(|reply| matches!(reply, Reply::Overlay(_)))
        {
            return;
        }
        replies.retain(|reply| match reply {
            Reply::Overlay(item) => {
                if let Err(err) = self.overlays.show(community, item.clone()) {
                    tracing::warn!(community = community.0, error = %err, "overlay item not shown");
                }
                false
            }
            _ => true,
        });
    }

    /// The (cached) store the router and its handlers use.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Decides what an event means and runs it, returning what would be delivered. Nothing is
    /// sent: see [`dispatch`](Self::dispatch) for that.
    pub async fn handle(&self, event: Event) -> Result<Outcome, RouterError> {
        self.handle_with_session(event, self.new_session_id()).await
    }

    /// A new session id from the router's session store, for
    /// [`handle_with_session`](Self::handle_with_session). Any id works there; one from here is
    /// the one the store finds fastest.
    pub fn new_session_id(&self) -> SessionId {
        self.sessions.new_id()
    }

    /// [`handle`](Self::handle) with a session id chosen by the caller (who may need it before
    /// the outcome is known, to defer a platform's answer): preferably one from
    /// [`new_session_id`](Self::new_session_id).
    pub async fn handle_with_session(
        &self,
        event: Event,
        session: SessionId,
    ) -> Result<Outcome, RouterError> {
        let started = quanta::Instant::now();
        self.meters.events.increment(event.kind.name());
        let span = tracing::info_span!(
            "event",
            id = %event.id,
            platform = %event.platform,
            kind = event.kind.name(),
            community = tracing::field::Empty,
            command = tracing::field::Empty,
        );
        let outcome = self
            .handle_inner(event, session, started)
            .instrument(span)
            .await;
        self.meters
            .event_seconds
            .record(since(started).as_secs_f64());
        outcome
    }

    /// `started`: when handling began, the moment the cache lookups check expiry against.
    async fn handle_inner(
        &self,
        event: Event,
        session: SessionId,
        started: quanta::Instant,
    ) -> Result<Outcome, RouterError> {
        let entity = self
            .cached
            .entity_at(
                &event.platform,
                &event.server_id,
                &event.channel_id,
                started,
            )
            .await?;
        tracing::Span::current().record("community", entity.community_id.0);
        let mut outcome = Outcome {
            session_id: session,
            event_id: event.id.clone(),
            community_id: entity.community_id,
            entity_id: entity.id,
            processed: false,
            command: None,
            replies: Vec::new(),
            matched_rule: None,
            handlers: Vec::new(),
            store_failed: false,
        };
        let view = self.cached.view_at(entity.community_id, started).await?;
        let invocation = match &event.kind {
            EventKind::ChatMessage => self.prefixes_for(&view).parse(&event.text),
            EventKind::SlashCommand { name } => slash_invocation(name, &event.text),
            _ => None,
        };
        let Some(invocation) = invocation else {
            let event = Arc::new(event);
            let mut outcome = self.handle_plain(&event, &entity, &view, outcome).await?;
            self.show_overlays(outcome.community_id, &mut outcome.replies);
            if outcome.processed {
                self.remember(&outcome, &entity, event).await;
            }
            return Ok(outcome);
        };
        tracing::Span::current().record("command", invocation.name.as_str());
        outcome.processed = true;
        let shown = [invocation.prefix.as_str(), &invocation.name].concat();
        // A command runs at the caller's level in this community: badges and role grants.
        let mut event = event;
        event.user.level = self.policy.effective_level(&view, &event);
        let event = Arc::new(event);
        outcome.replies = match self
            .follow_aliases(&event, &entity, &view, invocation)
            .await?
        {
            Ok(invocation) => {
                self.run_command(
                    Arc::clone(&event),
                    &entity,
                    &view,
                    invocation,
                    &outcome.session_id,
                    &mut outcome.store_failed,
                )
                .await?
            }
            Err(err) => vec![Reply::text(format!("Alias {shown} cannot run: {err}."))],
        };
        outcome.command = Some(shown);
        let event = if self.observes_commands {
            // The command's handler is done with the event (unless it kept its context): the
            // observers' copy is the same event, renamed.
            let mut used = Arc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone());
            used.kind = EventKind::Custom {
                name: waddlebot::COMMAND_USED.to_owned(),
            };
            let used = Arc::new(used);
            let (replies, reports) = self
                .fan_out(
                    Arc::clone(&used),
                    &entity,
                    &view,
                    &outcome.session_id,
                    Reports::Speaking,
                )
                .await?;
            outcome.replies.extend(replies);
            // Observers that only looked have nothing to report about a command.
            outcome.handlers = reports;
            used
        } else {
            event
        };
        self.show_overlays(outcome.community_id, &mut outcome.replies);
        self.remember(&outcome, &entity, event).await;
        Ok(outcome)
    }

    /// Handles several events, at most `max_concurrent` at a time, and returns their results in
    /// input order. One event failing never fails the others.
    pub async fn handle_batch(&self, events: Vec<Event>) -> Vec<Result<Outcome, RouterError>> {
        futures_util::stream::iter(events.into_iter().map(|event| self.handle(event)))
            .buffered(self.config.max_concurrent)
            .collect()
            .await
    }

    /// A community's prefixes: the `prefix` / `prefixes` and `remote_prefix` keys of its `core`
    /// module config, else the router's. Worked out once per view.
    pub(crate) fn prefixes_for<'a>(&'a self, view: &'a CommunityView) -> &'a Prefixes {
        view.prefixes
            .get_or_init(|| {
                let config = &view.install("core")?.config;
                let text = |v: &serde_json::Value| {
                    v.as_str()
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                };
                let local: Vec<String> = match (config.get("prefixes"), config.get("prefix")) {
                    (Some(serde_json::Value::Array(list)), _) => {
                        list.iter().filter_map(text).collect()
                    }
                    (_, Some(one)) => text(one).into_iter().collect(),
                    _ => Vec::new(),
                };
                let remote = config.get("remote_prefix").and_then(text);
                if local.is_empty() && remote.is_none() {
                    return None;
                }
                let mut prefixes = self.prefixes.clone();
                if !local.is_empty() {
                    prefixes.local = local;
                }
                if let Some(remote) = remote {
                    prefixes.remote = remote;
                }
                prefixes.local.retain(|p| *p != prefixes.remote);
                Some(prefixes)
            })
            .as_ref()
            .unwrap_or(&self.prefixes)
    }

    /// Keeps the session of a processed event, so late replies can find their way back. A
    /// session store failure costs only late replies, so it is logged, not raised.
    async fn remember(&self, outcome: &Outcome, entity: &Arc<Entity>, event: Arc<Event>) {
        if let Err(err) = self
            .sessions
            .put_event(&outcome.session_id, entity, event)
            .await
        {
            tracing::warn!(error = %err, "session not stored; late replies to it will be refused");
        }
    }

    /// Plain chat and platform events: string rules (chat only), then event handlers.
    async fn handle_plain(
        &self,
        event: &Arc<Event>,
        entity: &Entity,
        view: &CommunityView,
        mut outcome: Outcome,
    ) -> Result<Outcome, RouterError> {
        let community = entity.community_id;
        if matches!(event.kind, EventKind::ChatMessage) {
            let rules = self.rule_set(community).await?;
            if let Some(rule) = rules.first_match(&event.text) {
                self.store
                    .record_rule_match(community, rule.id, self.clock.now())
                    .await?;
                tracing::info!(rule = rule.id, "string rule matched");
                self.meters.rule_matches.increment(1);
                outcome.processed = true;
                outcome.matched_rule = Some(rule.id);
                rules::send_webhook(
                    &self.tasks,
                    &self.http,
                    &self.egress,
                    rule,
                    community,
                    event,
                );
                match rules::effect(rule, event) {
                    RuleEffect::Block(replies) => {
                        outcome.replies = replies;
                        return Ok(outcome);
                    }
                    RuleEffect::Replies(replies) => outcome.replies = replies,
                    RuleEffect::Command(line) => {
                        if let Some(invocation) = Prefixes::canonical().parse(&line) {
                            outcome.replies =
                                match self.follow_aliases(event, entity, view, invocation).await? {
                                    // Boxed: rare, and plain chat should not carry a
                                    // command's future.
                                    Ok(invocation) => {
                                        let mut commanded = Event::clone(event);
                                        commanded.user.level =
                                            self.policy.effective_level(view, &commanded);
                                        Box::pin(self.run_command(
                                            Arc::new(commanded),
                                            entity,
                                            view,
                                            invocation,
                                            &outcome.session_id,
                                            &mut outcome.store_failed,
                                        ))
                                        .await?
                                    }
                                    Err(err) => {
                                        tracing::warn!(error = %err, "rule command alias failed");
                                        Vec::new()
                                    }
                                };
                        }
                    }
                    RuleEffect::Silent => {}
                }
            }
        }
        let (mut replies, reports) = self
            .fan_out(
                Arc::clone(event),
                entity,
                view,
                &outcome.session_id,
                Reports::Every,
            )
            .await?;
        // Handlers that only looked (the member directory, reputation counting a message) do
        // not make a message "processed"; one that answered or failed does.
        outcome.processed |= reports.iter().any(|r| r.replies > 0 || r.error.is_some());
        outcome.replies.append(&mut replies);
        outcome.handlers = reports;
        Ok(outcome)
    }

    fn lookup<'a>(&'a self, view: &CommunityView, name: &str) -> Target<'a> {
        if let Some((index, spec)) = self.catalog.find(name) {
            return Target::Builtin(index, spec);
        }
        match view.command(name) {
            Some(command) => Target::Custom(Arc::clone(command)),
            None => Target::Unknown,
        }
    }

    async fn run_command(
        &self,
        event: Arc<Event>,
        entity: &Entity,
        view: &CommunityView,
        invocation: Invocation,
        session: &SessionId,
        store_failed: &mut bool,
    ) -> Result<Vec<Reply>, RouterError> {
        if invocation.remote {
            // Boxed: a remote call's future is large, and local commands should not carry it.
            return Box::pin(self.run_remote_command(event, entity, view, invocation, session))
                .await;
        }
        // The command as typed, for the answers that name it (refusals, failures): built only
        // when one is given.
        let shown = || format!("{}{}", invocation.prefix, invocation.name);
        let community = entity.community_id;
        let target = self.lookup(view, &invocation.name);
        let rules = match &target {
            Target::Unknown => {
                self.meters.command(CommandOutcome::Unknown);
                let prefix = self.display_prefix(&invocation.prefix);
                return Ok(vec![Reply::text(format!(
                    "Unknown command: {}. Type {prefix}commands to see what I can do.",
                    shown()
                ))]);
            }
            Target::Builtin(_, spec) => CommandRules {
                name: &spec.name,
                module: &spec.module,
                min_level: spec.min_level,
                user_cooldown: spec.cooldown,
                global_cooldown: spec.global_cooldown,
                bucket: spec.cooldown_bucket.as_deref(),
            },
            Target::Custom(custom) => CommandRules {
                name: &custom.command.name,
                module: waddlebot::store::CUSTOM_COMMANDS_MODULE,
                min_level: waddlebot::PermissionLevel::Everyone,
                user_cooldown: Duration::ZERO,
                global_cooldown: Duration::ZERO,
                bucket: None,
            },
        };
        if let Some(refusal) = self.policy.check(view, community, &event, rules).await {
            return Ok(vec![self.refuse(&refusal, &shown())]);
        }
        let result = match target {
            Target::Unknown => Ok(Vec::new()),
            Target::Builtin(index, spec) => {
                let ctx = Context::new(
                    community,
                    entity.id,
                    Arc::clone(&event),
                    spec.name.clone(),
                    invocation.args,
                    Arc::clone(&self.store),
                    Arc::clone(&self.catalog),
                )
                .with_prefix(self.display_prefix(&invocation.prefix))
                .with_clock(Arc::clone(&self.clock));
                let ctx = match self.sink_for(&event, community) {
                    Some(sink) => ctx.with_sink(sink),
                    None => ctx,
                };
                let handler = Arc::clone(&self.handlers[self.owners[index]]);
                self.guarded(&spec.module, handler.handle(ctx)).await
            }
            Target::Custom(custom) => {
                self.guarded(
                    waddlebot::store::CUSTOM_COMMANDS_MODULE,
                    self.render_custom(&event, &custom, &invocation.args),
                )
                .await
            }
        };
        Ok(match result {
            Ok(replies) => {
                self.meters.command(CommandOutcome::Ok);
                replies
            }
            Err(err) => {
                self.meters.command(if err.is_user_error() {
                    CommandOutcome::UserError
                } else {
                    CommandOutcome::Failed
                });
                *store_failed = matches!(err, CommandError::Store(_));
                vec![self.explain_failure(&shown(), err)]
            }
        })
    }

    /// The reply for a refusal, counted and logged.
    pub(crate) fn refuse(&self, refusal: &crate::policy::Refusal, shown: &str) -> Reply {
        // Counted by reason in `waddlebot_refusals_total`; a line per refusal at INFO
        // was most of what a spam wave cost (a raid of refused commands wrote 157 MB of log in
        // 8 s), so it is DEBUG.
        tracing::debug!(reason = refusal.reason(), "command refused");
        self.meters.command(CommandOutcome::Refused);
        self.meters.refusals.increment(refusal.reason());
        Reply::text(refusal.text(shown))
    }

    /// The prefix to show in help and refusals: slash commands map to the first chat prefix.
    fn display_prefix(&self, used: &str) -> String {
        if used == "/" {
            self.config
                .prefixes
                .iter()
                .find(|p| !p.is_empty())
                .cloned()
                .unwrap_or_else(|| "!".to_owned())
        } else {
            used.to_owned()
        }
    }

    /// Runs a handler future with the deadline, turning a panic into an internal error so one
    /// faulty module cannot take the caller down with it.
    pub(crate) async fn guarded(
        &self,
        module: &str,
        future: impl std::future::Future<Output = Result<Vec<Reply>, CommandError>>,
    ) -> Result<Vec<Reply>, CommandError> {
        let started = quanta::Instant::now();
        let mut caught = std::pin::pin!(AssertUnwindSafe(future).catch_unwind());
        // Most handlers (text commands, lookups in cached data) finish on their first poll:
        // only a handler that has to wait pays for a timer (for what is left of its time).
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(caught.as_mut().poll(cx)));
        let finished = match first.await {
            std::task::Poll::Ready(result) => Ok(result),
            std::task::Poll::Pending => {
                let left = self.config.handler_timeout.saturating_sub(since(started));
                tokio::time::timeout(left, caught).await
            }
        };
        let result = match finished {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(CommandError::Internal("the handler panicked".into())),
            Err(_elapsed) => Err(CommandError::Internal(
                format!(
                    "the handler did not answer within {:?}",
                    self.config.handler_timeout
                )
                .into(),
            )),
        };
        self.meters.handler_ran(
            module,
            since(started).as_secs_f64(),
            result.as_ref().is_err_and(|err| !err.is_user_error()),
        );
        result
    }

    async fn render_custom(
        &self,
        event: &Event,
        custom: &CachedCommand,
        args: &waddlebot::Args,
    ) -> Result<Vec<Reply>, CommandError> {
        let command = &custom.command;
        let template = custom.template.as_ref().map_err(|err| {
            CommandError::Internal(
                format!("stored template of !{} is invalid: {err}", command.name).into(),
            )
        })?;
        // Like Nightbot's $(count): the counter moves when a command showing {count} runs, so
        // commands without it never pay for a write.
        let count = if template.uses(Var::Count) {
            self.store
                .increment(
                    &community_namespace(command.community_id, "command_uses"),
                    &command.name,
                    1,
                )
                .await?
        } else {
            0
        };
        let channel = event
            .metadata
            .get("channel_name")
            .and_then(|v| v.as_str())
            .unwrap_or(&event.channel_id);
        let args_vec = args.to_vec();
        let vars = Vars {
            user: event.user.shown_name(),
            args: &args_vec,
            args_text: args.raw(),
            channel,
            platform: event.platform.as_str(),
            count,
        };
        Ok(vec![Reply::text(template.render(&vars))])
    }

    /// The one place that decides what a chat user sees when a command fails.
    fn explain_failure(&self, shown: &str, err: CommandError) -> Reply {
        match err {
            CommandError::Usage(usage) => Reply::text(format!("Usage: {usage}")),
            CommandError::Invalid(message) => Reply::text(message),
            CommandError::Forbidden { needed } => {
                Reply::text(format!("You need to be {needed} or higher to use {shown}."))
            }
            other => {
                tracing::error!(error = %other, command = shown, "command failed");
                Reply::text(format!("Sorry, {shown} failed. The error has been logged."))
            }
        }
    }
}

/// Time since `started`, never negative: `quanta` reads the TSC, and its `elapsed` may panic
/// again in a later version if two cores' counters disagree.
fn since(started: quanta::Instant) -> std::time::Duration {
    quanta::Instant::now().saturating_duration_since(started)
}

//! Building a [`Router`]: the wiring is checked here, not at the first message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use waddlebot::clock::{Clock, SystemClock};
use waddlebot::{CommandCatalog, CommandHandler, EventHandler, Platform, Store};

use crate::builtin::Builtins;
use crate::cache::CachedStore;
use crate::fanout::Subscriber;
use crate::governor::Governor;
use crate::invalidation::InvalidationBus;
use crate::limit::{MemoryLimiter, RateLimiter};
use crate::parse::Prefixes;
use crate::policy::Policy;
use crate::remote::RemoteCaller;
use crate::session::{MemorySessions, SessionStore};
use crate::{BuildError, Router, RouterConfig};

/// Builds a [`Router`].
#[derive(Default)]
pub struct RouterBuilder {
    store: Option<Arc<dyn Store>>,
    handlers: Vec<Arc<dyn CommandHandler>>,
    subscribers: Vec<Subscriber>,
    optional_modules: HashSet<String>,
    egress: crate::egress::Egress,
    platforms: Vec<Arc<dyn Platform>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    sessions: Option<Arc<dyn SessionStore>>,
    bus: Option<Arc<dyn InvalidationBus>>,
    clock: Option<Arc<dyn Clock>>,
    config: RouterConfig,
}

impl RouterBuilder {
    /// The store (required). It is wrapped in a cache; handlers get the cached store too, so
    /// their writes invalidate what the router caches.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a module.
    pub fn handler(mut self, handler: impl CommandHandler + 'static) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Adds a shared module.
    pub fn handler_arc(mut self, handler: Arc<dyn CommandHandler>) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Adds a handler of non-command events (follows, raids, plain chat...).
    pub fn event_handler(mut self, handler: impl EventHandler + 'static) -> Self {
        self.subscribers.push(Subscriber {
            subscription: handler.subscription(),
            handler: Arc::new(handler),
        });
        self
    }

    /// [`event_handler`](Self::event_handler) for a shared handler (one instance that is also a
    /// command handler, say).
    pub fn event_handler_arc(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.subscribers.push(Subscriber {
            subscription: handler.subscription(),
            handler,
        });
        self
    }

    /// Adds several modules at once: command handlers and event handlers (a module that is
    /// both appears in both lists as one instance), as `waddlebot_modules::standard_modules()`
    /// gives them.
    pub fn modules(
        mut self,
        commands: impl IntoIterator<Item = Arc<dyn CommandHandler>>,
        events: impl IntoIterator<Item = Arc<dyn EventHandler>>,
    ) -> Self {
        for handler in commands {
            self = self.handler_arc(handler);
        }
        for handler in events {
            self = self.event_handler_arc(handler);
        }
        self
    }

    /// Adds a module that is off in every community until the community installs it (an
    /// enabled module install record). Modules added with [`handler`](Self::handler) are on
    /// until a community turns them off.
    pub fn optional_handler(mut self, handler: impl CommandHandler + 'static) -> Self {
        for spec in handler.specs() {
            self.optional_modules.insert(spec.module);
        }
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Whether a store has been given.
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The rate limiter for cooldowns and rate limits (default: in this process).
    pub fn limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Where sessions live (default: in this process, for an hour).
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Shares cache invalidations with other processes (a Redis bus, for several servers on
    /// one database). Its listener starts when the router is built, inside a tokio runtime.
    pub fn invalidation(mut self, bus: Arc<dyn InvalidationBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The clock (default: the system clock). Tests pass a manual one.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a platform replies can be delivered to. Replies go out through a
    /// [`Governor`](crate::governor::Governor), at the pace the platform allows; its quotas are
    /// counted in the [`limiter`](Self::limiter) when one is set (so a Redis limiter shares the
    /// bot's budget between processes), in process otherwise.
    pub fn platform(mut self, platform: Arc<dyn Platform>) -> Self {
        self.platforms.push(platform);
        self
    }

    /// Lets remote modules and rule webhooks call private and local addresses (modules running
    /// beside the bot, tests). Off by default: see [`crate::egress`].
    pub fn allow_private_targets(mut self, allow: bool) -> Self {
        self.egress = std::mem::take(&mut self.egress).private_allowed(allow);
        self
    }

    /// Lets remote modules and rule webhooks call these networks besides public addresses
    /// (modules on the operator's own network), and nothing else private.
    pub fn allow_targets(mut self, networks: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.egress = std::mem::take(&mut self.egress).allowing(networks);
        self
    }

    /// Replaces the settings.
    pub fn config(mut self, config: RouterConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks the wiring and builds the router: a missing store, a command name declared twice
    /// or a platform registered twice fail here, not at the first message.
    pub fn build(self) -> Result<Router, BuildError> {
        let store = self.store.ok_or(BuildError::MissingStore)?;
        if self.config.max_concurrent == 0 {
            return Err(BuildError::InvalidConfig(
                "max_concurrent must be at least 1".to_owned(),
            ));
        }
        if self.config.prefixes.contains(&self.config.remote_prefix) {
            return Err(BuildError::InvalidConfig(format!(
                "'{}' cannot be both a local and the remote prefix",
                self.config.remote_prefix
            )));
        }
        if self.config.prefixes.iter().all(String::is_empty) {
            return Err(BuildError::InvalidConfig(
                "at least one non-empty command prefix is needed".to_owned(),
            ));
        }
        let mut handlers: Vec<Arc<dyn CommandHandler>> = vec![Arc::new(Builtins)];
        handlers.extend(self.handlers);
        let mut specs = Vec::new();
        let mut owners = Vec::new();
        for (index, handler) in handlers.iter().enumerate() {
            for spec in handler.specs() {
                specs.push(spec);
                owners.push(index);
            }
        }
        let catalog =
            Arc::new(CommandCatalog::new(specs)?.with_optional_modules(self.optional_modules));
        let mut platforms: HashMap<_, Arc<dyn Platform>> = HashMap::new();
        for platform in self.platforms {
            let kind = platform.kind();
            let governed = match &self.limiter {
                Some(limiter) => Governor::with_limiter(platform, Arc::clone(limiter)),
                None => Governor::new(platform),
            };
            if platforms.insert(kind.clone(), Arc::new(governed)).is_some() {
                return Err(BuildError::DuplicatePlatform(kind));
            }
        }
        let mut cached = CachedStore::new(store, self.config.cache_ttl);
        if let Some(bus) = &self.bus {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(BuildError::InvalidConfig(
                    "an invalidation bus needs the router built inside a tokio runtime".to_owned(),
                ));
            }
            cached = cached.with_bus(Arc::clone(bus));
        }
        let cached = Arc::new(cached);
        if let Some(bus) = &self.bus {
            bus.listen(Arc::downgrade(&cached));
        }
        let store: Arc<dyn Store> = cached.clone();
        let prefixes = Prefixes {
            local: self.config.prefixes.clone(),
            remote: self.config.remote_prefix.clone(),
        };
        let http = self.egress.client();
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let limiter = self
            .limiter
            .unwrap_or_else(|| Arc::new(MemoryLimiter::with_clock(Arc::clone(&clock))));
        let mut subscribers = self.subscribers;
        // Stable: equal priorities keep registration order.
        subscribers.sort_by_key(|s| s.subscription.priority);
        let policy = Policy {
            config: self.config.policy.clone(),
            limiter,
            catalog: Arc::clone(&catalog),
        };
        let observes_commands = subscribers.iter().any(|s| {
            s.subscription
                .kinds
                .iter()
                .any(|kind| kind == waddlebot::COMMAND_USED)
        });
        let overlays = Arc::new(crate::overlay::OverlayHub::new(Arc::clone(&clock)));
        let meters = crate::meters::Meters::new(
            catalog
                .specs()
                .iter()
                .map(|spec| spec.module.as_str())
                .chain(subscribers.iter().map(|s| s.subscription.module.as_str()))
                .chain([waddlebot::store::CUSTOM_COMMANDS_MODULE]),
        );
        Ok(Router {
            meters,
            overlays,
            observes_commands,
            store,
            cached,
            catalog,
            handlers,
            owners,
            subscribers,
            platforms: Arc::new(platforms),
            policy,
            clock,
            rules: crate::rules::CompiledRules::default(),
            sessions: self
                .sessions
                .unwrap_or_else(|| Arc::new(MemorySessions::new(self.config.session_ttl))),
            remote: RemoteCaller::new(http.clone(), self.egress.clone()),
            http,
            egress: self.egress,
            prefixes,
            config: self.config,
            tasks: tokio_util::task::TaskTracker::new(),
        })
    }
}

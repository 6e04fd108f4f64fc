//! Time, injected: everything time-based (cooldowns, rate limits, TTLs, reminders) asks a
//! [`Clock`], so tests move time by hand instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
///
/// ```
/// use std::time::Duration;
/// use waddlebot::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let before = clock.now_millis();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now_millis() - before, 90_000);
/// ```
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64 {
        unix_millis(self.now())
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it), as records and answers store it.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The wall clock, shared: contexts made without a clock of their own read it.
pub(crate) fn system_clock() -> Arc<dyn Clock> {
    static SYSTEM: std::sync::LazyLock<Arc<dyn Clock>> =
        std::sync::LazyLock::new(|| Arc::new(SystemClock));
    Arc::clone(&SYSTEM)
}

/// A clock that only moves when told to. Starts at a fixed, whole-second time.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }

    /// A clock at `time`.
    pub fn at(time: SystemTime) -> Self {
        Self {
            now: Mutex::new(time),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

//! Stream alerts: follows, subscriptions, gifted subscriptions, raids, cheers and donations
//! become `alerts` items on the community's OBS overlay (`/overlay/<key>/alerts`).
//!
//! The module is on by default; `!module disable alerts` (or the admin API) turns it off for a
//! community, and its `duration_secs` setting (module config) changes how long an alert stays.

use async_trait::async_trait;
use waddlebot::{
    CommandError, Context, EventHandler, EventKind, OverlayReply, Reply, Subscription,
    SubscriptionTier,
};

/// The module name (switched on and off per community).
pub const ALERTS_MODULE: &str = "alerts";
/// Seconds an alert stays on screen unless the community says otherwise.
pub const DEFAULT_ALERT_SECS: u32 = 6;

/// Turns platform events into overlay alerts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Alerts;

/// The alert for an event, or `None` for kinds that are not alerts.
///
/// ```
/// use waddlebot::{Event, EventKind, OverlayReply, PlatformKind};
/// use waddlebot_modules::alert_for;
///
/// let mut raid = Event::chat(PlatformKind::Twitch, "pond", "pond", "pingu", "");
/// raid.kind = EventKind::Raid { viewers: 42 };
/// let Some(OverlayReply::Alert { title, text, .. }) = alert_for(&raid, 6) else { panic!() };
/// assert_eq!(title, "pingu is raiding!");
/// assert_eq!(text, "with 42 viewers");
/// ```
pub fn alert_for(event: &waddlebot::Event, duration_secs: u32) -> Option<OverlayReply> {
    let who = event.user.shown_name();
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let (title, text) = match &event.kind {
        EventKind::Follow => (format!("{who} followed!"), String::new()),
        EventKind::Subscription { tier, months, gift } => {
            let tier = match tier {
                SubscriptionTier::Tier1 => "Tier 1",
                SubscriptionTier::Tier2 => "Tier 2",
                SubscriptionTier::Tier3 => "Tier 3",
                SubscriptionTier::Prime => "Prime",
            };
            match gift {
                Some(gift) => {
                    let gifter = if gift.anonymous { "Someone" } else { who };
                    (
                        format!(
                            "{gifter} gifted {}!",
                            plural(u64::from(gift.count), "sub", "subs")
                        ),
                        tier.to_owned(),
                    )
                }
                None if *months > 1 => (
                    format!("{who} resubscribed!"),
                    format!("{tier}, {months} months"),
                ),
                None => (format!("{who} subscribed!"), tier.to_owned()),
            }
        }
        EventKind::Raid { viewers } => (
            format!("{who} is raiding!"),
            format!("with {}", plural(*viewers, "viewer", "viewers")),
        ),
        EventKind::Cheer { bits } => (
            format!("{who} cheered {}!", plural(*bits, "bit", "bits")),
            event.text.clone(),
        ),
        EventKind::Donation { amount, currency } => (
            format!("{who} donated {amount:.2} {currency}!").replace(" !", "!"),
            event.text.clone(),
        ),
        _ => return None,
    };
    Some(OverlayReply::Alert {
        kind: event.kind.name().to_owned(),
        title,
        text,
        duration_secs,
    })
}

#[async_trait]
impl EventHandler for Alerts {
    fn subscription(&self) -> Subscription {
        Subscription::new(
            ALERTS_MODULE,
            &["follow", "subscription", "raid", "cheer", "donation"],
        )
        .parallel()
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let duration = match ctx
            .store
            .module_install(ctx.community, ALERTS_MODULE)
            .await?
        {
            Some(install) => install
                .config
                .get("duration_secs")
                .and_then(serde_json::Value::as_u64)
                .and_then(|secs| u32::try_from(secs).ok())
                .filter(|secs| (1..=300).contains(secs))
                .unwrap_or(DEFAULT_ALERT_SECS),
            None => DEFAULT_ALERT_SECS,
        };
        Ok(alert_for(&ctx.event, duration)
            .map(Reply::Overlay)
            .into_iter()
            .collect())
    }
}

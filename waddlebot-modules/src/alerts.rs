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

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::{Event, Gift, PlatformKind};

    fn alert(kind: EventKind, text: &str) -> Option<(String, String)> {
        let mut event = Event::chat(PlatformKind::Twitch, "pond", "pond", "pingu", text);
        event.kind = kind;
        match alert_for(&event, 6)? {
            OverlayReply::Alert { title, text, .. } => Some((title, text)),
            other => panic!("not an alert: {other:?}"),
        }
    }

    #[test]
    fn each_event_kind_reads_as_a_streamer_expects() {
        let sub = |tier, months, gift| EventKind::Subscription { tier, months, gift };
        let cases = [
            (EventKind::Follow, "", ("pingu followed!", "")),
            (
                sub(SubscriptionTier::Tier2, 1, None),
                "",
                ("pingu subscribed!", "Tier 2"),
            ),
            (
                sub(SubscriptionTier::Prime, 14, None),
                "",
                ("pingu resubscribed!", "Prime, 14 months"),
            ),
            (
                sub(
                    SubscriptionTier::Tier1,
                    1,
                    Some(Gift {
                        count: 5,
                        anonymous: true,
                    }),
                ),
                "",
                ("Someone gifted 5 subs!", "Tier 1"),
            ),
            (
                sub(
                    SubscriptionTier::Tier3,
                    1,
                    Some(Gift {
                        count: 1,
                        anonymous: false,
                    }),
                ),
                "",
                ("pingu gifted 1 sub!", "Tier 3"),
            ),
            (
                EventKind::Cheer { bits: 1 },
                "noot",
                ("pingu cheered 1 bit!", "noot"),
            ),
            (
                EventKind::Raid { viewers: 1 },
                "",
                ("pingu is raiding!", "with 1 viewer"),
            ),
            (
                EventKind::Donation {
                    amount: 5.0,
                    currency: String::new(),
                },
                "thanks",
                ("pingu donated 5.00!", "thanks"),
            ),
            (
                EventKind::Donation {
                    amount: 2.5,
                    currency: "EUR".into(),
                },
                "",
                ("pingu donated 2.50 EUR!", ""),
            ),
        ];
        for (kind, text, (title, line)) in cases {
            assert_eq!(alert(kind, text), Some((title.to_owned(), line.to_owned())));
        }
        assert_eq!(
            alert(EventKind::ChatMessage, "hi"),
            None,
            "chat is no alert"
        );
    }
}

//! `!remind <text> in <5m|2h|1d|3w> [daily|weekly]`, `!remind list`, `!remind cancel <n>`:
//! reminders delivered to the channel they were asked in, at their time, by the router's
//! scheduler ([`waddlebot::schedule`]), so they survive restarts (one missed while the bot was
//! down is delivered when it starts, once).

use std::time::Duration;

use waddlebot::clock::unix_millis;

use async_trait::async_trait;
use waddlebot::schedule::{self, Scheduled};
use waddlebot::store::community_namespace;
use waddlebot::{CommandError, CommandHandler, CommandSpec, Context, PermissionLevel, Reply};

/// The module name reminders belong to (and the scheduler's `module` field).
pub const REMINDERS_MODULE: &str = "reminders";
/// Longest reminder text.
pub const MAX_REMINDER_LEN: usize = 300;
/// Most pending reminders per user in a community.
pub const MAX_PER_USER: usize = 10;
/// Furthest ahead a reminder may be set.
pub const MAX_AHEAD: Duration = Duration::from_secs(52 * 7 * 86_400);

const DAY: u64 = 86_400;

/// The reminders module.
#[derive(Debug, Default)]
pub struct Reminders;

/// `5m`, `2h`, `1d`, `3w` as a duration, or what is wrong with it.
pub fn parse_delay(spec: &str) -> Result<Duration, String> {
    let spec = spec.trim().to_ascii_lowercase();
    let Some(unit) = spec.chars().last().filter(|c| c.is_ascii_alphabetic()) else {
        return Err("Time string must end with a unit (m/h/d/w), like 10m or 2h.".to_owned());
    };
    let amount: u64 = spec[..spec.len() - 1]
        .parse()
        .map_err(|_| format!("'{spec}' is not a time: use a number and a unit, like 10m or 2h."))?;
    let unit_secs = match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => DAY,
        'w' => 7 * DAY,
        _ => return Err("Time string must end with a unit (m/h/d/w), like 10m or 2h.".to_owned()),
    };
    let delay = Duration::from_secs(amount.saturating_mul(unit_secs));
    if delay.is_zero() {
        return Err("The time must be at least 1m.".to_owned());
    }
    if delay > MAX_AHEAD {
        return Err("Reminders can be set at most 52 weeks ahead.".to_owned());
    }
    Ok(delay)
}

/// `2h 5m`, `3d 4h`, `45s` (the two largest units).
pub(crate) fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let parts = [
        (secs / (7 * DAY), "w"),
        (secs % (7 * DAY) / DAY, "d"),
        (secs % DAY / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if shown.is_empty() {
        format!("{secs}s")
    } else {
        shown.join(" ")
    }
}

/// The time until a reminder is due, as [`human`] shows it, rounded up: a reminder set `in 5m`
/// and listed a moment later is due in 5 minutes, not 4.
fn time_left(millis: u64) -> String {
    let secs = millis.div_ceil(1000);
    let secs = if secs > 60 {
        secs.div_ceil(60) * 60
    } else {
        secs
    };
    human(Duration::from_secs(secs))
}

/// What `!remind` was asked: the text, the delay and the repetition.
fn parse_request(line: &str) -> Result<(String, Duration, Option<u64>), String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let repeat = match words.last().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("daily") => Some(DAY),
        Some("weekly") => Some(7 * DAY),
        _ => None,
    };
    if repeat.is_some() {
        words.pop();
    }
    let Some(spec) = words.pop() else {
        return Err(String::new());
    };
    if words.last().map(|w| w.to_ascii_lowercase()).as_deref() != Some("in") {
        return Err(String::new());
    }
    words.pop();
    let text = words.join(" ");
    let text = text.trim().trim_matches('"').trim();
    if text.is_empty() {
        return Err(String::new());
    }
    let delay = parse_delay(spec)?;
    Ok((text.to_owned(), delay, repeat))
}

#[async_trait]
impl CommandHandler for Reminders {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("remind")
                .usage("remind <text> in <5m|2h|1d|3w> [daily|weekly] | remind list | remind cancel <n>")
                .description("Reminders delivered in this channel at their time")
                .module(REMINDERS_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let first = ctx.args.get(0).map(str::to_lowercase);
        let text = match first.as_deref() {
            None => return Err(ctx.usage_error()),
            Some("list") if ctx.args.len() == 1 => self.list(&ctx).await?,
            Some("cancel" | "delete" | "rm") if ctx.args.len() == 2 => self.cancel(&ctx).await?,
            Some(_) => self.add(&ctx).await?,
        };
        Ok(vec![Reply::text(text)])
    }
}

impl Reminders {
    async fn add(&self, ctx: &Context) -> Result<String, CommandError> {
        let (text, delay, repeat) = match parse_request(ctx.args.raw()) {
            Ok(request) => request,
            Err(why) if why.is_empty() => return Err(ctx.usage_error()),
            Err(why) => return Err(CommandError::invalid(why)),
        };
        if text.chars().count() > MAX_REMINDER_LEN {
            return Err(CommandError::invalid(format!(
                "That reminder is too long: at most {MAX_REMINDER_LEN} characters."
            )));
        }
        let user = ctx.user();
        let mine = schedule::list(ctx.store.as_ref(), ctx.community, REMINDERS_MODULE)
            .await?
            .into_iter()
            .filter(|r| r.user_id == user.id && r.platform == ctx.event.platform)
            .count();
        if mine >= MAX_PER_USER {
            return Err(CommandError::invalid(format!(
                "You have {MAX_PER_USER} reminders already; cancel one first ({}remind list).",
                ctx.prefix
            )));
        }
        let number = ctx
            .store
            .increment(
                &community_namespace(ctx.community, REMINDERS_MODULE),
                "next_id",
                1,
            )
            .await?;
        let now = ctx.now();
        let every = match repeat {
            Some(DAY) => " (daily)",
            Some(_) => " (weekly)",
            None => "",
        };
        let item = Scheduled {
            id: format!("rem-{}-{number}", ctx.community.0),
            due_ms: unix_millis(now + delay),
            community_id: ctx.community,
            platform: ctx.event.platform.clone(),
            server_id: ctx.event.server_id.clone(),
            channel_id: ctx.event.channel_id.clone(),
            user_id: user.id.clone(),
            module: REMINDERS_MODULE.to_owned(),
            text: format!("⏰ @{}, reminder{every}: {text}", user.shown_name()),
            repeat_secs: repeat,
            attempts: 0,
            claimed_until_ms: None,
        };
        schedule::schedule(ctx.store.as_ref(), &item).await?;
        Ok(format!(
            "Okay @{}, I'll remind you in {}{every}: {text} (#{number})",
            user.shown_name(),
            human(delay)
        ))
    }

    /// The caller's pending reminders (a moderator sees everyone's).
    async fn list(&self, ctx: &Context) -> Result<String, CommandError> {
        let now = unix_millis(ctx.now());
        let all = ctx.level() >= PermissionLevel::Moderator;
        let shown: Vec<String> =
            schedule::list(ctx.store.as_ref(), ctx.community, REMINDERS_MODULE)
                .await?
                .into_iter()
                .filter(|r| all || (r.user_id == ctx.user().id && r.platform == ctx.event.platform))
                .map(|r| {
                    let number = r.id.rsplit('-').next().unwrap_or_default().to_owned();
                    let left = time_left(r.due_ms.saturating_sub(now));
                    let what = r.text.split_once(": ").map_or(r.text.as_str(), |(_, t)| t);
                    format!("#{number} in {left}: {what}")
                })
                .collect();
        Ok(if shown.is_empty() {
            "No reminders pending.".to_owned()
        } else {
            format!("Reminders: {}", shown.join(" | "))
        })
    }

    async fn cancel(&self, ctx: &Context) -> Result<String, CommandError> {
        let raw = ctx.args.get(1).unwrap_or_default().trim_start_matches('#');
        let Ok(number) = raw.parse::<u64>() else {
            return Err(ctx.usage_error());
        };
        let id = format!("rem-{}-{number}", ctx.community.0);
        let found = schedule::list(ctx.store.as_ref(), ctx.community, REMINDERS_MODULE)
            .await?
            .into_iter()
            .find(|r| r.id == id);
        let Some(item) = found else {
            return Err(CommandError::invalid(format!("No reminder #{number}.")));
        };
        let own = item.user_id == ctx.user().id && item.platform == ctx.event.platform;
        if !own && ctx.level() < PermissionLevel::Moderator {
            return Err(CommandError::invalid(format!(
                "Reminder #{number} is not yours."
            )));
        }
        schedule::cancel(ctx.store.as_ref(), &item).await?;
        Ok(format!("Reminder #{number} cancelled."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_need_a_number_and_a_unit() {
        assert_eq!(parse_delay("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_delay("2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_delay("3w"), Ok(Duration::from_secs(3 * 7 * 86_400)));
        assert!(parse_delay("10").unwrap_err().contains("unit (m/h/d/w)"));
        assert!(parse_delay("0m").unwrap_err().contains("at least"));
        assert!(parse_delay("53w").unwrap_err().contains("52 weeks"));
        assert!(parse_delay("xm").unwrap_err().contains("not a time"));
    }

    #[test]
    fn a_request_is_text_in_time_and_maybe_a_repetition() {
        assert_eq!(
            parse_request("take the pizza out in 20m"),
            Ok((
                "take the pizza out".to_owned(),
                Duration::from_secs(1200),
                None
            ))
        );
        assert_eq!(
            parse_request("\"stretch\" in 1h daily"),
            Ok(("stretch".to_owned(), Duration::from_secs(3600), Some(DAY)))
        );
        assert!(parse_request("no time given").is_err());
        assert!(parse_request("in 5m").is_err(), "no text");
        assert_eq!(human(Duration::from_secs(2 * 3600 + 5 * 60 + 3)), "2h 5m");
    }

    #[test]
    fn the_time_left_is_rounded_up() {
        assert_eq!(
            time_left(5 * 60_000 - 7),
            "5m",
            "listed right after `in 5m`"
        );
        assert_eq!(time_left(2 * 3_600_000 + 4 * 60_000 + 1), "2h 5m");
        assert_eq!(time_left(30_400), "31s");
        assert_eq!(time_left(60_000), "1m");
    }
}

//! `!event` (`!calendar`): community events with approval, RSVPs, waitlists, recurrence and
//! reminders.
//!
//! - `!event add "Title" "YYYY-MM-DD HH:MM" [description] [location] [max]`, in the community's
//!   time zone (the module setting `timezone`, an IANA name; UTC by default);
//! - `!event list [pending|approved|rejected]` (approved upcoming events by default; pending and
//!   rejected ones for moderators), `!event info <id>`;
//! - `!event approve <id>`, `!event reject <id> [reason]` (community admins: broadcaster level
//!   and up), `!event cancel <id>`, `!event edit <id> title|time|description|location|max
//!   <value>` (the creator, or as the settings allow);
//! - `!event join <id> [maybe]`, `!event leave <id>`: a "yes" past `max` goes on the waitlist,
//!   promoted in order when someone leaves;
//! - `!event repeat <id> daily|weekly|monthly until YYYY-MM-DD`: the occurrences are created
//!   (at most 100, at most a year ahead).
//!
//! Settings (the `calendar` module's config, as in the original): `create_permission`
//! (`admin_only`, `admin_mod` default, `admin_mod_vip`, `all_members`; an unknown value means
//! admins only), `require_approval` (true), `auto_approve_admins` (true), `auto_approve_mods`,
//! `auto_approve_vips`, `auto_approve_all` (false), `edit_own_events` and `delete_own_events`
//! (true), `edit_all_events` and `delete_all_events` (`admin_only` default, or `admin_mod`).
//! A user labelled `event-autoapprove` skips approval. Approved events get reminders 1 day,
//! 1 hour and 15 minutes before, delivered by the scheduler to the channel the event was made
//! in.

use std::time::SystemTime;

use async_trait::async_trait;
use jiff::ToSpan;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use waddlebot::schedule::{self, Scheduled};
use waddlebot::store::{Expect, Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, PlatformKind,
    Reply, StoreError,
};

use crate::labels::{EVENT_AUTOAPPROVE, has_label, target_key};

/// The module name events belong to (and whose config holds the settings).
pub const CALENDAR_MODULE: &str = "calendar";
/// Title length, in characters.
pub const TITLE_LEN: std::ops::RangeInclusive<usize> = 3..=255;
/// Longest description.
pub const MAX_EVENT_DESCRIPTION_LEN: usize = 5000;
/// Longest location.
pub const MAX_LOCATION_LEN: usize = 500;
/// Most occurrences `repeat` makes.
pub const MAX_OCCURRENCES: usize = 100;
/// When the reminders go out, before the start.
const REMINDERS: [(&str, i64, &str); 3] = [
    ("1d", 86_400_000, "1 day"),
    ("1h", 3_600_000, "1 hour"),
    ("15m", 900_000, "15 minutes"),
];
const SHOWN: usize = 10;
const DATE_FORMAT: &str = "%Y-%m-%d %H:%M";

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Waiting for approval.
    Pending,
    /// On the calendar.
    Approved,
    /// Refused.
    Rejected,
    /// Called off.
    Cancelled,
}

impl EventStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An answer to an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rsvp {
    /// Who (`platform:name`).
    pub user: String,
    /// `yes`, `maybe` or `waitlist`.
    pub answer: String,
}

/// Where the event was made: its reminders go there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// The platform.
    pub platform: PlatformKind,
    /// The server.
    pub server_id: String,
    /// The channel.
    pub channel_id: String,
}

/// A calendar event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarEvent {
    /// Its number in the community.
    pub id: u64,
    /// The title.
    pub title: String,
    /// When it starts (Unix milliseconds).
    pub starts_at_ms: i64,
    /// What it is about.
    pub description: String,
    /// Where.
    pub location: String,
    /// Most "yes" answers; `None`: no limit.
    pub max_attendees: Option<u32>,
    /// Where it stands.
    pub status: EventStatus,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// Who made it (`platform:name`).
    pub created_by: String,
    /// Answers, in the order given (the waitlist in its order).
    pub rsvps: Vec<Rsvp>,
    /// Where it was made.
    pub channel: Channel,
}

impl CalendarEvent {
    fn going(&self) -> usize {
        self.rsvps.iter().filter(|r| r.answer == "yes").count()
    }

    fn waiting(&self) -> usize {
        self.rsvps.iter().filter(|r| r.answer == "waitlist").count()
    }
}

/// The calendar settings of a community.
#[derive(Debug, Clone)]
struct Settings {
    timezone: TimeZone,
    zone_name: String,
    create: PermissionLevel,
    require_approval: bool,
    auto_admins: bool,
    auto_mods: bool,
    auto_vips: bool,
    auto_all: bool,
    edit_own: bool,
    delete_own: bool,
    edit_all: PermissionLevel,
    delete_all: PermissionLevel,
}

/// "Admins" of the original: the broadcaster (or server owner) and those granted admin.
const ADMIN: PermissionLevel = PermissionLevel::Broadcaster;

fn level_setting(value: Option<&str>, default: PermissionLevel) -> PermissionLevel {
    match value {
        None => default,
        Some("admin_mod") => PermissionLevel::Moderator,
        Some("admin_mod_vip") => PermissionLevel::Vip,
        Some("all_members") => PermissionLevel::Everyone,
        // `admin_only`, and anything unknown: admins only.
        Some(_) => ADMIN,
    }
}

async fn settings(ctx: &Context) -> Result<Settings, CommandError> {
    let config = ctx
        .store
        .module_install(ctx.community, CALENDAR_MODULE)
        .await?
        .map(|i| i.config)
        .unwrap_or_default();
    let text = |key: &str| config.get(key).and_then(|v| v.as_str());
    let flag =
        |key: &str, default: bool| config.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
    let zone_name = text("timezone").unwrap_or("UTC").to_owned();
    let timezone = TimeZone::get(&zone_name).map_err(|_| {
        CommandError::invalid(format!(
            "The calendar's timezone setting '{zone_name}' is not a time zone; an admin can fix it (an IANA name like Europe/Berlin)."
        ))
    })?;
    Ok(Settings {
        timezone,
        zone_name,
        create: level_setting(text("create_permission"), PermissionLevel::Moderator),
        require_approval: flag("require_approval", true),
        auto_admins: flag("auto_approve_admins", true),
        auto_mods: flag("auto_approve_mods", false),
        auto_vips: flag("auto_approve_vips", false),
        auto_all: flag("auto_approve_all", false),
        edit_own: flag("edit_own_events", true),
        delete_own: flag("delete_own_events", true),
        edit_all: level_setting(text("edit_all_events"), ADMIN),
        delete_all: level_setting(text("delete_all_events"), ADMIN),
    })
}

fn namespace(community: CommunityId) -> String {
    community_namespace(community, CALENDAR_MODULE)
}

fn key(id: u64) -> String {
    format!("{id:010}")
}

/// Unix milliseconds as the calendar keeps them (signed, as `jiff` counts).
fn millis(time: SystemTime) -> i64 {
    i64::try_from(waddlebot::clock::unix_millis(time)).unwrap_or(i64::MAX)
}

fn who(ctx: &Context) -> String {
    format!("{}:{}", ctx.event.platform, ctx.user().name.to_lowercase())
}

fn decode(value: serde_json::Value) -> Result<CalendarEvent, CommandError> {
    serde_json::from_value(value)
        .map_err(|err| CommandError::Internal(format!("malformed event: {err}").into()))
}

/// `YYYY-MM-DD HH:MM` in `settings`' zone, as Unix milliseconds.
fn parse_time(text: &str, settings: &Settings) -> Result<i64, CommandError> {
    let format_error = || {
        CommandError::invalid(format!(
            "'{text}' is not a date and time: use YYYY-MM-DD HH:MM (24-hour), like 2026-12-24 18:30."
        ))
    };
    let civil =
        jiff::civil::DateTime::strptime(DATE_FORMAT, text.trim()).map_err(|_| format_error())?;
    let zoned = civil
        .to_zoned(settings.timezone.clone())
        .map_err(|_| format_error())?;
    Ok(zoned.timestamp().as_millisecond())
}

fn shown_time(ms: i64, settings: &Settings) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| "?".to_owned(),
        |ts| {
            format!(
                "{} {}",
                ts.to_zoned(settings.timezone.clone()).strftime(DATE_FORMAT),
                settings.zone_name
            )
        },
    )
}

/// Every event of a community, in id order.
async fn all(
    store: &dyn Store,
    community: CommunityId,
) -> Result<Vec<CalendarEvent>, CommandError> {
    crate::load_all(store, &namespace(community), "event").await
}

/// Event `id`, or "No event #id.".
async fn one(ctx: &Context, id: u64) -> Result<CalendarEvent, CommandError> {
    match ctx
        .store
        .get_document(&namespace(ctx.community), &key(id))
        .await?
    {
        Some(document) => decode(document.value),
        None => Err(CommandError::invalid(format!("No event #{id}."))),
    }
}

/// Changes event `id` with `change` (which may refuse), retrying on a concurrent change.
async fn update<T>(
    ctx: &Context,
    id: u64,
    mut change: impl FnMut(&mut CalendarEvent) -> Result<T, CommandError>,
) -> Result<(CalendarEvent, T), CommandError> {
    let (event, answer) = crate::update_document(
        ctx.store.as_ref(),
        &namespace(ctx.community),
        &key(id),
        "The calendar is busy; try again.",
        |slot: &mut Option<CalendarEvent>| {
            let event = slot
                .as_mut()
                .ok_or_else(|| CommandError::invalid(format!("No event #{id}.")))?;
            change(event)
        },
    )
    .await?;
    Ok((
        event.ok_or_else(|| CommandError::invalid(format!("No event #{id}.")))?,
        answer,
    ))
}

fn reminder(
    ctx: &Context,
    event: &CalendarEvent,
    (tag, before_ms, words): (&str, i64, &str),
    settings: &Settings,
) -> Scheduled {
    Scheduled {
        id: format!("cal-{}-{}-{tag}", ctx.community.0, event.id),
        due_ms: u64::try_from(event.starts_at_ms - before_ms).unwrap_or(0),
        community_id: ctx.community,
        platform: event.channel.platform.clone(),
        server_id: event.channel.server_id.clone(),
        channel_id: event.channel.channel_id.clone(),
        user_id: String::new(),
        module: CALENDAR_MODULE.to_owned(),
        text: format!(
            "📅 Reminder: {} (#{}) starts in {words}, at {}.",
            event.title,
            event.id,
            shown_time(event.starts_at_ms, settings)
        ),
        repeat_secs: None,
        attempts: 0,
        claimed_until_ms: None,
    }
}

/// Schedules the reminders of an approved event that are still ahead.
async fn schedule_reminders(
    ctx: &Context,
    event: &CalendarEvent,
    settings: &Settings,
) -> Result<(), CommandError> {
    let now = millis(ctx.now());
    for spec in REMINDERS {
        let item = reminder(ctx, event, spec, settings);
        if i64::try_from(item.due_ms).unwrap_or(i64::MAX) > now {
            match schedule::schedule(ctx.store.as_ref(), &item).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// Removes an event's pending reminders (found by id: their due times follow the event's
/// start, which may just have changed).
async fn drop_reminders(ctx: &Context, event: &CalendarEvent) -> Result<(), CommandError> {
    let prefix = format!("cal-{}-{}-", ctx.community.0, event.id);
    let store = ctx.store.as_ref();
    for item in schedule::list(store, ctx.community, CALENDAR_MODULE).await? {
        if item.id.starts_with(&prefix) {
            schedule::cancel(store, &item).await?;
        }
    }
    Ok(())
}

/// The calendar module.
#[derive(Debug, Default)]
pub struct Calendar;

#[async_trait]
impl CommandHandler for Calendar {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("event")
                .alias("calendar")
                .alias("events")
                .usage("event add \"Title\" \"YYYY-MM-DD HH:MM\" [description] [location] [max] | event list [pending|approved|rejected] | event info <id> | event join <id> [maybe] | event leave <id> | event approve <id> | event reject <id> [reason] | event cancel <id> | event edit <id> <field> <value> | event repeat <id> daily|weekly|monthly until YYYY-MM-DD")
                .description("Community events: create, approve, RSVP, reminders")
                .module(CALENDAR_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let settings = settings(&ctx).await?;
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let id = || {
            ctx.args
                .get(1)
                .map(|raw| raw.trim_start_matches('#'))
                .and_then(|raw| raw.parse::<u64>().ok())
                .ok_or_else(|| ctx.usage_error())
        };
        let text = match sub.as_deref() {
            Some("add" | "create") => self.add(&ctx, &settings).await?,
            Some("list") => self.list(&ctx, &settings).await?,
            Some("info" | "show") => {
                let id = id()?;
                let event = one(&ctx, id).await?;
                let limit = event
                    .max_attendees
                    .map_or_else(String::new, |m| format!("/{m}"));
                let waitlist = match event.waiting() {
                    0 => String::new(),
                    n => format!(", {n} waiting"),
                };
                let place = if event.location.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", event.location)
                };
                let about = if event.description.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", event.description)
                };
                format!(
                    "#{} {} ({}): {}{place}{about}; going {}{limit}{waitlist}.",
                    event.id,
                    event.title,
                    event.status.as_str(),
                    shown_time(event.starts_at_ms, &settings),
                    event.going()
                )
            }
            Some("approve") => {
                ctx.require(ADMIN)?;
                let id = id()?;
                let (event, ()) = update(&ctx, id, |event| {
                    if event.status != EventStatus::Pending {
                        return Err(CommandError::invalid(format!(
                            "Event #{id} is not pending."
                        )));
                    }
                    event.status = EventStatus::Approved;
                    Ok(())
                })
                .await?;
                schedule_reminders(&ctx, &event, &settings).await?;
                format!("Event #{id} approved: {}.", event.title)
            }
            Some("reject") => {
                ctx.require(ADMIN)?;
                let id = id()?;
                let reason = ctx.args.rest_unquoted(2).trim().to_owned();
                update(&ctx, id, |event| {
                    if event.status != EventStatus::Pending {
                        return Err(CommandError::invalid(format!(
                            "Event #{id} is not pending."
                        )));
                    }
                    event.status = EventStatus::Rejected;
                    event.reject_reason = (!reason.is_empty()).then(|| reason.clone());
                    Ok(())
                })
                .await?;
                if reason.is_empty() {
                    format!("Event #{id} rejected.")
                } else {
                    format!("Event #{id} rejected: {reason}")
                }
            }
            Some("cancel" | "delete") => {
                let id = id()?;
                let me = who(&ctx);
                let (event, ()) = update(&ctx, id, |event| {
                    let own = event.created_by == me;
                    if !((own && settings.delete_own) || ctx.level() >= settings.delete_all) {
                        return Err(CommandError::invalid(format!(
                            "You may not cancel event #{id}."
                        )));
                    }
                    if event.status == EventStatus::Cancelled {
                        return Err(CommandError::invalid(format!(
                            "Event #{id} is already cancelled."
                        )));
                    }
                    event.status = EventStatus::Cancelled;
                    Ok(())
                })
                .await?;
                drop_reminders(&ctx, &event).await?;
                format!("Event #{id} cancelled: {}.", event.title)
            }
            Some("edit") => self.edit(&ctx, id()?, &settings).await?,
            Some("join" | "rsvp") => {
                let id = id()?;
                let answer = match ctx.args.get(2).map(str::to_lowercase).as_deref() {
                    None | Some("yes") => "yes",
                    Some("maybe") => "maybe",
                    Some("no") => return self.leave(&ctx, id).await.map(|t| vec![Reply::text(t)]),
                    Some(_) => return Err(ctx.usage_error()),
                };
                let me = who(&ctx);
                let now = millis(ctx.now());
                let (event, placed) = update(&ctx, id, |event| {
                    if event.status != EventStatus::Approved {
                        return Err(CommandError::invalid(format!(
                            "Event #{id} is not open for answers."
                        )));
                    }
                    if event.starts_at_ms <= now {
                        return Err(CommandError::invalid(format!("Event #{id} has started.")));
                    }
                    event.rsvps.retain(|r| r.user != me);
                    let full = answer == "yes"
                        && event
                            .max_attendees
                            .is_some_and(|max| event.going() >= max as usize);
                    let placed = if full { "waitlist" } else { answer };
                    event.rsvps.push(Rsvp {
                        user: me.clone(),
                        answer: placed.to_owned(),
                    });
                    Ok(placed)
                })
                .await?;
                match placed {
                    "waitlist" => format!(
                        "#{id} is full; you are number {} on the waitlist.",
                        event.waiting()
                    ),
                    "maybe" => format!("Noted: maybe for #{id} {}.", event.title),
                    _ => format!(
                        "You're going to #{id} {} ({} going).",
                        event.title,
                        event.going()
                    ),
                }
            }
            Some("leave") => self.leave(&ctx, id()?).await?,
            Some("repeat") => self.repeat(&ctx, id()?, &settings).await?,
            _ => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

impl Calendar {
    async fn add(&self, ctx: &Context, settings: &Settings) -> Result<String, CommandError> {
        ctx.require(settings.create)?;
        let (Some(title), Some(when)) = (ctx.args.get(1), ctx.args.get(2)) else {
            return Err(ctx.usage_error());
        };
        let title = title.trim();
        if !TITLE_LEN.contains(&title.chars().count()) {
            return Err(CommandError::invalid(format!(
                "The title must be {} to {} characters.",
                TITLE_LEN.start(),
                TITLE_LEN.end()
            )));
        }
        let starts_at_ms = parse_time(when, settings)?;
        if starts_at_ms <= millis(ctx.now()) {
            return Err(CommandError::invalid(format!(
                "{} is in the past.",
                shown_time(starts_at_ms, settings)
            )));
        }
        let description = ctx.args.get(3).unwrap_or_default().trim().to_owned();
        let location = ctx.args.get(4).unwrap_or_default().trim().to_owned();
        if description.chars().count() > MAX_EVENT_DESCRIPTION_LEN {
            return Err(CommandError::invalid(format!(
                "That description is too long: at most {MAX_EVENT_DESCRIPTION_LEN} characters."
            )));
        }
        if location.chars().count() > MAX_LOCATION_LEN {
            return Err(CommandError::invalid(format!(
                "That location is too long: at most {MAX_LOCATION_LEN} characters."
            )));
        }
        let max_attendees = match ctx.args.get(5) {
            None => None,
            Some(raw) => Some(raw.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                CommandError::invalid(
                    "The most attendees must be a whole number from 1.".to_owned(),
                )
            })?),
        };
        if ctx.args.len() > 6 {
            return Err(ctx.usage_error());
        }
        let level = ctx.level();
        let labelled = has_label(
            ctx.store.as_ref(),
            ctx.community,
            &target_key("user", &ctx.event.platform, &ctx.user().name),
            EVENT_AUTOAPPROVE,
            ctx.now(),
        )
        .await?;
        let approved = !settings.require_approval
            || settings.auto_all
            || labelled
            || (settings.auto_admins && level >= ADMIN)
            || (settings.auto_mods && level >= PermissionLevel::Moderator)
            || (settings.auto_vips && level >= PermissionLevel::Vip);
        let store = ctx.store.as_ref();
        let ns = namespace(ctx.community);
        let id = u64::try_from(store.increment(&ns, "next_id", 1).await?).unwrap_or_default();
        let event = CalendarEvent {
            id,
            title: title.to_owned(),
            starts_at_ms,
            description,
            location,
            max_attendees,
            status: if approved {
                EventStatus::Approved
            } else {
                EventStatus::Pending
            },
            reject_reason: None,
            created_by: who(ctx),
            rsvps: Vec::new(),
            channel: Channel {
                platform: ctx.event.platform.clone(),
                server_id: ctx.event.server_id.clone(),
                channel_id: ctx.event.channel_id.clone(),
            },
        };
        let value =
            serde_json::to_value(&event).map_err(|err| CommandError::Internal(err.into()))?;
        store
            .put_document(&ns, &key(id), &value, Expect::Absent)
            .await?;
        let when = shown_time(starts_at_ms, settings);
        if approved {
            schedule_reminders(ctx, &event, settings).await?;
            Ok(format!("Event #{id} added: {title}, {when}."))
        } else {
            Ok(format!(
                "Event #{id} submitted for approval: {title}, {when}."
            ))
        }
    }

    async fn list(&self, ctx: &Context, settings: &Settings) -> Result<String, CommandError> {
        let wanted = match ctx.args.get(1).map(str::to_lowercase).as_deref() {
            None | Some("approved") => EventStatus::Approved,
            Some("pending") => EventStatus::Pending,
            Some("rejected") => EventStatus::Rejected,
            Some(_) => return Err(ctx.usage_error()),
        };
        if wanted != EventStatus::Approved {
            ctx.require(PermissionLevel::Moderator)?;
        }
        let now = millis(ctx.now());
        let mut events: Vec<CalendarEvent> = all(ctx.store.as_ref(), ctx.community)
            .await?
            .into_iter()
            .filter(|e| {
                e.status == wanted && (wanted != EventStatus::Approved || e.starts_at_ms > now)
            })
            .collect();
        events.sort_by_key(|e| e.starts_at_ms);
        if events.is_empty() {
            return Ok(match wanted {
                EventStatus::Approved => "No upcoming events.".to_owned(),
                EventStatus::Pending => "No events waiting for approval.".to_owned(),
                _ => "No rejected events.".to_owned(),
            });
        }
        let lines: Vec<String> = events
            .iter()
            .take(SHOWN)
            .map(|e| {
                format!(
                    "#{} {} ({})",
                    e.id,
                    e.title,
                    shown_time(e.starts_at_ms, settings)
                )
            })
            .collect();
        let more = events.len().saturating_sub(SHOWN);
        let more = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        Ok(format!("{}{more}", lines.join(" | ")))
    }

    async fn leave(&self, ctx: &Context, id: u64) -> Result<String, CommandError> {
        let me = who(ctx);
        let (event, promoted) = update(ctx, id, |event| {
            let Some(index) = event.rsvps.iter().position(|r| r.user == me) else {
                return Err(CommandError::invalid(format!(
                    "You are not on event #{id}."
                )));
            };
            let was_going = event.rsvps[index].answer == "yes";
            event.rsvps.remove(index);
            let mut promoted = None;
            if was_going && let Some(next) = event.rsvps.iter_mut().find(|r| r.answer == "waitlist")
            {
                next.answer = "yes".to_owned();
                promoted = Some(
                    next.user
                        .split_once(':')
                        .map_or(next.user.clone(), |(_, n)| n.to_owned()),
                );
            }
            Ok(promoted)
        })
        .await?;
        Ok(match promoted {
            Some(next) => format!(
                "You left #{id} {}. @{next} moves up from the waitlist and is going.",
                event.title
            ),
            None => format!("You left #{id} {}.", event.title),
        })
    }

    async fn edit(
        &self,
        ctx: &Context,
        id: u64,
        settings: &Settings,
    ) -> Result<String, CommandError> {
        let (Some(field), value) = (
            ctx.args.get(2).map(str::to_lowercase),
            ctx.args.rest_unquoted(3).trim(),
        ) else {
            return Err(ctx.usage_error());
        };
        if value.is_empty() {
            return Err(ctx.usage_error());
        }
        let me = who(ctx);
        let now = millis(ctx.now());
        let parsed_time = if field == "time" {
            Some(parse_time(value, settings)?)
        } else {
            None
        };
        let (event, ()) =
            update(ctx, id, |event| {
                let own = event.created_by == me;
                if !((own && settings.edit_own) || ctx.level() >= settings.edit_all) {
                    return Err(CommandError::invalid(format!(
                        "You may not edit event #{id}."
                    )));
                }
                match field.as_str() {
                    "title" => {
                        if !TITLE_LEN.contains(&value.chars().count()) {
                            return Err(CommandError::invalid(format!(
                                "The title must be {} to {} characters.",
                                TITLE_LEN.start(),
                                TITLE_LEN.end()
                            )));
                        }
                        event.title = value.to_owned();
                    }
                    "time" => {
                        let at = parsed_time.unwrap_or_default();
                        if at <= now {
                            return Err(CommandError::invalid(format!(
                                "{} is in the past.",
                                shown_time(at, settings)
                            )));
                        }
                        event.starts_at_ms = at;
                    }
                    "description" if value.chars().count() <= MAX_EVENT_DESCRIPTION_LEN => {
                        event.description = value.to_owned()
                    }
                    "location" if value.chars().count() <= MAX_LOCATION_LEN => {
                        event.location = value.to_owned()
                    }
                    "description" | "location" => {
                        return Err(CommandError::invalid(format!("That {field} is too long.")));
                    }
                    "max" => {
                        event.max_attendees =
                            Some(value.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(
                                || {
                                    CommandError::invalid(
                                        "The most attendees must be a whole number from 1."
                                            .to_owned(),
                                    )
                                },
                            )?);
                    }
                    _ => {
                        return Err(CommandError::invalid(
                            "Edit title, time, description, location or max.".to_owned(),
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        if event.status == EventStatus::Approved && (field == "time" || field == "title") {
            drop_reminders(ctx, &event).await?;
            schedule_reminders(ctx, &event, settings).await?;
        }
        Ok(format!(
            "Event #{id} updated: {}, {}.",
            event.title,
            shown_time(event.starts_at_ms, settings)
        ))
    }

    async fn repeat(
        &self,
        ctx: &Context,
        id: u64,
        settings: &Settings,
    ) -> Result<String, CommandError> {
        let (Some(pattern), Some(until_word), Some(until)) = (
            ctx.args.get(2).map(str::to_lowercase),
            ctx.args.get(3),
            ctx.args.get(4),
        ) else {
            return Err(ctx.usage_error());
        };
        if !until_word.eq_ignore_ascii_case("until") {
            return Err(ctx.usage_error());
        }
        let step = match pattern.as_str() {
            "daily" => 1.day(),
            "weekly" => 1.week(),
            "monthly" => 1.month(),
            _ => return Err(ctx.usage_error()),
        };
        let event = one(ctx, id).await?;
        let me = who(ctx);
        if !((event.created_by == me && settings.edit_own) || ctx.level() >= settings.edit_all) {
            return Err(CommandError::invalid(format!(
                "You may not repeat event #{id}."
            )));
        }
        let end = jiff::civil::Date::strptime("%Y-%m-%d", until.trim()).map_err(|_| {
            CommandError::invalid(format!("'{until}' is not a date: use YYYY-MM-DD."))
        })?;
        let first = jiff::Timestamp::from_millisecond(event.starts_at_ms)
            .map_err(|err| CommandError::Internal(err.into()))?
            .to_zoned(settings.timezone.clone());
        let last = end
            .at(23, 59, 59, 0)
            .to_zoned(settings.timezone.clone())
            .map_err(|err| CommandError::Internal(err.into()))?;
        let year = first
            .checked_add(1.year())
            .map_err(|err| CommandError::Internal(err.into()))?;
        if last <= first {
            return Err(CommandError::invalid(format!(
                "{until} is not after the event."
            )));
        }
        if last > year {
            return Err(CommandError::invalid(
                "Events repeat at most a year ahead.".to_owned(),
            ));
        }
        let mut made = Vec::new();
        let mut n: i64 = 1;
        loop {
            let next = first
                .checked_add(
                    step.checked_mul(n)
                        .map_err(|err| CommandError::Internal(err.into()))?,
                )
                .map_err(|err| CommandError::Internal(err.into()))?;
            if next > last {
                break;
            }
            if made.len() >= MAX_OCCURRENCES {
                return Err(CommandError::invalid(format!(
                    "That makes more than {MAX_OCCURRENCES} events; choose an earlier end."
                )));
            }
            made.push(next.timestamp().as_millisecond());
            n += 1;
        }
        let store = ctx.store.as_ref();
        let ns = namespace(ctx.community);
        let mut ids = Vec::with_capacity(made.len());
        for starts_at_ms in made {
            let copy_id =
                u64::try_from(store.increment(&ns, "next_id", 1).await?).unwrap_or_default();
            let copy = CalendarEvent {
                id: copy_id,
                starts_at_ms,
                rsvps: Vec::new(),
                ..event.clone()
            };
            let value =
                serde_json::to_value(&copy).map_err(|err| CommandError::Internal(err.into()))?;
            store
                .put_document(&ns, &key(copy_id), &value, Expect::Absent)
                .await?;
            if copy.status == EventStatus::Approved {
                schedule_reminders(ctx, &copy, settings).await?;
            }
            ids.push(format!("#{copy_id}"));
        }
        Ok(match ids.len() {
            0 => format!("No {pattern} occurrence falls before {until}."),
            count => format!(
                "Event #{id} repeats {pattern} until {until}: {count} more ({}).",
                ids.join(", ")
            ),
        })
    }
}

//! Community management from chat.
//!
//! - `!community info|members [n]|roles` (everyone): the community, who it has seen, who holds
//!   a role;
//! - `!community context [name]`: a person in several communities picks the one `!community`
//!   answers about (without a name: the current one and the others they are in);
//! - `!role grant|revoke <user> <vip|moderator|admin>`: vip by moderators, moderator and admin
//!   by the broadcaster (or an admin);
//! - `!module enable|disable <name>` and `!prefix <prefix>` (the broadcaster or an admin).
//!
//! Changes go through the store the router caches, so the next message sees them; each is
//! audited with the person who made it.

use std::time::SystemTime;

use async_trait::async_trait;
use waddlebot::store::{ModuleInstall, RoleGrant};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, Reply,
    StoreError,
};

use crate::members;

/// The module name.
pub const COMMUNITY_MODULE: &str = "community";
/// Where people's chosen community is kept (bot-wide, `<platform>:<user_id>` → id).
const CONTEXTS: &str = "community_context";
/// Members listed by `!community members` at most.
const MAX_LISTED: usize = 20;

/// The community management module.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommunityAdmin;

#[async_trait]
impl CommandHandler for CommunityAdmin {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("community")
                .usage("community info | community members [n] | community roles | community context [name]")
                .description("About this community, its members and roles; pick your community")
                .module(COMMUNITY_MODULE),
            CommandSpec::new("role")
                .usage("role grant|revoke <user> <vip|moderator|admin>")
                .description("Give or take a role in this community")
                .min_level(PermissionLevel::Moderator)
                .module(COMMUNITY_MODULE),
            CommandSpec::new("module")
                .usage("module list | module enable|disable <name>")
                .description("Turn a module on or off in this community")
                .min_level(PermissionLevel::Broadcaster)
                .module(COMMUNITY_MODULE),
            CommandSpec::new("prefix")
                .usage("prefix <prefix>")
                .description("Change this community's command prefix")
                .min_level(PermissionLevel::Broadcaster)
                .module(COMMUNITY_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let text = match ctx.command.as_str() {
            "role" => role(&ctx).await?,
            "module" => module(&ctx).await?,
            "prefix" => prefix(&ctx).await?,
            _ => {
                let sub = ctx.args.get(0).map(str::to_lowercase);
                match sub.as_deref() {
                    Some("context") => context(&ctx).await?,
                    Some("members") => {
                        let community = chosen(&ctx).await?;
                        members_text(&ctx, community).await?
                    }
                    Some("roles") => roles(&ctx, chosen(&ctx).await?).await?,
                    None | Some("info") => info(&ctx, chosen(&ctx).await?).await?,
                    Some(_) => return Err(ctx.usage_error()),
                }
            }
        };
        Ok(vec![Reply::text(text)])
    }
}

fn account(ctx: &Context) -> String {
    members::account_key(&ctx.event.platform, &ctx.user().id)
}

/// `!module list`: every module and whether it is on here.
async fn module_list(ctx: &Context) -> Result<String, CommandError> {
    let installs = ctx.store.list_module_installs(ctx.community).await?;
    let modules: std::collections::BTreeSet<&str> = ctx
        .catalog
        .specs()
        .iter()
        .map(|spec| spec.module.as_str())
        .chain(crate::EVENT_MODULES)
        .chain([waddlebot::store::CUSTOM_COMMANDS_MODULE])
        .collect();
    let (on, off): (Vec<&str>, Vec<&str>) = modules
        .into_iter()
        .partition(|module| ctx.catalog.module_on_among(module, &installs));
    let listed = |names: &[&str]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    Ok(format!(
        "Modules on: {} | off: {}. Switch one with {}module enable|disable <name>.",
        listed(&on),
        listed(&off),
        ctx.prefix
    ))
}

/// The community `!community` answers about: the person's chosen one, else this one.
async fn chosen(ctx: &Context) -> Result<CommunityId, StoreError> {
    let store = ctx.store.as_ref();
    if let Some(document) = store.get_document(CONTEXTS, &account(ctx)).await?
        && let Some(id) = document.value["community"].as_i64()
        && store.community(CommunityId(id)).await?.is_some()
    {
        return Ok(CommunityId(id));
    }
    Ok(ctx.community)
}

async fn info(ctx: &Context, community: CommunityId) -> Result<String, CommandError> {
    let store = ctx.store.as_ref();
    let Some(found) = store.community(community).await? else {
        return Err(CommandError::invalid("That community is gone."));
    };
    let seen = members::all(store, community).await?.len();
    let grants = store.list_role_grants(community).await?.len();
    let off = store
        .list_module_installs(community)
        .await?
        .into_iter()
        .filter(|install| !install.enabled)
        .count();
    Ok(format!(
        "{} (number {}): {seen} members seen, {grants} with a role, {off} module{} switched off. Commands: {}commands",
        found.name,
        found.id.0,
        if off == 1 { "" } else { "s" },
        ctx.prefix
    ))
}

async fn members_text(ctx: &Context, community: CommunityId) -> Result<String, CommandError> {
    let n = match ctx.args.get(1) {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LISTED).contains(n))
            .ok_or_else(|| CommandError::invalid(format!("List between 1 and {MAX_LISTED}.")))?,
        None => 10,
    };
    let mut all = members::all(ctx.store.as_ref(), community).await?;
    if all.is_empty() {
        return Ok("Nobody has been seen here yet.".to_owned());
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.last_seen_ms));
    let total = all.len();
    let names: Vec<String> = all
        .iter()
        .take(n)
        .map(|m| format!("{} ({})", m.shown_name(), m.platform))
        .collect();
    Ok(format!("{total} members; lately: {}.", names.join(", ")))
}

async fn roles(ctx: &Context, community: CommunityId) -> Result<String, CommandError> {
    let store = ctx.store.as_ref();
    let grants = store.list_role_grants(community).await?;
    if grants.is_empty() {
        return Ok("Nobody has been given a role here.".to_owned());
    }
    let mut lines = Vec::new();
    for grant in &grants {
        let name = members::member(store, community, &grant.platform, &grant.user_id)
            .await?
            .map_or_else(|| grant.user_id.clone(), |m| m.shown_name().to_owned());
        lines.push(format!("{name} ({}): {}", grant.platform, grant.level));
    }
    Ok(format!("Roles: {}.", lines.join(", ")))
}

async fn context(ctx: &Context) -> Result<String, CommandError> {
    let store = ctx.store.as_ref();
    let me = account(ctx);
    let mine = memberships(ctx).await?;
    let Some(name) = ctx.args.get(1) else {
        let current = store
            .community(chosen(ctx).await?)
            .await?
            .map_or_else(String::new, |c| c.name);
        let names: Vec<&str> = mine.iter().map(|(_, name)| name.as_str()).collect();
        return Ok(format!(
            "Your community: {current}. You are in: {}.",
            if names.is_empty() {
                "only this one".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    let Some((id, name)) = mine
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(name))
        .cloned()
    else {
        return Err(CommandError::invalid(format!(
            "You are not in a community called {name}."
        )));
    };
    store
        .put_document(
            CONTEXTS,
            &me,
            &serde_json::json!({"community": id.0}),
            waddlebot::store::Expect::Any,
        )
        .await?;
    Ok(format!("Your community is {name} now."))
}

/// The communities that have seen this account.
async fn memberships(ctx: &Context) -> Result<Vec<(CommunityId, String)>, StoreError> {
    let store = ctx.store.as_ref();
    let mut out = Vec::new();
    let mut page = waddlebot::store::Page::first(waddlebot::store::Page::MAX_LIMIT);
    loop {
        let communities = store.list_communities(&page).await?;
        for community in &communities {
            if members::member(store, community.id, &ctx.event.platform, &ctx.user().id)
                .await?
                .is_some()
            {
                out.push((community.id, community.name.clone()));
            }
        }
        match communities.last() {
            Some(last) if communities.len() == page.limit => {
                page.after = Some(last.id.0.to_string());
            }
            _ => return Ok(out),
        }
    }
}

async fn role(ctx: &Context) -> Result<String, CommandError> {
    let (Some(action), Some(name), Some(level)) =
        (ctx.args.get(0), ctx.args.get(1), ctx.args.get(2))
    else {
        return Err(ctx.usage_error());
    };
    let level = match level.to_lowercase().as_str() {
        "vip" => PermissionLevel::Vip,
        "mod" | "moderator" => PermissionLevel::Moderator,
        "admin" => PermissionLevel::Admin,
        other => {
            return Err(CommandError::invalid(format!(
                "Roles are vip, moderator and admin, not '{other}'."
            )));
        }
    };
    // Moderators hand out vip; moderator and admin are the broadcaster's.
    ctx.require(if level == PermissionLevel::Vip {
        PermissionLevel::Moderator
    } else {
        PermissionLevel::Broadcaster
    })?;
    let store = ctx.store.as_ref();
    let member = members::named(store, ctx.community, name, &ctx.event.platform).await?;
    let shown = member.shown_name().to_owned();
    match action.to_lowercase().as_str() {
        "grant" | "give" | "add" => {
            let grant = RoleGrant {
                community_id: ctx.community,
                platform: member.platform.clone(),
                user_id: member.user_id.clone(),
                level,
                granted_by: format!("{}:{}", ctx.event.platform, ctx.user().name),
                granted_at: SystemTime::now(),
            };
            store.put_role_grant(&grant).await?;
            crate::audit(
                ctx,
                None,
                "grant.put",
                &member.account(),
                serde_json::json!({"level": level}),
            )
            .await;
            Ok(format!("{shown} is {level} here now."))
        }
        "revoke" | "remove" | "take" => {
            match store
                .role_grant(ctx.community, &member.platform, &member.user_id)
                .await?
            {
                Some(grant) if grant.level == level => {
                    store
                        .delete_role_grant(ctx.community, &member.platform, &member.user_id)
                        .await?;
                    crate::audit(
                        ctx,
                        None,
                        "grant.delete",
                        &member.account(),
                        serde_json::json!({"level": level}),
                    )
                    .await;
                    Ok(format!("{shown} is no longer {level} here."))
                }
                _ => Err(CommandError::invalid(format!(
                    "{shown} is not {level} here."
                ))),
            }
        }
        _ => Err(ctx.usage_error()),
    }
}

async fn module(ctx: &Context) -> Result<String, CommandError> {
    if matches!(
        ctx.args.get(0).map(str::to_lowercase).as_deref(),
        None | Some("list")
    ) {
        return module_list(ctx).await;
    }
    let (Some(action), Some(name)) = (ctx.args.get(0), ctx.args.get(1)) else {
        return Err(ctx.usage_error());
    };
    let name = name.to_lowercase();
    let enabled = match action.to_lowercase().as_str() {
        "enable" | "on" => true,
        "disable" | "off" => false,
        _ => return Err(ctx.usage_error()),
    };
    let known = ctx.catalog.specs().iter().any(|spec| spec.module == name)
        || crate::EVENT_MODULES.contains(&name.as_str());
    if !known {
        return Err(CommandError::invalid(format!(
            "There is no module called {name}."
        )));
    }
    if !enabled && (name == "core" || name == COMMUNITY_MODULE) {
        return Err(CommandError::invalid(format!(
            "{name} stays on: it is how modules are switched."
        )));
    }
    let store = ctx.store.as_ref();
    let existing = store.module_install(ctx.community, &name).await?;
    let install = ModuleInstall {
        community_id: ctx.community,
        module: name.clone(),
        enabled,
        config: existing
            .map(|i| i.config)
            .unwrap_or_else(|| serde_json::json!({})),
        updated_by: format!("{}:{}", ctx.event.platform, ctx.user().name),
        updated_at: SystemTime::now(),
    };
    store.put_module_install(&install).await?;
    crate::audit(
        ctx,
        None,
        "module.update",
        &name,
        serde_json::json!({"enabled": enabled}),
    )
    .await;
    Ok(format!(
        "{name} is {} here now.",
        if enabled { "on" } else { "off" }
    ))
}

async fn prefix(ctx: &Context) -> Result<String, CommandError> {
    let Some(wanted) = ctx.args.get(0) else {
        return Err(ctx.usage_error());
    };
    let wanted = wanted.trim();
    let fits = (1..=3).contains(&wanted.chars().count())
        && wanted
            .chars()
            .all(|c| c.is_ascii_punctuation() && c != '#' && c != '/');
    if !fits {
        return Err(CommandError::invalid(
            "A prefix is 1 to 3 punctuation characters, not # or / (those are taken).",
        ));
    }
    let store = ctx.store.as_ref();
    let existing = store.module_install(ctx.community, "core").await?;
    let mut config = existing
        .as_ref()
        .map(|i| i.config.clone())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    config["prefix"] = serde_json::Value::from(wanted);
    if let Some(object) = config.as_object_mut() {
        object.remove("prefixes");
    }
    store
        .put_module_install(&ModuleInstall {
            community_id: ctx.community,
            module: "core".to_owned(),
            enabled: true,
            config,
            updated_by: format!("{}:{}", ctx.event.platform, ctx.user().name),
            updated_at: SystemTime::now(),
        })
        .await?;
    crate::audit(
        ctx,
        None,
        "module.update",
        "core",
        serde_json::json!({"prefix": wanted}),
    )
    .await;
    Ok(format!(
        "Commands start with {wanted} here now: try {wanted}help."
    ))
}

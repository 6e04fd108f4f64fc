//! `waddlebot apikey create|list|revoke` and `waddlebot token issue`.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use waddlebot::CommunityId;
use waddlebot_server::Config;
use waddlebot_server::auth::{
    JwtSettings, Role, Signing, issue_signed_token, issue_token, new_api_key,
};

use crate::cli::{ApikeyAction, PortalAction, TokenAction};

fn role(text: &str) -> anyhow::Result<Role> {
    text.parse().map_err(|err: String| anyhow::anyhow!(err))
}

fn date(time: Option<SystemTime>) -> String {
    time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| {
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(d.as_secs()).ok()?).ok()
        })
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

pub(crate) async fn apikey(config: &Config, action: &ApikeyAction) -> anyhow::Result<()> {
    let store = waddlebot_server::open_store(config).await?;
    match action {
        ApikeyAction::Create {
            name,
            role: wanted,
            community,
            expires_days,
        } => {
            let community = community.map(CommunityId);
            if let Some(id) = community {
                store
                    .community(id)
                    .await
                    .context("cannot read the store")?
                    .with_context(|| format!("there is no community {}", id.0))?;
            }
            let ttl = expires_days.map(|days| Duration::from_secs(days * 86_400));
            let (key, record) =
                new_api_key(name, role(wanted)?, community, ttl).map_err(anyhow::Error::msg)?;
            store
                .create_api_key(&record)
                .await
                .context("cannot store the key")?;
            eprintln!(
                "created key {} ({}); it is shown only now:",
                record.id, record.role
            );
            println!("{key}");
        }
        ApikeyAction::List => {
            for key in store
                .list_api_keys(None)
                .await
                .context("cannot read the keys")?
            {
                println!(
                    "{}\t{}\t{}\t{}\tcreated {}\texpires {}\tlast used {}\t{}",
                    key.id,
                    key.name,
                    key.role,
                    key.community_id
                        .map_or_else(|| "-".to_owned(), |c| c.0.to_string()),
                    date(Some(key.created_at)),
                    date(key.expires_at),
                    date(key.last_used_at),
                    if key.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                );
            }
        }
        ApikeyAction::Revoke { ids, cascade } => {
            for id in ids {
                if store
                    .revoke_api_key(id, SystemTime::now())
                    .await
                    .context("cannot revoke")?
                {
                    println!("revoked {id}");
                } else {
                    anyhow::bail!("there is no key {id}");
                }
                if *cascade {
                    let made = waddlebot_server::auth::keys_made_by(store.as_ref(), id)
                        .await
                        .context("cannot read the audit log")?;
                    for child in made {
                        if store
                            .revoke_api_key(&child, SystemTime::now())
                            .await
                            .context("cannot revoke")?
                        {
                            println!("revoked {child} (made by {id})");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn token(config: &Config, action: &TokenAction) -> anyhow::Result<()> {
    let TokenAction::Issue {
        subject,
        role: wanted,
        community,
        ttl_hours,
        rsa_key,
        kid,
    } = action;
    let ttl = Duration::from_secs(ttl_hours.saturating_mul(3600));
    let token = match rsa_key {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let kid = kid.clone().unwrap_or_else(|| {
                name.trim_end_matches(".pem")
                    .trim_end_matches(".key")
                    .to_owned()
            });
            let settings = JwtSettings {
                secret: Vec::new(),
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
                rsa_public_keys: Vec::new(),
            };
            let signing = Signing::Rs256 {
                private_pem: &pem,
                kid: &kid,
            };
            issue_signed_token(&settings, signing, subject, role(wanted)?, community.map(CommunityId), ttl)
        }
        None => {
            if !config.jwt_public_keys.is_empty() {
                anyhow::bail!(
                    "this server takes RS256 tokens (WADDLEBOT_JWT_PUBLIC_KEYS is set): sign with --rsa-key <private key PEM>"
                );
            }
            let settings = waddlebot_server::jwt_settings(config, false)?;
            issue_token(&settings, subject, role(wanted)?, community.map(CommunityId), ttl)
        }
    }
    .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

/// `waddlebot portal link`.
pub(crate) async fn portal(config: &Config, action: &PortalAction) -> anyhow::Result<()> {
    let PortalAction::Link {
        community,
        user,
        role: wanted,
        base_url,
    } = action;
    let role = role(wanted)?;
    if !role.is_community_role() {
        anyhow::bail!(
            "a portal link is for a community role: owner, community_admin, moderator or viewer"
        );
    }
    let user = user.trim();
    if user.is_empty() || user.len() > 100 {
        anyhow::bail!("give the user's name (1 to 100 characters)");
    }
    let store = waddlebot_server::open_store(config).await?;
    let found = match community.parse::<i64>() {
        Ok(id) => store.community(CommunityId(id)).await,
        Err(_) => store.community_named(community).await,
    }
    .context("cannot read the store")?
    .with_context(|| format!("there is no community {community}"))?;
    let token = waddlebot_server::create_login_link(store.as_ref(), found.id, user, role)
        .await
        .context("cannot store the link")?;
    let base = base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    eprintln!(
        "Sign-in link for {user} ({role}) to {} — works once, for {} hours:",
        found.name,
        waddlebot_server::LINK_TTL.as_secs() / 3600
    );
    println!("{}/portal/login/{token}", base.trim_end_matches('/'));
    Ok(())
}

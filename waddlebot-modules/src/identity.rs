//! Cross-platform identity: one person behind accounts on several platforms.
//!
//! - `!identity link <platform> <username>`: a 6-character code (letters and digits without
//!   0, O, 1 and I) valid [`CODE_TTL`] is whispered / DM'd to that account on that platform;
//!   asking again within [`RESEND_COOLDOWN`] is refused with the time left, later it sends a
//!   new code (the old one stops working).
//! - `!verify <CODE>` typed by the target account completes the link. The code is upper-cased;
//!   any code of the right shape is checked against the one waiting for that account, and each
//!   wrong one is counted: after [`MAX_ATTEMPTS`] the verification is dropped.
//! - `!identity unlink <platform>` (never the last account), `!identity` lists the links.
//!
//! An account already linked to another person cannot be linked. A person is keyed by the
//! account that started its first link (`twitch:123`); [`person_of`] answers that key for
//! any of its accounts, and the account's own key for an unlinked one, so data kept by person
//! (reputation) follows people across platforms and needs no migration when they link.
//!
//! Bot-wide documents: `identity` (`account:<platform>:<id>` → person,
//! `person:<key>` → its accounts), `identity_codes` (code → the pending link) and
//! `identity_pending` (`target:<platform>:<login>` and `source:<platform>:<id>` → code).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, Store};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, Context, Outbound, PlatformKind, Reply, StoreError,
};

/// The module name.
pub const IDENTITY_MODULE: &str = "identity";
/// How long a code works.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How soon a new code may be asked for.
pub const RESEND_COOLDOWN: Duration = Duration::from_secs(60);
/// Wrong codes accepted before a verification is dropped.
pub const MAX_ATTEMPTS: u32 = 5;
/// The characters of a code: no 0, O, 1 or I.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
// `new_code` relies on 256 being a multiple of the alphabet's size.
const _: () = assert!(256 % CODE_ALPHABET.len() == 0);
/// Characters in a code.
pub const CODE_LEN: usize = 6;
/// Platforms accounts can be linked on.
pub const LINKABLE: [&str; 3] = ["twitch", "discord", "slack"];

const ACCOUNTS: &str = "identity";

/// Bumped whenever this process links or unlinks accounts, so caches of [`person_of`] answers
/// (reputation keeps one) know to look again.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The current link generation of this process (see [`person_of`]).
pub(crate) fn generation() -> u64 {
    GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

fn changed() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}
const CODES: &str = "identity_codes";
const PENDING: &str = "identity_pending";

/// One linked account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAccount {
    /// Its platform.
    pub platform: PlatformKind,
    /// Its id there.
    pub user_id: String,
    /// Its user name when linked.
    pub username: String,
}

/// A person: the accounts linked together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Its key (the account that started the first link).
    pub key: String,
    /// Its accounts, the first one first.
    pub accounts: Vec<LinkedAccount>,
}

/// A link waiting for its code.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    code: String,
    source: LinkedAccount,
    target_platform: PlatformKind,
    target_login: String,
    sent_at_ms: u64,
    expires_at_ms: u64,
    attempts: u32,
}

fn account_key(platform: &PlatformKind, user_id: &str) -> String {
    format!("{platform}:{user_id}")
}

fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(value)
        .map_err(|err| StoreError::Backend(format!("malformed identity record: {err}").into()))
}

fn encode(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The person an account belongs to: its person's key when linked, else the account's own key
/// (`<platform>:<user_id>`).
pub async fn person_of(
    store: &dyn Store,
    platform: &PlatformKind,
    user_id: &str,
) -> Result<String, StoreError> {
    let key = account_key(platform, user_id);
    Ok(store
        .get_document(ACCOUNTS, &format!("account:{key}"))
        .await?
        .and_then(|document| document.value["person"].as_str().map(str::to_owned))
        .unwrap_or(key))
}

/// Every linked account (`<platform>:<user_id>`) and its person's key, read in one pass: a
/// busy process keeps this in memory so a newcomer's person costs no store read (see
/// [`person_of`]: an account not here is its own person).
pub(crate) async fn links(
    store: &dyn Store,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    Ok(waddlebot::store::all_documents(store, ACCOUNTS, "account:")
        .await?
        .into_iter()
        .filter_map(|document| {
            let account = document.key.strip_prefix("account:")?.to_owned();
            Some((account, document.value["person"].as_str()?.to_owned()))
        })
        .collect())
}

/// The person with this key and its accounts, if it has linked any.
pub async fn person(store: &dyn Store, key: &str) -> Result<Option<Person>, StoreError> {
    store
        .get_document(ACCOUNTS, &format!("person:{key}"))
        .await?
        .map(|document| decode(document.value))
        .transpose()
}

/// Whether `text` has the shape of a code (after upper-casing).
pub fn is_code(text: &str) -> bool {
    text.len() == CODE_LEN && text.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

/// A code from the operating system's secure generator: whoever could guess codes could link
/// someone else's account. The alphabet has 32 characters, so `byte % 32` is unbiased.
fn new_code() -> Result<String, CommandError> {
    let mut bytes = [0u8; CODE_LEN];
    getrandom::fill(&mut bytes)
        .map_err(|err| CommandError::Internal(format!("no randomness available: {err}").into()))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect())
}

fn platform_named(name: &str) -> Result<PlatformKind, CommandError> {
    let name = name.to_lowercase();
    if !LINKABLE.contains(&name.as_str()) {
        return Err(CommandError::invalid(format!(
            "I can link {} accounts, not '{name}'.",
            LINKABLE.join(", ")
        )));
    }
    name.parse()
        .map_err(|_| CommandError::invalid(format!("Unknown platform '{name}'.")))
}

fn minutes(ms: u64) -> u64 {
    ms.div_ceil(60_000)
}

/// The identity module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identity;

#[async_trait]
impl CommandHandler for Identity {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("identity")
                .usage("identity [link <platform> <username> | unlink <platform> | list]")
                .description("Link your accounts on other platforms: one person, one reputation")
                .module(IDENTITY_MODULE),
            CommandSpec::new("verify")
                .usage("verify <CODE>")
                .description("Finish linking this account with the code you were sent")
                .module(IDENTITY_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        if ctx.command == "verify" {
            return verify(&ctx).await.map(|text| vec![Reply::text(text)]);
        }
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            None | Some("list" | "status") => list(&ctx).await?,
            Some("link") => link(&ctx).await?,
            Some("unlink") => unlink(&ctx).await?,
            Some(_) => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

async fn list(ctx: &Context) -> Result<String, CommandError> {
    let store = ctx.store.as_ref();
    let key = person_of(store, &ctx.event.platform, &ctx.user().id).await?;
    let Some(person) = person(store, &key).await? else {
        return Ok(format!(
            "No accounts linked yet. Link one with {}identity link <platform> <username>.",
            ctx.prefix
        ));
    };
    let accounts: Vec<String> = person
        .accounts
        .iter()
        .map(|a| format!("{} {}", a.platform, a.username))
        .collect();
    Ok(format!("Linked accounts: {}.", accounts.join(", ")))
}

async fn link(ctx: &Context) -> Result<String, CommandError> {
    let (Some(platform), Some(login)) = (ctx.args.get(1), ctx.args.get(2)) else {
        return Err(ctx.usage_error());
    };
    let target = platform_named(platform)?;
    let login = login.trim().trim_start_matches('@').to_lowercase();
    if login.is_empty() || login.len() > 100 {
        return Err(CommandError::invalid("Give the account's user name."));
    }
    let source = LinkedAccount {
        platform: ctx.event.platform.clone(),
        user_id: ctx.user().id.clone(),
        username: ctx.user().name.clone(),
    };
    if target == source.platform {
        return Err(CommandError::invalid(format!(
            "You are on {target} already: link an account on another platform."
        )));
    }
    let store = ctx.store.as_ref();
    let me = person_of(store, &source.platform, &source.user_id).await?;
    if let Some(person) = person(store, &me).await?
        && person
            .accounts
            .iter()
            .any(|a| a.platform == target && a.username.to_lowercase() == login)
    {
        return Ok(format!("{target} {login} is linked to you already."));
    }
    if let Some(linked) = store
        .get_document(ACCOUNTS, &format!("name:{target}:{login}"))
        .await?
        && linked.value["person"].as_str() != Some(me.as_str())
    {
        return Err(CommandError::invalid(format!(
            "{target} {login} is linked to someone else already."
        )));
    }
    let now = ctx.clock.now_millis();
    let source_key = format!("source:{}", account_key(&source.platform, &source.user_id));
    if let Some(previous) = store.get_document(PENDING, &source_key).await? {
        let code = previous.value["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(old) = store.get_document(CODES, &code).await? {
            let old: Pending = decode(old.value)?;
            let cooldown = u64::try_from(RESEND_COOLDOWN.as_millis()).unwrap_or(u64::MAX);
            let wait = (old.sent_at_ms + cooldown).saturating_sub(now);
            if wait > 0 {
                return Err(CommandError::invalid(format!(
                    "A code was sent a moment ago; you can ask for a new one in {} s.",
                    wait.div_ceil(1000)
                )));
            }
            forget(store, &old).await?;
        }
    }
    let ttl = u64::try_from(CODE_TTL.as_millis()).unwrap_or(u64::MAX);
    let mut pending = Pending {
        code: String::new(),
        source: source.clone(),
        target_platform: target.clone(),
        target_login: login.clone(),
        sent_at_ms: now,
        expires_at_ms: now + ttl,
        attempts: 0,
    };
    // A code no live verification uses.
    for _ in 0..20 {
        pending.code = new_code()?;
        match store
            .put_document(CODES, &pending.code, &encode(&pending), Expect::Absent)
            .await
        {
            Ok(_) => break,
            Err(StoreError::Conflict(_)) => pending.code.clear(),
            Err(err) => return Err(err.into()),
        }
    }
    if pending.code.is_empty() {
        return Err(CommandError::invalid(
            "No code is free right now; try again.",
        ));
    }
    let target_key = format!("target:{target}:{login}");
    if let Some(other) = store.get_document(PENDING, &target_key).await?
        && let Some(code) = other.value["code"].as_str()
        && let Some(old) = store.get_document(CODES, code).await?
    {
        // Someone else's earlier link to the same account is replaced.
        forget(store, &decode(old.value)?).await?;
    }
    let pointer = serde_json::json!({"code": pending.code});
    store
        .put_document(PENDING, &target_key, &pointer, Expect::Any)
        .await?;
    store
        .put_document(PENDING, &source_key, &pointer, Expect::Any)
        .await?;
    let message = format!(
        "{} wants to link their {} account @{} to this account. If that is you, type {}verify {} here within {} minutes. If it wasn't you, ignore this.",
        source.username,
        source.platform,
        source.username,
        ctx.prefix,
        pending.code,
        minutes(ttl)
    );
    let sent = ctx
        .send_to(Outbound {
            platform: target.clone(),
            server_id: String::new(),
            channel_id: String::new(),
            user_id: login.clone(),
            in_reply_to: None,
            reply: Reply::whisper(message),
        })
        .await;
    if let Err(err) = sent {
        forget(store, &pending).await?;
        return Err(CommandError::invalid(format!(
            "I could not send the code to {login} on {target} ({err})."
        )));
    }
    Ok(format!(
        "I sent a code to {login} on {target}. Type {}verify <code> there within {} minutes.",
        ctx.prefix,
        minutes(ttl)
    ))
}

/// Drops a pending verification and its pointers.
async fn forget(store: &dyn Store, pending: &Pending) -> Result<(), StoreError> {
    store.delete_document(CODES, &pending.code).await?;
    for key in [
        format!(
            "target:{}:{}",
            pending.target_platform, pending.target_login
        ),
        format!(
            "source:{}",
            account_key(&pending.source.platform, &pending.source.user_id)
        ),
    ] {
        if let Some(pointer) = store.get_document(PENDING, &key).await?
            && pointer.value["code"].as_str() == Some(pending.code.as_str())
        {
            store.delete_document(PENDING, &key).await?;
        }
    }
    Ok(())
}

async fn verify(ctx: &Context) -> Result<String, CommandError> {
    let Some(given) = ctx.args.get(0) else {
        return Err(ctx.usage_error());
    };
    let given = given.trim().to_uppercase();
    if !is_code(&given) {
        return Err(CommandError::invalid(format!(
            "That is not a code: codes are {CODE_LEN} letters and digits."
        )));
    }
    let store = ctx.store.as_ref();
    let user = ctx.user();
    let platform = ctx.event.platform.clone();
    let target_key = format!("target:{platform}:{}", user.name.to_lowercase());
    let waiting = match store.get_document(PENDING, &target_key).await? {
        Some(pointer) => match pointer.value["code"].as_str() {
            Some(code) => store.get_document(CODES, code).await?,
            None => None,
        },
        None => None,
    };
    let Some(document) = waiting else {
        return Err(CommandError::invalid(
            "No link is waiting for this account. Start one from your other account with identity link.",
        ));
    };
    let mut pending: Pending = decode(document.value)?;
    let now = ctx.clock.now_millis();
    if now >= pending.expires_at_ms {
        forget(store, &pending).await?;
        return Err(CommandError::invalid(
            "That code has expired. Ask for a new one from your other account.",
        ));
    }
    if given != pending.code {
        pending.attempts += 1;
        if pending.attempts >= MAX_ATTEMPTS {
            forget(store, &pending).await?;
            return Err(CommandError::invalid(format!(
                "Wrong code, {MAX_ATTEMPTS} times: this link is cancelled. Start again from your other account."
            )));
        }
        store
            .put_document(
                CODES,
                &pending.code,
                &encode(&pending),
                Expect::Version(document.version),
            )
            .await?;
        let left = MAX_ATTEMPTS - pending.attempts;
        return Err(CommandError::invalid(format!(
            "Wrong code; {left} {} left.",
            if left == 1 { "try" } else { "tries" }
        )));
    }
    // The code is used up by whoever deletes it.
    if !store.delete_document(CODES, &pending.code).await? {
        return Err(CommandError::invalid("That code has just been used."));
    }
    forget(store, &pending).await?;
    let here = LinkedAccount {
        platform: platform.clone(),
        user_id: user.id.clone(),
        username: user.name.clone(),
    };
    let source = &pending.source;
    let owner = person_of(store, &source.platform, &source.user_id).await?;
    let mine = person_of(store, &here.platform, &here.user_id).await?;
    if mine == owner {
        return Ok("These accounts are linked already.".to_owned());
    }
    if mine != account_key(&here.platform, &here.user_id) || person(store, &mine).await?.is_some() {
        return Err(CommandError::invalid(
            "This account is linked to someone else already; unlink it there first.",
        ));
    }
    add_account(store, &owner, source, &here).await?;
    Ok(format!(
        "Linked: this {} account and {} {} are one person now.",
        here.platform, source.platform, source.username
    ))
}

/// Adds `account` to the person `key` (made from `first` when it has no record yet).
async fn add_account(
    store: &dyn Store,
    key: &str,
    first: &LinkedAccount,
    account: &LinkedAccount,
) -> Result<(), CommandError> {
    let (person, ()) = crate::update_document(
        store,
        ACCOUNTS,
        &format!("person:{key}"),
        "Your accounts changed meanwhile; try again.",
        |slot: &mut Option<Person>| {
            slot.get_or_insert_with(|| Person {
                key: key.to_owned(),
                accounts: vec![first.clone()],
            })
            .accounts
            .push(account.clone());
            Ok(())
        },
    )
    .await?;
    for linked in person.iter().flat_map(|p| &p.accounts) {
        point(store, key, linked).await?;
    }
    changed();
    Ok(())
}

async fn point(store: &dyn Store, key: &str, account: &LinkedAccount) -> Result<(), StoreError> {
    let pointer = serde_json::json!({"person": key});
    store
        .put_document(
            ACCOUNTS,
            &format!(
                "account:{}",
                account_key(&account.platform, &account.user_id)
            ),
            &pointer,
            Expect::Any,
        )
        .await?;
    store
        .put_document(
            ACCOUNTS,
            &format!(
                "name:{}:{}",
                account.platform,
                account.username.to_lowercase()
            ),
            &pointer,
            Expect::Any,
        )
        .await?;
    Ok(())
}

async fn unlink(ctx: &Context) -> Result<String, CommandError> {
    let Some(platform) = ctx.args.get(1) else {
        return Err(ctx.usage_error());
    };
    let target = platform_named(platform)?;
    let store = ctx.store.as_ref();
    let key = person_of(store, &ctx.event.platform, &ctx.user().id).await?;
    let (_, gone) = crate::update_document(
        store,
        ACCOUNTS,
        &format!("person:{key}"),
        "Your accounts changed meanwhile; try again.",
        |slot: &mut Option<Person>| {
            let person = slot
                .as_mut()
                .ok_or_else(|| CommandError::invalid("You have no linked accounts."))?;
            let Some(index) = person.accounts.iter().position(|a| a.platform == target) else {
                return Err(CommandError::invalid(format!(
                    "No {target} account is linked to you."
                )));
            };
            if person.accounts.len() <= 1 {
                return Err(CommandError::invalid("That is your last account; it stays."));
            }
            let account = &person.accounts[index];
            if account_key(&account.platform, &account.user_id) == key {
                // The person is keyed by this account (its reputation is kept under that key).
                return Err(CommandError::invalid(format!(
                    "Your {target} account is the one your links started from; unlink the others instead."
                )));
            }
            Ok(person.accounts.remove(index))
        },
    )
    .await?;
    store
        .delete_document(
            ACCOUNTS,
            &format!("account:{}", account_key(&gone.platform, &gone.user_id)),
        )
        .await?;
    store
        .delete_document(
            ACCOUNTS,
            &format!("name:{}:{}", gone.platform, gone.username.to_lowercase()),
        )
        .await?;
    changed();
    Ok(format!("Unlinked {} {}.", gone.platform, gone.username))
}

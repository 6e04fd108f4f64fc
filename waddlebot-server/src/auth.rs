//! Who is calling, and may they: API keys and JWT bearer tokens, roles, and the check each
//! route makes.
//!
//! - **API keys** look like `wbot_<16 hex id><64 hex secret>` (32 random bytes of secret). Only
//!   the key's SHA-256 is stored; the id finds the record and the hashes are compared in
//!   constant time. Keys can expire and be revoked; each use is recorded.
//! - **JWTs**: HS256 only (the algorithm is pinned, so `alg: none` and algorithm confusion are
//!   refused), with a secret of at least 32 bytes; `exp`, `nbf`, `iss` and `aud` are checked.
//!   Claims: `sub`, `role`, and `community` for community roles.
//! - **Roles**: `admin` (the whole bot), `owner`, `community_admin`, `moderator`, `viewer` (one
//!   community each) and `collector` (a service feeding events in).
//!
//! Credentials come in `Authorization: Bearer <key or token>` or `X-API-Key: <key>`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use waddlebot::store::ApiKey;
use waddlebot::{CommunityId, Store};

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "wbot_";
const ID_HEX: usize = 16;
const SECRET_BYTES: usize = 32;
/// How precisely a key's last use is recorded.
const LAST_USE_EVERY: Duration = Duration::from_secs(60);
/// How long a verified key is trusted without asking the store again. A revocation through
/// this server's admin API counts at once ([`Authenticator::forget`]); one made elsewhere (the
/// CLI, another process) within this long.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most verified keys remembered; beyond, the memory starts over.
const KEY_CACHE_MAX: usize = 10_000;

/// A credential this server accepted: a key the store confirmed, or a token.
#[derive(Clone)]
struct VerifiedKey {
    /// The key's id; empty for a token.
    id: String,
    checked: Checked,
    /// When the store was last asked (keys).
    at: std::time::Instant,
}

/// What a checked credential stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Who it names.
    pub principal: Principal,
    /// The API key's public id (`None` for a token): a session made with it checks the key is
    /// still valid on each use.
    pub key_id: Option<String>,
    /// When it stops being valid, if ever.
    pub expires_at: Option<SystemTime>,
}

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A service that feeds events in (collectors, platform bridges).
    Collector,
    /// Reads one community.
    Viewer,
    /// Moderates one community.
    Moderator,
    /// Administers one community.
    CommunityAdmin,
    /// Owns one community.
    Owner,
    /// The whole bot.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collector => "collector",
            Self::Viewer => "viewer",
            Self::Moderator => "moderator",
            Self::CommunityAdmin => "community_admin",
            Self::Owner => "owner",
            Self::Admin => "admin",
        }
    }

    /// Whether the role belongs to one community (and so needs one).
    pub fn is_community_role(self) -> bool {
        matches!(
            self,
            Self::Viewer | Self::Moderator | Self::CommunityAdmin | Self::Owner
        )
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "collector" => Self::Collector,
            "viewer" => Self::Viewer,
            "moderator" => Self::Moderator,
            "community_admin" => Self::CommunityAdmin,
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            other => {
                return Err(format!(
                    "unknown role '{other}' (admin, owner, community_admin, moderator, viewer, collector)"
                ));
            }
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who (the key's name, the token's `sub`).
    pub subject: String,
    /// What they may do.
    pub role: Role,
    /// The community a community role is limited to.
    pub community: Option<CommunityId>,
}

impl Principal {
    /// Who this is for per-caller limits: the subject with its role and community, so one
    /// subject's tokens of different roles are different callers, and one key is one caller
    /// however its header is written.
    pub(crate) fn limit_key(&self) -> String {
        format!(
            "principal:{}:{}:{}",
            self.role,
            self.community.map_or(0, |c| c.0),
            self.subject
        )
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, without credentials.
    Nothing,
    /// Any valid credential.
    Anyone,
    /// A service feeding events (a collector), or an admin.
    Collector,
    /// A bot-wide admin.
    Admin,
    /// At least this role in the community the path names (`/communities/{id}/…`); a bot-wide
    /// admin always passes.
    Community(Role),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that is not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid credential without the right (403).
    #[error("{0}")]
    Forbidden(String),
    /// The key store failed (503).
    #[error("cannot check the credential right now: {0}")]
    Unavailable(String),
}

/// JWT settings: HS256 with a shared secret, or RS256 with public keys (when any are given,
/// only RS256 is accepted). Either way the algorithm is pinned.
#[derive(Clone)]
pub struct JwtSettings {
    /// The HS256 secret (at least 32 bytes); unused in RS256 mode.
    pub secret: Vec<u8>,
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud`.
    pub audience: String,
    /// RS256 public keys; non-empty turns HS256 off.
    pub rsa_public_keys: Vec<RsaPublicKey>,
}

impl JwtSettings {
    /// HS256 settings.
    pub fn hs256(
        secret: impl Into<Vec<u8>>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            secret: secret.into(),
            issuer: issuer.into(),
            audience: audience.into(),
            rsa_public_keys: Vec::new(),
        }
    }
}

/// An RS256 public key that signs tokens, by key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The `kid` tokens signed with its private half carry (by convention the PEM file's
    /// name without extension).
    pub kid: String,
    /// The key, PEM (`-----BEGIN PUBLIC KEY-----` or `BEGIN RSA PUBLIC KEY`).
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "rsa_key_ids",
                &self
                    .rsa_public_keys
                    .iter()
                    .map(|k| &k.kid)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The shortest HS256 secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    community: Option<i64>,
    iss: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Verifies bearer tokens: one pinned algorithm and its keys.
#[derive(Clone)]
struct TokenCheck {
    settings: JwtSettings,
    /// `(kid, key)`: one unnamed key for HS256, the named public keys for RS256.
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

/// Checks credentials. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    jwt: Option<Arc<TokenCheck>>,
    /// Verified keys by the SHA-256 of the presented key (a collector sends every event with
    /// its key: without this, one store read per event).
    verified: Arc<std::sync::Mutex<std::collections::HashMap<String, VerifiedKey>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("jwt", &self.jwt.as_ref().map(|c| &c.settings))
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Keys from `store`; JWTs too when `jwt` is given: RS256 when it has public keys (each
    /// must parse), else HS256 (its secret must be 32 bytes or more).
    pub fn new(store: Arc<dyn Store>, jwt: Option<JwtSettings>) -> Result<Self, String> {
        let jwt = match jwt {
            None => None,
            Some(settings) => {
                let (algorithm, keys) = if settings.rsa_public_keys.is_empty() {
                    if settings.secret.len() < MIN_SECRET_BYTES {
                        return Err(format!(
                            "the JWT secret must be at least {MIN_SECRET_BYTES} bytes"
                        ));
                    }
                    (
                        Algorithm::HS256,
                        vec![(None, DecodingKey::from_secret(&settings.secret))],
                    )
                } else {
                    let keys = settings
                        .rsa_public_keys
                        .iter()
                        .map(|key| {
                            DecodingKey::from_rsa_pem(&key.pem)
                                .map(|decoding| (Some(key.kid.clone()), decoding))
                                .map_err(|err| {
                                    format!("RS256 key {} is not an RSA public key: {err}", key.kid)
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    (Algorithm::RS256, keys)
                };
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&settings.issuer]);
                validation.set_audience(&[&settings.audience]);
                validation.validate_nbf = true;
                validation.leeway = 30;
                validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
                Some(Arc::new(TokenCheck {
                    settings,
                    keys,
                    validation,
                }))
            }
        };
        Ok(Self {
            store,
            jwt,
            verified: Arc::default(),
        })
    }

    /// Stops trusting the key with public id `id` at once (after its revocation).
    pub fn forget(&self, id: &str) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, key| key.id != id);
    }

    /// Who the request's credential names; `None` when there is none. A request carrying two
    /// different credentials, or an `Authorization` header of another scheme, is refused.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        let presented = crate::hygiene::presented(headers).map_err(AuthError::Unauthenticated)?;
        self.check_presented(presented).await
    }

    /// Who a request's credential, as read from its headers, names.
    pub(crate) async fn check_presented(
        &self,
        presented: crate::hygiene::Presented<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        match presented {
            crate::hygiene::Presented::Nothing => Ok(None),
            crate::hygiene::Presented::OtherScheme => Err(AuthError::Unauthenticated(
                "use Authorization: Bearer <key or token>".to_owned(),
            )),
            crate::hygiene::Presented::Credential(secret) => self.check(secret).await.map(Some),
        }
    }

    /// Checks one credential (an API key or a bearer token) and tells who it names.
    pub async fn check(&self, credential: &str) -> Result<Principal, AuthError> {
        self.check_credential(credential)
            .await
            .map(|checked| checked.principal)
    }

    /// Checks one credential and tells who it names and how long it holds: a session made
    /// from it (the portal's) must end when it does.
    pub async fn check_credential(&self, credential: &str) -> Result<Checked, AuthError> {
        if credential.starts_with(KEY_PREFIX) {
            return self.api_key(credential).await;
        }
        let checked = self.token(credential)?;
        self.remember(sha256_hex(credential), None, &checked);
        Ok(checked)
    }

    /// Whether this server accepted `credential` before and it has not expired or been
    /// forgotten since: such a credential passes an address's failed-authentication lock-out
    /// (it is then checked as usual), so one guessing client does not lock out the people
    /// behind the same address.
    pub fn recognizes(&self, credential: &str) -> bool {
        let now = SystemTime::now();
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sha256_hex(credential))
            .is_some_and(|known| known.checked.expires_at.is_none_or(|at| at > now))
    }

    fn remember(&self, presented: String, id: Option<String>, checked: &Checked) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= KEY_CACHE_MAX {
            verified.clear();
        }
        verified.insert(
            presented,
            VerifiedKey {
                id: id.unwrap_or_default(),
                checked: checked.clone(),
                at: std::time::Instant::now(),
            },
        );
    }

    async fn api_key(&self, key: &str) -> Result<Checked, AuthError> {
        let presented = sha256_hex(key);
        let now = SystemTime::now();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&presented)
            .filter(|known| {
                known.at.elapsed() < KEY_CACHE_TTL
                    && known.checked.expires_at.is_none_or(|at| at > now)
            })
            .map(|known| known.checked.clone());
        if let Some(checked) = remembered {
            return Ok(checked);
        }
        let checked = self.api_key_from_store(key, &presented, now).await?;
        self.remember(presented, checked.key_id.clone(), &checked);
        Ok(checked)
    }

    /// Checks a key against its record: the principal, the key's id and its expiry.
    async fn api_key_from_store(
        &self,
        key: &str,
        presented: &str,
        now: SystemTime,
    ) -> Result<Checked, AuthError> {
        let refused = || AuthError::Unauthenticated("invalid API key".to_owned());
        let body = &key[KEY_PREFIX.len()..];
        let id = body.get(..ID_HEX).ok_or_else(refused)?;
        let record = self
            .store
            .api_key(id)
            .await
            .map_err(|err| AuthError::Unavailable(err.to_string()))?
            .ok_or_else(refused)?;
        if !same_secret(presented, &record.hash) {
            return Err(refused());
        }
        if record.revoked_at.is_some() {
            return Err(AuthError::Unauthenticated(
                "this API key was revoked".to_owned(),
            ));
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::Unauthenticated(
                "this API key has expired".to_owned(),
            ));
        }
        let role: Role = record.role.parse().map_err(|_| refused())?;
        // A collector sends every event with its key: record the use at most once a minute,
        // not as a database write per request.
        let stale = record
            .last_used_at
            .is_none_or(|at| now.duration_since(at).unwrap_or_default() >= LAST_USE_EVERY);
        if stale && let Err(err) = self.store.touch_api_key(&record.id, now).await {
            tracing::warn!(key = %record.id, error = %err, "cannot record the API key's use");
        }
        let principal = Principal {
            subject: format!("key:{} ({})", record.id, record.name),
            role,
            community: record.community_id,
        };
        Ok(Checked {
            principal,
            key_id: Some(record.id),
            expires_at: record.expires_at,
        })
    }

    fn token(&self, token: &str) -> Result<Checked, AuthError> {
        let Some(check) = &self.jwt else {
            return Err(AuthError::Unauthenticated(
                "bearer tokens are not accepted here; use an API key".to_owned(),
            ));
        };
        let invalid = |err: &dyn std::fmt::Display| {
            AuthError::Unauthenticated(format!("invalid bearer token: {err}"))
        };
        let header = jsonwebtoken::decode_header(token).map_err(|err| invalid(&err))?;
        // A token naming a key is checked with that key only; one naming none, with each.
        let candidates: Vec<&DecodingKey> = match &header.kid {
            Some(kid) if check.keys.iter().any(|(k, _)| k.is_some()) => check
                .keys
                .iter()
                .filter(|(k, _)| k.as_deref() == Some(kid.as_str()))
                .map(|(_, key)| key)
                .collect(),
            _ => check.keys.iter().map(|(_, key)| key).collect(),
        };
        if candidates.is_empty() {
            return Err(invalid(&"signed with an unknown key id"));
        }
        let mut last = None;
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &check.validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(err) => last = Some(err),
            }
        }
        let claims = match (claims, last) {
            (Some(claims), _) => claims,
            (None, Some(err)) => return Err(invalid(&err)),
            (None, None) => return Err(invalid(&"no key to check it with")),
        };
        if claims.role.is_community_role() && claims.community.is_none() {
            return Err(AuthError::Unauthenticated(format!(
                "a {} token must name its community",
                claims.role
            )));
        }
        if !claims.role.is_community_role() && claims.community.is_some() {
            return Err(AuthError::Unauthenticated(bot_wide(claims.role, "token")));
        }
        Ok(Checked {
            principal: Principal {
                subject: claims.sub,
                role: claims.role,
                community: claims.community.map(CommunityId),
            },
            key_id: None,
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(claims.exp)),
        })
    }

    /// Checks `principal` has what the route `need`s; `community` is the one the path names.
    /// Another community's credential is refused before anything is looked up, so it cannot
    /// learn whether that community's objects exist.
    pub fn authorize(
        principal: Option<&Principal>,
        need: Need,
        community: Option<CommunityId>,
    ) -> Result<(), AuthError> {
        let who = match (need, principal) {
            (Need::Nothing, _) => return Ok(()),
            (_, None) => {
                return Err(AuthError::Unauthenticated(
                    "this route needs a credential: Authorization: Bearer <API key or token>"
                        .to_owned(),
                ));
            }
            (_, Some(who)) => who,
        };
        let allowed = match need {
            Need::Nothing | Need::Anyone => true,
            Need::Collector => {
                who.role == Role::Admin || (who.role == Role::Collector && who.community.is_none())
            }
            Need::Admin => who.role == Role::Admin && who.community.is_none(),
            Need::Community(min) => {
                (who.role == Role::Admin && who.community.is_none())
                    || (who.role.is_community_role()
                        && who.role >= min
                        && who.community.is_some()
                        && who.community == community)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "a {} credential may not do this",
                who.role
            )))
        }
    }
}

/// The most audit entries read per log when looking for the keys a key made.
const MAX_AUDIT_SCAN: usize = 100_000;

/// The ids of the keys that key `id` made through the admin API, those keys made, and so on
/// (not `id` itself): a key's creations are in the audit log (`api_key.create`, with the
/// creating key as actor and the new key's id as target), bot-wide or in the community the new
/// key belongs to. Reads at most 100,000 entries of each log.
pub async fn keys_made_by(
    store: &dyn Store,
    id: &str,
) -> Result<Vec<String>, waddlebot::StoreError> {
    let mut logs = vec![None];
    let mut page = waddlebot::store::Page::first(waddlebot::store::Page::MAX_LIMIT);
    loop {
        let communities = store.list_communities(&page).await?;
        let Some(last) = communities.last() else {
            break;
        };
        page.after = Some(last.id.0.to_string());
        logs.extend(communities.iter().map(|c| Some(c.id)));
    }
    // Who made what: creating key id -> the ids it made.
    let mut made: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for log in logs {
        let mut offset = 0;
        while offset < MAX_AUDIT_SCAN {
            let entries = store.list_audit(log, 1000, offset).await?;
            for entry in &entries {
                let creator = entry
                    .actor
                    .strip_prefix("key:")
                    .and_then(|rest| rest.split(' ').next());
                if let (Some(creator), "api_key.create") = (creator, entry.action.as_str()) {
                    made.entry(creator.to_owned())
                        .or_default()
                        .push(entry.target.clone());
                }
            }
            if entries.len() < 1000 {
                break;
            }
            offset += entries.len();
        }
    }
    let mut found = Vec::new();
    let mut next = vec![id.to_owned()];
    while let Some(creator) = next.pop() {
        for child in made.remove(&creator).unwrap_or_default() {
            if child != id && !found.contains(&child) {
                found.push(child.clone());
                next.push(child);
            }
        }
    }
    Ok(found)
}

/// Why an admin or collector credential cannot name a community: both roles serve the whole
/// bot (a collector feeds any channel's events in; which community an event belongs to is
/// the bot's to decide), so such a credential would be refused on every route.
fn bot_wide(role: Role, what: &str) -> String {
    format!("{role} {what}s are for the whole bot; leave the community out")
}

/// A new API key and the record to store for it. The key is shown once; only its hash is kept.
pub fn new_api_key(
    name: &str,
    role: Role,
    community: Option<CommunityId>,
    expires_in: Option<Duration>,
) -> Result<(String, ApiKey), String> {
    if role.is_community_role() && community.is_none() {
        return Err(format!("a {role} key needs a community"));
    }
    if !role.is_community_role() && community.is_some() {
        return Err(bot_wide(role, "key"));
    }
    let mut bytes = [0u8; ID_HEX / 2 + SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|err| format!("no randomness available: {err}"))?;
    let id = hex::encode(&bytes[..ID_HEX / 2]);
    let key = format!("{KEY_PREFIX}{id}{}", hex::encode(&bytes[ID_HEX / 2..]));
    let now = SystemTime::now();
    let record = ApiKey {
        id,
        hash: sha256_hex(&key),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        community_id: community,
        created_at: now,
        expires_at: expires_in.map(|ttl| now + ttl),
        last_used_at: None,
        revoked_at: None,
    };
    Ok((key, record))
}

/// How to sign a token: the HS256 secret of the settings, or an RS256 private key.
#[derive(Debug, Clone, Copy)]
pub enum Signing<'a> {
    /// With `JwtSettings::secret`.
    Hs256,
    /// With this private key (PEM), naming `kid` in the header.
    Rs256 {
        /// The private key, PEM.
        private_pem: &'a [u8],
        /// The key id the server knows its public half by.
        kid: &'a str,
    },
}

/// A signed HS256 token for `subject` with `role` (and `community` for community roles),
/// valid for `ttl`.
pub fn issue_token(
    settings: &JwtSettings,
    subject: &str,
    role: Role,
    community: Option<CommunityId>,
    ttl: Duration,
) -> Result<String, String> {
    issue_signed_token(settings, Signing::Hs256, subject, role, community, ttl)
}

/// A token signed as `signing` says, for `subject` with `role` (and `community` for community
/// roles), valid for `ttl`.
pub fn issue_signed_token(
    settings: &JwtSettings,
    signing: Signing<'_>,
    subject: &str,
    role: Role,
    community: Option<CommunityId>,
    ttl: Duration,
) -> Result<String, String> {
    if role.is_community_role() && community.is_none() {
        return Err(format!("a {role} token needs a community"));
    }
    if !role.is_community_role() && community.is_some() {
        return Err(bot_wide(role, "token"));
    }
    let (header, key) = match signing {
        Signing::Hs256 => {
            if settings.secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "the JWT secret must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            (
                Header::new(Algorithm::HS256),
                EncodingKey::from_secret(&settings.secret),
            )
        }
        Signing::Rs256 { private_pem, kid } => {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.to_owned());
            let key = EncodingKey::from_rsa_pem(private_pem)
                .map_err(|err| format!("not an RSA private key: {err}"))?;
            (header, key)
        }
    };
    let now = SystemTime::now();
    let claims = Claims {
        sub: subject.to_owned(),
        role,
        community: community.map(|c| c.0),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        exp: unix(now + ttl),
        nbf: unix(now),
        iat: unix(now),
    };
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|err| format!("cannot sign the token: {err}"))
}

/// A fresh random HS256 secret, hex (64 bytes of randomness).
pub fn generate_secret() -> Result<String, String> {
    random_hex(64)
}

/// `len` bytes from the operating system's secure generator, as hex: secrets, keys, tokens.
pub(crate) fn random_hex(len: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|err| format!("no randomness available: {err}"))?;
    Ok(hex::encode(bytes))
}

/// The SHA-256 of a secret, hex: what the store keeps instead of the secret.
pub(crate) fn sha256_hex(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {key}").parse().expect("header"),
        );
        headers
    }

    #[tokio::test]
    async fn a_keys_use_is_recorded_once_a_minute_not_per_request() {
        let store: Arc<dyn Store> = Arc::new(waddlebot::store::MemoryStore::new());
        let (key, record) = new_api_key("feeder", Role::Collector, None, None).expect("key");
        store.create_api_key(&record).await.expect("stored");
        let auth = Authenticator::new(Arc::clone(&store), None).expect("auth");

        let who = auth.authenticate(&bearer(&key)).await.expect("checked");
        assert_eq!(who.map(|p| p.role), Some(Role::Collector));
        let first = store
            .api_key(&record.id)
            .await
            .expect("read")
            .expect("there");
        let used = first.last_used_at.expect("the first use is recorded");

        auth.authenticate(&bearer(&key)).await.expect("checked");
        let second = store
            .api_key(&record.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(
            second.last_used_at,
            Some(used),
            "no write for a use a moment later"
        );

        let last = if key.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &key[..key.len() - 1]);
        assert!(matches!(
            auth.authenticate(&bearer(&wrong)).await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn roles_and_communities_must_agree_and_secrets_be_long() {
        let one = Some(CommunityId(1));
        assert!(
            new_api_key("x", Role::Owner, None, None).is_err(),
            "an owner of what?"
        );
        assert!(
            new_api_key("x", Role::Admin, one, None).is_err(),
            "admins are bot-wide"
        );
        assert!(new_api_key("x", Role::Viewer, one, None).is_ok());
        let scoped = new_api_key("x", Role::Collector, one, None).expect_err("refused");
        assert!(scoped.contains("whole bot"), "{scoped}");
        let (key, record) = new_api_key("x", Role::Collector, None, None).expect("key");
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 16 + 64);
        assert_ne!(record.hash, key, "only the hash is kept");

        let short = JwtSettings::hs256(b"too short".to_vec(), "i", "a");
        assert!(issue_token(&short, "s", Role::Admin, None, Duration::from_secs(60)).is_err());
        let store: Arc<dyn Store> = Arc::new(waddlebot::store::MemoryStore::new());
        assert!(Authenticator::new(store, Some(short)).is_err());
        let long = JwtSettings::hs256(vec![7; MIN_SECRET_BYTES], "i", "a");
        assert!(
            issue_token(&long, "s", Role::Moderator, None, Duration::from_secs(60)).is_err(),
            "a community role needs its community"
        );
        assert!(
            issue_token(&long, "s", Role::Collector, one, Duration::from_secs(60)).is_err(),
            "a collector is bot-wide"
        );
        assert_eq!(generate_secret().expect("random").len(), 128);
    }

    #[tokio::test]
    async fn a_collector_token_naming_a_community_is_refused_with_the_reason() {
        // Signed with the bot's secret by some other tool: valid, but a collector is bot-wide.
        let settings = JwtSettings::hs256(vec![7; MIN_SECRET_BYTES], "i", "a");
        let now = SystemTime::now();
        let claims = Claims {
            sub: "feeder".into(),
            role: Role::Collector,
            community: Some(1),
            iss: "i".into(),
            aud: "a".into(),
            exp: unix(now + Duration::from_secs(60)),
            nbf: unix(now),
            iat: unix(now),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&settings.secret),
        )
        .expect("signed");
        let store: Arc<dyn Store> = Arc::new(waddlebot::store::MemoryStore::new());
        let auth = Authenticator::new(store, Some(settings)).expect("auth");
        match auth.authenticate(&bearer(&token)).await {
            Err(AuthError::Unauthenticated(message)) => {
                assert!(message.contains("whole bot"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

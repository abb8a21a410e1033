//! API-key authentication: HTTP Basic, public key as the user and secret key as the password,
//! resolving to exactly one project ([`ProjectAuth`]). Langfuse's browser SDK shows only its
//! public key (`Authorization: Bearer pk-lf-...`), which is no secret: it ships in web pages, so it
//! may write scores and nothing else. It is its own type ([`PublicKeyAuth`]), given only to the
//! handlers that take score writes, through [`IngestionAuth`]; every other endpoint asks for
//! [`ProjectAuth`], which a public key alone never yields (403 for a known key, as Langfuse).
//!
//! Verified keys are cached in each process for `auth.key_cache_ttl_secs`, so the database is
//! asked at most once per key and interval; the secret is still hashed and compared (in constant
//! time) on every request, so the cache never lets a wrong secret through. A key in use is looked
//! up again in the background once its entry is half its age, so requests (the prompt API's above
//! all) do not wait for PostgreSQL every interval. A key deleted in the web UI is forgotten at once
//! by every `serve` process: the deleting process publishes it on Redis
//! ([`crate::http::key_revocation`]) and each process drops it from its cache; only if that
//! message is lost does the TTL bound how long another process still accepts it.
//!
//! A key's last use is recorded (`api_keys.last_used_at`) at most once a minute per key and
//! process, by a task spawned beside the request: no request waits for it.
//!
//! People in the web UI are authenticated here too: [`SignedIn`] (the session cookie names a live
//! server-side session), and what they may reach, each decided in one query before a handler runs:
//! [`ProjectMember`] (their role on the project of the path's `{projectId}`) and [`OrgMember`]
//! (their role on the organization of `{orgId}`). Someone who is no member gets a 404, the same
//! as for a project that does not exist, so a URL tells nothing about others' projects.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::account::{self, Role};
use crate::domain::api_key;
use crate::domain::project::ProjectId;
use crate::http::error::ApiError;
use crate::http::ui::error::UiError;
use crate::http::ui::{cookies, csrf, UiConfig};
use crate::storage::postgres::{memberships, sessions, users::User};
use crate::storage::Stores;

/// A bound on cached entries: enough for any real number of keys, small enough that a flood of
/// random public keys cannot grow memory without limit.
const MAX_CACHED_KEYS: usize = 10_000;

/// The project an authenticated request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectAuth {
    pub project_id: ProjectId,
    pub public_key: String,
    pub api_key_id: String,
}

/// The project of a request that showed only its public key: it may write scores, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyAuth {
    pub project_id: ProjectId,
    pub public_key: String,
}

/// The caller of an endpoint that takes score writes from a public key alone (the batch API and
/// `POST /api/public/scores`): the whole key pair, or the public key, which may write only scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestionAuth {
    KeyPair(ProjectAuth),
    PublicKeyOnly(PublicKeyAuth),
}

impl IngestionAuth {
    pub fn project_id(&self) -> &ProjectId {
        match self {
            IngestionAuth::KeyPair(auth) => &auth.project_id,
            IngestionAuth::PublicKeyOnly(auth) => &auth.project_id,
        }
    }
}

/// What the database said about a public key, as cached.
#[derive(Debug, Clone)]
enum CachedKey {
    Known {
        key_id: String,
        project_id: String,
        fast_hashed_secret_key: String,
    },
    /// Cached too, so repeated requests with an unknown key do not each reach the database.
    Unknown,
}

/// A cache entry: when the database said it, what it said, and whether a lookup to renew it runs.
struct Entry {
    fetched_at: Instant,
    key: CachedKey,
    renewing: bool,
}

type KeyCache = Arc<Mutex<HashMap<String, Entry>>>;

/// How often, at most, one process records that one key was used.
const LAST_USE_INTERVAL: Duration = Duration::from_secs(60);

pub struct ApiKeyVerifier {
    pool: deadpool_postgres::Pool,
    salt: SecretString,
    ttl: Duration,
    cache: KeyCache,
    /// Counts the revocations this process has learnt of: a lookup that began before one is not
    /// cached, so a key read just before its deletion cannot come back into the cache after it.
    revocations: Arc<AtomicU64>,
    /// When this process last recorded each key's use.
    last_use_written: Arc<Mutex<HashMap<String, Instant>>>,
}

impl ApiKeyVerifier {
    pub fn new(pool: deadpool_postgres::Pool, salt: SecretString, ttl: Duration) -> Self {
        ApiKeyVerifier {
            pool,
            salt,
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
            revocations: Arc::new(AtomicU64::new(0)),
            last_use_written: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Drops what this process knows of a key, so that a key deleted anywhere stops working here
    /// at once (the web UI calls it, then publishes the key for the other processes, whose
    /// subscriber calls it in turn).
    pub fn forget(&self, public_key: &str) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.cache
            .lock()
            .expect("auth cache lock poisoned")
            .remove(public_key);
    }

    /// Drops every cached key: revocations may have been missed.
    pub fn forget_all(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.cache.lock().expect("auth cache lock poisoned").clear();
    }

    /// Records that key `key_id` was used, at most once per [`LAST_USE_INTERVAL`] in this
    /// process, by a spawned task: the request goes on at once, and a failure is only logged.
    fn record_use(&self, key_id: &str) {
        {
            let mut written = self
                .last_use_written
                .lock()
                .expect("last-use lock poisoned");
            if written
                .get(key_id)
                .is_some_and(|at| at.elapsed() < LAST_USE_INTERVAL)
            {
                return;
            }
            if written.len() >= MAX_CACHED_KEYS {
                written.retain(|_, at| at.elapsed() < LAST_USE_INTERVAL);
            }
            written.insert(key_id.to_string(), Instant::now());
        }
        let (pool, key_id) = (self.pool.clone(), key_id.to_string());
        tokio::spawn(async move {
            if let Err(err) = crate::storage::postgres::api_keys::record_use(&pool, &key_id).await {
                tracing::debug!(error = format!("{err:#}"), "cannot record an API key's use");
            }
        });
    }

    /// Resolves an `Authorization` header value to a project, or says why not. A public key
    /// alone is refused: 403 when it is known (it may write scores only), 401 when not.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<ProjectAuth, ApiError> {
        match parse_authorization(authorization)? {
            Credentials::KeyPair { public_key, secret } => {
                self.verify_key_pair(public_key, secret).await
            }
            Credentials::PublicKey(public_key) => {
                self.verify_public_key(public_key).await?;
                Err(ApiError::Forbidden(
                    "Access denied - insufficient permissions for this endpoint".to_string(),
                ))
            }
        }
    }

    /// Resolves the `Authorization` header of a score write: the key pair, or the public key
    /// alone.
    pub async fn verify_ingestion(
        &self,
        authorization: Option<&str>,
    ) -> Result<IngestionAuth, ApiError> {
        Ok(match parse_authorization(authorization)? {
            Credentials::KeyPair { public_key, secret } => {
                IngestionAuth::KeyPair(self.verify_key_pair(public_key, secret).await?)
            }
            Credentials::PublicKey(public_key) => {
                let (key_id, auth) = self.verify_public_key(public_key).await?;
                self.record_use(&key_id);
                IngestionAuth::PublicKeyOnly(auth)
            }
        })
    }

    /// The project of a known public key, and the key's id.
    async fn verify_public_key(
        &self,
        public_key: String,
    ) -> Result<(String, PublicKeyAuth), ApiError> {
        match self.entry(&public_key).await? {
            CachedKey::Known {
                key_id, project_id, ..
            } => Ok((
                key_id,
                PublicKeyAuth {
                    project_id: ProjectId::authenticated(project_id),
                    public_key,
                },
            )),
            CachedKey::Unknown => Err(ApiError::Unauthorized(
                "Invalid public key. Confirm that you've configured the correct host.".to_string(),
            )),
        }
    }

    /// What is known of `public_key`: cached, or asked of the database and cached.
    async fn entry(&self, public_key: &str) -> Result<CachedKey, ApiError> {
        Ok(match self.cached(public_key) {
            Some((entry, renew)) => {
                if renew {
                    self.renew_in_background(public_key);
                }
                entry
            }
            None => {
                let generation = self.revocations.load(Ordering::SeqCst);
                let entry = look_up(&self.pool, public_key).await.map_err(|e| {
                    ApiError::Unavailable(format!("Authentication unavailable: {e}"))
                })?;
                if self.revocations.load(Ordering::SeqCst) == generation {
                    remember(&self.cache, self.ttl, public_key, entry.clone());
                }
                entry
            }
        })
    }

    async fn verify_key_pair(
        &self,
        public_key: String,
        secret: String,
    ) -> Result<ProjectAuth, ApiError> {
        match self.entry(&public_key).await? {
            CachedKey::Known {
                key_id,
                project_id,
                fast_hashed_secret_key,
            } if api_key::secret_matches(
                self.salt.expose_secret(),
                &secret,
                &fast_hashed_secret_key,
            ) =>
            {
                self.record_use(&key_id);
                Ok(ProjectAuth {
                    project_id: ProjectId::authenticated(project_id),
                    public_key,
                    api_key_id: key_id,
                })
            }
            _ => Err(ApiError::Unauthorized(
                "Invalid credentials. Confirm that you've configured the correct host and API keys."
                    .to_string(),
            )),
        }
    }

    /// The cached answer while it is fresh, and whether this request should start its renewal
    /// (the entry is past half its age and no renewal runs yet).
    fn cached(&self, public_key: &str) -> Option<(CachedKey, bool)> {
        let mut cache = self.cache.lock().expect("auth cache lock poisoned");
        let entry = cache.get_mut(public_key)?;
        let age = entry.fetched_at.elapsed();
        if age >= self.ttl {
            return None;
        }
        let renew = age >= self.ttl / 2 && !entry.renewing;
        entry.renewing |= renew;
        Some((entry.key.clone(), renew))
    }

    fn renew_in_background(&self, public_key: &str) {
        let (pool, cache, ttl, public_key, revocations) = (
            self.pool.clone(),
            self.cache.clone(),
            self.ttl,
            public_key.to_string(),
            self.revocations.clone(),
        );
        let generation = revocations.load(Ordering::SeqCst);
        tokio::spawn(async move {
            match look_up(&pool, &public_key).await {
                // A revocation during the lookup: the answer may be from before it.
                Ok(_) if revocations.load(Ordering::SeqCst) != generation => {
                    cache
                        .lock()
                        .expect("auth cache lock poisoned")
                        .remove(&public_key);
                }
                Ok(entry) => remember(&cache, ttl, &public_key, entry),
                // The entry is still good until its age; a later request tries again.
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "cannot renew a cached API key");
                    if let Some(entry) = cache
                        .lock()
                        .expect("auth cache lock poisoned")
                        .get_mut(&public_key)
                    {
                        entry.renewing = false;
                    }
                }
            }
        });
    }
}

async fn look_up(pool: &deadpool_postgres::Pool, public_key: &str) -> anyhow::Result<CachedKey> {
    Ok(
        match crate::storage::postgres::find_api_key(pool, public_key).await? {
            Some(record) => CachedKey::Known {
                key_id: record.id,
                project_id: record.project_id,
                fast_hashed_secret_key: record.fast_hashed_secret_key,
            },
            None => CachedKey::Unknown,
        },
    )
}

fn remember(cache: &KeyCache, ttl: Duration, public_key: &str, key: CachedKey) {
    let mut cache = cache.lock().expect("auth cache lock poisoned");
    if cache.len() >= MAX_CACHED_KEYS {
        cache.retain(|_, entry| entry.fetched_at.elapsed() < ttl);
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
    }
    cache.insert(
        public_key.to_string(),
        Entry {
            fetched_at: Instant::now(),
            key,
            renewing: false,
        },
    );
}

/// What an `Authorization` header shows.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    /// HTTP Basic: the public key as the user, the secret key as the password.
    KeyPair { public_key: String, secret: String },
    /// `Bearer <public key>`, as Langfuse's browser SDK sends it.
    PublicKey(String),
}

fn parse_authorization(authorization: Option<&str>) -> Result<Credentials, ApiError> {
    let header = authorization.ok_or_else(|| {
        ApiError::Unauthorized(
            "Missing authorization header: use HTTP Basic with the public key as username and the secret key as password"
                .to_string(),
        )
    })?;
    let invalid = || {
        ApiError::Unauthorized(
            "Invalid authorization header: expected HTTP Basic with the public key as username and the secret key as password"
                .to_string(),
        )
    };
    let (scheme, credentials) = header.trim().split_once(' ').ok_or_else(invalid)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let public_key = credentials.trim();
        if public_key.is_empty() {
            return Err(invalid());
        }
        return Ok(Credentials::PublicKey(public_key.to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let (public_key, secret) = parse_basic(credentials).ok_or_else(invalid)?;
    Ok(Credentials::KeyPair { public_key, secret })
}

/// The user and password of HTTP Basic credentials, both required.
fn parse_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (public_key, secret) = decoded.split_once(':')?;
    if public_key.is_empty() || secret.is_empty() {
        return None;
    }
    Some((public_key.to_string(), secret.to_string()))
}

/// The request's verifier and `Authorization` header, taken before the extractor's future runs.
fn verifier_and_header(
    req: &HttpRequest,
) -> (Result<web::Data<ApiKeyVerifier>, ApiError>, Option<String>) {
    let verifier = req
        .app_data::<web::Data<ApiKeyVerifier>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("ApiKeyVerifier missing from app data")));
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (verifier, header)
}

impl FromRequest for ProjectAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let (verifier, header) = verifier_and_header(req);
        Box::pin(async move { verifier?.verify(header.as_deref()).await })
    }
}

impl FromRequest for IngestionAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let (verifier, header) = verifier_and_header(req);
        Box::pin(async move { verifier?.verify_ingestion(header.as_deref()).await })
    }
}

/// A person signed in to the web UI.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The stored form of the session's token: what sign-out deletes.
    pub session_token_hash: String,
    /// The token this session's forms carry (`ui::csrf`).
    pub csrf_token: String,
}

/// The stores and UI settings of a request, taken before an extractor's future runs.
fn ui_context(req: &HttpRequest) -> Result<(web::Data<Stores>, web::Data<UiConfig>), UiError> {
    let stores = req.app_data::<web::Data<Stores>>().cloned();
    let config = req.app_data::<web::Data<UiConfig>>().cloned();
    match (stores, config) {
        (Some(stores), Some(config)) => Ok((stores, config)),
        _ => Err(UiError::Internal(anyhow::anyhow!(
            "Stores or UiConfig missing from app data"
        ))),
    }
}

/// Where to come back after signing in: a GET's own path and query; nothing for other methods.
fn return_path(req: &HttpRequest) -> Option<String> {
    (req.method() == actix_web::http::Method::GET).then(|| match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_string(),
        None => req.path().to_string(),
    })
}

/// The session of a request: the cookie's token, hashed, names a live row of `user_sessions`.
async fn signed_in(
    stores: &Stores,
    config: &UiConfig,
    token: Option<String>,
    next: Option<String>,
) -> Result<SignedIn, UiError> {
    let Some(token) = token else {
        return Err(UiError::SignInRequired { next });
    };
    let token_hash = account::token_hash(&token);
    match sessions::find(&stores.postgres, &token_hash).await? {
        Some(session) => Ok(SignedIn {
            user: session.user,
            session_token_hash: session.token_hash,
            csrf_token: csrf::token_for(config, &token),
        }),
        None => Err(UiError::SignInRequired { next }),
    }
}

impl FromRequest for SignedIn {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let context = ui_context(req);
        let next = return_path(req);
        let token = context
            .as_ref()
            .ok()
            .and_then(|(_, config)| cookies::session_token(req, config));
        Box::pin(async move {
            let (stores, config) = context?;
            signed_in(&stores, &config, token, next).await
        })
    }
}

/// A signed-in person who may read the project of the path's `{projectId}`, with their role there.
/// The only maker of a `ProjectId` for the UI: a page's queries of project data take this one.
#[derive(Debug, Clone)]
pub struct ProjectMember {
    pub project_id: ProjectId,
    pub project_name: String,
    pub org_id: String,
    pub org_name: String,
    /// The role that applies on this project (a project role overrides the organization's).
    pub role: Role,
    /// The role on the project's organization, which decides who manages its members.
    pub org_role: Role,
    pub signed_in: SignedIn,
}

impl ProjectMember {
    /// Refuses (403) unless the person may manage the project: its settings, keys and members.
    pub fn require_manager(&self) -> Result<(), UiError> {
        if self.role.can_manage() {
            Ok(())
        } else {
            Err(UiError::Forbidden(
                "Only an owner or admin of this project can do this.".to_string(),
            ))
        }
    }
}

impl FromRequest for ProjectMember {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let context = ui_context(req);
        let next = return_path(req);
        let token = context
            .as_ref()
            .ok()
            .and_then(|(_, config)| cookies::session_token(req, config));
        let project_id = req.match_info().get("projectId").map(str::to_owned);
        Box::pin(async move {
            let (stores, config) = context?;
            let signed_in = signed_in(&stores, &config, token, next).await?;
            let project_id = project_id.ok_or(UiError::NotFound)?;
            let access =
                memberships::project_access(&stores.postgres, &signed_in.user.id, &project_id)
                    .await?
                    .filter(|access| access.role.can_read())
                    .ok_or(UiError::NotFound)?;
            Ok(ProjectMember {
                project_id: ProjectId::authenticated(access.project_id),
                project_name: access.project_name,
                org_id: access.org_id,
                org_name: access.org_name,
                role: access.role,
                org_role: access.org_role,
                signed_in,
            })
        })
    }
}

/// A signed-in member of the organization of the path's `{orgId}`, with their role there.
#[derive(Debug, Clone)]
pub struct OrgMember {
    pub org_id: String,
    pub org_name: String,
    pub role: Role,
    pub signed_in: SignedIn,
}

impl FromRequest for OrgMember {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let context = ui_context(req);
        let next = return_path(req);
        let token = context
            .as_ref()
            .ok()
            .and_then(|(_, config)| cookies::session_token(req, config));
        let org_id = req.match_info().get("orgId").map(str::to_owned);
        Box::pin(async move {
            let (stores, config) = context?;
            let signed_in = signed_in(&stores, &config, token, next).await?;
            let org_id = org_id.ok_or(UiError::NotFound)?;
            let (org_name, role) =
                memberships::organization_role(&stores.postgres, &signed_in.user.id, &org_id)
                    .await?
                    .ok_or(UiError::NotFound)?;
            Ok(OrgMember {
                org_id,
                org_name,
                role,
                signed_in,
            })
        })
    }
}

/// The project a signed media URL was issued for. The URL's signature is its holder's credential,
/// as a presigned S3 URL's is: this server signed the grant for a caller it had authenticated (an
/// API key asking for an upload or a download, a member viewing a trace), so a genuine, unexpired
/// grant acts for that grant's project and for nothing else. Forged or altered: 403; expired: 403.
pub fn media_grant_project(
    signer: &crate::domain::media::UrlSigner,
    grant: &crate::domain::media::Grant<'_>,
    project_id: &str,
    signature: &str,
) -> Result<ProjectId, ApiError> {
    use crate::domain::media::{Grant, SignatureRefusal};
    let granted_project = match grant {
        Grant::Upload { project_id, .. } | Grant::Download { project_id, .. } => *project_id,
    };
    if granted_project != project_id {
        return Err(ApiError::Forbidden("Invalid signature".to_string()));
    }
    match signer.verify(grant, signature, chrono::Utc::now()) {
        Ok(()) => Ok(ProjectId::authenticated(project_id)),
        Err(SignatureRefusal::Invalid) => Err(ApiError::Forbidden("Invalid signature".to_string())),
        Err(SignatureRefusal::Expired) => Err(ApiError::Forbidden(
            "The signed URL has expired".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn parses_basic_credentials_and_a_bearer_public_key() {
        assert_eq!(
            parse_authorization(Some(&basic("pk-lf-1:sk-lf-2:with-colon"))).unwrap(),
            Credentials::KeyPair {
                public_key: "pk-lf-1".into(),
                secret: "sk-lf-2:with-colon".into()
            }
        );
        assert_eq!(
            parse_authorization(Some("Bearer pk-lf-1")).unwrap(),
            Credentials::PublicKey("pk-lf-1".into())
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for header in [
            None,
            Some("Bearer ".to_string()),
            Some("Token abc".to_string()),
            Some("Basic !!!".to_string()),
            Some(basic("no-colon")),
            Some(basic(":sk")),
            Some(basic("pk:")),
        ] {
            assert!(
                matches!(
                    parse_authorization(header.as_deref()),
                    Err(ApiError::Unauthorized(_))
                ),
                "{header:?}"
            );
        }
    }
}

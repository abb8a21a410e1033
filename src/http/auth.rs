//! API-key authentication: HTTP Basic, public key as the user and secret key as the password,
//! resolving to exactly one project.
//!
//! Verified keys are cached in each process for `auth.key_cache_ttl_secs`, so the database is
//! asked at most once per key and interval; the secret is still hashed and compared (in constant
//! time) on every request, so the cache never lets a wrong secret through. A key in use is looked
//! up again in the background once its entry is half its age, so requests (the prompt API's above
//! all) do not wait for PostgreSQL every interval, and a revoked key still stops working within it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::api_key;
use crate::domain::project::ProjectId;
use crate::http::error::ApiError;

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

pub struct ApiKeyVerifier {
    pool: deadpool_postgres::Pool,
    salt: SecretString,
    ttl: Duration,
    cache: KeyCache,
}

impl ApiKeyVerifier {
    pub fn new(pool: deadpool_postgres::Pool, salt: SecretString, ttl: Duration) -> Self {
        ApiKeyVerifier {
            pool,
            salt,
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Resolves an `Authorization` header value to a project, or says why not.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<ProjectAuth, ApiError> {
        let (public_key, secret) = parse_basic(authorization)?;
        let entry = match self.cached(&public_key) {
            Some((entry, renew)) => {
                if renew {
                    self.renew_in_background(&public_key);
                }
                entry
            }
            None => {
                let entry = look_up(&self.pool, &public_key).await.map_err(|e| {
                    ApiError::Unavailable(format!("Authentication unavailable: {e}"))
                })?;
                remember(&self.cache, self.ttl, &public_key, entry.clone());
                entry
            }
        };
        match entry {
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
        let (pool, cache, ttl, public_key) = (
            self.pool.clone(),
            self.cache.clone(),
            self.ttl,
            public_key.to_string(),
        );
        tokio::spawn(async move {
            match look_up(&pool, &public_key).await {
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

fn parse_basic(authorization: Option<&str>) -> Result<(String, String), ApiError> {
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
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (public_key, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    if public_key.is_empty() || secret.is_empty() {
        return Err(invalid());
    }
    Ok((public_key.to_string(), secret.to_string()))
}

impl FromRequest for ProjectAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<ApiKeyVerifier>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let verifier = verifier.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("ApiKeyVerifier missing from app data"))
            })?;
            verifier.verify(header.as_deref()).await
        })
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
    fn parses_basic_credentials() {
        let (pk, sk) = parse_basic(Some(&basic("pk-lf-1:sk-lf-2:with-colon"))).unwrap();
        assert_eq!(pk, "pk-lf-1");
        assert_eq!(sk, "sk-lf-2:with-colon");
    }

    #[test]
    fn rejects_other_shapes() {
        for header in [
            None,
            Some("Bearer abc".to_string()),
            Some("Basic !!!".to_string()),
            Some(basic("no-colon")),
            Some(basic(":sk")),
            Some(basic("pk:")),
        ] {
            assert!(
                matches!(
                    parse_basic(header.as_deref()),
                    Err(ApiError::Unauthorized(_))
                ),
                "{header:?}"
            );
        }
    }
}

//! The PostgreSQL pool, and the queries on organizations, projects and API keys.
//!
//! Queries live here rather than in handlers because `serve`, `work` and `migrate` all reach these
//! tables. The web UI's tables have a module each: `users` (accounts and passwords), `sessions`
//! (signed-in browsers), `memberships` (organizations, projects and who may do what in them) and
//! `api_keys` (the keys people manage on a project's settings), `dashboards` (custom dashboards and
//! their widgets), `datasets` (datasets, their versioned items, and experiment runs with their items).

pub mod api_keys;
pub mod dashboards;
pub mod dataset_overview;
pub mod datasets;
pub mod experiment_runs;
pub mod memberships;
pub mod sessions;
pub mod users;

use crate::domain::project::ProjectId;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// Builds the pool. No connection is opened here: the first query does that, so a process can
/// start (and report "not ready") while the database is briefly away.
pub fn connect(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let mut pg_config: tokio_postgres::Config = settings
        .url
        .expose_secret()
        .parse()
        .context("database.url is not a valid PostgreSQL URL")?;
    pg_config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs));
    if pg_config.get_application_name().is_none() {
        pg_config.application_name("langfuse-rs");
    }
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&settings.ca_cert_file)?);
    let manager = Manager::from_config(
        pg_config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(Duration::from_secs(settings.connect_timeout_secs));
    Pool::builder(manager)
        .max_size(settings.max_connections)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()
        .context("building the PostgreSQL pool")
}

/// TLS for `sslmode=prefer|require`, with libpq's meaning of those modes: the connection is
/// encrypted but the server's certificate is not checked (local servers commonly present a
/// self-signed one). With `database.ca_cert_file` set (for Aurora, the Amazon RDS bundle), the
/// certificate must chain to the system roots or that bundle and match the host name.
fn tls_config(ca_cert_file: &str) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    if ca_cert_file.is_empty() {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A malformed system certificate must not stop the process; it is simply not trusted.
        let _ = roots.add(cert);
    }
    let pem = std::fs::read(ca_cert_file)
        .with_context(|| format!("database.ca_cert_file: cannot read {ca_cert_file}"))?;
    let mut reader = std::io::BufReader::new(pem.as_slice());
    for cert in rustls_pemfile_certs(&mut reader)? {
        roots
            .add(cert)
            .with_context(|| format!("database.ca_cert_file: bad certificate in {ca_cert_file}"))?;
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate but still checks that the handshake is signed by it, which is
/// what libpq's `sslmode=require` does.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_pemfile_certs(
    reader: &mut dyn std::io::BufRead,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let mut text = Vec::new();
    reader.read_to_end(&mut text)?;
    rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .context("database.ca_cert_file is not a PEM certificate bundle")
}

pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let client = pool.get().await.context("no connection")?;
    client
        .simple_query("SELECT 1")
        .await
        .context("SELECT 1 failed")?;
    Ok(())
}

/// A project as an API key resolves to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    pub metadata: serde_json::Value,
    pub retention_days: Option<i32>,
}

/// An API key row: enough to verify a secret and name the project.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: String,
    pub project_id: String,
    pub fast_hashed_secret_key: String,
}

/// Looks up a live API key (its project not deleted) by public key.
pub async fn find_api_key(pool: &Pool, public_key: &str) -> anyhow::Result<Option<ApiKeyRecord>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT k.id, k.project_id, k.fast_hashed_secret_key
               FROM api_keys k
               JOIN projects p ON p.id = k.project_id
              WHERE k.public_key = $1 AND p.deleted_at IS NULL",
            &[&public_key],
        )
        .await?;
    Ok(row.map(|r| ApiKeyRecord {
        id: r.get(0),
        project_id: r.get(1),
        fast_hashed_secret_key: r.get(2),
    }))
}

pub async fn find_project(
    pool: &Pool,
    project: &ProjectId,
) -> anyhow::Result<Option<ProjectRecord>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT p.id, p.name, o.id, o.name, p.metadata, p.retention_days
               FROM projects p
               JOIN organizations o ON o.id = p.org_id
              WHERE p.id = $1 AND p.deleted_at IS NULL",
            &[&project.as_str()],
        )
        .await?;
    Ok(row.map(|r| ProjectRecord {
        id: r.get(0),
        name: r.get(1),
        org_id: r.get(2),
        org_name: r.get(3),
        metadata: r.get(4),
        retention_days: r.get(5),
    }))
}

/// What the bootstrap creates when absent.
#[derive(Debug, Clone)]
pub struct BootstrapRecords<'a> {
    pub org_id: &'a str,
    pub org_name: &'a str,
    pub project_id: &'a str,
    pub project_name: &'a str,
    pub public_key: &'a str,
    pub fast_hashed_secret_key: &'a str,
    pub display_secret_key: &'a str,
}

/// Which of the bootstrap records this call created (the others existed already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootstrapOutcome {
    pub created_org: bool,
    pub created_project: bool,
    pub created_api_key: bool,
}

/// Creates the organization, project and key if absent. `ON CONFLICT DO NOTHING` makes this
/// idempotent and race-free: replicas starting together each try, exactly one insert wins, and
/// nobody fails. Existing records are left as they are (names are not overwritten).
pub async fn bootstrap(pool: &Pool, r: &BootstrapRecords<'_>) -> anyhow::Result<BootstrapOutcome> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let created_org = tx
        .execute(
            "INSERT INTO organizations (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&r.org_id, &r.org_name],
        )
        .await?
        == 1;
    let created_project = tx
        .execute(
            "INSERT INTO projects (id, org_id, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&r.project_id, &r.org_id, &r.project_name],
        )
        .await?
        == 1;
    let key_id = uuid::Uuid::new_v4().to_string();
    let created_api_key = tx
        .execute(
            "INSERT INTO api_keys (id, project_id, public_key, fast_hashed_secret_key, display_secret_key, note)
             VALUES ($1, $2, $3, $4, $5, 'Provisioned by LANGFUSE_INIT_* variables')
             ON CONFLICT (public_key) DO NOTHING",
            &[
                &key_id,
                &r.project_id,
                &r.public_key,
                &r.fast_hashed_secret_key,
                &r.display_secret_key,
            ],
        )
        .await?
        == 1;
    tx.commit().await?;
    Ok(BootstrapOutcome {
        created_org,
        created_project,
        created_api_key,
    })
}

/// The first user, as `LANGFUSE_INIT_USER_*` describe them.
#[derive(Debug, Clone)]
pub struct BootstrapUser<'a> {
    pub org_id: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
}

/// Which of the first user's records this call created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootstrapUserOutcome {
    pub created_user: bool,
    pub created_membership: bool,
}

/// Creates the user (unless the address has an account) and makes them an OWNER of the
/// organization (unless they are a member already). As [`bootstrap`], concurrent calls each try
/// and the unique indexes let exactly one insert of each win; an existing account keeps its
/// password and an existing membership its role.
pub async fn bootstrap_user(
    pool: &Pool,
    u: &BootstrapUser<'_>,
) -> anyhow::Result<BootstrapUserOutcome> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let created_user = tx
        .execute(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT ((lower(email))) DO NOTHING",
            &[
                &uuid::Uuid::new_v4().to_string(),
                &u.email,
                &u.name,
                &u.password_hash,
            ],
        )
        .await?
        == 1;
    // The row exists now: inserted above, or committed by whoever won the race (the insert waited
    // for that transaction before it did nothing).
    let user_id: String = tx
        .query_one(
            "SELECT id FROM users WHERE lower(email) = lower($1)",
            &[&u.email],
        )
        .await?
        .get(0);
    let created_membership = tx
        .execute(
            "INSERT INTO organization_memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, 'OWNER')
             ON CONFLICT (org_id, user_id) DO NOTHING",
            &[&uuid::Uuid::new_v4().to_string(), &u.org_id, &user_id],
        )
        .await?
        == 1;
    tx.commit().await?;
    Ok(BootstrapUserOutcome {
        created_user,
        created_membership,
    })
}

//! Blob storage for raw events and media: the local filesystem by default, any S3-compatible
//! store when a bucket is configured. One `object_store` handle, whichever backend.

use std::sync::Arc;

use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use secrecy::ExposeSecret;

use crate::config::Settings;

/// The configured store and the key prefix every object of this installation lives under.
#[derive(Clone)]
pub struct BlobStore {
    pub store: Arc<dyn ObjectStore>,
    pub backend: BlobBackend,
    prefix: String,
}

/// Object writes of one call in flight at once.
const PUT_CONCURRENCY: usize = 32;

/// Flushes every dirty page of the filesystem holding `dir` to disk.
fn sync_filesystem(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
    let rc = unsafe { libc::syncfs(handle.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The closed set of backends, named for logs and readiness messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobBackend {
    LocalFileSystem { root: std::path::PathBuf },
    S3 { bucket: String },
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

pub fn connect(settings: &Settings) -> anyhow::Result<BlobStore> {
    let blob = &settings.blob;
    let prefix = blob.prefix.trim_matches('/').to_string();
    if blob.bucket.is_empty() {
        let root = settings.local_blob_dir();
        std::fs::create_dir_all(&root)
            .with_context(|| format!("blob.local_dir: cannot create {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("blob.local_dir: cannot resolve {}", root.display()))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .with_context(|| format!("blob.local_dir: cannot open {}", root.display()))?;
        return Ok(BlobStore {
            store: Arc::new(store),
            backend: BlobBackend::LocalFileSystem { root },
            prefix,
        });
    }
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&blob.bucket)
        .with_region(&blob.region)
        .with_virtual_hosted_style_request(!blob.force_path_style);
    if !blob.endpoint.is_empty() {
        builder = builder
            .with_endpoint(&blob.endpoint)
            .with_allow_http(blob.endpoint.starts_with("http://"));
    }
    if !blob.access_key_id.is_empty() {
        builder = builder
            .with_access_key_id(&blob.access_key_id)
            .with_secret_access_key(blob.secret_access_key.expose_secret());
    } else {
        // The default AWS credential chain: environment, web identity, ECS task role, instance
        // metadata. `from_env` reads the AWS_* variables the chain starts with.
        builder = merge_aws_env(builder);
    }
    let store = builder.build().context("blob storage (S3) configuration")?;
    Ok(BlobStore {
        store: Arc::new(store),
        backend: BlobBackend::S3 {
            bucket: blob.bucket.clone(),
        },
        prefix,
    })
}

/// Applies the standard AWS_* credential variables (including the ECS container-credentials URI
/// of a Fargate task role) without letting them override the explicit bucket settings.
fn merge_aws_env(mut builder: AmazonS3Builder) -> AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey;
    for (name, value) in std::env::vars() {
        if !name.starts_with("AWS_") {
            continue;
        }
        if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            match key {
                AmazonS3ConfigKey::AccessKeyId
                | AmazonS3ConfigKey::SecretAccessKey
                | AmazonS3ConfigKey::Token
                | AmazonS3ConfigKey::ContainerCredentialsRelativeUri
                | AmazonS3ConfigKey::ContainerCredentialsFullUri
                | AmazonS3ConfigKey::ContainerAuthorizationTokenFile
                | AmazonS3ConfigKey::WebIdentityTokenFile
                | AmazonS3ConfigKey::RoleArn
                | AmazonS3ConfigKey::RoleSessionName
                | AmazonS3ConfigKey::StsEndpoint
                | AmazonS3ConfigKey::ImdsV1Fallback
                | AmazonS3ConfigKey::MetadataEndpoint => builder = builder.with_config(key, value),
                _ => {}
            }
        }
    }
    builder
}

impl BlobStore {
    /// The full object path of `key` under this installation's prefix.
    pub fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{}", self.prefix, key))
        }
    }

    /// The root every key of this installation lives under (the configured prefix).
    pub fn base(&self) -> Path {
        Path::from(self.prefix.as_str())
    }

    /// Writes one object durably; see [`BlobStore::put_all_durable`].
    pub async fn put_durable(&self, path: &Path, bytes: bytes::Bytes) -> anyhow::Result<()> {
        self.put_all_durable(vec![(path.clone(), bytes)]).await
    }

    /// Writes objects durably: S3 acknowledges only what it has stored; on the local filesystem
    /// the files are written, then the filesystem is synced once (`syncfs`) before this returns.
    /// One sync per call instead of one per file is what makes writing a file per entity cheap
    /// enough for the ingestion path. On failure some objects may exist; the caller removes them.
    pub async fn put_all_durable(&self, objects: Vec<(Path, bytes::Bytes)>) -> anyhow::Result<()> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(objects)
            .map(|(path, bytes)| async move {
                self.store
                    .put(&path, object_store::PutPayload::from_bytes(bytes))
                    .await
            })
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        if let BlobBackend::LocalFileSystem { root } = &self.backend {
            let root = root.clone();
            tokio::task::spawn_blocking(move || sync_filesystem(&root)).await??;
        }
        Ok(())
    }

    /// Deletes every stored event object of one entity.
    pub async fn delete_entity_events(
        &self,
        project_id: &str,
        kind: crate::ingest::event::EntityKind,
        entity_id: &str,
    ) -> anyhow::Result<()> {
        use futures::TryStreamExt;
        let prefix = event_keys::entity_prefix(&self.base(), project_id, kind, entity_id);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        for object in objects {
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Proves the store answers: a HEAD of a key that need not exist. "Not found" is an answer.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self.store.head(&self.path(".readiness-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(anyhow::Error::new(err).context("HEAD failed")),
        }
    }
}

/// The key scheme of raw events, shared by the web role (writer) and the worker (reader):
///
/// `events/<project_id>/<entity kind>/<entity id>/<batch id>.json`
///
/// (This scheme is also how the worker recovers references after Redis lost its data: the objects
/// written since are listed and their entities re-queued.)
///
/// One object per entity per accepted request, holding the JSON array of that entity's envelopes
/// from the request. Listing `events/<project_id>/<kind>/<entity id>/` therefore finds every event
/// ever received for the entity, which is what the worker rebuilds the record from. Ids are
/// percent-encoded by `object_store::path` where they contain `/` or other reserved characters.
pub mod event_keys {
    use object_store::path::{Path, PathPart};

    use crate::ingest::event::EntityKind;

    pub fn entity_prefix(base: &Path, project_id: &str, kind: EntityKind, entity_id: &str) -> Path {
        base.child("events")
            .child(PathPart::from(project_id))
            .child(kind.as_str())
            .child(PathPart::from(entity_id))
    }

    /// The entity an object of this scheme belongs to; `None` for anything else.
    pub fn entity_of(base: &Path, object: &Path) -> Option<(String, EntityKind, String)> {
        let base_depth = base.parts().count();
        let parts: Vec<String> = object
            .parts()
            .skip(base_depth)
            .map(|p| {
                percent_encoding::percent_decode_str(p.as_ref())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        match parts.as_slice() {
            [events, project, kind, entity, _batch] if events == "events" => {
                let kind = match kind.as_str() {
                    "trace" => EntityKind::Trace,
                    "observation" => EntityKind::Observation,
                    "score" => EntityKind::Score,
                    _ => return None,
                };
                Some((project.clone(), kind, entity.clone()))
            }
            _ => None,
        }
    }

    pub fn batch_object(
        base: &Path,
        project_id: &str,
        kind: EntityKind,
        entity_id: &str,
        batch_id: &str,
    ) -> Path {
        entity_prefix(base, project_id, kind, entity_id).child(format!("{batch_id}.json"))
    }
}

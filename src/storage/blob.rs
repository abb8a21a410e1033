//! Blob storage for raw events and media: the local filesystem by default, any S3-compatible
//! store when a bucket is configured. One `object_store` handle, whichever backend.

use std::sync::Arc;

use anyhow::Context;
use object_store::aws::{AmazonS3, AmazonS3Builder};
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
    /// The same store as S3, for presigned URLs; `None` on the local filesystem.
    s3: Option<Arc<AmazonS3>>,
}

/// Writes `bytes` to `target` so that it survives a crash once this returns: a staging file
/// beside it is written and `fdatasync`ed, renamed over the target, and the directory is synced
/// (the rename is durable only then). New directories are synced into their parents the same way.
/// The staging name ends in `#<digits>`, which `object_store` listings skip, so a crash half way
/// never shows a partial object.
fn write_durably(
    root: &std::path::Path,
    target: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    let dir = target.parent().unwrap_or(root);
    if !dir.exists() {
        create_dirs_durably(root, dir)?;
    }
    let mut staging = target.as_os_str().to_owned();
    staging.push(format!("#{}", rand_digits()));
    let staging = std::path::PathBuf::from(staging);
    let result = (|| {
        let mut file = std::fs::File::create(&staging)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        std::fs::rename(&staging, target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result
}

/// Creates `dir` and its missing ancestors below `root`, syncing each new entry into its parent.
fn create_dirs_durably(root: &std::path::Path, dir: &std::path::Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(d) = cursor {
        if d.exists() || d == root {
            break;
        }
        missing.push(d);
        cursor = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Another request created it meanwhile; it syncs it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some(parent) = d.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

fn rand_digits() -> u64 {
    u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    ) % 1_000_000_000_000
}

/// What a staged object buffers before it writes to its file.
const STAGING_BUFFER_BYTES: usize = 256 * 1024;

/// An object being received on the local filesystem (see [`BlobStore::stage`]).
pub struct StagedObject {
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    staging: std::path::PathBuf,
    target: std::path::PathBuf,
    dir: std::path::PathBuf,
    committed: bool,
}

impl StagedObject {
    pub async fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let file = self.file.as_mut().context("staged object already closed")?;
        file.write_all(chunk)
            .await
            .with_context(|| format!("writing {}", self.staging.display()))
    }

    /// Makes the object visible at its path, durably: the staging file is synced, renamed over
    /// the target and the directory synced.
    pub async fn commit(mut self) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut file = self.file.take().context("staged object already closed")?;
        file.flush().await?;
        let file = file.into_inner();
        file.sync_data().await?;
        drop(file);
        let (staging, target, dir) = (self.staging.clone(), self.target.clone(), self.dir.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&staging, &target)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await?
        .with_context(|| format!("committing {}", self.target.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        if !self.committed {
            // Refused, failed or abandoned half way (the client went away): nothing is kept.
            let _ = std::fs::remove_file(&self.staging);
        }
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

/// An object's size and its bytes (or a range of them) as a stream of chunks.
pub type SizedStream = (
    u64,
    futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
);

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
            s3: None,
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
    let store = Arc::new(builder.build().context("blob storage (S3) configuration")?);
    Ok(BlobStore {
        store: store.clone(),
        backend: BlobBackend::S3 {
            bucket: blob.bucket.clone(),
        },
        prefix,
        s3: Some(store),
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

    /// Writes one object durably: S3 acknowledges only what it has stored; on the local
    /// filesystem the file and its directory entry are synced to disk before this returns.
    pub async fn put_durable(&self, path: &Path, bytes: bytes::Bytes) -> anyhow::Result<()> {
        match &self.backend {
            BlobBackend::LocalFileSystem { root } => {
                let root = root.clone();
                let target = path
                    .parts()
                    .fold(root.clone(), |dir, part| dir.join(part.as_ref()));
                tokio::task::spawn_blocking(move || write_durably(&root, &target, &bytes))
                    .await?
                    .with_context(|| format!("writing {path}"))?;
            }
            BlobBackend::S3 { .. } => {
                self.store
                    .put(path, object_store::PutPayload::from_bytes(bytes))
                    .await?;
            }
        }
        Ok(())
    }

    /// Reads byte ranges of one object; `None` when the object does not exist (it was written by
    /// a request that then failed, and removed).
    pub async fn get_ranges(
        &self,
        path: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> anyhow::Result<Option<Vec<bytes::Bytes>>> {
        match self.store.get_ranges(path, ranges).await {
            Ok(parts) => Ok(Some(parts)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(anyhow::Error::new(err).context(format!("reading {path}"))),
        }
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, path: &Path) -> anyhow::Result<Option<bytes::Bytes>> {
        let result = match self.store.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(anyhow::Error::new(err).context(format!("reading {path}"))),
        };
        Ok(Some(
            result
                .bytes()
                .await
                .with_context(|| format!("reading {path}"))?,
        ))
    }

    /// Removes an object; one that is already gone is fine.
    pub async fn delete(&self, path: &Path) -> anyhow::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(anyhow::Error::new(err).context(format!("deleting {path}"))),
        }
    }

    /// A presigned URL that lets its holder `method` (GET or PUT) the object at `path` for
    /// `expires_in`, without credentials; `None` on the local filesystem, which has no such URLs.
    pub async fn presigned_url(
        &self,
        method: http::Method,
        path: &Path,
        expires_in: std::time::Duration,
    ) -> anyhow::Result<Option<url::Url>> {
        use object_store::signer::Signer;
        let Some(s3) = &self.s3 else { return Ok(None) };
        let url = s3
            .signed_url(method, path, expires_in)
            .await
            .with_context(|| format!("presigning {path}"))?;
        Ok(Some(url))
    }

    /// Reads an object, or the bytes `range` of it (which must start within it), as a stream of
    /// chunks, with the object's size; `None` when it does not exist.
    pub async fn get_stream(
        &self,
        path: &Path,
        range: Option<std::ops::Range<u64>>,
    ) -> anyhow::Result<Option<SizedStream>> {
        let options = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..object_store::GetOptions::default()
        };
        match self.store.get_opts(path, options).await {
            Ok(result) => Ok(Some((result.meta.size, result.into_stream()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(anyhow::Error::new(err).context(format!("reading {path}"))),
        }
    }

    /// Starts receiving the object at `path` on the local filesystem, chunk by chunk, into a
    /// staging file beside it: nothing is visible at `path` until [`StagedObject::commit`], and a
    /// staged object dropped without it leaves nothing behind. `None` on S3, where clients
    /// upload to presigned URLs instead.
    pub async fn stage(&self, path: &Path) -> anyhow::Result<Option<StagedObject>> {
        let BlobBackend::LocalFileSystem { root } = &self.backend else {
            return Ok(None);
        };
        let root = root.clone();
        let target = path
            .parts()
            .fold(root.clone(), |dir, part| dir.join(part.as_ref()));
        let dir = target.parent().unwrap_or(&root).to_path_buf();
        let mut staging = target.as_os_str().to_owned();
        staging.push(format!("#{}", rand_digits()));
        let staging = std::path::PathBuf::from(staging);
        let file = {
            let (root, dir, staging) = (root.clone(), dir.clone(), staging.clone());
            tokio::task::spawn_blocking(move || {
                if !dir.exists() {
                    create_dirs_durably(&root, &dir)?;
                }
                std::fs::File::create(&staging)
            })
            .await?
            .with_context(|| format!("staging {path}"))?
        };
        Ok(Some(StagedObject {
            file: Some(tokio::io::BufWriter::with_capacity(
                STAGING_BUFFER_BYTES,
                tokio::fs::File::from_std(file),
            )),
            staging,
            target,
            dir,
            committed: false,
        }))
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
/// `events/<yyyy-mm-dd>/<hh>/<project_id>/<received at, Unix ms>-<request id>.jsonl`
///
/// One object per accepted request, holding that request's events a line per entity (the format
/// is in [`crate::storage::raw_events`]); the date, hour (UTC) and milliseconds are when it was
/// received. A rewrite (deleting events) changes an object's modification time, never its key. The
/// time comes first so that the objects written since a moment can be listed hour by hour: that is
/// how the worker re-queues what Redis lost. Which objects hold the events of one entity is
/// recorded in ClickHouse's `entity_events`, not in the key. Project ids are percent-encoded by
/// `object_store::path` where they contain `/` or other reserved characters.
pub mod event_keys {
    use chrono::{DateTime, Utc};
    use object_store::path::{Path, PathPart};

    /// The object of one request received at `received_at`.
    pub fn request_object(
        base: &Path,
        received_at: DateTime<Utc>,
        project_id: &str,
        request_id: &str,
    ) -> Path {
        hour_prefix(base, received_at)
            .child(PathPart::from(project_id))
            .child(format!(
                "{}-{request_id}.jsonl",
                received_at.timestamp_millis()
            ))
    }

    /// When the request of an object of this scheme was received.
    pub fn received_at(object: &Path) -> Option<DateTime<Utc>> {
        let name = object.filename()?;
        let (millis, _) = name.split_once('-')?;
        DateTime::from_timestamp_millis(millis.parse().ok()?)
    }

    /// Every object received in the hour of `at`.
    pub fn hour_prefix(base: &Path, at: DateTime<Utc>) -> Path {
        base.child("events")
            .child(at.format("%Y-%m-%d").to_string())
            .child(at.format("%H").to_string())
    }

    /// Whether a listed object is a request object of this scheme.
    pub fn is_request_object(base: &Path, object: &Path) -> bool {
        let parts: Vec<_> = object.parts().skip(base.parts().count()).collect();
        parts.len() == 5 && parts[0].as_ref() == "events" && parts[4].as_ref().ends_with(".jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_objects_sort_by_hour_and_are_recognised() {
        let base = Path::from("prefix");
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T19:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let key = event_keys::request_object(&base, at, "p/1", "r");
        assert_eq!(
            key.as_ref(),
            "prefix/events/2026-12-01/19/p%2F1/1796151845000-r.jsonl"
        );
        assert!(event_keys::is_request_object(&base, &key));
        assert_eq!(event_keys::received_at(&key), Some(at));
        assert!(key
            .as_ref()
            .starts_with(event_keys::hour_prefix(&base, at).as_ref()));
        assert!(!event_keys::is_request_object(
            &base,
            &Path::from("prefix/events/x.json")
        ));
    }

    #[test]
    fn a_durable_write_leaves_no_staging_file_and_creates_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let target = root.join("a/b/c.jsonl");
        write_durably(root, &target, b"hello").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(root.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.jsonl")]);
    }
}

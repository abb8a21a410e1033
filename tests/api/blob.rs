use object_store::PutPayload;

use crate::helpers::{create_bucket, s3_endpoint, unique, TestApp, TestConfig};

fn s3_config(config: &mut TestConfig, bucket: &str) {
    config
        .set("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", bucket)
        .set("LANGFUSE_S3_EVENT_UPLOAD_PREFIX", "events/")
        .set("LANGFUSE_S3_EVENT_UPLOAD_REGION", "us-east-1")
        .set("LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT", s3_endpoint())
        .set("LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID", "test")
        .set("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "test")
        .set("LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE", "true");
}

async fn round_trip(blob: &langfuse_rs::storage::blob::BlobStore) {
    blob.ping().await.unwrap();
    let path = blob.path("project/a/b.json");
    blob.store
        .put(&path, PutPayload::from_static(b"{\"x\":1}"))
        .await
        .unwrap();
    let bytes = blob.store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"{\"x\":1}");
    blob.store.delete(&path).await.unwrap();
    assert!(matches!(
        blob.store.get(&path).await,
        Err(object_store::Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_local_filesystem_is_the_default_backend() {
    let config = TestConfig::new().await;
    let settings = config.settings();
    let blob = langfuse_rs::storage::blob::connect(&settings).unwrap();
    assert!(matches!(
        blob.backend,
        langfuse_rs::storage::blob::BlobBackend::LocalFileSystem { .. }
    ));
    round_trip(&blob).await;
    // Objects are real files under the configured directory.
    let path = blob.path("x/y.txt");
    blob.store
        .put(&path, PutPayload::from_static(b"hi"))
        .await
        .unwrap();
    let on_disk = settings.local_blob_dir().join("x/y.txt");
    assert_eq!(std::fs::read(on_disk).unwrap(), b"hi");
}

#[tokio::test]
async fn an_s3_compatible_bucket_is_used_when_configured() {
    let bucket = unique("lfrs-test").replace('_', "-");
    create_bucket(&bucket).await;
    let mut config = TestConfig::new().await;
    s3_config(&mut config, &bucket);
    let blob = langfuse_rs::storage::blob::connect(&config.settings()).unwrap();
    assert_eq!(
        blob.backend,
        langfuse_rs::storage::blob::BlobBackend::S3 {
            bucket: bucket.clone()
        }
    );
    round_trip(&blob).await;
    // The prefix is applied inside the bucket.
    blob.store
        .put(&blob.path("k"), PutPayload::from_static(b"v"))
        .await
        .unwrap();
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", s3_endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains("<Key>events/k</Key>"), "{listing}");
}

#[tokio::test]
async fn the_application_is_ready_with_s3() {
    let bucket = unique("lfrs-test").replace('_', "-");
    create_bucket(&bucket).await;
    let mut config = TestConfig::new().await;
    s3_config(&mut config, &bucket);
    let app = TestApp::spawn(config).await;
    assert_eq!(app.get("/api/public/ready").await.status(), 200);
}

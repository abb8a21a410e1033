//! Media: the Python SDK 5.x sends a trace whose input holds a base64 PNG and a `LangfuseMedia`
//! recording (and whose output a PDF); the trace keeps the references, each file downloads
//! byte for byte through `GET /api/public/media/{id}`'s URL, and asking again for bytes the project
//! has answers no upload URL. On the local backend and on S3. Then every refusal of the local
//! backend's signed URLs and of the API, each leaving nothing behind.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{
    create_bucket, create_project, envelope, s3_endpoint, unique, ApiKey, TestApp, TestConfig,
};
use crate::sdk::{node_modules, run_roundtrip, sdk_python, sdk_script};

fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_media(app: &TestApp, key: &ApiKey, body: &Value) -> (u16, Value) {
    json_of(app.post_as("/api/public/media", key, body).await).await
}

/// Waits until the trace reads back with both its input and output; returns it.
async fn trace_of(app: &TestApp, key: &ApiKey, trace_id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = app
            .get_json(&format!("/api/public/traces/{trace_id}"), key)
            .await;
        if status == 200 && !body["input"].is_null() && !body["output"].is_null() {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trace {trace_id}: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The SDK round trip on `app`; checks references, downloads and the skipped second upload.
async fn sdk_round_trip(app: &TestApp, key: &ApiKey, trace_id: &str) -> Value {
    let out_dir = tempfile::tempdir().unwrap();
    let mut command =
        tokio::process::Command::new(sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5"));
    command
        .arg(sdk_script("python_v5_media.py"))
        .env("OUT_DIR", out_dir.path());
    let ids = run_roundtrip(command, app, key, trace_id).await;
    let image_id = ids["image_id"].as_str().unwrap();
    let audio_id = ids["audio_id"].as_str().unwrap();
    let report_id = ids["report_id"].as_str().unwrap();

    // The bytes the project already has: same id, no upload URL.
    assert_eq!(ids["again_media_id"], json!(image_id));
    assert_eq!(ids["again_upload_url"], Value::Null);

    // The trace and its observation hold references, not the bytes.
    let trace = trace_of(app, key, trace_id).await;
    let text = trace.to_string();
    assert!(!text.contains("base64,"), "{text}");
    assert_eq!(
        trace["input"]["image"],
        json!(format!(
            "@@@langfuseMedia:type=image/png|id={image_id}|source=base64_data_uri@@@"
        ))
    );
    assert_eq!(
        trace["input"]["recording"],
        json!(format!(
            "@@@langfuseMedia:type=audio/wav|id={audio_id}|source=bytes@@@"
        ))
    );
    assert_eq!(
        trace["output"]["report"],
        json!(format!(
            "@@@langfuseMedia:type=application/pdf|id={report_id}|source=bytes@@@"
        ))
    );

    // Every file downloads identical, through the URL GET media answers, with no credentials.
    for (id, file, content_type) in [
        (image_id, "image.png", "image/png"),
        (audio_id, "recording.wav", "audio/wav"),
        (report_id, "report.pdf", "application/pdf"),
    ] {
        let sent = std::fs::read(out_dir.path().join(file)).unwrap();
        let (status, media) = app.get_json(&format!("/api/public/media/{id}"), key).await;
        assert_eq!(status, 200, "{media}");
        assert_eq!(media["mediaId"], json!(id));
        assert_eq!(media["contentType"], json!(content_type));
        assert_eq!(media["contentLength"], json!(sent.len()));
        assert!(media["uploadedAt"].is_string(), "{media}");
        let expiry =
            chrono::DateTime::parse_from_rfc3339(media["urlExpiry"].as_str().unwrap()).unwrap();
        assert!(expiry > chrono::Utc::now() + chrono::Duration::minutes(50));
        let download = reqwest::get(media["url"].as_str().unwrap()).await.unwrap();
        assert_eq!(download.status(), 200, "{file}");
        assert_eq!(&download.bytes().await.unwrap()[..], &sent[..], "{file}");
        // Players seek with ranges: the first bytes, the last ones, none past the end.
        let len = sent.len();
        for (range, part) in [
            ("bytes=0-9".to_string(), 0..10),
            ("bytes=-4".to_string(), len - 4..len),
            (format!("bytes=10-{}", len + 100), 10..len),
        ] {
            let answer = reqwest::Client::new()
                .get(media["url"].as_str().unwrap())
                .header(reqwest::header::RANGE, &range)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 206, "{file} {range}");
            assert_eq!(
                answer.headers()[reqwest::header::CONTENT_RANGE],
                format!("bytes {}-{}/{len}", part.start, part.end - 1).as_str(),
                "{file} {range}"
            );
            assert_eq!(
                &answer.bytes().await.unwrap()[..],
                &sent[part],
                "{file} {range}"
            );
        }
        let beyond = reqwest::Client::new()
            .get(media["url"].as_str().unwrap())
            .header(reqwest::header::RANGE, format!("bytes={len}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(beyond.status(), 416, "{file}");
    }

    // Each file is linked to the observation's field that held it.
    let client = app.stores.postgres.get().await.unwrap();
    let links: Vec<(String, String)> = client
        .query(
            "SELECT media_id, field FROM observation_media WHERE trace_id = $1 ORDER BY 2, 1",
            &[&trace_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, field) in [
        (image_id, "input"),
        (audio_id, "input"),
        (report_id, "output"),
    ] {
        assert!(
            links.contains(&(id.to_string(), field.to_string())),
            "{id} {field}: {links:?}"
        );
    }
    ids
}

#[tokio::test]
async fn the_python_sdk_uploads_media_to_the_local_backend_and_it_downloads_identical() {
    let config = TestConfig::new().await;
    let blob_dir = config.settings().local_blob_dir();
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "media-local").await;
    let ids = sdk_round_trip(&app, &key, "3ad1c2d3e4f5061728394a5b6c7d8e01").await;
    // The objects are files under the media prefix, named by id and extension; nothing staged.
    let mut files: Vec<String> = std::fs::read_dir(blob_dir.join("media/media-local"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected = vec![
        format!("{}.png", ids["image_id"].as_str().unwrap()),
        format!("{}.wav", ids["audio_id"].as_str().unwrap()),
        format!("{}.pdf", ids["report_id"].as_str().unwrap()),
    ];
    expected.sort();
    assert_eq!(files, expected);
}

#[tokio::test]
async fn the_python_sdk_uploads_media_to_s3_through_presigned_urls() {
    let bucket = unique("lfrs-media").replace('_', "-");
    create_bucket(&bucket).await;
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", &bucket)
        .set("LANGFUSE_S3_EVENT_UPLOAD_REGION", "us-east-1")
        .set("LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT", s3_endpoint())
        .set("LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID", "test")
        .set("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "test")
        .set("LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE", "true");
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "media-s3").await;
    let ids = sdk_round_trip(&app, &key, "3ad1c2d3e4f5061728394a5b6c7d8e02").await;
    let image_id = ids["image_id"].as_str().unwrap();
    let (_, media) = app
        .get_json(&format!("/api/public/media/{image_id}"), &key)
        .await;
    let url = media["url"].as_str().unwrap();
    assert!(
        url.starts_with(&s3_endpoint()) && url.contains("X-Amz-Signature="),
        "a presigned S3 URL: {url}"
    );
    // The object is in the bucket, at the media key.
    let object = app
        .stores
        .blob
        .get(
            &app.stores
                .blob
                .path(&format!("media/media-s3/{image_id}.png")),
        )
        .await
        .unwrap();
    assert!(object.is_some_and(|bytes| bytes.starts_with(b"\x89PNG")));
    // The trace page's links go through this server, which streams the object from the bucket.
    let project = langfuse_rs::domain::project::ProjectId::authenticated("media-s3");
    let record = langfuse_rs::storage::media::get(&app.stores.postgres, &project, image_id)
        .await
        .unwrap()
        .unwrap();
    let config = langfuse_rs::http::api::media::MediaConfig::new(&app.config.settings());
    let (link, _) = config.download_path(&project, &record, chrono::Utc::now());
    let response = app.get(&link).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().starts_with(b"\x89PNG"));
    // The local backend's upload route is not this backend's.
    let (status, _) = json_of(
        app.http
            .put(app.url(&format!("/api/public/media/{image_id}/upload?project=media-s3&type=image/png&length=1&hash=x&expires=9999999999&signature=x")))
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "an unsigned upload is refused");
}

#[tokio::test]
async fn the_js_sdk_uploads_a_data_uri_and_the_trace_holds_its_reference() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "media-js").await;
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 256) as u8).collect();
    let file = dir.path().join("picture.png");
    std::fs::write(&file, &bytes).unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_media.js"))
        .env("NODE_PATH", node_modules())
        .env("MEDIA_FILE", &file);
    let ids = run_roundtrip(command, &app, &key, "").await;
    let trace_id = ids["traceId"].as_str().unwrap();
    let media_id = sha256_base64(&bytes)[..22]
        .replace('+', "-")
        .replace('/', "_");
    let trace = trace_of(&app, &key, trace_id).await;
    let reference = trace["input"]["picture"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reference.starts_with("@@@langfuseMedia:type=image/png|id=")
            && reference.contains(&format!("id={media_id}|")),
        "{trace}"
    );
    let (status, media) = app
        .get_json(&format!("/api/public/media/{media_id}"), &key)
        .await;
    assert_eq!(status, 200, "{media}");
    let download = reqwest::get(media["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(&download.bytes().await.unwrap()[..], &bytes[..]);
}

/// A request for an upload URL of `bytes` in a trace's input.
fn upload_request(bytes: &[u8], content_type: &str) -> Value {
    json!({"traceId": "t-refusals", "observationId": null, "field": "input",
        "contentType": content_type, "contentLength": bytes.len(),
        "sha256Hash": sha256_base64(bytes)})
}

fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Files under the media prefix, staging files included.
fn media_files(app: &TestApp) -> Vec<String> {
    let root = app.config.settings().local_blob_dir().join("media");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn uploads_and_downloads_are_refused_when_anything_is_off_and_nothing_is_kept() {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH", "1000")
        .set(
            "LANGFUSE_RS__MEDIA__ALLOWED_CONTENT_TYPES",
            "image/png, audio/wav",
        )
        .set("LANGFUSE_RS__MEDIA__UPLOAD_URL_EXPIRY_SECS", "3")
        .set("LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS", "3");
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "media-a").await;
    let other = create_project(&app.config, "media-b").await;
    let bytes: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();

    // The API's refusals: a type not configured, one Langfuse does not know, too large, a bad
    // hash, a field of no context, no context at all.
    for (body, needle) in [
        (upload_request(&bytes, "application/pdf"), "not accepted"),
        (upload_request(&bytes, "text/x-evil"), "not accepted"),
        (upload_request(&[7u8; 1001], "image/png"), "at most 1000"),
        (
            {
                let mut b = upload_request(&bytes, "image/png");
                b["sha256Hash"] = json!("not a hash");
                b
            },
            "sha256Hash",
        ),
        (
            {
                let mut b = upload_request(&bytes, "image/png");
                b["field"] = json!("expectedOutput");
                b
            },
            "field",
        ),
        (
            {
                let mut b = upload_request(&bytes, "image/png");
                b["traceId"] = Value::Null;
                b
            },
            "either",
        ),
    ] {
        let (status, answer) = post_media(&app, &key, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], json!("InvalidRequestError"));
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{needle}: {answer}"
        );
    }
    let (status, _) = post_media(
        &app,
        &ApiKey::new("pk-lf-nobody", "sk"),
        &upload_request(&bytes, "image/png"),
    )
    .await;
    assert_eq!(status, 401);

    // A dataset item's media (the item need not exist yet) is linked to its field.
    let mut for_item = upload_request(&bytes[..50], "image/png");
    for_item["traceId"] = Value::Null;
    for_item["datasetId"] = json!("ds-1");
    for_item["datasetItemId"] = json!("item-1");
    for_item["field"] = json!("expectedOutput");
    let (status, answer) = post_media(&app, &key, &for_item).await;
    assert_eq!(status, 200, "{answer}");
    let linked: i64 = app
        .stores
        .postgres
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM dataset_item_media WHERE project_id = 'media-a' \
             AND dataset_item_id = 'item-1' AND field = 'expectedOutput' AND media_id = $1",
            &[&answer["mediaId"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 1);

    // Unknown media: 404 for GET and PATCH, and another project's media is unknown too.
    let (status, answer) = app.get_json("/api/public/media/nosuchmedia", &key).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (404, json!("LangfuseNotFoundError"))
    );
    let patch = json!({"uploadedAt": "2026-12-07T10:00:00Z", "uploadHttpStatus": 200,
        "uploadHttpError": null, "uploadTimeMs": 5});
    let response = app
        .http
        .patch(app.url("/api/public/media/nosuchmedia"))
        .header("Authorization", key.basic_auth())
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let (status, answer) = post_media(&app, &key, &upload_request(&bytes, "image/png")).await;
    assert_eq!(status, 200, "{answer}");
    let media_id = answer["mediaId"].as_str().unwrap().to_string();
    assert_eq!(
        media_id,
        sha256_base64(&bytes)[..22]
            .replace('+', "-")
            .replace('/', "_")
    );
    let upload_url = answer["uploadUrl"].as_str().unwrap().to_string();
    assert!(upload_url.starts_with(&app.address), "{upload_url}");
    let (status, answer) = app
        .get_json(&format!("/api/public/media/{media_id}"), &key)
        .await;
    assert_eq!(status, 404, "not yet uploaded: {answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("not yet uploaded"));

    let put = |url: String, body: Vec<u8>| {
        let http = app.http.clone();
        async move {
            json_of(
                http.put(url)
                    .header("Content-Type", "image/png")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // A wrong hash: same length, one byte changed.
    let mut altered = bytes.clone();
    altered[10] ^= 1;
    let (status, answer) = put(upload_url.clone(), altered).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("SHA-256"));
    // Longer than announced, streamed without a length so only the count can tell.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0u8; 64 * 1024]);
    let stream = futures::stream::iter(
        longer
            .chunks(1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let response = app
        .http
        .put(&upload_url)
        .header("Content-Type", "image/png")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // The server may answer 413 before the whole body is sent, or close the connection.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // An announced length over the grant's.
    let (status, _) = put(upload_url.clone(), vec![1u8; 700]).await;
    assert_eq!(status, 413);
    // A shorter body.
    let (status, _) = put(upload_url.clone(), bytes[..599].to_vec()).await;
    assert_eq!(status, 400);
    // A forged signature, and a genuine one for other bytes, another length, another project.
    for (name, value) in [
        ("signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("length", "599"),
        ("project", "media-b"),
        ("expires", "99999999999"),
    ] {
        let (status, answer) = put(with_query_param(&upload_url, name, value), bytes.clone()).await;
        assert_eq!(status, 403, "{name}: {answer}");
    }
    // Another type than announced.
    let response = app
        .http
        .put(&upload_url)
        .header("Content-Type", "text/html")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        media_files(&app).is_empty(),
        "nothing kept: {:?}",
        media_files(&app)
    );
    let (status, _) = app
        .get_json(&format!("/api/public/media/{media_id}"), &key)
        .await;
    assert_eq!(status, 404, "still not uploaded");

    // The right bytes are taken, once.
    let (status, answer) = put(upload_url.clone(), bytes.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(media_files(&app).len(), 1);
    let (status, media) = app
        .get_json(&format!("/api/public/media/{media_id}"), &key)
        .await;
    assert_eq!(status, 200, "{media}");
    let download_url = media["url"].as_str().unwrap().to_string();
    let response = reqwest::get(&download_url).await.unwrap();
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(&response.bytes().await.unwrap()[..], &bytes[..]);
    // The same bytes again: no upload URL; another project's key does not find the media.
    let (_, again) = post_media(&app, &key, &upload_request(&bytes, "image/png")).await;
    assert_eq!(again, json!({"mediaId": media_id, "uploadUrl": null}));
    let (status, _) = app
        .get_json(&format!("/api/public/media/{media_id}"), &other)
        .await;
    assert_eq!(status, 404);
    // A download URL turned to another project, or forged, is refused.
    for (name, value) in [
        ("project", "media-b"),
        ("signature", "AAAA"),
        ("type", "text/html"),
    ] {
        let response = reqwest::get(with_query_param(&download_url, name, value))
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}");
    }
    // A failed upload reported by PATCH makes GET say so.
    let (_, second) = post_media(&app, &key, &upload_request(&bytes[..100], "audio/wav")).await;
    let second_id = second["mediaId"].as_str().unwrap();
    let response = app
        .http
        .patch(app.url(&format!("/api/public/media/{second_id}")))
        .header("Authorization", key.basic_auth())
        .json(
            &json!({"uploadedAt": "2026-12-07T10:00:00Z", "uploadHttpStatus": 403,
            "uploadHttpError": "AccessDenied", "uploadTimeMs": 12}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, answer) = app
        .get_json(&format!("/api/public/media/{second_id}"), &key)
        .await;
    assert_eq!(status, 404);
    assert!(
        answer["message"].as_str().unwrap().contains("403"),
        "{answer}"
    );
    let response = app
        .http
        .patch(app.url(&format!("/api/public/media/{second_id}")))
        .header("Authorization", key.basic_auth())
        .json(&json!({"uploadHttpStatus": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "uploadedAt is required");

    // Bytes announced as one type and then as another: the upload for the earlier type does not
    // make the media (now of the later type, at another key) uploaded.
    let retyped = &bytes[..300];
    let (_, as_png) = post_media(&app, &key, &upload_request(retyped, "image/png")).await;
    let (_, as_wav) = post_media(&app, &key, &upload_request(retyped, "audio/wav")).await;
    assert_eq!(as_png["mediaId"], as_wav["mediaId"]);
    let retyped_id = as_wav["mediaId"].as_str().unwrap();
    let (status, _) = put(
        as_png["uploadUrl"].as_str().unwrap().to_string(),
        retyped.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get_json(&format!("/api/public/media/{retyped_id}"), &key)
        .await;
    assert_eq!(status, 404, "the wav is not uploaded yet");
    let response = app
        .http
        .put(as_wav["uploadUrl"].as_str().unwrap())
        .header("Content-Type", "audio/wav")
        .body(retyped.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, media) = app
        .get_json(&format!("/api/public/media/{retyped_id}"), &key)
        .await;
    assert_eq!(
        (status, media["contentType"].clone()),
        (200, json!("audio/wav"))
    );
    let files_before_expiry = media_files(&app).len();

    // Past their expiry, genuine URLs are refused and the upload keeps nothing.
    let (_, third) = post_media(&app, &key, &upload_request(&bytes[..200], "image/png")).await;
    let third_url = third["uploadUrl"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let (status, answer) = put(third_url, bytes[..200].to_vec()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("expired"));
    let response = reqwest::get(&download_url).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(media_files(&app).len(), files_before_expiry);
}

#[tokio::test]
async fn the_trace_page_shows_only_its_own_projects_media() {
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let png = b"\x89PNG not really, but bytes".to_vec();
    // The same bytes uploaded in another project: its id is known, its file is not this project's.
    let other = create_project(&app.config, "media-elsewhere").await;
    let (_, answer) = post_media(&app, &other, &upload_request(&png, "image/png")).await;
    let url = answer["uploadUrl"].as_str().unwrap();
    let response = app
        .http
        .put(url)
        .header("Content-Type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let other_id = answer["mediaId"].as_str().unwrap().to_string();
    // And an audio file of this project.
    let wav = b"RIFF....WAVEfmt not really".to_vec();
    let mut request = upload_request(&wav, "audio/wav");
    request["traceId"] = json!("t-media");
    let (_, answer) = post_media(&app, &key, &request).await;
    let response = app
        .http
        .put(answer["uploadUrl"].as_str().unwrap())
        .header("Content-Type", "audio/wav")
        .body(wav.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let own_id = answer["mediaId"].as_str().unwrap().to_string();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let input = json!({
        "theirs": format!("@@@langfuseMedia:type=image/png|id={other_id}|source=base64_data_uri@@@"),
        "ours": format!("@@@langfuseMedia:type=audio/wav|id={own_id}|source=bytes@@@"),
    });
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("e-m", "trace-create", &at,
            json!({"id": "t-media", "timestamp": at, "name": "media", "input": input}))]}),
    )
    .await;
    assert!(app.wait_until_written().await);
    let owner = crate::helpers::UiClient::new(&app);
    owner.sign_in("owner@example.com", "initial password").await;
    let (status, page) = owner.page("/project/boot-project/traces/t-media").await;
    assert_eq!(status, 200);
    assert!(page.contains("<audio controls"), "{page}");
    assert!(page.contains(&format!("/api/public/media/{own_id}/download?")));
    assert!(!page.contains(&format!("/api/public/media/{other_id}/download")));
    assert!(page.contains("[image/png media not available]"));
    // The page's link plays the file for anyone holding it, until it expires.
    let href = page
        .split(&format!("src=\"/api/public/media/{own_id}/download?"))
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let response = app
        .get(&format!("/api/public/media/{own_id}/download?{href}"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], &wav[..]);
}

/// Deleting a trace removes the media only it referred to (rows and files), as Langfuse does; a
/// file another trace or a dataset item also refers to stays until the last reference goes.
#[tokio::test]
async fn deleting_a_trace_removes_the_media_only_it_referred_to() {
    let config = TestConfig::new().await;
    let blob_dir = config.settings().local_blob_dir();
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "media-delete").await;
    let at = "2026-12-07T10:00:00Z";
    let batch = json!({"batch": [
        envelope("e-a", "trace-create", at, json!({"id": "a", "name": "a"})),
        envelope("e-b", "trace-create", at, json!({"id": "b", "name": "b"})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    assert!(app.wait_for_rows("traces", "media-delete", 2).await);

    // `context` is the request's trace, observation or dataset item; the bytes upload once.
    let upload = |bytes: Vec<u8>, context: Value| {
        let (app, key) = (&app, &key);
        async move {
            let mut body = json!({"contentType": "image/png", "contentLength": bytes.len(),
                "sha256Hash": sha256_base64(&bytes), "field": "input"});
            body.as_object_mut()
                .unwrap()
                .extend(context.as_object().unwrap().clone());
            let (status, answer) = post_media(app, key, &body).await;
            assert_eq!(status, 200, "{answer}");
            if let Some(url) = answer["uploadUrl"].as_str() {
                let put = app
                    .http
                    .put(url)
                    .header("Content-Type", "image/png")
                    .body(bytes)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(put.status(), 200);
            }
            answer["mediaId"].as_str().unwrap().to_string()
        }
    };
    let shared = upload(vec![1; 64], json!({"traceId": "a"})).await;
    assert_eq!(upload(vec![1; 64], json!({"traceId": "b"})).await, shared);
    let own = upload(
        vec![2; 64],
        json!({"traceId": "a", "observationId": "o1", "field": "output"}),
    )
    .await;
    let with_item = upload(vec![3; 64], json!({"traceId": "a"})).await;
    let item_context = json!({"traceId": null, "datasetId": "ds", "datasetItemId": "i1",
        "field": "expectedOutput"});
    assert_eq!(upload(vec![3; 64], item_context).await, with_item);

    let file = |id: &str| blob_dir.join(format!("media/media-delete/{id}.png"));
    let exists = |id: String| {
        let (app, key) = (&app, &key);
        async move {
            let (status, _) = app.get_json(&format!("/api/public/media/{id}"), key).await;
            status
        }
    };
    for id in [&shared, &own, &with_item] {
        assert!(file(id).exists(), "{id}");
    }
    let delete = |trace: &'static str| {
        let (app, key) = (&app, &key);
        async move {
            let response = app
                .http
                .delete(app.url(&format!("/api/public/traces/{trace}")))
                .header("Authorization", key.basic_auth())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    delete("a").await;
    assert_eq!(exists(own.clone()).await, 404);
    assert!(!file(&own).exists());
    assert_eq!(
        exists(shared.clone()).await,
        200,
        "trace b still refers to it"
    );
    assert!(file(&shared).exists());
    assert_eq!(
        exists(with_item.clone()).await,
        200,
        "a dataset item refers to it"
    );
    assert!(file(&with_item).exists());

    delete("b").await;
    assert_eq!(exists(shared.clone()).await, 404);
    assert!(!file(&shared).exists());
    app.stop().await.unwrap();
}

//! Media on the trace page in a real browser (the harness of `ui_browser.rs`): the Python SDK 5.x
//! sends a trace whose input holds a PNG and a WAV recording and whose output a PDF; the page shows
//! the image decoded (its natural size is the PNG's), a player that loaded the recording's
//! metadata, and a link to the PDF, each through a signed link of this server, in the trace's panel
//! and in its span's. The screenshot goes
//! to `target/ui-screenshots/trace-media.png`.

use std::time::Duration;

use serde_json::json;

use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
use crate::ui_browser::Browser;

const TRACE: &str = "5bd1c2d3e4f5061728394a5b6c7d8e9f";

async fn eval(browser: &Browser, script: &str) -> serde_json::Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

/// Waits until `script` returns true.
async fn until(browser: &Browser, what: &str, script: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while eval(browser, script).await != json!(true) {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_trace_page_shows_the_sdks_image_plays_its_audio_and_links_its_pdf() {
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let out_dir = tempfile::tempdir().unwrap();
    let mut command =
        tokio::process::Command::new(sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5"));
    command
        .arg(sdk_script("python_v5_media.py"))
        .env("OUT_DIR", out_dir.path());
    let ids = run_roundtrip(command, &app, &key, TRACE).await;
    let path = format!("/project/boot-project/traces/{TRACE}");
    // The trace reads whole once the worker wrote it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, trace) = app
            .get_json(&format!("/api/public/traces/{TRACE}"), &key)
            .await;
        if status == 200 && !trace["output"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {trace}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let browser = Browser::start(&app).await;
    browser.goto(&path).await;
    browser
        .sign_in("owner@example.com", "initial password")
        .await;
    assert_eq!(browser.wait_for_path(&path).await, path);
    until(
        &browser,
        "the image decoded",
        "const i = document.querySelector('#detail figure.media-image img'); \
         return !!i && i.complete && i.naturalWidth > 0;",
    )
    .await;
    let size = eval(
        &browser,
        "const i = document.querySelector('#detail figure.media-image img'); \
         return [i.naturalWidth, i.naturalHeight, new URL(i.src).pathname];",
    )
    .await;
    let image_id = ids["image_id"].as_str().unwrap();
    assert_eq!(
        size,
        json!([48, 32, format!("/api/public/media/{image_id}/download")])
    );
    until(
        &browser,
        "the recording's metadata loaded",
        "const a = document.querySelector('#detail figure.media-audio audio[controls]'); \
         return !!a && a.readyState >= 1 && a.duration > 0.4 && a.duration < 0.6;",
    )
    .await;
    let pdf = eval(
        &browser,
        "const a = document.querySelector('#detail a.media-file'); return a ? new URL(a.href).pathname : null;",
    )
    .await;
    let report_id = ids["report_id"].as_str().unwrap();
    assert_eq!(
        pdf,
        json!(format!("/api/public/media/{report_id}/download"))
    );
    browser.screenshot("trace-media").await;

    // The span's own panel, swapped in by the page's script, shows its files too.
    let observation = ids["observation"].as_str().unwrap();
    browser
        .click(&format!("a.obs-link[href^='?observation={observation}']"))
        .await;
    until(
        &browser,
        "the span's panel with its image",
        &format!(
            "const d = document.getElementById('detail'); \
             const i = d && d.querySelector('figure.media-image img'); \
             return d.dataset.id === '{observation}' && !!i && i.complete && i.naturalWidth === 48 \
                 && !!d.querySelector('figure.media-audio audio') && !!d.querySelector('a.media-file');"
        ),
    )
    .await;
}

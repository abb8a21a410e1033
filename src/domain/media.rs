//! Media: the files SDKs cut out of trace and dataset item fields and upload on their own.
//!
//! Pure rules, no I/O: which content types are accepted and the file extension each is stored
//! under, the media id derived from the content's SHA-256 (the SDKs derive the same id before they
//! ask, and check the server's answer against it), what a request for an upload URL must hold, the
//! reference strings the SDKs leave in place of the bytes, and the HMAC-signed grants behind the
//! upload and download URLs `serve` hands out when it stores media itself.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Every content type Langfuse accepts for media (its API's `MediaContentType`), with the file
/// extension of the stored object.
pub const CONTENT_TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpeg"),
    ("image/jpg", "jpg"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
    ("image/svg+xml", "svg"),
    ("image/tiff", "tiff"),
    ("image/bmp", "bmp"),
    ("image/avif", "avif"),
    ("image/heic", "heic"),
    ("audio/mpeg", "mp3"),
    ("audio/mp3", "mp3"),
    ("audio/wav", "wav"),
    ("audio/ogg", "ogg"),
    ("audio/oga", "oga"),
    ("audio/aac", "aac"),
    ("audio/mp4", "m4a"),
    ("audio/flac", "flac"),
    ("audio/opus", "opus"),
    ("audio/webm", "weba"),
    ("video/mp4", "mp4"),
    ("video/webm", "webm"),
    ("video/ogg", "ogv"),
    ("video/mpeg", "mpeg"),
    ("video/quicktime", "mov"),
    ("video/x-msvideo", "avi"),
    ("video/x-matroska", "mkv"),
    ("text/plain", "txt"),
    ("text/html", "html"),
    ("text/css", "css"),
    ("text/csv", "csv"),
    ("text/markdown", "md"),
    ("text/x-python", "py"),
    ("application/javascript", "js"),
    ("text/x-typescript", "ts"),
    ("application/x-yaml", "yaml"),
    ("application/pdf", "pdf"),
    ("application/msword", "doc"),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/zip", "zip"),
    ("application/json", "json"),
    ("application/xml", "xml"),
    ("application/octet-stream", "bin"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    ("application/rtf", "rtf"),
    ("application/x-ndjson", "jsonl"),
    ("application/vnd.apache.parquet", "parquet"),
    ("application/gzip", "gz"),
    ("application/x-tar", "tar"),
    ("application/x-7z-compressed", "7z"),
];

/// The extension a content type is stored under; `None`: not a media content type.
pub fn extension_of(content_type: &str) -> Option<&'static str> {
    CONTENT_TYPES
        .iter()
        .find(|(t, _)| *t == content_type)
        .map(|(_, ext)| *ext)
}

/// How a file is shown on a trace's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    Image,
    Audio,
    Video,
    Link,
}

pub fn presentation_of(content_type: &str) -> Presentation {
    match content_type.split('/').next() {
        Some("image") => Presentation::Image,
        Some("audio") => Presentation::Audio,
        Some("video") => Presentation::Video,
        _ => Presentation::Link,
    }
}

/// The SHA-256 of some bytes as the SDKs send it: standard base64, 44 characters.
pub fn sha256_base64(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A media's id: the first 22 characters of its hash in URL-safe base64, as Langfuse and its
/// SDKs derive it.
pub fn media_id_of(sha256_hash: &str) -> String {
    sha256_hash
        .chars()
        .take(22)
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// Whether `hash` is a base64 SHA-256 (44 characters, 32 bytes).
pub fn is_sha256_base64(hash: &str) -> bool {
    hash.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(hash)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// Where a media is referred to from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaContext {
    Trace {
        trace_id: String,
        observation_id: Option<String>,
        /// `input`, `output` or `metadata`.
        field: String,
    },
    DatasetItem {
        dataset_id: String,
        dataset_item_id: String,
        /// `input`, `expectedOutput` or `metadata`.
        field: String,
    },
}

/// A checked request for an upload URL (`POST /api/public/media`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub context: MediaContext,
    pub content_type: String,
    pub content_length: u64,
    pub sha256_hash: String,
}

/// What an upload request is checked against.
pub struct UploadLimits<'a> {
    pub max_content_length: u64,
    pub allowed_content_types: &'a [String],
}

fn optional_string(body: &Value, key: &str) -> Result<Option<String>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a non-empty string or null")),
    }
}

impl UploadRequest {
    /// Reads and checks a request body; the error names the field and what is wrong with it.
    pub fn from_json(body: &Value, limits: &UploadLimits<'_>) -> Result<UploadRequest, String> {
        if !body.is_object() {
            return Err("the body must be a JSON object".into());
        }
        let content_type = match body.get("contentType") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err("contentType is required (a string)".into()),
        };
        if !limits.allowed_content_types.contains(&content_type) {
            return Err(format!(
                "contentType {content_type:?} is not accepted. Accepted: {}",
                limits.allowed_content_types.join(", ")
            ));
        }
        let content_length = match body.get("contentLength").and_then(Value::as_u64) {
            Some(n) if n > 0 => n,
            _ => return Err("contentLength must be a positive integer".into()),
        };
        if content_length > limits.max_content_length {
            return Err(format!(
                "contentLength: the file must be at most {} bytes",
                limits.max_content_length
            ));
        }
        let sha256_hash = match body.get("sha256Hash") {
            Some(Value::String(h)) if is_sha256_base64(h) => h.clone(),
            _ => {
                return Err(
                    "sha256Hash must be the base64 SHA-256 of the content (44 characters)".into(),
                )
            }
        };
        let field = match body.get("field") {
            Some(Value::String(f)) => f.clone(),
            _ => return Err("field is required (a string)".into()),
        };
        let trace_id = optional_string(body, "traceId")?;
        let observation_id = optional_string(body, "observationId")?;
        let dataset_id = optional_string(body, "datasetId")?;
        let dataset_item_id = optional_string(body, "datasetItemId")?;
        let context = match (trace_id, dataset_id, dataset_item_id) {
            (Some(trace_id), None, None) => {
                if !matches!(field.as_str(), "input" | "output" | "metadata") {
                    return Err("field must be input, output or metadata for a trace".into());
                }
                MediaContext::Trace {
                    trace_id,
                    observation_id,
                    field,
                }
            }
            (None, Some(dataset_id), Some(dataset_item_id)) if observation_id.is_none() => {
                if !matches!(field.as_str(), "input" | "expectedOutput" | "metadata") {
                    return Err(
                        "field must be input, expectedOutput or metadata for a dataset item".into(),
                    );
                }
                MediaContext::DatasetItem {
                    dataset_id,
                    dataset_item_id,
                    field,
                }
            }
            _ => {
                return Err("provide either traceId (and optionally observationId), or \
                     datasetId and datasetItemId"
                    .into())
            }
        };
        Ok(UploadRequest {
            context,
            content_type,
            content_length,
            sha256_hash,
        })
    }
}

/// A media reference as the SDKs write it in place of the bytes:
/// `@@@langfuseMedia:type=image/png|id=<media id>|source=base64_data_uri@@@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaReference {
    pub content_type: String,
    pub id: String,
    pub source: String,
}

impl MediaReference {
    /// The reference `text` is, if it is exactly one (surrounding whitespace aside).
    pub fn parse(text: &str) -> Option<MediaReference> {
        let inner = text
            .trim()
            .strip_prefix("@@@langfuseMedia:")?
            .strip_suffix("@@@")?;
        let (mut content_type, mut id, mut source) = (None, None, None);
        for pair in inner.split('|') {
            let (key, value) = pair.split_once('=')?;
            match key {
                "type" => content_type = Some(value.to_string()),
                "id" => id = Some(value.to_string()),
                "source" => source = Some(value.to_string()),
                _ => {}
            }
        }
        let id = id.filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })?;
        Some(MediaReference {
            content_type: content_type?,
            id,
            source: source.unwrap_or_default(),
        })
    }

    /// The ids of the references in stored JSON text, each once, without parsing the JSON (the
    /// reference syntax has nothing JSON escapes).
    pub fn ids_in_text(text: &str) -> Vec<String> {
        const START: &str = "@@@langfuseMedia:";
        let mut ids: Vec<String> = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(START) {
            let candidate = &rest[at..];
            let Some(end) = candidate[START.len()..].find("@@@") else {
                break;
            };
            let length = START.len() + end + 3;
            if let Some(reference) = MediaReference::parse(&candidate[..length]) {
                if !ids.contains(&reference.id) {
                    ids.push(reference.id);
                }
            }
            rest = &candidate[length..];
        }
        ids
    }

    /// Every reference in a JSON value (strings that are one), in order, each id once.
    pub fn all_in(value: &Value, out: &mut Vec<MediaReference>) {
        match value {
            Value::String(text) => {
                if let Some(reference) = MediaReference::parse(text) {
                    if !out.iter().any(|r| r.id == reference.id) {
                        out.push(reference);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| Self::all_in(v, out)),
            Value::Object(map) => map.values().for_each(|v| Self::all_in(v, out)),
            _ => {}
        }
    }
}

/// What a signed URL allows: one upload of exactly the announced bytes, or downloads of one
/// media, each until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant<'a> {
    Upload {
        project_id: &'a str,
        media_id: &'a str,
        content_type: &'a str,
        content_length: u64,
        sha256_hash: &'a str,
        expires: i64,
    },
    Download {
        project_id: &'a str,
        media_id: &'a str,
        content_type: &'a str,
        expires: i64,
    },
}

impl Grant<'_> {
    fn expires(&self) -> i64 {
        match self {
            Grant::Upload { expires, .. } | Grant::Download { expires, .. } => *expires,
        }
    }

    /// The signed text: every field length-prefixed, so no two grants read the same.
    fn canonical(&self) -> Vec<u8> {
        let fields: Vec<String> = match self {
            Grant::Upload {
                project_id,
                media_id,
                content_type,
                content_length,
                sha256_hash,
                expires,
            } => vec![
                "upload".into(),
                project_id.to_string(),
                media_id.to_string(),
                content_type.to_string(),
                content_length.to_string(),
                sha256_hash.to_string(),
                expires.to_string(),
            ],
            Grant::Download {
                project_id,
                media_id,
                content_type,
                expires,
            } => vec![
                "download".into(),
                project_id.to_string(),
                media_id.to_string(),
                content_type.to_string(),
                expires.to_string(),
            ],
        };
        let mut out = Vec::new();
        for field in fields {
            out.extend_from_slice(format!("{}:", field.len()).as_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRefusal {
    /// The signature does not match what the URL says (forged or altered).
    Invalid,
    /// A genuine URL past its expiry.
    Expired,
}

/// Signs and checks grants with the installation's secret (HMAC-SHA256).
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl UrlSigner {
    /// A signer keyed by `secret`, or, when it is empty, by a key derived from the API-key salt
    /// (so an installation needs no second secret, and the two keys still differ).
    pub fn new(secret: &str, salt: &str) -> UrlSigner {
        let key = if secret.is_empty() {
            let mut mac =
                HmacSha256::new_from_slice(salt.as_bytes()).expect("HMAC takes any key length");
            mac.update(b"media url signing");
            mac.finalize().into_bytes().to_vec()
        } else {
            Sha256::digest(secret.as_bytes()).to_vec()
        };
        UrlSigner { key }
    }

    fn mac(&self, grant: &Grant<'_>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&grant.canonical());
        mac
    }

    /// The signature of a grant, URL-safe base64.
    pub fn sign(&self, grant: &Grant<'_>) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(grant).finalize().into_bytes())
    }

    /// Whether `signature` is this grant's and the grant has not expired at `now`. The signature
    /// is compared in constant time, and checked first: an altered expiry is a forgery.
    pub fn verify(
        &self,
        grant: &Grant<'_>,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureRefusal> {
        let presented = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SignatureRefusal::Invalid)?;
        self.mac(grant)
            .verify_slice(&presented)
            .map_err(|_| SignatureRefusal::Invalid)?;
        if now.timestamp() > grant.expires() {
            return Err(SignatureRefusal::Expired);
        }
        Ok(())
    }
}

/// What a download's `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole object: no header, or one this server does not honour (several ranges, another
    /// unit, a malformed one), which HTTP lets a server answer with the whole body.
    Whole,
    /// The bytes `start..end` (end exclusive), answered 206.
    Part(std::ops::Range<u64>),
    /// A range that starts beyond the object, answered 416.
    Unsatisfiable,
}

/// Reads a `Range: bytes=…` header (RFC 9110 §14.1.2): one range, `a-b`, `a-` or `-n` (the last
/// `n` bytes). Audio and video players ask for ranges to seek and to read a file's index at its end.
pub fn requested_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-n`: the last n bytes.
        return match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Part(size.saturating_sub(suffix)..size),
            None => RangeRequest::Whole,
        };
    }
    let Some(start) = number(first) else {
        return RangeRequest::Whole;
    };
    let end = if last.is_empty() {
        size
    } else {
        match number(last) {
            Some(last) if last >= start => last.saturating_add(1).min(size),
            _ => return RangeRequest::Whole,
        }
    };
    if start >= size {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(start..end)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_read_as_http_defines_them() {
        use super::{requested_range, RangeRequest::*};
        let size = 100;
        assert_eq!(requested_range(None, size), Whole);
        assert_eq!(requested_range(Some("bytes=0-9"), size), Part(0..10));
        assert_eq!(requested_range(Some("bytes=90-"), size), Part(90..100));
        assert_eq!(requested_range(Some("bytes=90-1000"), size), Part(90..100));
        assert_eq!(requested_range(Some("bytes=-10"), size), Part(90..100));
        assert_eq!(requested_range(Some("bytes=-1000"), size), Part(0..100));
        assert_eq!(requested_range(Some("bytes=100-"), size), Unsatisfiable);
        assert_eq!(requested_range(Some("bytes=-0"), size), Unsatisfiable);
        assert_eq!(requested_range(Some("bytes=0-"), 0), Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-2",
            "bytes=a-b",
            "bytes=-",
            "bytes=5",
        ] {
            assert_eq!(requested_range(Some(ignored), size), Whole, "{ignored}");
        }
    }

    use super::*;
    use serde_json::json;

    fn limits(types: &[String]) -> UploadLimits<'_> {
        UploadLimits {
            max_content_length: 1000,
            allowed_content_types: types,
        }
    }

    #[test]
    fn the_media_id_is_the_url_safe_start_of_the_hash() {
        let hash = sha256_base64(&Sha256::digest(b"\xfb\xff\xfe some bytes"));
        assert!(is_sha256_base64(&hash));
        let id = media_id_of("ab+/cd+/ef+/gh+/ij+/klMNOPQRSTUVWXYZ0123456789==");
        assert_eq!(id, "ab-_cd-_ef-_gh-_ij-_kl");
        assert_eq!(media_id_of(&hash).len(), 22);
        assert!(!is_sha256_base64("short"));
        assert!(!is_sha256_base64(&"A".repeat(44)[..43]));
    }

    #[test]
    fn upload_requests_name_what_is_wrong() {
        let types = vec!["image/png".to_string()];
        let hash = sha256_base64(&Sha256::digest(b"x"));
        let good = json!({"traceId": "t", "observationId": null, "field": "input",
            "contentType": "image/png", "contentLength": 10, "sha256Hash": hash});
        let request = UploadRequest::from_json(&good, &limits(&types)).unwrap();
        assert_eq!(
            request.context,
            MediaContext::Trace {
                trace_id: "t".into(),
                observation_id: None,
                field: "input".into()
            }
        );
        let with = |key: &str, value: Value| {
            let mut body = good.clone();
            body[key] = value;
            UploadRequest::from_json(&body, &limits(&types)).unwrap_err()
        };
        assert!(with("contentType", json!("image/gif")).contains("not accepted"));
        assert!(with("contentLength", json!(1001)).contains("at most 1000"));
        assert!(with("contentLength", json!(0)).contains("positive"));
        assert!(with("sha256Hash", json!("abc")).contains("sha256Hash"));
        assert!(with("field", json!("expectedOutput")).contains("field"));
        assert!(with("datasetId", json!("d")).contains("either"));
        let dataset = json!({"datasetId": "d", "datasetItemId": "i", "field": "expectedOutput",
            "contentType": "image/png", "contentLength": 10, "sha256Hash": hash});
        assert!(matches!(
            UploadRequest::from_json(&dataset, &limits(&types))
                .unwrap()
                .context,
            MediaContext::DatasetItem { .. }
        ));
    }

    #[test]
    fn references_are_read_as_the_sdks_write_them() {
        let r = MediaReference::parse(
            "@@@langfuseMedia:type=image/png|id=abc-DEF_123|source=base64_data_uri@@@",
        )
        .unwrap();
        assert_eq!(r.content_type, "image/png");
        assert_eq!(r.id, "abc-DEF_123");
        assert_eq!(r.source, "base64_data_uri");
        assert!(MediaReference::parse("@@@langfuseMedia:type=image/png|id=a\"b@@@").is_none());
        assert!(MediaReference::parse("text @@@langfuseMedia:type=a|id=b@@@").is_none());
        let mut all = Vec::new();
        MediaReference::all_in(
            &json!({"a": ["@@@langfuseMedia:type=audio/wav|id=x|source=bytes@@@",
                          {"b": "@@@langfuseMedia:type=audio/wav|id=x|source=bytes@@@"}]}),
            &mut all,
        );
        assert_eq!(all.len(), 1);
        let stored = r#"{"a":"@@@langfuseMedia:type=image/png|id=one|source=x@@@","b":["@@@langfuseMedia:type=audio/wav|id=two|source=bytes@@@","@@@langfuseMedia:type=image/png|id=one|source=x@@@"]}"#;
        assert_eq!(MediaReference::ids_in_text(stored), vec!["one", "two"]);
        assert!(MediaReference::ids_in_text("@@@langfuseMedia:type=x").is_empty());
    }

    #[test]
    fn signed_grants_refuse_changes_and_expire() {
        let signer = UrlSigner::new("", "salt");
        let grant = Grant::Download {
            project_id: "p",
            media_id: "m",
            content_type: "image/png",
            expires: 100,
        };
        let signature = signer.sign(&grant);
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(signer.verify(&grant, &signature, at(100)), Ok(()));
        assert_eq!(
            signer.verify(&grant, &signature, at(101)),
            Err(SignatureRefusal::Expired)
        );
        let other_project = Grant::Download {
            project_id: "q",
            media_id: "m",
            content_type: "image/png",
            expires: 100,
        };
        assert_eq!(
            signer.verify(&other_project, &signature, at(0)),
            Err(SignatureRefusal::Invalid)
        );
        assert_eq!(
            UrlSigner::new("", "other salt").verify(&grant, &signature, at(0)),
            Err(SignatureRefusal::Invalid)
        );
        assert_eq!(
            UrlSigner::new("secret", "salt").verify(&grant, &signature, at(0)),
            Err(SignatureRefusal::Invalid)
        );
        assert_eq!(
            signer.verify(&grant, "!!", at(0)),
            Err(SignatureRefusal::Invalid)
        );
    }
}

//! Opening the object store from a URL: `file:///path`, a plain path, `memory://`, or
//! `s3://bucket/prefix` (AWS S3, MinIO, SeaweedFS: any S3-compatible endpoint).

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, RetryConfig};
use serde::Deserialize;

use crate::error::{Error, Result};

/// S3 connection settings. Unset fields fall back to the standard `AWS_*` environment variables
/// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Custom endpoint such as `http://127.0.0.1:9000` (MinIO) or `http://127.0.0.1:8333`
    /// (SeaweedFS). Unset: AWS S3.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Virtual-hosted-style requests (`bucket.host`). Off by default: path style works with
    /// MinIO, SeaweedFS and AWS alike.
    pub virtual_hosted_style: bool,
}

/// Retries of a failed S3 request (5xx such as `SlowDown` or `InternalError`, timeouts,
/// connection resets), and the total time they may take. Backoff starts at 0.1 s and
/// doubles, so 10 retries ride out a blip of ~10 s (3 retries gave up after 0.7 s, which a
/// SeaweedFS volume growing or an S3 partition splitting can exceed). The total is kept well
/// below ingest's commit deadline (30 s), so a failing store fails the flush (and the
/// producer retries elsewhere) instead of holding it for object_store's default 3 minutes.
const S3_MAX_RETRIES: usize = 10;
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(10);
/// One S3 request's time limit (a 8 MiB PUT takes ~0.1 s on S3 from the same region).
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the store a URL names. The path part of the URL becomes a prefix every object
/// path is placed under.
pub fn open_store(url: &str, s3: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    if !url.contains("://") {
        return open_local(std::path::Path::new(url)).map_err(invalid);
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "file" => {
            let path = parsed
                .to_file_path()
                .map_err(|()| invalid("not an absolute file path".into()))?;
            open_local(&path).map_err(invalid)
        }
        "memory" => Ok(Arc::new(InMemory::new())),
        "s3" => {
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| invalid("missing bucket name".into()))?;
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_virtual_hosted_style_request(s3.virtual_hosted_style)
                .with_retry(RetryConfig {
                    max_retries: S3_MAX_RETRIES,
                    retry_timeout: S3_RETRY_TIMEOUT,
                    ..Default::default()
                })
                .with_client_options(ClientOptions::new().with_timeout(S3_REQUEST_TIMEOUT));
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
            } else if std::env::var("AWS_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .is_ok_and(|e| e.starts_with("http://"))
            {
                builder = builder.with_allow_http(true);
            }
            if let Some(region) = &s3.region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?);
            let prefix = parsed.path().trim_matches('/');
            if prefix.is_empty() {
                Ok(store)
            } else {
                Ok(Arc::new(PrefixStore::new(store, prefix)))
            }
        }
        other => Err(invalid(format!(
            "unsupported scheme {other:?} (use file://, memory:// or s3://)"
        ))),
    }
}

fn open_local(path: &std::path::Path) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    // Every PUT is fsynced (the staged file, then its directory after the rename) before it
    // returns: a producer is acknowledged only after its WAL object, and a Parquet file is
    // swapped in only after it, would survive power loss. ~1 fsync per flush (p50 ~0.1–2 ms
    // on SSDs); flushes group messages, so the cost is per flush, not per message.
    let store = LocalFileSystem::new_with_prefix(path)
        .map_err(|e| e.to_string())?
        .with_fsync(true);
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload, path::Path};

    #[tokio::test]
    async fn opens_local_folder_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/store", dir.path().display());
        let store = open_store(&url, &S3Options::default()).unwrap();
        store
            .put(&Path::from("a/b"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        assert!(dir.path().join("store/a/b").exists());

        let plain = open_store(dir.path().join("plain").to_str().unwrap(), &S3Options::default());
        assert!(plain.is_ok());
        assert!(open_store("memory://", &S3Options::default()).is_ok());
    }

    #[test]
    fn rejects_bad_urls() {
        for url in ["ftp://x/y", "s3:///prefix", "file://relative"] {
            let err = open_store(url, &S3Options::default()).err();
            assert!(matches!(err, Some(Error::InvalidUrl { .. })), "{url}: {err:?}");
        }
    }

    #[test]
    fn s3_with_prefix_and_endpoint() {
        let opts = S3Options {
            endpoint: Some("http://127.0.0.1:8333".into()),
            region: Some("us-east-1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            virtual_hosted_style: false,
        };
        let store = open_store("s3://bucket/some/prefix", &opts).unwrap();
        assert!(store.to_string().contains("some/prefix"), "{store}");
    }
}

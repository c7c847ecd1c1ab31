//! `storage`: object storage for originals and packaged media, through `object_store`: a local
//! directory by default, or any S3-compatible service.
//!
//! Keys: `originals/<track>` holds an upload; `tracks/<track>/<attempt>/…` holds one packaging
//! attempt. An attempt's prefix is recorded on its job before anything is written under it, and
//! becomes the track's `media_prefix` only in the publishing transaction, so a prefix is either
//! published or known to the job that must remove it. `uploads/<upload>/<offset>` holds the
//! pieces of a resumable upload until it is complete and joined into `originals/<track>`.

use crate::config;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

pub use object_store::Error;

/// The media store.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    description: String,
    /// The directory of the local backend.
    local: Option<std::path::PathBuf>,
}

impl Storage {
    /// Opens the configured backend; the local directory is created if missing.
    pub fn open(cfg: &config::Storage) -> Result<Storage, Error> {
        match cfg.backend.as_str() {
            "s3" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&cfg.s3_bucket)
                    .with_region(&cfg.s3_region)
                    .with_allow_http(cfg.s3_allow_http)
                    .with_retry(object_store::RetryConfig {
                        max_retries: cfg.s3_max_retries,
                        retry_timeout: std::time::Duration::from_secs(cfg.s3_retry_timeout_seconds),
                        ..Default::default()
                    });
                if !cfg.s3_endpoint.is_empty() {
                    b = b.with_endpoint(&cfg.s3_endpoint);
                }
                if !cfg.s3_access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&cfg.s3_access_key_id)
                        .with_secret_access_key(&cfg.s3_secret_access_key);
                }
                Ok(Storage {
                    inner: Arc::new(b.build()?),
                    description: format!("s3://{}", cfg.s3_bucket),
                    local: None,
                })
            }
            _ => {
                std::fs::create_dir_all(&cfg.path).map_err(|e| Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&cfg.path)?
                    .with_automatic_cleanup(true);
                Ok(Storage {
                    inner: Arc::new(local),
                    description: cfg.path.display().to_string(),
                    local: Some(cfg.path.clone()),
                })
            }
        }
    }

    /// Where the media lives, for the start-up banner.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The underlying store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Writes one object.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), Error> {
        self.inner
            .put(&Key::from(key), PutPayload::from(data))
            .await?;
        Ok(())
    }

    /// Reads one object whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, Error> {
        self.inner.get(&Key::from(key)).await?.bytes().await
    }

    /// Streams one object into a local file.
    pub async fn download(&self, key: &str, to: &std::path::Path) -> Result<u64, Error> {
        use tokio::io::AsyncWriteExt;
        let io = |e: std::io::Error| Error::Generic {
            store: "download",
            source: Box::new(e),
        };
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        let mut stream = self.inner.get(&Key::from(key)).await?.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            n += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(n)
    }

    /// Whether an object exists (a `HEAD`).
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self.inner.head(&Key::from(key)).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes one object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.inner.delete(&Key::from(key)).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes every object under `prefix`. Returns how many were removed.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let keys: Vec<Key> = self
            .inner
            .list(Some(&Key::from(prefix)))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        let n = keys.len();
        let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.inner.delete_stream(stream);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The keys under `prefix` with their sizes, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let mut all: Vec<(String, u64)> = self
            .inner
            .list(Some(&Key::from(prefix)))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await?;
        all.sort();
        Ok(all)
    }

    /// Joins objects, in order, into one new object, streaming. On error the new object is
    /// removed.
    pub async fn concat(&self, parts: &[String], into: &str) -> Result<u64, Error> {
        let upload = self.inner.put_multipart(&Key::from(into)).await?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, 5 << 20);
        let mut n = 0u64;
        let copied: Result<(), Error> = async {
            for key in parts {
                let mut stream = self
                    .inner
                    .get(&Key::from(key.as_str()))
                    .await?
                    .into_stream();
                while let Some(chunk) = stream.try_next().await? {
                    n += chunk.len() as u64;
                    writer.wait_for_capacity(2).await?;
                    writer.put(chunk);
                }
            }
            Ok(())
        }
        .await;
        match copied {
            Ok(()) => {
                writer.finish().await?;
                Ok(n)
            }
            Err(e) => {
                let _ = writer.abort().await;
                let _ = self.delete(into).await;
                Err(e)
            }
        }
    }

    /// Checks the store answers. A local directory must also take a write (a full disk is not
    /// ready); on S3 a HEAD, where a missing object is a healthy answer.
    pub async fn ping(&self) -> Result<(), Error> {
        if let Some(root) = &self.local {
            // A file written and removed at once, outside what the object listing shows.
            let probe = root.join(".readyz-probe");
            let written = tokio::fs::write(&probe, b"ok").await;
            let _ = tokio::fs::remove_file(&probe).await;
            return written.map_err(|e| Error::Generic {
                store: "local",
                source: Box::new(e),
            });
        }
        match self.inner.head(&Key::from("readyz-probe")).await {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Objects under `prefix` last written before `before`, with their keys.
    pub async fn older_than(
        &self,
        prefix: &str,
        before: std::time::SystemTime,
    ) -> Result<Vec<String>, Error> {
        let before_ms = before
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let metas: Vec<_> = self
            .inner
            .list(Some(&Key::from(prefix)))
            .try_collect()
            .await?;
        Ok(metas
            .into_iter()
            .filter(|m| m.last_modified.timestamp_millis() < before_ms)
            .map(|m| m.location.to_string())
            .collect())
    }

    /// Removes what an interrupted multipart write left in the local directory (object_store's
    /// `<key>#<n>` staging files, which no listing shows) when older than `before`. S3 keeps
    /// incomplete multipart uploads out of sight too; a bucket lifecycle rule
    /// (AbortIncompleteMultipartUpload) removes those. Returns how many files went.
    pub fn sweep_partials(&self, before: std::time::SystemTime) -> usize {
        let Some(root) = &self.local else {
            return 0;
        };
        let mut removed = 0;
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                let name = entry.file_name();
                let partial = name
                    .to_str()
                    .and_then(|n| n.rsplit_once('#'))
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < before);
                if partial && old && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

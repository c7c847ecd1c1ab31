//! `storage`: object storage for originals and packaged media, through `object_store`: a local
//! directory by default, or any S3-compatible service.
//!
//! Keys ([`crate::layout`]): `originals/<track>` holds an upload; `tracks/<track>/<attempt>/…` holds one packaging
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

/// What [`Storage::put_stream`] wrote.
#[derive(Debug)]
pub struct Put<E> {
    /// Bytes now stored under the key (0: no object).
    pub bytes: u64,
    /// The error the body broke off with, if it did.
    pub cut: Option<E>,
}

/// Why [`Storage::put_stream`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The body ran past the limit; the rest of it is unread.
    #[error("the body is over its limit")]
    TooLarge,
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] Error),
}

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
        let inner = self.inner.clone();
        let chunks = futures::stream::iter(parts.to_vec())
            .then(move |key| {
                let inner = inner.clone();
                async move { inner.get(&Key::from(key.as_str())).await }
            })
            .map_ok(|got| got.into_stream())
            .try_flatten();
        let put = self
            .put_stream(into, Box::pin(chunks), u64::MAX, false, &mut |_| {})
            .await
            .map_err(|e| match e {
                PutError::Storage(e) => e,
                PutError::TooLarge => unreachable!("no limit"),
            })?;
        match put.cut {
            Some(e) => Err(e),
            None => Ok(put.bytes),
        }
    }

    /// Streams `body` into one object at `key`, part by part, showing every chunk to `seen`
    /// before it is written. Nothing is left behind when it fails: a body over `limit` bytes
    /// ([`PutError::TooLarge`], the rest of the body unread) or a storage error aborts the write.
    /// A body that breaks off (its stream yields an error) is reported in [`Put::cut`]; what
    /// arrived is kept only with `keep_cut` (resumable uploads keep it; one-shot uploads don't).
    /// An empty body writes nothing.
    pub fn put_stream<'a, E: Send + 'a>(
        &'a self,
        key: &'a str,
        mut body: impl futures::Stream<Item = Result<Bytes, E>> + Unpin + Send + 'a,
        limit: u64,
        keep_cut: bool,
        seen: &'a mut (dyn FnMut(&[u8]) + Send),
    ) -> futures::future::BoxFuture<'a, Result<Put<E>, PutError>> {
        Box::pin(async move {
            let upload = self.inner.put_multipart(&Key::from(key)).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, 5 << 20);
            let mut n = 0u64;
            let mut cut = None;
            let outcome: Result<(), PutError> = async {
                while let Some(chunk) = body.next().await {
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => {
                            cut = Some(e);
                            break;
                        }
                    };
                    n += chunk.len() as u64;
                    if n > limit {
                        return Err(PutError::TooLarge);
                    }
                    seen(&chunk);
                    writer.wait_for_capacity(2).await?;
                    writer.put(chunk);
                }
                Ok(())
            }
            .await;
            let keep = outcome.is_ok() && n > 0 && (cut.is_none() || keep_cut);
            if keep {
                writer.finish().await?;
            } else {
                let _ = writer.abort().await;
                let _ = self.delete(key).await;
            }
            outcome?;
            Ok(Put {
                bytes: if keep { n } else { 0 },
                cut,
            })
        })
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

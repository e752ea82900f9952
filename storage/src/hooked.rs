//! An `ObjectStore` wrapper that calls a hook before every request: the one place request
//! counting (metering, tests) and fault injection plug in, like object_store's `throttle.rs`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Kinds of object store request, as counted and billed by S3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    PutMultipart,
    Get,
    Head,
    Delete,
    List,
    Copy,
    Rename,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Put,
        Op::PutMultipart,
        Op::Get,
        Op::Head,
        Op::Delete,
        Op::List,
        Op::Copy,
        Op::Rename,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::PutMultipart => "put_multipart",
            Op::Get => "get",
            Op::Head => "head",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Copy => "copy",
            Op::Rename => "rename",
        }
    }
}

/// Called before each request; an error fails the request without reaching the inner store.
#[async_trait]
pub trait RequestHook: Send + Sync + fmt::Debug + 'static {
    async fn before(&self, op: Op, path: &Path) -> Result<()>;
}

/// Wraps a store and runs `hook` before each request.
#[derive(Debug)]
pub struct HookedStore<H> {
    inner: Arc<dyn ObjectStore>,
    hook: Arc<H>,
}

impl<H: RequestHook> HookedStore<H> {
    pub fn new(inner: Arc<dyn ObjectStore>, hook: Arc<H>) -> Self {
        Self { inner, hook }
    }
}

impl<H> fmt::Display for HookedStore<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hooked({})", self.inner)
    }
}

#[async_trait]
impl<H: RequestHook> ObjectStore for HookedStore<H> {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.hook.before(Op::Put, location).await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.hook.before(Op::PutMultipart, location).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        self.hook.before(op, location).await?;
        self.inner.get_opts(location, options).await
    }

    /// Ranges less than 1 MiB apart are fetched together (as object_store's stores do), each
    /// fetch one hooked GET: counts match the requests a store really receives.
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        object_store::coalesce_ranges(
            ranges,
            |range| async move {
                self.hook.before(Op::Get, location).await?;
                self.inner.get_range(location, range).await
            },
            object_store::OBJECT_STORE_COALESCE_DEFAULT,
        )
        .await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let hook = Arc::clone(&self.hook);
        let checked = locations
            .then(move |location| {
                let hook = Arc::clone(&hook);
                async move {
                    let location = location?;
                    hook.before(Op::Delete, &location).await?;
                    Ok(location)
                }
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.hooked_list(prefix, self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.hooked_list(prefix, self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.hook.before(Op::List, prefix.unwrap_or(&Path::default())).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.hook.before(Op::Copy, to).await?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.hook.before(Op::Rename, to).await?;
        self.inner.rename_opts(from, to, options).await
    }
}

impl<H: RequestHook> HookedStore<H> {
    fn hooked_list(
        &self,
        prefix: Option<&Path>,
        inner: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let hook = Arc::clone(&self.hook);
        let prefix = prefix.cloned().unwrap_or_default();
        futures::stream::once(async move {
            match hook.before(Op::List, &prefix).await {
                Ok(()) => inner,
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

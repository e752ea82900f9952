//! Object storage for StrataMQ: opening stores from URLs, request hooks (counting, fault
//! injection), object paths, the WAL object codec and the block cache.
//!
//! The storage seam is `Arc<dyn ObjectStore>` itself; wrappers add behaviour around it.

pub mod cache;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod counting;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
pub mod hooked;
pub mod location;
pub mod parquet;
pub mod paths;
mod store;
pub mod wal;

pub use cache::{BlockCache, CacheConfig};
pub use error::{Error, Result};
pub use location::{BlockFormat, BlockLocation};
pub use object_store::{self, ObjectStore, path::Path};
pub use store::{S3Options, open_store};

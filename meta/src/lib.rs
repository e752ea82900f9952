//! The coordinator: StrataMQ's small transactional state (topics, groups, queue offsets, the
//! batch index, pop state), behind the [`Coordinator`] trait.

pub mod accounts;
pub mod catalog;
pub mod clock;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod coordinator;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
pub mod lane;
pub mod lite;
mod membership;
pub mod model;
pub mod operations;
pub mod quarantine;
pub mod retry;
mod schema;
mod sql;
pub mod token;

pub use catalog::{AutoCreate, Catalog};
pub use clock::{Clock, ManualClock, OffsetClock, SyncedClock, SystemClock};
pub use coordinator::{
    Accounts, CatalogStore, Consumption, Coordinator, HeldRecords, Lanes, LiteTopics, Log, Maintenance, Members,
    MessageIndex, Operations, TransactionCounts,
};

/// The coordinator's parts, to call their methods on an `Arc<dyn Coordinator>`.
pub mod prelude {
    pub use crate::coordinator::{
        Accounts, CatalogStore, Consumption, Coordinator, HeldRecords, Lanes, LiteTopics, Log, Maintenance, Members,
        MessageIndex, Operations,
    };
}
pub use error::{Error, Result};
pub use membership::Membership;
pub use sql::SqlCoordinator;

//! The coordinator: StrataMQ's small transactional state (topics, groups, queue offsets, the
//! batch index, pop state), behind the [`Coordinator`] trait.

pub mod catalog;
pub mod clock;
pub mod conformance;
mod coordinator;
mod error;
pub mod faults;
mod membership;
pub mod model;
mod schema;
mod sql;
pub mod token;

pub use catalog::{AutoCreate, Catalog};
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use coordinator::{Coordinator, TransactionCounts};
pub use error::{Error, Result};
pub use membership::Membership;
pub use sql::SqlCoordinator;

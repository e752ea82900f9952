//! The coordinator: StrataMQ's small transactional state (topics, groups, queue offsets, the
//! batch index, pop state), behind the [`Coordinator`] trait.

pub mod catalog;
pub mod clock;
pub mod conformance;
mod coordinator;
mod error;
pub mod model;
mod schema;
pub mod sqlite;

pub use catalog::{AutoCreate, Catalog};
pub use clock::{Clock, ManualClock, SystemClock};
pub use coordinator::Coordinator;
pub use error::{Error, Result};
pub use sqlite::SqliteCoordinator;

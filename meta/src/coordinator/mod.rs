//! The coordinator seam, in parts named for what they hold (DESIGN §5): the catalog, the
//! log, consumption, held records, maintenance, members, accounts, lite topics, lanes,
//! admin operations and the message index. One SQL implementation serves SQLite (embedded) and PostgreSQL (cluster), both
//! held to the same conformance suite.

mod accounts;
mod catalog;
mod consume;
mod held;
mod index;
mod lanes;
mod lite;
mod log;
mod maintain;
mod members;
mod operations;

pub use accounts::Accounts;
pub use catalog::CatalogStore;
pub use consume::Consumption;
pub use held::HeldRecords;
pub use index::MessageIndex;
pub use lanes::Lanes;
pub use lite::LiteTopics;
pub use log::Log;
pub use maintain::Maintenance;
pub use members::Members;
pub use operations::Operations;

/// The whole coordinator: every part, as one object (`Arc<dyn Coordinator>`). Call its
/// methods with the parts in scope: `use strata_meta::prelude::*`.
pub trait Coordinator:
    CatalogStore
    + Log
    + Consumption
    + HeldRecords
    + Maintenance
    + Members
    + Accounts
    + LiteTopics
    + Lanes
    + Operations
    + MessageIndex
    + std::fmt::Debug
{
}

impl<
    T: CatalogStore
        + Log
        + Consumption
        + HeldRecords
        + Maintenance
        + Members
        + Accounts
        + LiteTopics
        + Lanes
        + Operations
        + MessageIndex
        + std::fmt::Debug,
> Coordinator for T
{
}

/// How many transactions a coordinator ran (a statement outside a transaction counts as one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransactionCounts {
    pub all: u64,
    /// Of those, on the write path (SQLite: each one an fsync of its journal). PostgreSQL
    /// serves reads and writes from one pool: there every transaction counts as a write.
    pub writes: u64,
}

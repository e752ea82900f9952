//! Tenancy: who may do what. The 5.x AK/SK request signature ([`signature`]), the HTTP
//! listener's request signature and console sessions ([`http_auth`]), secret keys
//! sealed at rest ([`vault`]), the per-request check of both against the ACL ([`guard`]) and
//! reserved + burst quotas ([`quota`]), and metering: usage counted per tenant and hour
//! ([`meter`]) and kept as Parquet in the object store ([`metering`]).
//! Accounts live in the coordinator (`strata_meta::Accounts`).

pub mod error;
pub mod guard;
pub mod http_auth;
pub mod meter;
pub mod metering;
pub mod quota;
pub mod signature;
pub mod vault;

pub use error::{Error, Result, Unauthenticated};
pub use guard::{Guard, GuardConfig, Need, Principal, RootCredentials};
pub use meter::Meter;
pub use quota::{Charge, Limits, Quotas};
pub use signature::DateWindow;
pub use vault::Vault;

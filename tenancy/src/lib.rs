//! Tenancy: who may do what. The 5.x AK/SK request signature ([`signature`]), secret keys
//! sealed at rest ([`vault`]) and the per-request check of both against the ACL ([`guard`]).
//! Accounts live in the coordinator (`strata_meta::Accounts`).

pub mod error;
pub mod guard;
pub mod signature;
pub mod vault;

pub use error::{Error, Result, Unauthenticated};
pub use guard::{Guard, GuardConfig, Need, Principal, RootCredentials};
pub use signature::DateWindow;
pub use vault::Vault;

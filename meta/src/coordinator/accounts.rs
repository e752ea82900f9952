//! Tenants, users and the grants of the ACL.

use crate::accounts::{Grant, Tenant, User};
use crate::error::Result;
use async_trait::async_trait;

/// Tenants, users and the grants of the ACL. Read by every node through short-lived caches
/// (the auth layer's), written only by admin calls.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates a tenant; `AlreadyExists` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()>;

    /// Changes a tenant's quota; `TenantNotFound` if there is none.
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()>;

    async fn tenant(&self, name: &str) -> Result<Option<Tenant>>;

    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Creates a user; `AlreadyExists` if its access key, or its name in the tenant, is taken.
    async fn create_user(&self, user: &User) -> Result<()>;

    async fn user_by_access_key(&self, access_key: &str) -> Result<Option<User>>;

    async fn list_users(&self, tenant: &str) -> Result<Vec<User>>;

    /// Deletes a user and its grants; false if there was none.
    async fn delete_user(&self, tenant: &str, name: &str) -> Result<bool>;

    /// Adds `grant.actions` to what the user may do on the resource; returns the grant as it
    /// now stands. `UserNotFound` if the user does not exist.
    async fn grant(&self, grant: &Grant) -> Result<Grant>;

    /// Takes `grant.actions` away (the grant goes when none is left); returns what remains.
    async fn revoke(&self, grant: &Grant) -> Result<Option<Grant>>;

    /// Every grant of the tenant, or of one of its users.
    async fn grants(&self, tenant: &str, user: Option<&str>) -> Result<Vec<Grant>>;
}

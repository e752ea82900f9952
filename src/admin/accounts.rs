//! The admin API's accounts: tenants, users, grants, and who may call the admin API.

use strata_meta::accounts::{Actions, Grant, Tenant, User};
use strata_proto::admin;
use strata_tenancy::{Error as AuthError, Principal};
use tonic::{Request, Status};

use super::{Admin, to_status};

/// An auth refusal as the admin API's gRPC status.
pub(super) fn auth_status(e: AuthError) -> Status {
    match e {
        AuthError::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
        AuthError::Forbidden(_) | AuthError::CrossTenant { .. } => Status::permission_denied(e.to_string()),
        AuthError::Meta(m) => to_status(m),
        _ => Status::internal(e.to_string()),
    }
}

/// Length of generated access keys and secret keys (62 symbols each: ~119 and ~238 bits).
const ACCESS_KEY_LEN: usize = 20;
const SECRET_KEY_LEN: usize = 40;

/// `n` letters and digits from `random` bytes (rejection sampling keeps them uniform).
fn key_from(random: &[u8], n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random
        .iter()
        .filter(|b| usize::from(**b) < 248) // 248 = 4 × 62
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .take(n)
        .collect()
}

fn tenant_out(t: Tenant) -> admin::Tenant {
    admin::Tenant {
        name: t.name,
        reserved_tps: t.reserved_tps,
        burst_tps: t.burst_tps,
        created_ms: t.created_ms,
    }
}

fn user_out(u: User) -> admin::User {
    admin::User {
        namespace: u.tenant,
        name: u.name,
        access_key: u.access_key,
        admin: u.admin,
        created_ms: u.created_ms,
    }
}

fn grant_out(g: Grant) -> admin::Grant {
    admin::Grant {
        namespace: g.tenant,
        user: g.user,
        resource: g.resource,
        actions: g.actions.names().split(',').map(str::to_string).collect(),
    }
}

fn grant_in(g: Option<admin::Grant>) -> Result<Grant, Status> {
    let g = g.unwrap_or_default();
    let actions = Actions::parse(&g.actions.join(",")).map_err(to_status)?;
    Ok(Grant {
        tenant: g.namespace,
        user: g.user,
        resource: g.resource,
        actions,
    })
}

impl Admin {
    /// Who sent an admin request.
    pub(super) async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        if let Some(crate::front::Verified(p)) = request.extensions().get() {
            return Ok(p.clone());
        }
        let md = request.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok());
        self.guard
            .authenticate(get("authorization"), get("x-mq-date-time"))
            .await
            .map_err(auth_status)
    }

    /// Authenticates, then requires the operator (root) for calls over every tenant.
    pub(super) async fn root<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.principal(request).await?.authorize_root().map_err(auth_status)
    }

    /// Authenticates, then requires an admin of `tenant`.
    pub(super) async fn tenant_admin<T>(&self, request: &Request<T>, tenant: &str) -> Result<(), Status> {
        self.principal(request)
            .await?
            .authorize_admin(tenant)
            .map_err(auth_status)
    }

    pub(super) async fn add_tenant(
        &self,
        request: Request<admin::CreateTenantRequest>,
    ) -> Result<admin::Tenant, Status> {
        self.root(&request).await?;
        let t = request.into_inner().tenant.unwrap_or_default();
        let tenant = Tenant {
            name: t.name,
            reserved_tps: t.reserved_tps,
            burst_tps: t.burst_tps,
            created_ms: self.catalog.clock().now_ms(),
        };
        self.catalog
            .coordinator()
            .create_tenant(&tenant)
            .await
            .map_err(to_status)?;
        tracing::info!(tenant = %tenant.name, reserved = tenant.reserved_tps, burst = tenant.burst_tps, "tenant created");
        Ok(tenant_out(tenant))
    }

    pub(super) async fn set_quota(
        &self,
        request: Request<admin::UpdateTenantRequest>,
    ) -> Result<admin::Tenant, Status> {
        self.root(&request).await?;
        let t = request.into_inner().tenant.unwrap_or_default();
        let coordinator = self.catalog.coordinator();
        let mut tenant = coordinator
            .tenant(&t.name)
            .await
            .map_err(to_status)?
            .ok_or_else(|| Status::not_found(format!("tenant {:?} not found", t.name)))?;
        tenant.reserved_tps = t.reserved_tps;
        tenant.burst_tps = t.burst_tps;
        coordinator.update_tenant(&tenant).await.map_err(to_status)?;
        self.quotas.forget(&tenant.name);
        tracing::info!(tenant = %tenant.name, reserved = tenant.reserved_tps, burst = tenant.burst_tps, "tenant quota changed");
        Ok(tenant_out(tenant))
    }

    pub(super) async fn tenants(
        &self,
        request: Request<admin::ListTenantsRequest>,
    ) -> Result<Vec<admin::Tenant>, Status> {
        self.root(&request).await?;
        let tenants = self.catalog.coordinator().list_tenants().await.map_err(to_status)?;
        Ok(tenants.into_iter().map(tenant_out).collect())
    }

    pub(super) async fn add_user(
        &self,
        request: Request<admin::CreateUserRequest>,
    ) -> Result<admin::CreateUserResponse, Status> {
        let principal = self.principal(&request).await?;
        let req = request.into_inner();
        principal.authorize_admin(&req.namespace).map_err(auth_status)?;
        let vault = self.guard.vault().ok_or_else(|| {
            Status::failed_precondition(
                "no at-rest key to seal secret keys with: set auth.at_rest_key (STRATA_AUTH_AT_REST_KEY)",
            )
        })?;
        let generated = req.access_key.is_empty() && req.secret_key.is_empty();
        if !generated && (req.access_key.is_empty() || req.secret_key.is_empty()) {
            return Err(Status::invalid_argument(
                "give both --access-key and --secret-key, or neither",
            ));
        }
        let (access_key, secret_key) = if generated {
            let random: [u8; 256] = std::array::from_fn(|_| rand::random());
            (
                key_from(&random[..128], ACCESS_KEY_LEN),
                key_from(&random[128..], SECRET_KEY_LEN),
            )
        } else {
            (req.access_key, req.secret_key)
        };
        let sealed = vault
            .seal(&access_key, secret_key.as_bytes(), rand::random())
            .map_err(auth_status)?;
        let user = User {
            tenant: req.namespace,
            name: req.name,
            access_key,
            sealed_secret: sealed,
            admin: req.admin,
            created_ms: self.catalog.clock().now_ms(),
        };
        self.catalog.coordinator().create_user(&user).await.map_err(to_status)?;
        self.guard.forget_accounts(); // an earlier attempt with this key was cached as unknown
        tracing::info!(tenant = %user.tenant, user = %user.name, access_key = %user.access_key, admin = user.admin, by = %principal.name(), "user created");
        Ok(admin::CreateUserResponse {
            user: Some(user_out(user)),
            secret_key: if generated { secret_key } else { String::new() },
        })
    }

    pub(super) async fn users(&self, request: Request<admin::ListUsersRequest>) -> Result<Vec<admin::User>, Status> {
        let tenant = request.get_ref().namespace.clone();
        self.tenant_admin(&request, &tenant).await?;
        let users = self
            .catalog
            .coordinator()
            .list_users(&tenant)
            .await
            .map_err(to_status)?;
        Ok(users.into_iter().map(user_out).collect())
    }

    pub(super) async fn remove_user(&self, request: Request<admin::DeleteUserRequest>) -> Result<bool, Status> {
        let req = request.get_ref().clone();
        self.tenant_admin(&request, &req.namespace).await?;
        let deleted = self
            .catalog
            .coordinator()
            .delete_user(&req.namespace, &req.name)
            .await
            .map_err(to_status)?;
        self.guard.forget_accounts();
        tracing::info!(tenant = %req.namespace, user = %req.name, deleted, "user deleted");
        Ok(deleted)
    }

    pub(super) async fn add_grant(&self, request: Request<admin::GrantRequest>) -> Result<admin::Grant, Status> {
        let principal = self.principal(&request).await?;
        let grant = grant_in(request.into_inner().grant)?;
        principal.authorize_admin(&grant.tenant).map_err(auth_status)?;
        let merged = self.catalog.coordinator().grant(&grant).await.map_err(to_status)?;
        self.guard.forget_accounts();
        tracing::info!(tenant = %merged.tenant, user = %merged.user, resource = %merged.resource,
            actions = %merged.actions.names(), by = %principal.name(), "grant");
        Ok(grant_out(merged))
    }

    pub(super) async fn remove_grant(
        &self,
        request: Request<admin::RevokeRequest>,
    ) -> Result<Option<admin::Grant>, Status> {
        let principal = self.principal(&request).await?;
        let grant = grant_in(request.into_inner().grant)?;
        principal.authorize_admin(&grant.tenant).map_err(auth_status)?;
        let remaining = self.catalog.coordinator().revoke(&grant).await.map_err(to_status)?;
        self.guard.forget_accounts();
        tracing::info!(tenant = %grant.tenant, user = %grant.user, resource = %grant.resource,
            actions = %grant.actions.names(), by = %principal.name(), "revoke");
        Ok(remaining.map(grant_out))
    }

    pub(super) async fn grants(&self, request: Request<admin::ListGrantsRequest>) -> Result<Vec<admin::Grant>, Status> {
        let req = request.get_ref().clone();
        self.tenant_admin(&request, &req.namespace).await?;
        let user = Some(req.user.as_str()).filter(|u| !u.is_empty());
        let grants = self
            .catalog
            .coordinator()
            .grants(&req.namespace, user)
            .await
            .map_err(to_status)?;
        Ok(grants.into_iter().map(grant_out).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_letters_and_digits() {
        let random: Vec<u8> = (0..=255).collect();
        let key = key_from(&random, 40);
        assert_eq!(key.len(), 40);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(
            key_from(&[255; 64], 20).is_empty(),
            "bytes over 247 are skipped, not biased"
        );
    }
}

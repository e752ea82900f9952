//! SQL of `Accounts`: tenants, users, grants.

use super::*;
use crate::accounts::{Actions, Grant, Tenant, User};

fn tenant_from_row(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        name: row.try_get("name")?,
        reserved_tps: u32::try_from(int(row, "reserved_tps")?).unwrap_or(u32::MAX),
        burst_tps: u32::try_from(int(row, "burst_tps")?).unwrap_or(u32::MAX),
        created_ms: int(row, "created_ms")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        access_key: row.try_get("access_key")?,
        sealed_secret: row.try_get("sealed_secret")?,
        admin: int(row, "admin")? != 0,
        created_ms: int(row, "created_ms")?,
    })
}

fn grant_from_row(row: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        tenant: row.try_get("tenant")?,
        user: row.try_get("user_name")?,
        resource: row.try_get("resource")?,
        actions: Actions(int(row, "actions")?),
    })
}

impl SqlCoordinator {
    async fn grant_row(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, g: &Grant) -> Result<Option<Grant>> {
        sqlx::query("SELECT * FROM grants WHERE tenant = $1 AND user_name = $2 AND resource = $3")
            .bind(&g.tenant)
            .bind(&g.user)
            .bind(&g.resource)
            .fetch_optional(&mut **tx)
            .await?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }
}

#[async_trait]
impl Accounts for SqlCoordinator {
    #[instrument(skip_all, fields(tenant = %tenant.name), err)]
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()> {
        tenant.validate()?;
        let inserted =
            sqlx::query("INSERT INTO tenants (name, reserved_tps, burst_tps, created_ms) VALUES ($1, $2, $3, $4)")
                .bind(&tenant.name)
                .bind(i64::from(tenant.reserved_tps))
                .bind(i64::from(tenant.burst_tps))
                .bind(tenant.created_ms)
                .execute(&self.writer)
                .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                kind: "tenant",
                tenant: tenant.name.clone(),
                name: tenant.name.clone(),
            }),
            other => other.map(drop).map_err(Error::from),
        }
    }

    #[instrument(skip_all, fields(tenant = %tenant.name), err)]
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        tenant.validate()?;
        let updated = sqlx::query("UPDATE tenants SET reserved_tps = $2, burst_tps = $3 WHERE name = $1")
            .bind(&tenant.name)
            .bind(i64::from(tenant.reserved_tps))
            .bind(i64::from(tenant.burst_tps))
            .execute(&self.writer)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::TenantNotFound {
                tenant: tenant.name.clone(),
            });
        }
        Ok(())
    }

    async fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        sqlx::query("SELECT * FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        sqlx::query("SELECT * FROM tenants ORDER BY name")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(tenant = %user.tenant, user = %user.name), err)]
    async fn create_user(&self, user: &User) -> Result<()> {
        user.validate()?;
        let inserted = sqlx::query(
            "INSERT INTO users (access_key, tenant, name, sealed_secret, admin, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.access_key)
        .bind(&user.tenant)
        .bind(&user.name)
        .bind(&user.sealed_secret)
        .bind(i64::from(user.admin))
        .bind(user.created_ms)
        .execute(&self.writer)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                kind: "user (or access key)",
                tenant: user.tenant.clone(),
                name: user.name.clone(),
            }),
            other => other.map(drop).map_err(Error::from),
        }
    }

    async fn user_by_access_key(&self, access_key: &str) -> Result<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE access_key = $1")
            .bind(access_key)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        sqlx::query("SELECT * FROM users WHERE tenant = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    #[instrument(skip(self), err)]
    async fn delete_user(&self, tenant: &str, name: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM grants WHERE tenant = $1 AND user_name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    #[instrument(skip_all, fields(tenant = %grant.tenant, user = %grant.user, resource = %grant.resource), err)]
    async fn grant(&self, grant: &Grant) -> Result<Grant> {
        grant.validate()?;
        if grant.actions.is_empty() {
            return Err(Error::invalid("actions", "name at least one of pub, sub, admin"));
        }
        let mut tx = self.writer.begin().await?;
        let user = sqlx::query("SELECT name FROM users WHERE tenant = $1 AND name = $2")
            .bind(&grant.tenant)
            .bind(&grant.user)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(Error::UserNotFound {
                tenant: grant.tenant.clone(),
                user: grant.user.clone(),
            });
        }
        let merged = match self.grant_row(&mut tx, grant).await? {
            Some(old) => Grant {
                actions: old.actions.union(grant.actions),
                ..old
            },
            None => grant.clone(),
        };
        sqlx::query(
            "INSERT INTO grants (tenant, user_name, resource, actions) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, user_name, resource) DO UPDATE SET actions = excluded.actions",
        )
        .bind(&merged.tenant)
        .bind(&merged.user)
        .bind(&merged.resource)
        .bind(merged.actions.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(merged)
    }

    #[instrument(skip_all, fields(tenant = %grant.tenant, user = %grant.user, resource = %grant.resource), err)]
    async fn revoke(&self, grant: &Grant) -> Result<Option<Grant>> {
        let mut tx = self.writer.begin().await?;
        let Some(old) = self.grant_row(&mut tx, grant).await? else {
            return Ok(None);
        };
        let left = old.actions.without(grant.actions);
        let remains = if left.is_empty() {
            sqlx::query("DELETE FROM grants WHERE tenant = $1 AND user_name = $2 AND resource = $3")
                .bind(&old.tenant)
                .bind(&old.user)
                .bind(&old.resource)
                .execute(&mut *tx)
                .await?;
            None
        } else {
            sqlx::query("UPDATE grants SET actions = $4 WHERE tenant = $1 AND user_name = $2 AND resource = $3")
                .bind(&old.tenant)
                .bind(&old.user)
                .bind(&old.resource)
                .bind(left.0)
                .execute(&mut *tx)
                .await?;
            Some(Grant { actions: left, ..old })
        };
        tx.commit().await?;
        Ok(remains)
    }

    async fn grants(&self, tenant: &str, user: Option<&str>) -> Result<Vec<Grant>> {
        let rows = match user {
            Some(u) => {
                sqlx::query("SELECT * FROM grants WHERE tenant = $1 AND user_name = $2 ORDER BY resource")
                    .bind(tenant)
                    .bind(u)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM grants WHERE tenant = $1 ORDER BY user_name, resource")
                    .bind(tenant)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(grant_from_row).collect()
    }
}

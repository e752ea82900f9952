//! `strata tenant|user|acl|metering`: accounts of a running broker and what they used.

use clap::Subcommand;
use strata_proto::admin as api;

use serde_json::Value;

use super::output::{Format, Output, Rows};
use super::target::{Broker, Credentials, Target, admin_client, connect};
use crate::server::BoxError;

#[derive(Subcommand, Debug)]
pub enum TenantAction {
    /// Creates a tenant with its quota (TPS units: one per started 4 KiB sent or received).
    Create {
        name: String,
        /// TPS paid for whether used or not (0: unlimited).
        #[arg(long, default_value_t = 0)]
        reserved_tps: u32,
        /// The ceiling: above it requests are refused with TOO_MANY_REQUESTS (0: unlimited).
        #[arg(long, default_value_t = 0)]
        burst_tps: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Changes a tenant's quota.
    Update {
        name: String,
        #[arg(long, default_value_t = 0)]
        reserved_tps: u32,
        #[arg(long, default_value_t = 0)]
        burst_tps: u32,
        #[command(flatten)]
        target: Target,
    },
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Creates a user; without --access-key/--secret-key the broker generates them and they
    /// are printed once. This command signs in with STRATA_ACCESS_KEY / STRATA_SECRET_KEY.
    Create {
        name: String,
        /// The tenant the user belongs to.
        #[arg(long, visible_alias = "namespace", default_value = "")]
        tenant: String,
        /// The new user's access key.
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        /// The new user's secret key.
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
        /// May do anything inside its tenant, admin calls included.
        #[arg(long)]
        admin: bool,
        /// The broker's gRPC endpoint (host:port or a URL).
        #[arg(long, default_value = "127.0.0.1:8081", env = "STRATA_ENDPOINT")]
        endpoint: String,
    },
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Deletes a user and its grants.
    Delete {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args, Debug)]
pub struct GrantArgs {
    #[arg(long)]
    user: String,
    /// `topic:NAME` or `group:NAME`; a trailing `*` makes NAME a prefix.
    #[arg(long)]
    resource: String,
    /// Comma-separated: pub, sub, admin.
    #[arg(long)]
    actions: String,
    #[command(flatten)]
    target: Target,
}

impl GrantArgs {
    fn grant(&self) -> api::Grant {
        api::Grant {
            namespace: self.target.namespace.clone(),
            user: self.user.clone(),
            resource: self.resource.clone(),
            actions: self.actions.split(',').map(|a| a.trim().to_string()).collect(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AclAction {
    /// Adds actions to what a user may do on a resource.
    Grant(GrantArgs),
    /// Takes actions away (the grant goes when none is left).
    Revoke(GrantArgs),
    /// Every grant of the tenant (or of one user).
    List {
        #[arg(long, default_value = "")]
        user: String,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
pub enum MeteringAction {
    /// Usage per hour: API calls, messages and bytes in and out, TPS units reserved and
    /// burst, throttled requests, object-store requests, stored GB-hours.
    Show {
        /// Start: RFC 3339 (`2026-12-02T10:00:00Z`) or a time ago (`24h`). Default: 24h.
        #[arg(long, default_value = "24h")]
        from: String,
        /// End: RFC 3339 or a time ago. Default: now.
        #[arg(long, default_value = "0s")]
        to: String,
        /// Every tenant (the operator only).
        #[arg(long)]
        all_tenants: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn metering(action: MeteringAction) -> Result<(), BoxError> {
    let MeteringAction::Show {
        from,
        to,
        all_tenants,
        out,
        target,
    } = action;
    let request = api::MeteringRequest {
        namespace: target.namespace.clone(),
        all_tenants,
        from_ms: super::instant(&from)?,
        to_ms: super::instant(&to)?,
    };
    let records = admin_client(&target)
        .await?
        .metering(request)
        .await?
        .into_inner()
        .records;
    let mut rows = Rows::new(&["tenant", "hour", "metric", "value"]);
    for r in records {
        let hour = match out.output {
            super::output::Format::Json => super::output::time(r.hour_ms),
            super::output::Format::Table => hour_label(r.hour_ms).into(),
        };
        rows.push(vec![r.namespace.into(), hour, r.metric.into(), r.value.into()]);
    }
    rows.print(out.output);
    Ok(())
}

/// The hour a record covers: `2026-12-02T10:00:00Z..11:00:00Z`.
fn hour_label(hour_ms: i64) -> String {
    let start = super::output::time(hour_ms);
    let end = super::output::time(hour_ms + strata_tenancy::meter::HOUR_MS);
    let (start, end) = (start.as_str().unwrap_or("-"), end.as_str().unwrap_or("-"));
    format!("{start}..{}", end.get(11..).unwrap_or(end))
}

fn tenant_of(name: String, reserved_tps: u32, burst_tps: u32) -> Option<api::Tenant> {
    Some(api::Tenant {
        name,
        reserved_tps,
        burst_tps,
        created_ms: 0,
    })
}

pub async fn tenant(action: TenantAction) -> Result<(), BoxError> {
    match action {
        TenantAction::Create {
            name,
            reserved_tps,
            burst_tps,
            target,
        } => {
            let request = api::CreateTenantRequest {
                tenant: tenant_of(name, reserved_tps, burst_tps),
            };
            let created = admin_client(&target).await?.create_tenant(request).await?.into_inner();
            tenant_rows(created.tenant.as_slice()).print(Format::Table);
        }
        TenantAction::Update {
            name,
            reserved_tps,
            burst_tps,
            target,
        } => {
            let request = api::UpdateTenantRequest {
                tenant: tenant_of(name, reserved_tps, burst_tps),
            };
            let updated = admin_client(&target).await?.update_tenant(request).await?.into_inner();
            tenant_rows(updated.tenant.as_slice()).print(Format::Table);
        }
        TenantAction::List { out, target } => {
            let list = admin_client(&target)
                .await?
                .list_tenants(api::ListTenantsRequest {})
                .await?;
            tenant_rows(&list.into_inner().tenants).print(out.output);
        }
    }
    Ok(())
}

pub async fn user(action: UserAction) -> Result<(), BoxError> {
    match action {
        UserAction::Create {
            name,
            tenant,
            access_key,
            secret_key,
            admin,
            endpoint,
        } => {
            let target = Broker {
                endpoint,
                credentials: Credentials::from_env(),
                ca_cert: std::env::var_os("STRATA_CA_CERT").map(Into::into),
            };
            let request = api::CreateUserRequest {
                namespace: tenant,
                name,
                access_key: access_key.unwrap_or_default(),
                secret_key: secret_key.unwrap_or_default(),
                admin,
            };
            let created = connect(&target).await?.create_user(request).await?.into_inner();
            if let Some(u) = created.user {
                user_rows(std::slice::from_ref(&u)).print(Format::Table);
                if !created.secret_key.is_empty() {
                    println!("access key: {}", u.access_key);
                    println!("secret key: {} (shown once; it is stored sealed)", created.secret_key);
                }
            }
        }
        UserAction::List { out, target } => {
            let request = api::ListUsersRequest {
                namespace: target.namespace.clone(),
            };
            let users = admin_client(&target)
                .await?
                .list_users(request)
                .await?
                .into_inner()
                .users;
            user_rows(&users).print(out.output);
        }
        UserAction::Delete { name, target } => {
            let request = api::DeleteUserRequest {
                namespace: target.namespace.clone(),
                name: name.clone(),
            };
            let deleted = admin_client(&target)
                .await?
                .delete_user(request)
                .await?
                .into_inner()
                .deleted;
            if !deleted {
                return Err(format!("no user {name:?} in tenant {:?}", target.namespace).into());
            }
            println!("deleted {name}");
        }
    }
    Ok(())
}

pub async fn acl(action: AclAction) -> Result<(), BoxError> {
    match action {
        AclAction::Grant(args) => {
            let request = api::GrantRequest {
                grant: Some(args.grant()),
            };
            let granted = admin_client(&args.target).await?.grant(request).await?.into_inner();
            grant_rows(granted.grant.as_slice()).print(Format::Table);
        }
        AclAction::Revoke(args) => {
            let request = api::RevokeRequest {
                grant: Some(args.grant()),
            };
            let left = admin_client(&args.target).await?.revoke(request).await?.into_inner();
            match left.remaining {
                Some(g) => grant_rows(&[g]).print(Format::Table),
                None => println!("revoked: {} has no grant left on {}", args.user, args.resource),
            }
        }
        AclAction::List { user, out, target } => {
            let request = api::ListGrantsRequest {
                namespace: target.namespace.clone(),
                user,
            };
            let grants = admin_client(&target)
                .await?
                .list_grants(request)
                .await?
                .into_inner()
                .grants;
            grant_rows(&grants).print(out.output);
        }
    }
    Ok(())
}

fn tenant_rows(tenants: &[api::Tenant]) -> Rows {
    let tps = |n: u32| if n == 0 { Value::from("unlimited") } else { n.into() };
    let mut rows = Rows::new(&["name", "reserved_tps", "burst_tps", "created"]);
    for t in tenants {
        rows.push(vec![
            t.name.clone().into(),
            tps(t.reserved_tps),
            tps(t.burst_tps),
            super::output::time(t.created_ms),
        ]);
    }
    rows
}

fn user_rows(users: &[api::User]) -> Rows {
    let mut rows = Rows::new(&["namespace", "name", "access_key", "role"]);
    for u in users {
        rows.push(vec![
            u.namespace.clone().into(),
            u.name.clone().into(),
            u.access_key.clone().into(),
            if u.admin { "admin" } else { "user" }.into(),
        ]);
    }
    rows
}

fn grant_rows(grants: &[api::Grant]) -> Rows {
    let mut rows = Rows::new(&["namespace", "user", "resource", "actions"]);
    for g in grants {
        rows.push(vec![
            g.namespace.clone().into(),
            g.user.clone().into(),
            g.resource.clone().into(),
            g.actions.join(",").into(),
        ]);
    }
    rows
}

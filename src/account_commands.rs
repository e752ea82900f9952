//! `strata tenant|user|acl|metering`: accounts of a running broker and what they used.

use clap::Subcommand;
use strata_proto::admin as api;

use crate::admin::{grant_line, hour_label, tenant_line, user_line};
use crate::server::BoxError;
use crate::target::{Credentials, Target, admin_client};

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
        target: Target,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
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
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        target: Target,
    },
}

/// An instant given as RFC 3339 or as a duration before now; ms since the epoch.
fn instant(s: &str) -> Result<i64, BoxError> {
    let now = std::time::SystemTime::now();
    let at = match humantime::parse_rfc3339_weak(s) {
        Ok(t) => t,
        Err(_) => now
            .checked_sub(
                humantime::parse_duration(s).map_err(|e| format!("{s:?}: neither RFC 3339 nor a duration: {e}"))?,
            )
            .ok_or_else(|| format!("{s:?} reaches before 1970"))?,
    };
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}

pub async fn metering(action: MeteringAction) -> Result<(), BoxError> {
    let MeteringAction::Show {
        from,
        to,
        all_tenants,
        output,
        target,
    } = action;
    let request = api::MeteringRequest {
        namespace: target.namespace.clone(),
        all_tenants,
        from_ms: instant(&from)?,
        to_ms: instant(&to)?,
    };
    let records = admin_client(&target)
        .await?
        .metering(request)
        .await?
        .into_inner()
        .records;
    match output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "tenant": r.namespace, "hour_ms": r.hour_ms, "metric": r.metric, "value": r.value,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Output::Table => {
            let value = |v: f64| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.6}")
                }
            };
            let lines: Vec<[String; 4]> = records
                .iter()
                .map(|r| {
                    let tenant = if r.namespace.is_empty() {
                        "-".to_string()
                    } else {
                        r.namespace.clone()
                    };
                    [tenant, hour_label(r.hour_ms), r.metric.clone(), value(r.value)]
                })
                .collect();
            let header = ["TENANT", "HOUR (UTC)", "METRIC", "VALUE"].map(str::to_string);
            let mut widths = [0; 4];
            for l in std::iter::once(&header).chain(&lines) {
                for (w, c) in widths.iter_mut().zip(l) {
                    *w = (*w).max(c.len());
                }
            }
            for l in std::iter::once(&header).chain(&lines) {
                println!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                    l[0],
                    l[1],
                    l[2],
                    l[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                );
            }
        }
    }
    Ok(())
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
            if let Some(t) = created.tenant {
                println!("created {}", tenant_line(&t));
            }
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
            if let Some(t) = updated.tenant {
                println!("updated {}", tenant_line(&t));
            }
        }
        TenantAction::List { target } => {
            let list = admin_client(&target)
                .await?
                .list_tenants(api::ListTenantsRequest {})
                .await?;
            for t in list.into_inner().tenants {
                println!("{}", tenant_line(&t));
            }
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
            let target = Target {
                endpoint,
                namespace: tenant.clone(),
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
            let created = admin_client(&target).await?.create_user(request).await?.into_inner();
            if let Some(u) = created.user {
                println!("created {}", user_line(&u));
                if !created.secret_key.is_empty() {
                    println!("access key: {}", u.access_key);
                    println!("secret key: {} (shown once; it is stored sealed)", created.secret_key);
                }
            }
        }
        UserAction::List { target } => {
            let request = api::ListUsersRequest {
                namespace: target.namespace.clone(),
            };
            for u in admin_client(&target)
                .await?
                .list_users(request)
                .await?
                .into_inner()
                .users
            {
                println!("{}", user_line(&u));
            }
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
            if let Some(g) = granted.grant {
                println!("granted {}", grant_line(&g));
            }
        }
        AclAction::Revoke(args) => {
            let request = api::RevokeRequest {
                grant: Some(args.grant()),
            };
            let left = admin_client(&args.target).await?.revoke(request).await?.into_inner();
            match left.remaining {
                Some(g) => println!("remaining {}", grant_line(&g)),
                None => println!("revoked: {} has no grant left on {}", args.user, args.resource),
            }
        }
        AclAction::List { user, target } => {
            let request = api::ListGrantsRequest {
                namespace: target.namespace.clone(),
                user,
            };
            for g in admin_client(&target)
                .await?
                .list_grants(request)
                .await?
                .into_inner()
                .grants
            {
                println!("{}", grant_line(&g));
            }
        }
    }
    Ok(())
}

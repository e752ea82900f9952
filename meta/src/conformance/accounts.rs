//! Accounts: tenants, users, grants.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::accounts::{Actions, Grant, Tenant, User};

/// Every accounts check.
pub async fn run(c: &dyn Coordinator) {
    tenants(c).await;
    users_and_grants(c).await;
}

fn tenant(name: &str, reserved: u32, burst: u32) -> Tenant {
    Tenant {
        name: name.into(),
        reserved_tps: reserved,
        burst_tps: burst,
        created_ms: T0,
    }
}

pub async fn tenants(c: &dyn Coordinator) {
    c.create_tenant(&tenant("conf-acme", 100, 300)).await.unwrap();
    assert!(matches!(
        c.create_tenant(&tenant("conf-acme", 1, 1)).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.create_tenant(&tenant("bad/name", 1, 1)).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        c.tenant("conf-acme").await.unwrap(),
        Some(tenant("conf-acme", 100, 300))
    );
    c.update_tenant(&tenant("conf-acme", 200, 0)).await.unwrap();
    assert_eq!(c.tenant("conf-acme").await.unwrap().unwrap().reserved_tps, 200);
    assert!(matches!(
        c.update_tenant(&tenant("conf-missing", 1, 1)).await,
        Err(Error::TenantNotFound { .. })
    ));
    assert_eq!(c.tenant("conf-missing").await.unwrap(), None);
    let names: Vec<_> = c.list_tenants().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"conf-acme".to_string()));
}

fn user(tenant: &str, name: &str, ak: &str) -> User {
    User {
        tenant: tenant.into(),
        name: name.into(),
        access_key: ak.into(),
        sealed_secret: "00ff".into(),
        admin: false,
        created_ms: T0,
    }
}

fn grant(tenant: &str, user: &str, resource: &str, actions: Actions) -> Grant {
    Grant {
        tenant: tenant.into(),
        user: user.into(),
        resource: resource.into(),
        actions,
    }
}

pub async fn users_and_grants(c: &dyn Coordinator) {
    let t = "conf-users";
    c.create_user(&user(t, "alice", "conf-AK-alice")).await.unwrap();
    c.create_user(&user("conf-users-2", "alice", "conf-AK-alice2"))
        .await
        .unwrap();
    for dup in [user(t, "alice", "conf-AK-other"), user(t, "bob", "conf-AK-alice")] {
        assert!(
            matches!(c.create_user(&dup).await, Err(Error::AlreadyExists { .. })),
            "name and access key are unique"
        );
    }
    let found = c.user_by_access_key("conf-AK-alice").await.unwrap().unwrap();
    assert_eq!(found, user(t, "alice", "conf-AK-alice"));
    assert_eq!(c.user_by_access_key("conf-AK-none").await.unwrap(), None);
    assert_eq!(c.list_users(t).await.unwrap().len(), 1, "users are per tenant");

    let g = c
        .grant(&grant(t, "alice", "topic:orders*", Actions::PUB))
        .await
        .unwrap();
    assert_eq!(g.actions, Actions::PUB);
    let g = c
        .grant(&grant(t, "alice", "topic:orders*", Actions::SUB))
        .await
        .unwrap();
    assert_eq!(g.actions, Actions::PUB.union(Actions::SUB), "grants add up");
    c.grant(&grant(t, "alice", "group:g1", Actions::SUB)).await.unwrap();
    assert!(matches!(
        c.grant(&grant(t, "nobody", "group:g1", Actions::SUB)).await,
        Err(Error::UserNotFound { .. })
    ));
    assert!(matches!(
        c.grant(&grant(t, "alice", "queue:x", Actions::SUB)).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(c.grants(t, Some("alice")).await.unwrap().len(), 2);
    assert!(c.grants("conf-users-2", None).await.unwrap().is_empty());

    let left = c
        .revoke(&grant(t, "alice", "topic:orders*", Actions::PUB))
        .await
        .unwrap();
    assert_eq!(left.map(|g| g.actions), Some(Actions::SUB));
    let left = c
        .revoke(&grant(t, "alice", "topic:orders*", Actions::SUB))
        .await
        .unwrap();
    assert_eq!(left, None, "a grant with no action left goes");
    assert_eq!(c.grants(t, None).await.unwrap().len(), 1);

    assert!(c.delete_user(t, "alice").await.unwrap());
    assert!(!c.delete_user(t, "alice").await.unwrap());
    assert!(c.grants(t, None).await.unwrap().is_empty(), "grants go with their user");
    assert_eq!(c.user_by_access_key("conf-AK-alice").await.unwrap(), None);
}

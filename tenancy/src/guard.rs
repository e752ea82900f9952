//! Who is asking, and may they: verifies a request's signature against the user's secret key
//! and checks the ACL. Users and their grants are cached per access key for [`ACCOUNT_TTL`],
//! so a request costs one HMAC-SHA1 and no coordinator read.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use strata_meta::accounts::{Actions, Grant, ResourceKind, User};
use strata_meta::{Clock, Coordinator};

use crate::error::{Error, Result, Unauthenticated};
use crate::signature::{self, DateWindow};
use crate::vault::Vault;

/// How long a user, its secret and its grants are trusted before they are read again: a
/// revoked grant or deleted user stops working on every node within this time (at once on
/// the node that made the change).
pub const ACCOUNT_TTL: Duration = Duration::from_secs(10);

/// The operator's credentials from the configuration: every tenant, every action.
#[derive(Clone)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// A user with its opened secret and its grants.
pub struct Account {
    pub user: User,
    secret: Vec<u8>,
    pub grants: Vec<Grant>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

/// Who a request comes from.
#[derive(Clone, Debug)]
pub enum Principal {
    /// Authentication is off: every action is allowed (tenants stay apart by namespace).
    Anyone,
    /// The operator from the configuration.
    Root,
    User(Arc<Account>),
}

/// One permission a request needs: any of `actions` on the resource.
#[derive(Clone, Copy, Debug)]
pub struct Need<'a> {
    pub kind: ResourceKind,
    pub name: &'a str,
    pub any_of: Actions,
}

impl<'a> Need<'a> {
    pub fn topic(name: &'a str, any_of: Actions) -> Self {
        Self {
            kind: ResourceKind::Topic,
            name,
            any_of,
        }
    }

    pub fn group(name: &'a str, any_of: Actions) -> Self {
        Self {
            kind: ResourceKind::Group,
            name,
            any_of,
        }
    }
}

impl Principal {
    /// The name logs and errors give.
    pub fn name(&self) -> String {
        match self {
            Principal::Anyone => "anonymous".into(),
            Principal::Root => "root".into(),
            Principal::User(a) => format!("{}/{}", a.user.tenant, a.user.name),
        }
    }

    /// Whether this principal may act in `tenant` at all.
    fn in_tenant(&self, tenant: &str) -> Result<()> {
        match self {
            Principal::User(a) if a.user.tenant != tenant => Err(Error::Forbidden(format!(
                "user {} belongs to tenant {:?}, not {tenant:?}",
                self.name(),
                a.user.tenant
            ))),
            _ => Ok(()),
        }
    }

    /// Checks every need inside `tenant` (deny by default).
    pub fn authorize(&self, tenant: &str, needs: &[Need<'_>]) -> Result<()> {
        self.in_tenant(tenant)?;
        let Principal::User(account) = self else {
            return Ok(());
        };
        if account.user.admin {
            return Ok(());
        }
        for need in needs {
            let allowed = account
                .grants
                .iter()
                .any(|g| g.covers(need.kind, need.name) && g.actions.0 & need.any_of.0 != 0);
            if !allowed {
                return Err(Error::Forbidden(format!(
                    "user {} may not {} on {}{}",
                    self.name(),
                    need.any_of.names().replace(',', " or "),
                    need.kind.prefix(),
                    need.name
                )));
            }
        }
        Ok(())
    }

    /// Admin RPCs on the tenant itself (users, grants, listings): its admins and root.
    pub fn authorize_admin(&self, tenant: &str) -> Result<()> {
        self.in_tenant(tenant)?;
        match self {
            Principal::User(a) if !a.user.admin => Err(Error::Forbidden(format!(
                "user {} is not an admin of tenant {tenant:?}",
                self.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Calls over every tenant (creating tenants, quotas, nodes, quarantine): root only
    /// (and anyone when authentication is off).
    pub fn authorize_root(&self) -> Result<()> {
        match self {
            Principal::User(_) => Err(Error::Forbidden(format!(
                "user {} may not act across tenants; use the operator's credentials",
                self.name()
            ))),
            _ => Ok(()),
        }
    }
}

/// The authentication settings.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    pub enabled: bool,
    pub window: DateWindow,
    pub root: Option<RootCredentials>,
}

pub struct Guard {
    config: GuardConfig,
    coordinator: Arc<dyn Coordinator>,
    vault: Option<Arc<Vault>>,
    clock: Arc<dyn Clock>,
    accounts: Cache<String, Option<Arc<Account>>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// `vault` opens users' secret keys; auth cannot be on without it.
    pub fn new(
        config: GuardConfig,
        coordinator: Arc<dyn Coordinator>,
        vault: Option<Arc<Vault>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if config.enabled && vault.is_none() {
            return Err(Error::BadKey(
                "authentication needs an at-rest key to open users' secret keys",
            ));
        }
        Ok(Self {
            config,
            coordinator,
            vault,
            clock,
            accounts: Cache::builder().max_capacity(100_000).time_to_live(ACCOUNT_TTL).build(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Seals new users' secret keys; None when no at-rest key is configured.
    pub fn vault(&self) -> Option<&Arc<Vault>> {
        self.vault.as_ref()
    }

    /// Who sent a request with these `authorization` and `x-mq-date-time` headers.
    pub async fn authenticate(&self, authorization: Option<&str>, date: Option<&str>) -> Result<Principal> {
        if !self.config.enabled {
            return Ok(Principal::Anyone);
        }
        let claim = match authorization.map(signature::parse).transpose()?.flatten() {
            Some(c) => c,
            None => return Err(Unauthenticated::Missing.into()),
        };
        let date = date.ok_or(Unauthenticated::Malformed("x-mq-date-time is missing"))?;
        let principal = self.principal_of(&claim.access_key).await?;
        if !signature::verify(self.secret_of(&principal), date, &claim.signature) {
            return Err(Unauthenticated::BadSignature.into());
        }
        self.config.window.check(date, self.clock.now_ms())?;
        Ok(principal)
    }

    /// Who sent a 4.x Remoting request carrying `AccessKey` and `Signature` over `content`
    /// (signature::verify_remoting). The 4.x signature covers no date: a captured request can
    /// be replayed, as with Apache RocketMQ's 4.x ACL.
    pub async fn authenticate_remoting(
        &self,
        access_key: Option<&str>,
        signature: Option<&str>,
        content: &[u8],
    ) -> Result<Principal> {
        if !self.config.enabled {
            return Ok(Principal::Anyone);
        }
        let access_key = access_key.filter(|k| !k.is_empty()).ok_or(Unauthenticated::Missing)?;
        let signature = signature.ok_or(Unauthenticated::Malformed("the Signature field is missing"))?;
        let principal = self.principal_of(access_key).await?;
        if !signature::verify_remoting(self.secret_of(&principal), content, signature) {
            return Err(Unauthenticated::BadSignature.into());
        }
        Ok(principal)
    }

    async fn principal_of(&self, access_key: &str) -> Result<Principal> {
        Ok(match &self.config.root {
            Some(root) if root.access_key == access_key => Principal::Root,
            _ => Principal::User(
                self.account(access_key)
                    .await?
                    .ok_or_else(|| Unauthenticated::UnknownKey(access_key.to_string()))?,
            ),
        })
    }

    fn secret_of<'a>(&'a self, principal: &'a Principal) -> &'a [u8] {
        match principal {
            Principal::User(account) => account.secret.as_slice(),
            _ => self.config.root.as_ref().map_or(&[][..], |r| r.secret_key.as_bytes()),
        }
    }

    async fn account(&self, access_key: &str) -> Result<Option<Arc<Account>>> {
        let load = async {
            let Some(user) = self.coordinator.user_by_access_key(access_key).await? else {
                return Ok(None);
            };
            let vault = self.vault.as_ref().ok_or(Error::BadKey("no at-rest key"))?;
            let secret = vault.open(&user.access_key, &user.sealed_secret)?;
            let grants = self.coordinator.grants(&user.tenant, Some(&user.name)).await?;
            Ok(Some(Arc::new(Account { user, secret, grants })))
        };
        self.accounts
            .try_get_with(access_key.to_string(), load)
            .await
            .map_err(|e: Arc<Error>| Arc::try_unwrap(e).unwrap_or_else(Error::Lookup))
    }

    /// Drops every cached account (after this node changed users or grants).
    pub fn forget_accounts(&self) {
        self.accounts.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strata_meta::SqlCoordinator;
    use strata_meta::clock::ManualClock;

    const NOW: i64 = 1_764_700_000_000;

    async fn guard(enabled: bool) -> (Guard, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let c: Arc<dyn Coordinator> = Arc::new(SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap());
        let vault = Arc::new(Vault::new(&[9; 32]));
        for (tenant, name, ak, admin) in [("acme", "alice", "AK-alice", false), ("acme", "boss", "AK-boss", true)] {
            let user = User {
                tenant: tenant.into(),
                name: name.into(),
                access_key: ak.into(),
                sealed_secret: vault.seal(ak, format!("SK-{name}").as_bytes(), [5; 12]).unwrap(),
                admin,
                created_ms: NOW,
            };
            c.create_user(&user).await.unwrap();
        }
        for (resource, actions) in [("topic:orders*", Actions::PUB), ("group:billing", Actions::SUB)] {
            c.grant(&Grant {
                tenant: "acme".into(),
                user: "alice".into(),
                resource: resource.into(),
                actions,
            })
            .await
            .unwrap();
        }
        let config = GuardConfig {
            enabled,
            window: DateWindow {
                max_skew: Duration::from_secs(900),
                local_time: true,
            },
            root: Some(RootCredentials {
                access_key: "AK-root".into(),
                secret_key: "SK-root".into(),
            }),
        };
        let clock = Arc::new(ManualClock::new(NOW));
        (Guard::new(config, c, Some(vault), clock).unwrap(), dir)
    }

    async fn as_user(g: &Guard, ak: &str, sk: &str) -> Result<Principal> {
        let date = signature::date_now(NOW);
        let header = signature::header(ak, sk.as_bytes(), &date);
        g.authenticate(Some(&header), Some(&date)).await
    }

    #[tokio::test]
    async fn right_wrong_and_missing_credentials() {
        let (g, _dir) = guard(true).await;
        assert!(matches!(
            as_user(&g, "AK-alice", "SK-alice").await,
            Ok(Principal::User(_))
        ));
        assert!(matches!(as_user(&g, "AK-root", "SK-root").await, Ok(Principal::Root)));
        for (ak, sk, why) in [
            ("AK-alice", "SK-wrong", Unauthenticated::BadSignature),
            ("AK-root", "SK-wrong", Unauthenticated::BadSignature),
            ("AK-nobody", "x", Unauthenticated::UnknownKey("AK-nobody".into())),
        ] {
            match as_user(&g, ak, sk).await {
                Err(Error::Unauthenticated(u)) => assert_eq!(u, why),
                other => panic!("{ak}: {other:?}"),
            }
        }
        assert!(matches!(
            g.authenticate(None, None).await,
            Err(Error::Unauthenticated(Unauthenticated::Missing))
        ));
        let stale = signature::date_now(NOW - 30 * 3_600_000);
        let header = signature::header("AK-alice", b"SK-alice", &stale);
        assert!(matches!(
            g.authenticate(Some(&header), Some(&stale)).await,
            Err(Error::Unauthenticated(Unauthenticated::DateOutOfWindow { .. }))
        ));
        // Repeats of one header (same second) are fine: only the date is signed.
        for _ in 0..3 {
            as_user(&g, "AK-alice", "SK-alice").await.unwrap();
        }
        let (off, _dir) = guard(false).await;
        assert!(matches!(off.authenticate(None, None).await, Ok(Principal::Anyone)));
    }

    #[tokio::test]
    async fn remoting_signatures_cover_fields_and_body() {
        let (g, _dir) = guard(true).await;
        let content = b"AK-aliceALIYUNordersbody";
        let signed = signature::sign_remoting(b"SK-alice", content);
        let user = g.authenticate_remoting(Some("AK-alice"), Some(&signed), content).await;
        assert!(matches!(user, Ok(Principal::User(_))));
        let root = signature::sign_remoting(b"SK-root", content);
        assert!(matches!(
            g.authenticate_remoting(Some("AK-root"), Some(&root), content).await,
            Ok(Principal::Root)
        ));
        for (ak, sig, body, why) in [
            (
                Some("AK-alice"),
                Some(signed.as_str()),
                &b"AK-aliceALIYUNordersBODY"[..],
                Unauthenticated::BadSignature,
            ),
            (
                Some("AK-alice"),
                Some("not base64!"),
                &content[..],
                Unauthenticated::BadSignature,
            ),
            (
                Some("AK-nobody"),
                Some(signed.as_str()),
                &content[..],
                Unauthenticated::UnknownKey("AK-nobody".into()),
            ),
            (Some(""), Some(signed.as_str()), &content[..], Unauthenticated::Missing),
            (None, None, &content[..], Unauthenticated::Missing),
            (
                Some("AK-alice"),
                None,
                &content[..],
                Unauthenticated::Malformed("the Signature field is missing"),
            ),
        ] {
            match g.authenticate_remoting(ak, sig, body).await {
                Err(Error::Unauthenticated(u)) => assert_eq!(u, why, "{ak:?}"),
                other => panic!("{ak:?}: {other:?}"),
            }
        }
        let (off, _dir) = guard(false).await;
        assert!(matches!(
            off.authenticate_remoting(None, None, b"").await,
            Ok(Principal::Anyone)
        ));
    }

    #[tokio::test]
    async fn the_acl_denies_by_default() {
        let (g, _dir) = guard(true).await;
        let alice = as_user(&g, "AK-alice", "SK-alice").await.unwrap();
        let pub_orders = [Need::topic("orders-eu", Actions::PUB)];
        alice.authorize("acme", &pub_orders).unwrap();
        assert!(
            matches!(alice.authorize("other", &pub_orders), Err(Error::Forbidden(_))),
            "another tenant"
        );
        assert!(
            alice
                .authorize("acme", &[Need::topic("orders-eu", Actions::SUB)])
                .is_err(),
            "pub without sub"
        );
        assert!(
            alice
                .authorize("acme", &[Need::topic("payments", Actions::PUB)])
                .is_err()
        );
        let receive = [
            Need::topic("orders", Actions::SUB),
            Need::group("billing", Actions::SUB),
        ];
        assert!(alice.authorize("acme", &receive).is_err(), "every need must hold");
        alice
            .authorize("acme", &[Need::topic("orders", Actions::PUB.union(Actions::SUB))])
            .unwrap();
        assert!(alice.authorize_admin("acme").is_err());
        assert!(alice.authorize_root().is_err());
        let boss = as_user(&g, "AK-boss", "SK-boss").await.unwrap();
        boss.authorize("acme", &receive).unwrap();
        boss.authorize_admin("acme").unwrap();
        assert!(boss.authorize_admin("other").is_err());
        assert!(boss.authorize_root().is_err());
        let root = as_user(&g, "AK-root", "SK-root").await.unwrap();
        root.authorize("anything", &receive).unwrap();
        root.authorize_root().unwrap();
    }
}

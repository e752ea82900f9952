//! Who is asking, and may they: verifies a request's signature against the user's secret key
//! and checks the ACL. Users and their grants are cached per access key for [`ACCOUNT_TTL`],
//! so a request costs one HMAC-SHA1 and no coordinator read.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use strata_meta::accounts::{Actions, Grant, ResourceKind, User};
use strata_meta::{Clock, Coordinator};

use crate::error::{Error, Result, Unauthenticated};
use crate::http_auth;
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

/// One permission a request needs: any of `actions` on the resource. `any_of` empty: the
/// resource only has to be in the caller's tenant (a producer group, a client id).
#[derive(Clone, Copy, Debug)]
pub struct Need<'a> {
    pub kind: ResourceKind,
    /// The namespace the request wrote beside this name ("" when it wrote none).
    pub namespace: &'a str,
    pub name: &'a str,
    pub any_of: Actions,
}

impl<'a> Need<'a> {
    pub fn topic(name: &'a str, any_of: Actions) -> Self {
        Self {
            kind: ResourceKind::Topic,
            namespace: "",
            name,
            any_of,
        }
    }

    /// A consumer group; a lane's name (`G%L`) needs the permission on its group `G`.
    pub fn group(name: &'a str, any_of: Actions) -> Self {
        Self {
            kind: ResourceKind::Group,
            namespace: "",
            name: strata_meta::lane::group_of(name),
            any_of,
        }
    }

    /// The same need, for a name the request wrote in `namespace`.
    pub fn in_namespace(self, namespace: &'a str) -> Self {
        Self { namespace, ..self }
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

    /// The tenant a request acts in when it names none: a user's own, else the default ("").
    pub fn home(&self) -> &str {
        match self {
            Principal::User(a) => a.user.tenant.as_str(),
            _ => "",
        }
    }

    /// The one tenant a request acts in, and the check of every need there (deny by default).
    /// The request's own namespace (`namespace`, a header) and every namespace written beside
    /// a name in it must agree; none written: the principal's home tenant. A request that
    /// names resources of two tenants is refused whoever sends it, so no field of a request
    /// can reach past the tenant the rest of it was authorized in.
    pub fn admit(&self, namespace: &str, needs: &[Need<'_>]) -> Result<String> {
        let mut tenant: Option<&str> = (!namespace.is_empty()).then_some(namespace);
        for need in needs.iter().filter(|n| !n.namespace.is_empty()) {
            match tenant {
                Some(t) if t != need.namespace => {
                    return Err(Error::CrossTenant {
                        tenant: t.to_string(),
                        resource: format!("{}{}", need.kind.prefix(), need.name),
                        other: need.namespace.to_string(),
                    });
                }
                _ => tenant = Some(need.namespace),
            }
        }
        let tenant = tenant.unwrap_or_else(|| self.home()).to_string();
        self.authorize(&tenant, needs)?;
        Ok(tenant)
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
        for need in needs.iter().filter(|n| !n.any_of.is_empty()) {
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

    /// Who sent an HTTP API request signed as in [`http_auth`]: `authorization`, the
    /// `x-mq-date-time` header (UTC, within the configured skew), and the request's method,
    /// target and body digest.
    pub async fn authenticate_http(
        &self,
        authorization: Option<&str>,
        request: &http_auth::SignedRequest<'_>,
    ) -> Result<Principal> {
        if !self.config.enabled {
            return Ok(Principal::Anyone);
        }
        let claim = http_auth::parse(authorization.ok_or(Unauthenticated::Missing)?)?;
        if request.date.is_empty() {
            return Err(Unauthenticated::Malformed("x-mq-date-time is missing").into());
        }
        let principal = self.principal_of(&claim.access_key).await?;
        if !request.verify(self.secret_of(&principal), &claim.signature) {
            return Err(Unauthenticated::BadSignature.into());
        }
        // HTTP callers write the date in UTC: no allowance for clients' local-time quirks.
        let strict = DateWindow {
            local_time: false,
            ..self.config.window
        };
        strict.check(request.date, self.clock.now_ms())?;
        Ok(principal)
    }

    /// Refuses an HTTP request whose `authorization` is missing, malformed or names an
    /// unknown access key, before its body is read: only a caller with a real access key gets
    /// as far as sending a body up to the listener's limit.
    pub async fn precheck_http(&self, authorization: Option<&str>) -> Result<()> {
        if !self.config.enabled {
            return Ok(());
        }
        let claim = http_auth::parse(authorization.ok_or(Unauthenticated::Missing)?)?;
        self.principal_of(&claim.access_key).await.map(|_| ())
    }

    /// Who logs in to the console with this access key and secret key.
    pub async fn login(&self, access_key: &str, secret_key: &str) -> Result<Principal> {
        if !self.config.enabled {
            return Ok(Principal::Anyone);
        }
        let principal = self.principal_of(access_key).await?;
        // Compared as MACs of one text, in constant time.
        let probe = http_auth::session_token(access_key, secret_key.as_bytes(), 0);
        if !http_auth::verify_session(&probe, self.secret_of(&principal)) {
            return Err(Unauthenticated::BadSignature.into());
        }
        Ok(principal)
    }

    /// A console session cookie for `principal` (logged in with `access_key`), valid for
    /// `ttl`; None when authentication is off.
    pub fn session(&self, principal: &Principal, access_key: &str, ttl: Duration) -> Option<String> {
        if matches!(principal, Principal::Anyone) {
            return None;
        }
        let expires = self
            .clock
            .now_ms()
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        Some(http_auth::session_token(access_key, self.secret_of(principal), expires))
    }

    /// Who holds this console session cookie.
    pub async fn authenticate_session(&self, token: Option<&str>) -> Result<Principal> {
        if !self.config.enabled {
            return Ok(Principal::Anyone);
        }
        let token = token.ok_or(Unauthenticated::Missing)?;
        let (access_key, expires_ms) = http_auth::parse_session(token)?;
        let principal = self.principal_of(access_key).await?;
        if !http_auth::verify_session(token, self.secret_of(&principal)) {
            return Err(Unauthenticated::BadSignature.into());
        }
        if expires_ms < self.clock.now_ms() {
            return Err(Unauthenticated::Expired.into());
        }
        Ok(principal)
    }

    /// The 5.x `authorization` and `x-mq-date-time` headers that make a gRPC request on
    /// behalf of `principal`, authenticated here already (the HTTP front hands its requests
    /// to the gRPC handlers, and through them to other nodes, this way). None when
    /// authentication is off.
    pub fn delegate(&self, principal: &Principal) -> Option<(String, String)> {
        let access_key = match principal {
            Principal::Anyone => return None,
            Principal::Root => self.config.root.as_ref()?.access_key.as_str(),
            Principal::User(a) => a.user.access_key.as_str(),
        };
        let date = signature::date_now(self.clock.now_ms());
        let header = signature::header(access_key, self.secret_of(principal), &date);
        Some((header, date))
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
    async fn http_requests_sessions_and_delegation() {
        let (g, _dir) = guard(true).await;
        let date = signature::date_now(NOW);
        let digest = http_auth::body_digest(b"{}");
        let request = http_auth::SignedRequest {
            method: "GET",
            target: "/api/v1/namespaces/acme/topics",
            date: &date,
            namespace: "acme",
            body_digest: &digest,
        };
        let header = request.header("AK-alice", b"SK-alice");
        let alice = g.authenticate_http(Some(&header), &request).await.unwrap();
        assert_eq!(alice.name(), "acme/alice");
        let forged = request.header("AK-alice", b"SK-guess");
        assert!(matches!(
            g.authenticate_http(Some(&forged), &request).await,
            Err(Error::Unauthenticated(Unauthenticated::BadSignature))
        ));
        let stale_date = signature::date_now(NOW - 3_600_000);
        let stale = http_auth::SignedRequest {
            date: &stale_date,
            ..request
        };
        let header = stale.header("AK-alice", b"SK-alice");
        assert!(matches!(
            g.authenticate_http(Some(&header), &stale).await,
            Err(Error::Unauthenticated(Unauthenticated::DateOutOfWindow { .. }))
        ));
        assert!(matches!(
            g.authenticate_http(None, &stale).await,
            Err(Error::Unauthenticated(Unauthenticated::Missing))
        ));

        let boss = g.login("AK-boss", "SK-boss").await.unwrap();
        assert!(g.login("AK-boss", "SK-alice").await.is_err());
        assert!(g.login("AK-nobody", "x").await.is_err());
        let cookie = g.session(&boss, "AK-boss", Duration::from_secs(60)).unwrap();
        assert_eq!(g.authenticate_session(Some(&cookie)).await.unwrap().name(), "acme/boss");
        let expired = http_auth::session_token("AK-boss", b"SK-boss", NOW - 1);
        assert!(matches!(
            g.authenticate_session(Some(&expired)).await,
            Err(Error::Unauthenticated(Unauthenticated::Expired))
        ));
        let forged = http_auth::session_token("AK-boss", b"SK-alice", NOW + 60_000);
        assert!(g.authenticate_session(Some(&forged)).await.is_err());

        for principal in [alice, Principal::Root] {
            let (authorization, date) = g.delegate(&principal).unwrap();
            let again = g.authenticate(Some(&authorization), Some(&date)).await.unwrap();
            assert_eq!(
                again.name(),
                principal.name(),
                "a delegated request is the same principal"
            );
        }
        let (open, _dir) = guard(false).await;
        assert!(open.delegate(&Principal::Anyone).is_none());
        assert!(open.session(&Principal::Anyone, "", Duration::from_secs(1)).is_none());
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
            .authorize("acme", &[Need::group("billing%canary", Actions::SUB)])
            .expect("a lane needs its group's permission");
        assert!(
            alice
                .authorize("acme", &[Need::group("billing2%canary", Actions::SUB)])
                .is_err()
        );
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

    #[tokio::test]
    async fn one_request_acts_in_one_tenant() {
        let (g, _dir) = guard(true).await;
        let boss = as_user(&g, "AK-boss", "SK-boss").await.unwrap();
        let group = |ns| Need::group("billing", Actions::SUB).in_namespace(ns);
        let topic = |ns| Need::topic("orders", Actions::SUB).in_namespace(ns);
        assert_eq!(boss.admit("", &[topic(""), group("")]).unwrap(), "acme", "home tenant");
        assert_eq!(boss.admit("acme", &[topic("acme"), group("")]).unwrap(), "acme");
        for (ns, needs) in [
            ("acme", vec![topic("acme"), group("other")]),
            ("", vec![topic("acme"), group("other")]),
            ("other", vec![topic("acme")]),
        ] {
            match boss.admit(ns, &needs) {
                Err(Error::CrossTenant { tenant, other, .. }) => assert_ne!(tenant, other),
                r => panic!("{ns:?}: {r:?}"),
            }
        }
        assert!(
            matches!(boss.admit("other", &[]), Err(Error::Forbidden(_))),
            "not the user's"
        );
        let root = as_user(&g, "AK-root", "SK-root").await.unwrap();
        assert!(
            matches!(root.admit("a", &[group("b")]), Err(Error::CrossTenant { .. })),
            "two tenants in one request, even for the operator"
        );
        assert_eq!(root.admit("", &[group("b")]).unwrap(), "b");
        let alice = as_user(&g, "AK-alice", "SK-alice").await.unwrap();
        let in_tenant_only = Need::group("any-producer-group", Actions::default());
        assert_eq!(
            alice.admit("", &[in_tenant_only]).unwrap(),
            "acme",
            "no action: tenant only"
        );
        assert!(alice.admit("other", &[in_tenant_only]).is_err());
    }
}

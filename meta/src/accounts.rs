//! Accounts: tenants with their quotas, users with their keys, and the grants of the ACL.

use crate::error::{Error, Result};
use crate::model::validate_tenant;

/// A tenant (instance) and its quota in TPS units (docs/tenancy.md): one unit per started
/// 4 KiB of a message sent or received. `reserved_tps` is paid for whether used or not;
/// traffic between it and `burst_tps` is allowed and metered as burst; above `burst_tps` it
/// is refused. 0 means unlimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub reserved_tps: u32,
    pub burst_tps: u32,
    pub created_ms: i64,
}

impl Tenant {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.name)?;
        if self.burst_tps != 0 && self.burst_tps < self.reserved_tps {
            return Err(Error::invalid(
                "burst TPS",
                format!(
                    "{} is below the reserved {} (the ceiling includes the reserved part)",
                    self.burst_tps, self.reserved_tps
                ),
            ));
        }
        Ok(())
    }
}

/// A user of a tenant. The secret key is stored sealed (encrypted at rest by the auth layer;
/// the coordinator never sees it in the clear).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub tenant: String,
    pub name: String,
    pub access_key: String,
    /// The sealed secret key, hex.
    pub sealed_secret: String,
    /// May do anything inside its tenant, admin RPCs included.
    pub admin: bool,
    pub created_ms: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// Longest user name and access key.
pub const MAX_USER_LEN: usize = 64;
pub const MAX_ACCESS_KEY_LEN: usize = 128;

impl User {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        check_token("user name", &self.name, MAX_USER_LEN)?;
        check_token("access key", &self.access_key, MAX_ACCESS_KEY_LEN)
    }
}

/// Letters, digits, '_', '-' and '.', 1..=max of them: what fits in the signature header's
/// `Credential=` without quoting.
fn check_token(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(Error::invalid(what, format!("must be 1 to {max} characters")));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Error::invalid(
            what,
            format!("{s:?} contains {c:?}; allowed are letters, digits, '_', '-' and '.'"),
        ));
    }
    Ok(())
}

/// What a grant allows: a bit set of `PUB`, `SUB`, `ADMIN`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Actions(pub i64);

impl Actions {
    pub const PUB: Actions = Actions(1);
    pub const SUB: Actions = Actions(2);
    pub const ADMIN: Actions = Actions(4);
    const NAMES: [(Actions, &'static str); 3] =
        [(Actions::PUB, "pub"), (Actions::SUB, "sub"), (Actions::ADMIN, "admin")];

    pub fn contains(self, other: Actions) -> bool {
        other.0 != 0 && self.0 & other.0 == other.0
    }

    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    pub fn without(self, other: Actions) -> Actions {
        Actions(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `pub,sub` → PUB|SUB; unknown names are errors.
    pub fn parse(list: &str) -> Result<Actions> {
        let mut actions = Actions::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (a, _) = Actions::NAMES
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| Error::invalid("action", format!("{name:?} is not one of pub, sub, admin")))?;
            actions = actions.union(*a);
        }
        if actions.is_empty() {
            return Err(Error::invalid("actions", "name at least one of pub, sub, admin"));
        }
        Ok(actions)
    }

    /// `pub,sub`.
    pub fn names(self) -> String {
        Actions::NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a grant is on: `topic:NAME` or `group:NAME`; a trailing `*` makes NAME a prefix
/// (`topic:*` is every topic of the tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub tenant: String,
    pub user: String,
    pub resource: String,
    pub actions: Actions,
}

/// The kinds of resource a grant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Topic,
    Group,
}

impl ResourceKind {
    pub fn prefix(self) -> &'static str {
        match self {
            ResourceKind::Topic => "topic:",
            ResourceKind::Group => "group:",
        }
    }
}

/// Checks a grant's resource pattern: `topic:` or `group:`, then a name of RocketMQ's
/// characters with an optional trailing `*`.
pub fn validate_resource_pattern(pattern: &str) -> Result<()> {
    let name = [ResourceKind::Topic, ResourceKind::Group]
        .iter()
        .find_map(|k| pattern.strip_prefix(k.prefix()))
        .ok_or_else(|| Error::invalid("resource", format!("{pattern:?} must start with topic: or group:")))?;
    let name = name.strip_suffix('*').unwrap_or(name);
    if name.contains('*') {
        return Err(Error::invalid("resource", format!("{pattern:?}: '*' may only end it")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(Error::invalid("resource", format!("{pattern:?} contains {c:?}")));
    }
    if pattern.len() > 300 {
        return Err(Error::invalid("resource", "longer than 300 characters"));
    }
    Ok(())
}

impl Grant {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        check_token("user name", &self.user, MAX_USER_LEN)?;
        validate_resource_pattern(&self.resource)
    }

    /// Whether this grant covers the resource `kind:name`.
    pub fn covers(&self, kind: ResourceKind, name: &str) -> bool {
        let Some(pattern) = self.resource.strip_prefix(kind.prefix()) else {
            return false;
        };
        match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(resource: &str) -> Grant {
        Grant {
            tenant: "t".into(),
            user: "u".into(),
            resource: resource.into(),
            actions: Actions::PUB,
        }
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(grant("topic:orders").covers(ResourceKind::Topic, "orders"));
        assert!(!grant("topic:orders").covers(ResourceKind::Topic, "orders2"));
        assert!(!grant("topic:orders").covers(ResourceKind::Group, "orders"));
        assert!(grant("topic:ord*").covers(ResourceKind::Topic, "orders"));
        assert!(grant("topic:*").covers(ResourceKind::Topic, "anything"));
        assert!(!grant("group:g*").covers(ResourceKind::Group, "other"));
        for bad in ["orders", "topic:a*b", "queue:x", "topic:a b", "topic:**"] {
            assert!(validate_resource_pattern(bad).is_err(), "{bad}");
        }
        for good in ["topic:*", "group:g1", "topic:%DLQ%g", "topic:a-b_c*"] {
            assert!(validate_resource_pattern(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn actions_parse_and_print() {
        let a = Actions::parse("pub, SUB").unwrap();
        assert!(a.contains(Actions::PUB) && a.contains(Actions::SUB) && !a.contains(Actions::ADMIN));
        assert_eq!(a.names(), "pub,sub");
        assert!(Actions::parse("write").is_err());
        assert!(Actions::parse("").is_err());
        assert!(
            !Actions::default().contains(Actions::default()),
            "nothing allows nothing"
        );
        assert_eq!(a.without(Actions::PUB), Actions::SUB);
    }

    #[test]
    fn user_names_and_keys_are_checked() {
        let user = User {
            tenant: "t".into(),
            name: "alice".into(),
            access_key: "AK.1-x_y".into(),
            sealed_secret: String::new(),
            admin: false,
            created_ms: 0,
        };
        assert!(user.validate().is_ok());
        assert!(
            User {
                access_key: "a,b".into(),
                ..user.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            User {
                name: String::new(),
                ..user
            }
            .validate()
            .is_err()
        );
        let t = Tenant {
            name: "t".into(),
            reserved_tps: 100,
            burst_tps: 50,
            created_ms: 0,
        };
        assert!(t.validate().is_err(), "a ceiling below the reserved rate");
    }
}

//! 4.x clients name a tenant by prefixing resource names with its namespace
//! (`{namespace}%{name}`, and `%RETRY%{namespace}%{group}` for broker topics). A name without
//! one belongs to the signed-in user's tenant (the default tenant without authentication).

use strata_meta::accounts::Actions;
use strata_meta::model::{DLQ_PREFIX, RETRY_PREFIX};
use strata_tenancy::Need;

/// A resource name as the client sent it, split into tenant and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub tenant: String,
    pub name: String,
    /// Whether the client wrote the namespace (names sent back are written the same way).
    pub prefixed: bool,
}

impl Named {
    /// The namespace the client wrote ("" when it wrote none).
    fn namespace(&self) -> &str {
        if self.prefixed { &self.tenant } else { "" }
    }

    /// What naming this topic with any of `actions` needs.
    pub fn topic(&self, actions: Actions) -> Need<'_> {
        Need::topic(&self.name, actions).in_namespace(self.namespace())
    }

    /// What naming this group with any of `actions` needs.
    pub fn group(&self, actions: Actions) -> Need<'_> {
        Need::group(&self.name, actions).in_namespace(self.namespace())
    }

    /// `name`, another resource of this tenant, as this client writes names.
    pub fn client_name(&self, name: &str) -> String {
        if self.prefixed {
            join(&self.tenant, name)
        } else {
            name.to_string()
        }
    }
}

/// Splits a name as a client sent it; `default_tenant` when it names none.
pub fn split(raw: &str, default_tenant: &str) -> Named {
    let (prefix, rest) = [RETRY_PREFIX, DLQ_PREFIX]
        .into_iter()
        .find_map(|p| raw.strip_prefix(p).map(|rest| (p, rest)))
        .unwrap_or(("", raw));
    match rest.split_once('%') {
        Some((tenant, name)) if !tenant.is_empty() => Named {
            tenant: tenant.to_string(),
            name: format!("{prefix}{name}"),
            prefixed: true,
        },
        _ => Named {
            tenant: default_tenant.to_string(),
            name: raw.to_string(),
            prefixed: false,
        },
    }
}

/// The name a client of `tenant` knows a resource by.
pub fn join(tenant: &str, name: &str) -> String {
    if tenant.is_empty() {
        return name.to_string();
    }
    for p in [RETRY_PREFIX, DLQ_PREFIX] {
        if let Some(rest) = name.strip_prefix(p) {
            return format!("{p}{tenant}%{rest}");
        }
    }
    format!("{tenant}%{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_split_and_join() {
        for (raw, tenant, name) in [
            ("orders", "", "orders"),
            ("shop%orders", "shop", "orders"),
            ("%RETRY%g", "", "%RETRY%g"),
            ("%RETRY%shop%g", "shop", "%RETRY%g"),
            ("%DLQ%shop%g", "shop", "%DLQ%g"),
        ] {
            let n = split(raw, "");
            assert_eq!((n.tenant.as_str(), n.name.as_str()), (tenant, name), "{raw}");
            assert_eq!(join(tenant, name), raw);
            assert_eq!(n.client_name(name), raw);
        }
        let signed_in = split("orders", "acme");
        assert_eq!(
            (signed_in.tenant.as_str(), signed_in.client_name("x").as_str()),
            ("acme", "x")
        );
    }
}

//! 4.x clients name a tenant by prefixing resource names with its namespace
//! (`{namespace}%{name}`, and `%RETRY%{namespace}%{group}` for broker topics).

use strata_meta::model::{DLQ_PREFIX, RETRY_PREFIX};

/// A resource name as the client sent it, split into tenant and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub tenant: String,
    pub name: String,
}

pub fn split(raw: &str) -> Named {
    let (prefix, rest) = [RETRY_PREFIX, DLQ_PREFIX]
        .into_iter()
        .find_map(|p| raw.strip_prefix(p).map(|rest| (p, rest)))
        .unwrap_or(("", raw));
    match rest.split_once('%') {
        Some((tenant, name)) if !tenant.is_empty() => Named {
            tenant: tenant.to_string(),
            name: format!("{prefix}{name}"),
        },
        _ => Named {
            tenant: String::new(),
            name: raw.to_string(),
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
            let n = split(raw);
            assert_eq!((n.tenant.as_str(), n.name.as_str()), (tenant, name), "{raw}");
            assert_eq!(join(tenant, name), raw);
        }
    }
}

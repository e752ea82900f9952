//! Subscription filter expressions: tags (`*`, `A`, `A || B`) and SQL92 on properties.

use std::collections::HashSet;

use strata_proto::v2;
use strata_proto::wal::WalRecord;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    All,
    Tags(HashSet<String>),
    Sql(crate::sql92::Expr),
}

impl Filter {
    pub fn parse(expr: Option<&v2::FilterExpression>) -> Result<Self> {
        let Some(expr) = expr else { return Ok(Filter::All) };
        match v2::FilterType::try_from(expr.r#type) {
            Ok(v2::FilterType::Sql) => crate::sql92::parse(&expr.expression)
                .map(Filter::Sql)
                .map_err(|e| Error::IllegalFilter(format!("{:?}: {e}", expr.expression))),
            Ok(v2::FilterType::Tag) | Ok(v2::FilterType::Unspecified) => Self::parse_tags(&expr.expression),
            Err(_) => Err(Error::IllegalFilter(format!("unknown filter type {}", expr.r#type))),
        }
    }

    pub fn parse_tags(expression: &str) -> Result<Self> {
        let e = expression.trim();
        if e.is_empty() || e == "*" {
            return Ok(Filter::All);
        }
        let tags: HashSet<String> = e.split("||").map(|t| t.trim().to_string()).collect();
        if tags.iter().any(|t| t.is_empty() || t == "*") {
            return Err(Error::IllegalFilter(format!(
                "{expression:?}: tags must not be empty or '*' inside '||'"
            )));
        }
        Ok(Filter::Tags(tags))
    }

    pub fn matches(&self, record: &WalRecord) -> bool {
        match self {
            Filter::All => true,
            Filter::Tags(tags) => record.tag.as_ref().is_some_and(|t| tags.contains(t)),
            Filter::Sql(expr) => expr.matches(&|name| match name {
                "TAGS" => record.tag.clone(),
                _ => record.user_properties.get(name).cloned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tag: Option<&str>) -> WalRecord {
        WalRecord {
            tag: tag.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn tag_expressions() {
        let f = Filter::parse_tags("TagA || TagB").unwrap();
        assert!(f.matches(&tagged(Some("TagA"))));
        assert!(f.matches(&tagged(Some("TagB"))));
        assert!(!f.matches(&tagged(Some("TagC"))));
        assert!(!f.matches(&tagged(None)));
        assert_eq!(Filter::parse_tags(" * ").unwrap(), Filter::All);
        assert_eq!(Filter::parse_tags("").unwrap(), Filter::All);
        assert!(Filter::All.matches(&tagged(None)));
        assert!(Filter::parse_tags("A||").is_err());
        let sql = |e: &str| v2::FilterExpression {
            r#type: v2::FilterType::Sql as i32,
            expression: e.into(),
        };
        let f = Filter::parse(Some(&sql("a > 1 AND TAGS = 'TagA'"))).unwrap();
        let mut r = tagged(Some("TagA"));
        r.user_properties.insert("a".into(), "2".into());
        assert!(f.matches(&r));
        r.user_properties.insert("a".into(), "0".into());
        assert!(!f.matches(&r));
        assert!(matches!(Filter::parse(Some(&sql("a >"))), Err(Error::IllegalFilter(_))));
    }
}

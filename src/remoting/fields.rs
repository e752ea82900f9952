//! A request's named fields, and the refusal a Remoting reply carries.

use std::collections::BTreeMap;
use std::str::FromStr;

use strata_proto::v2::{self, Code};
use strata_remoting::codes::response;

/// A request answered with an error code and a remark saying why.
#[derive(Debug)]
pub struct Refusal {
    pub code: i32,
    pub remark: String,
}

impl Refusal {
    pub fn new(code: i32, remark: impl Into<String>) -> Self {
        Self {
            code,
            remark: remark.into(),
        }
    }

    /// The one place a gRPC status (what the roles' errors map to, front::status) becomes a
    /// Remoting response code.
    pub fn from_status(s: &v2::Status) -> Self {
        let code = match Code::try_from(s.code) {
            Ok(Code::TopicNotFound) => response::TOPIC_NOT_EXIST,
            Ok(Code::ConsumerGroupNotFound) => response::SUBSCRIPTION_GROUP_NOT_EXIST,
            Ok(Code::IllegalFilterExpression) => response::SUBSCRIPTION_PARSE_FAILED,
            Ok(Code::Unauthorized | Code::Forbidden) => response::NO_PERMISSION,
            Ok(Code::TooManyRequests) => response::SYSTEM_BUSY,
            Ok(Code::OffsetNotFound) => response::QUERY_NOT_FOUND,
            Ok(Code::InvalidTransactionId) => response::TRANSACTION_FAILED,
            _ if (40000..50000).contains(&s.code) => response::MESSAGE_ILLEGAL,
            _ => response::SYSTEM_ERROR,
        };
        Self::new(code, s.message.clone())
    }

    pub fn from_auth(e: &strata_tenancy::Error) -> Self {
        Self::from_status(&crate::front::status::from_auth(e))
    }

    pub fn from_meta(e: &strata_meta::Error) -> Self {
        Self::from_status(&crate::front::status::from_meta(e))
    }

    pub fn from_query(e: &strata_query::Error) -> Self {
        Self::from_status(&crate::front::status::from_query(e))
    }

    pub fn from_ingest(e: &strata_ingest::Error) -> Self {
        Self::from_status(&crate::front::status::from_ingest(e))
    }
}

/// A message that cannot be written in the 4.x layout (a topic or properties too long for it).
impl From<strata_remoting::Error> for Refusal {
    fn from(e: strata_remoting::Error) -> Self {
        Self::new(response::SYSTEM_ERROR, e.to_string())
    }
}

pub type Handled<T> = Result<T, Refusal>;

/// Reads a request's ext fields by name, refusing a missing or malformed one.
pub struct Fields<'a>(pub &'a BTreeMap<String, String>);

impl<'a> Fields<'a> {
    pub fn opt(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn str(&self, name: &str) -> Handled<&'a str> {
        self.opt(name)
            .ok_or_else(|| Refusal::new(response::SYSTEM_ERROR, format!("the request has no field {name:?}")))
    }

    pub fn num<T: FromStr>(&self, name: &str) -> Handled<T> {
        let v = self.str(name)?;
        v.trim().parse().map_err(|_| {
            Refusal::new(
                response::SYSTEM_ERROR,
                format!("field {name:?} = {v:?} is not a number"),
            )
        })
    }

    pub fn num_or<T: FromStr>(&self, name: &str, default: T) -> Handled<T> {
        match self.opt(name) {
            None | Some("") => Ok(default),
            Some(_) => self.num(name),
        }
    }

    /// A boolean written as `true`/`false` (Java) or `1`/`0` (C++).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.opt(name), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_or_refuse() {
        let map: BTreeMap<String, String> = [("a", "12"), ("b", "x"), ("c", "1"), ("d", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = Fields(&map);
        assert_eq!(f.num::<i32>("a").ok(), Some(12));
        assert!(f.num::<i32>("b").is_err());
        assert!(f.num::<i32>("missing").is_err());
        assert_eq!(f.num_or::<i32>("d", 7).ok(), Some(7));
        assert!(f.flag("c") && !f.flag("a"));
        let overflow: BTreeMap<String, String> = [("n".to_string(), "99999999999".to_string())].into();
        assert!(
            Fields(&overflow).num::<i32>("n").is_err(),
            "overflowing numbers are refused"
        );
    }

    #[test]
    fn statuses_map_to_remoting_codes() {
        let s = |code: Code| v2::Status {
            code: code as i32,
            message: "m".into(),
        };
        assert_eq!(
            Refusal::from_status(&s(Code::TopicNotFound)).code,
            response::TOPIC_NOT_EXIST
        );
        assert_eq!(Refusal::from_status(&s(Code::Forbidden)).code, response::NO_PERMISSION);
        assert_eq!(
            Refusal::from_status(&s(Code::MessageBodyTooLarge)).code,
            response::MESSAGE_ILLEGAL
        );
        assert_eq!(
            Refusal::from_status(&s(Code::InternalServerError)).code,
            response::SYSTEM_ERROR
        );
    }
}

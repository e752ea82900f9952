//! Credentials on the HTTP listener (docs/http-api.md): a signed request for API callers, a
//! signed session cookie for the web console.
//!
//! Request: `authorization: STRATA-HMAC-SHA256 Credential=AK, Signature=HEX` and
//! `x-mq-date-time: DATE`, where HEX is HMAC-SHA256 keyed with the secret key over
//! `METHOD \n PATH?QUERY \n DATE \n NAMESPACE \n hex(SHA-256(body))` (NAMESPACE: the
//! `x-mq-namespace` header, "" without one). Unlike the 5.x gRPC signature (the date only),
//! it binds the request's method, target, tenant and body, so a captured request cannot be
//! replayed against another resource, in another tenant or with another body, only as itself
//! within the clock window.
//!
//! Session: `AK:EXPIRES_MS:HEX`, HEX = HMAC-SHA256(secret key, `console \n AK \n EXPIRES_MS`).
//! Nothing is stored: any node verifies it with the user's secret; deleting the user or
//! changing its key ends its sessions.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Unauthenticated;

/// The HTTP API's signature algorithm.
pub const ALGORITHM: &str = "STRATA-HMAC-SHA256";

/// What an HTTP `authorization` header claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClaim {
    pub access_key: String,
    pub signature: Vec<u8>,
}

/// Parses `STRATA-HMAC-SHA256 Credential=AK, Signature=HEX`.
pub fn parse(header: &str) -> Result<HttpClaim, Unauthenticated> {
    let rest = header
        .trim()
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or(Unauthenticated::Malformed("the algorithm is not STRATA-HMAC-SHA256"))?;
    let (mut access_key, mut signature) = (None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => access_key = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => {}
        }
    }
    let access_key = access_key
        .filter(|k| !k.is_empty())
        .ok_or(Unauthenticated::Malformed("Credential (the access key) is missing"))?;
    let signature = hex::decode(signature.unwrap_or_default())
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or(Unauthenticated::Malformed("Signature is missing or not hex"))?;
    Ok(HttpClaim {
        access_key: access_key.to_string(),
        signature,
    })
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(part);
    }
    mac
}

/// hex(SHA-256(body)): the body digest the signature covers.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The text a request signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path and query exactly as sent (`/api/v1/...?a=b`).
    pub target: &'a str,
    pub date: &'a str,
    /// The `x-mq-namespace` header ("" without one): the tenant the request acts in.
    pub namespace: &'a str,
    /// [`body_digest`] of the body as sent.
    pub body_digest: &'a str,
}

impl SignedRequest<'_> {
    fn mac(&self, secret: &[u8]) -> Hmac<Sha256> {
        mac(
            secret,
            &[
                self.method.as_bytes(),
                self.target.as_bytes(),
                self.date.as_bytes(),
                self.namespace.as_bytes(),
                self.body_digest.as_bytes(),
            ],
        )
    }

    /// Whether `signature` signs this request with `secret` (constant time).
    pub fn verify(&self, secret: &[u8], signature: &[u8]) -> bool {
        self.mac(secret).verify_slice(signature).is_ok()
    }

    /// The `authorization` header for this request (callers and tests sign with it).
    pub fn header(&self, access_key: &str, secret: &[u8]) -> String {
        let signature = hex::encode(self.mac(secret).finalize().into_bytes());
        format!("{ALGORITHM} Credential={access_key}, Signature={signature}")
    }
}

/// A console session's cookie value, valid until `expires_ms`.
pub fn session_token(access_key: &str, secret: &[u8], expires_ms: i64) -> String {
    let expires = expires_ms.to_string();
    let mac = mac(secret, &[b"console", access_key.as_bytes(), expires.as_bytes()]);
    format!("{access_key}:{expires}:{}", hex::encode(mac.finalize().into_bytes()))
}

/// What a session cookie claims: its access key and expiry, checked by [`verify_session`].
pub fn parse_session(token: &str) -> Result<(&str, i64), Unauthenticated> {
    let malformed = Unauthenticated::Malformed("the session cookie is malformed");
    let mut parts = token.splitn(3, ':');
    let (Some(access_key), Some(expires), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed);
    };
    let expires = expires.parse().map_err(|_| malformed.clone())?;
    if access_key.is_empty() {
        return Err(malformed);
    }
    Ok((access_key, expires))
}

/// Whether `token` was signed with `secret` (constant time).
pub fn verify_session(token: &str, secret: &[u8]) -> bool {
    let Some((claimed, signature)) = token.rsplit_once(':') else {
        return false;
    };
    let Some((access_key, expires)) = claimed.split_once(':') else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    mac(secret, &[b"console", access_key.as_bytes(), expires.as_bytes()])
        .verify_slice(&signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(digest: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            target: "/api/v1/namespaces/ns/topics/t/messages",
            date: "20261203T120000Z",
            namespace: "ns",
            body_digest: digest,
        }
    }

    #[test]
    fn a_signature_binds_method_target_date_namespace_and_body() {
        let digest = body_digest(b"{\"messages\":[]}");
        let signed = request(&digest);
        let claim = parse(&signed.header("AK1", b"secret")).unwrap();
        assert_eq!(claim.access_key, "AK1");
        assert!(signed.verify(b"secret", &claim.signature));
        assert!(!signed.verify(b"other", &claim.signature));
        let other_body = body_digest(b"{}");
        for changed in [
            SignedRequest {
                method: "PUT",
                ..request(&digest)
            },
            SignedRequest {
                target: "/api/v1/namespaces/ns/topics/u/messages",
                ..request(&digest)
            },
            SignedRequest {
                date: "20261203T120001Z",
                ..request(&digest)
            },
            SignedRequest {
                namespace: "other",
                ..request(&digest)
            },
            SignedRequest {
                namespace: "",
                ..request(&digest)
            },
            request(&other_body),
        ] {
            assert!(!changed.verify(b"secret", &claim.signature));
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "MQv2-HMAC-SHA1 Credential=AK, Signature=00",
            "STRATA-HMAC-SHA256",
            "STRATA-HMAC-SHA256X Credential=AK, Signature=00",
            "STRATA-HMAC-SHA256 Credential=, Signature=00",
            "STRATA-HMAC-SHA256 Credential=AK, Signature=zz",
            "STRATA-HMAC-SHA256 Credential=AK",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sessions_verify_only_with_the_same_key_and_expiry() {
        let token = session_token("AK1", b"secret", 1_800_000_000_000);
        assert_eq!(parse_session(&token).unwrap(), ("AK1", 1_800_000_000_000));
        assert!(verify_session(&token, b"secret"));
        assert!(!verify_session(&token, b"other"));
        let extended = token.replace("1800000000000", "1900000000000");
        assert!(!verify_session(&extended, b"secret"), "the expiry is signed");
        for bad in ["", "AK1", "AK1:x:00", ":1:00"] {
            assert!(
                parse_session(bad).is_err() || !verify_session(bad, b"secret"),
                "{bad:?}"
            );
        }
    }
}

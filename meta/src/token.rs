//! Tokens handed to clients and trusted only after verification: receipt handles,
//! transaction ids, recall handles. A token is `version · fields · HMAC-SHA256(key)[..16]`,
//! base64url; each field is a u16 length and its bytes. The key is a cluster secret kept in
//! the coordinator, so any node verifies any node's tokens, and a forged, altered or foreign
//! token is rejected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;

#[derive(Clone)]
pub struct Sealer {
    key: Vec<u8>,
    /// Distinguishes token kinds: a receipt handle is not a transaction id.
    purpose: u8,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.purpose)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token issued by this cluster")]
    Malformed,
    #[error("signature does not match (forged, altered or from another cluster)")]
    BadSignature,
}

impl Sealer {
    pub fn new(key: Vec<u8>, purpose: u8) -> Self {
        Self { key, purpose }
    }

    fn mac(&self) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(&[self.purpose]);
        mac
    }

    pub fn seal(&self, fields: &[&[u8]]) -> String {
        let mut buf = Vec::with_capacity(1 + fields.iter().map(|f| f.len() + 2).sum::<usize>() + MAC_LEN);
        buf.push(VERSION);
        for f in fields {
            buf.extend_from_slice(&(f.len().min(u16::MAX as usize) as u16).to_be_bytes());
            buf.extend_from_slice(&f[..f.len().min(u16::MAX as usize)]);
        }
        let mut mac = self.mac();
        mac.update(&buf);
        buf.extend_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// The fields of a token this sealer issued.
    pub fn open(&self, token: &str) -> Result<Vec<Vec<u8>>, TokenError> {
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Malformed)?;
        if raw.len() < 1 + MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| TokenError::BadSignature)?;
        if body[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let mut rest = &body[1..];
        let mut fields = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(2).ok_or(TokenError::Malformed)?;
            let len = u16::from_be_bytes([len[0], len[1]]) as usize;
            let (field, tail) = tail.split_at_checked(len).ok_or(TokenError::Malformed)?;
            fields.push(field.to_vec());
            rest = tail;
        }
        Ok(fields)
    }

    /// The fields of a token as UTF-8 strings.
    pub fn open_strings(&self, token: &str) -> Result<Vec<String>, TokenError> {
        self.open(token)?
            .into_iter()
            .map(|f| String::from_utf8(f).map_err(|_| TokenError::Malformed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_refuses_tampering() {
        let s = Sealer::new(vec![1; 32], 7);
        let t = s.seal(&[b"tenant", b"", "tópico".as_bytes()]);
        assert_eq!(s.open_strings(&t).unwrap(), ["tenant", "", "tópico"]);

        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[3] ^= 1;
        assert_eq!(s.open(&URL_SAFE_NO_PAD.encode(&raw)), Err(TokenError::BadSignature));
        assert_eq!(
            Sealer::new(vec![2; 32], 7).open(&t),
            Err(TokenError::BadSignature),
            "another key"
        );
        assert_eq!(
            Sealer::new(vec![1; 32], 8).open(&t),
            Err(TokenError::BadSignature),
            "another purpose"
        );
        for junk in ["", "!!", "AAAA", &t[..t.len() - 3]] {
            assert!(s.open(junk).is_err(), "{junk:?}");
        }
    }
}

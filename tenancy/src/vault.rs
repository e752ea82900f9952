//! Secret keys sealed at rest: AES-256-GCM under a key from the configuration (or a key file
//! the node generates in its data dir), bound to the access key they belong to.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;

pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// A key written as 64 hex digits.
    pub fn from_hex(key: &str) -> Result<Self> {
        let bytes = hex::decode(key.trim()).map_err(|_| Error::BadKey("not hex"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::BadKey("must be 32 bytes (64 hex digits)"))?;
        Ok(Self::new(&key))
    }

    /// The key in `path`, or a new random one (`fresh`) written there, readable by the owner only.
    pub fn load_or_create(path: &Path, fresh: [u8; 32]) -> Result<Self> {
        let io = |source| Error::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, &hex::encode(fresh)).map_err(io)?;
                Ok(Self::new(&fresh))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Seals `secret` for the user with `access_key`, with a fresh random `nonce`; hex.
    pub fn seal(&self, access_key: &str, secret: &[u8], nonce: [u8; NONCE_LEN]) -> Result<String> {
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| Error::Unsealable)?;
        Ok(hex::encode([nonce.as_slice(), &sealed].concat()))
    }

    /// The secret `seal` sealed for `access_key`.
    pub fn open(&self, access_key: &str, sealed: &str) -> Result<Vec<u8>> {
        let bytes = hex::decode(sealed).map_err(|_| Error::Unsealable)?;
        if bytes.len() < NONCE_LEN {
            return Err(Error::Unsealable);
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| Error::Unsealable)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_access_key() {
        let vault = Vault::new(&[7; 32]);
        let sealed = vault.seal("AK1", b"the secret", [1; 12]).unwrap();
        assert!(!sealed.contains(&hex::encode(b"the secret")), "not in the clear");
        assert_eq!(vault.open("AK1", &sealed).unwrap(), b"the secret");
        assert!(
            matches!(vault.open("AK2", &sealed), Err(Error::Unsealable)),
            "moved to another user"
        );
        assert!(matches!(
            Vault::new(&[8; 32]).open("AK1", &sealed),
            Err(Error::Unsealable)
        ));
        assert!(matches!(vault.open("AK1", "00"), Err(Error::Unsealable)));
        assert!(Vault::from_hex("abc").is_err());
    }

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth").join("at-rest.key");
        let first = Vault::load_or_create(&path, [3; 32]).unwrap();
        let sealed = first.seal("AK", b"s", [0; 12]).unwrap();
        let again = Vault::load_or_create(&path, [4; 32]).unwrap();
        assert_eq!(
            again.open("AK", &sealed).unwrap(),
            b"s",
            "the kept key, not the new one"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

//! Access keys as Redis keeps them: the secret sealed with ChaCha20-Poly1305 under a key only the gateways know,
//! bound to the access key id (a sealed value moved to another id does not open).

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use s3ipfs_core::{AccessKey, UserId};
use sha2::Digest as _;

/// Seals and opens access keys for Redis.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// A sealer whose key is derived from `secret` (every replica must be given the same).
    pub fn new(secret: &str) -> Self {
        let digest =
            sha2::Sha256::new_with_prefix(b"s3ipfs cache seal v1\0").chain_update(secret.as_bytes()).finalize();
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest);
        Sealer { cipher: ChaCha20Poly1305::new(&key.into()) }
    }

    /// `nonce ‖ ciphertext` of the key's user and secret.
    pub fn seal(&self, key: &AccessKey) -> Option<Vec<u8>> {
        let nonce: [u8; 12] = rand::random();
        let plain = format!("{}\n{}", key.user.0, key.secret);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: key.id.as_bytes() })
            .ok()?;
        Some([nonce.as_slice(), &sealed].concat())
    }

    /// The access key `id` from what [`seal`](Self::seal) made; `None` if it does not open (another key, tampering).
    pub fn open(&self, id: &str, sealed: &[u8]) -> Option<AccessKey> {
        let (nonce, body) = sealed.split_at_checked(12)?;
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: id.as_bytes() }).ok()?;
        let plain = String::from_utf8(plain).ok()?;
        let (user, secret) = plain.split_once('\n')?;
        Some(AccessKey { id: id.to_owned(), secret: secret.to_owned(), user: UserId(user.parse().ok()?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccessKey {
        AccessKey { id: "GKTEST".into(), secret: "s3cr3t/with\nnewline".into(), user: UserId(7) }
    }

    #[test]
    fn a_sealed_key_opens_under_its_id_and_hides_the_secret() {
        let sealer = Sealer::new("cluster secret");
        let sealed = sealer.seal(&key()).expect("seal");
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"), "the secret is not in the clear");
        assert_eq!(sealer.open("GKTEST", &sealed), Some(key()));
    }

    #[test]
    fn a_sealed_key_does_not_open_under_another_id_key_or_after_tampering() {
        let sealer = Sealer::new("cluster secret");
        let mut sealed = sealer.seal(&key()).expect("seal");
        assert_eq!(sealer.open("GKOTHER", &sealed), None);
        assert_eq!(Sealer::new("another secret").open("GKTEST", &sealed), None);
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(sealer.open("GKTEST", &sealed), None);
        assert_eq!(sealer.open("GKTEST", b"short"), None);
    }
}

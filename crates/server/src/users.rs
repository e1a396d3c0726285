//! Users and access keys: generation, the first user on first start, `s3ipfs user create`.

use rand::Rng as _;
use rand::distr::Alphanumeric;
use s3ipfs_core::{AccessKey, MetaError, MetaStore, User};

/// A new random key pair for `user`: a 20-character uppercase id and a 40-character secret.
pub fn generate_key(user: &User) -> AccessKey {
    let mut rng = rand::rng();
    let id: String = std::iter::repeat_with(|| rng.sample(Alphanumeric)).take(18).map(char::from).collect();
    let secret: String = std::iter::repeat_with(|| rng.sample(Alphanumeric)).take(40).map(char::from).collect();
    AccessKey { id: format!("GK{}", id.to_ascii_uppercase()), secret, user: user.id }
}

/// Registers `email` with a fresh key pair.
pub async fn create_user(meta: &dyn MetaStore, email: &str) -> Result<AccessKey, MetaError> {
    let user = meta.create_user(email).await?;
    let key = generate_key(&user);
    meta.add_access_key(&key).await?;
    Ok(key)
}

/// What the first start did about the root user.
#[derive(Debug)]
pub enum RootUser {
    /// The root user was created now with a generated key pair, which is printed once.
    Generated(AccessKey),
    /// The root user was created now with the key pair the operator supplied (never printed).
    Configured,
    /// It already existed.
    Existing,
}

/// Makes sure the root user exists, with the given keys if any (added if missing), or a generated pair.
pub async fn ensure_root(meta: &dyn MetaStore, email: &str, keys: Option<(&str, &str)>) -> Result<RootUser, MetaError> {
    let (user, created) = match meta.user_by_email(email).await? {
        Some(user) => (user, false),
        None => (meta.create_user(email).await?, true),
    };
    match keys {
        Some((id, secret)) => {
            let key = AccessKey { id: id.to_owned(), secret: secret.to_owned(), user: user.id };
            match meta.access_key(id).await? {
                Some(existing) if existing.user == user.id && existing.secret == secret => {}
                Some(_) => return Err(MetaError::KeyExists),
                None => meta.add_access_key(&key).await?,
            }
            Ok(if created { RootUser::Configured } else { RootUser::Existing })
        }
        None if created => {
            let key = generate_key(&user);
            meta.add_access_key(&key).await?;
            Ok(RootUser::Generated(key))
        }
        None => Ok(RootUser::Existing),
    }
}

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

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an email address: one @ between a local part and a domain, at most 254 characters, no spaces or control characters"
)]
pub struct InvalidEmail;

/// Checks the shape of an email address (no delivery is attempted).
pub fn check_email(email: &str) -> Result<(), InvalidEmail> {
    let shaped = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.')
        });
    if shaped { Ok(()) } else { Err(InvalidEmail) }
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The address is malformed.
    #[error(transparent)]
    Email(#[from] InvalidEmail),
    /// The metadata store refused it (e.g. the address is taken).
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// Registers `email` with a fresh key pair.
pub async fn create_user(meta: &dyn MetaStore, email: &str) -> Result<AccessKey, CreateUserError> {
    check_email(email)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_shaped_like_email_are_accepted() {
        for good in ["a@b", "alice@example.com", "first.last+tag@sub.example.org"] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in ["", "alice", "@example.com", "alice@", "a b@c", "a\u{1}@b", "a@b@c", "a@.b", long.as_str()] {
            assert_eq!(check_email(bad), Err(InvalidEmail), "{bad:?}");
        }
    }
}

//! API-key secrets: how they are hashed for storage and compared.
//!
//! The secret is stored only as HMAC-SHA256(salt, secret) in hex. A fast hash (rather than a
//! password hash such as bcrypt) is right here: secrets are long random strings, not guessable
//! passwords, and the hash is computed on every authenticated request.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The stored form of a secret key.
pub fn hash_secret(salt: &str, secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a presented secret with a stored hash in constant time.
pub fn secret_matches(salt: &str, presented_secret: &str, stored_hash: &str) -> bool {
    let presented = hash_secret(salt, presented_secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// The masked form shown to people: the prefix and the last four characters.
pub fn display_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// A new key pair in Langfuse's form: `pk-lf-<uuid>` and `sk-lf-<uuid>`, random (v4) UUIDs.
pub fn new_key_pair() -> (String, String) {
    (
        format!("pk-lf-{}", uuid::Uuid::new_v4()),
        format!("sk-lf-{}", uuid::Uuid::new_v4()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_pairs_have_langfuse_prefixes_and_differ() {
        let (public, secret) = new_key_pair();
        assert!(public.starts_with("pk-lf-") && secret.starts_with("sk-lf-"));
        assert_eq!(secret.len(), "sk-lf-".len() + 36);
        assert_ne!(new_key_pair().1, secret);
    }

    #[test]
    fn hashes_depend_on_salt_and_secret() {
        let h = hash_secret("salt", "sk-lf-1");
        assert_eq!(h.len(), 64);
        assert_ne!(h, hash_secret("pepper", "sk-lf-1"));
        assert_ne!(h, hash_secret("salt", "sk-lf-2"));
        assert_eq!(h, hash_secret("salt", "sk-lf-1"));
    }

    #[test]
    fn matching_is_exact() {
        let stored = hash_secret("salt", "sk-lf-secret");
        assert!(secret_matches("salt", "sk-lf-secret", &stored));
        assert!(!secret_matches("salt", "sk-lf-secreT", &stored));
        assert!(!secret_matches("salt", "", &stored));
        assert!(!secret_matches("other", "sk-lf-secret", &stored));
    }

    #[test]
    fn display_form_hides_the_secret() {
        assert_eq!(display_secret("sk-lf-1234567890abcd"), "sk-lf-...abcd");
        assert_eq!(display_secret("short"), "*****");
    }
}

//! People and their rights: roles and what each allows, e-mail addresses, password hashing
//! (argon2id) and the session tokens of the web UI. Pure: no storage, no HTTP.
//!
//! Roles are Langfuse's, ordered OWNER > ADMIN > MEMBER > VIEWER > NONE. A VIEWER reads a
//! project and changes nothing; a MEMBER also writes its data (prompts, scores: later parts); only
//! OWNER and ADMIN manage API keys, members and the project itself. NONE reaches nothing (an
//! organization member who only has roles on some of its projects).

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A member's role in an organization or project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    None,
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    /// The roles a person can be given in the UI, highest first.
    pub const ASSIGNABLE: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
            Role::Viewer => "VIEWER",
            Role::None => "NONE",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "OWNER" => Role::Owner,
            "ADMIN" => Role::Admin,
            "MEMBER" => Role::Member,
            "VIEWER" => Role::Viewer,
            "NONE" => Role::None,
            _ => return None,
        })
    }

    /// Sees the project and its data.
    pub fn can_read(self) -> bool {
        self >= Role::Viewer
    }

    /// Writes the project's data (prompts, scores).
    pub fn can_write(self) -> bool {
        self >= Role::Member
    }

    /// Manages the project, its API keys and its members; creates projects in the organization.
    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }

    /// Whether someone with this role may give `other` to a person, or change or remove a person
    /// who has `other`: only managers, and never above their own role (an ADMIN makes no OWNER).
    pub fn may_assign(self, other: Role) -> bool {
        self.can_manage() && other <= self
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role that applies on a project: the project's own role for the person when there is one,
/// else their organization role (Langfuse's rule).
pub fn effective_role(org_role: Role, project_role: Option<Role>) -> Role {
    project_role.unwrap_or(org_role)
}

/// Why a change to someone's membership is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipRefusal {
    /// The actor does not manage members, or the role involved is above their own.
    NotPermitted,
    /// It would leave the organization without an owner.
    LastOwner,
}

/// Whether an actor with role `actor` may change a member who has `current` to `new` (`None`:
/// remove them), when the organization has `owners` owners. Managers only, never above their own
/// role on either side, and an organization always keeps one owner.
pub fn check_membership_change(
    actor: Role,
    current: Role,
    new: Option<Role>,
    owners: usize,
) -> Result<(), MembershipRefusal> {
    if !actor.may_assign(current) || new.is_some_and(|role| !actor.may_assign(role)) {
        return Err(MembershipRefusal::NotPermitted);
    }
    if current == Role::Owner && new != Some(Role::Owner) && owners <= 1 {
        return Err(MembershipRefusal::LastOwner);
    }
    Ok(())
}

/// An e-mail address as accounts are keyed: trimmed and lower-cased. Refuses what is plainly not
/// an address; whether mail reaches it is not this server's business (it sends none).
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err("Enter a valid email address.")
    }
}

/// The shortest password accepted (Langfuse's rule).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// A bound on what is hashed: argon2 takes any length, and a megabyte password would be a cheap
/// way to make the server work.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Whether `password` may be set; the reason, for the form, when not.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The password must have at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "The password must have at most {MAX_PASSWORD_BYTES} bytes."
        ));
    }
    Ok(())
}

/// The argon2id hash of `password` in PHC string form, with a fresh random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

/// Whether `password` matches `stored`, a PHC string (the comparison is argon2's, in constant time).
/// A malformed stored hash matches nothing.
pub fn password_matches(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the account does not exist, so that an unknown address costs as
/// much time as a wrong password and timing does not tell which addresses have accounts.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password for unknown accounts").expect("argon2 with a random salt")
    })
}

/// A new random token (256 bits, base64url): a session cookie's value or a form's CSRF token.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a session token: its SHA-256 in hex. The token is random and long, so a fast
/// hash suffices; what matters is that the stored value does not sign anyone in.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        for role in [
            Role::Owner,
            Role::Admin,
            Role::Member,
            Role::Viewer,
            Role::None,
        ] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Member > Role::Viewer && Role::Viewer > Role::None);
    }

    #[test]
    fn what_each_role_may_do() {
        assert!(Role::Viewer.can_read() && !Role::Viewer.can_write());
        assert!(!Role::Viewer.can_manage() && !Role::Member.can_manage());
        assert!(Role::Member.can_write());
        assert!(Role::Admin.can_manage() && Role::Owner.can_manage());
        assert!(!Role::None.can_read());
        assert!(Role::Admin.may_assign(Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Member.may_assign(Role::Viewer));
    }

    #[test]
    fn a_project_role_overrides_the_organization_role() {
        assert_eq!(effective_role(Role::Viewer, None), Role::Viewer);
        assert_eq!(effective_role(Role::Viewer, Some(Role::Admin)), Role::Admin);
        assert_eq!(effective_role(Role::Owner, Some(Role::None)), Role::None);
    }

    #[test]
    fn membership_changes_keep_an_owner_and_stay_within_the_actors_role() {
        use MembershipRefusal::*;
        let check = check_membership_change;
        assert_eq!(
            check(Role::Owner, Role::Viewer, Some(Role::Admin), 1),
            Ok(())
        );
        assert_eq!(
            check(Role::Owner, Role::Owner, Some(Role::Admin), 1),
            Err(LastOwner)
        );
        assert_eq!(check(Role::Owner, Role::Owner, None, 1), Err(LastOwner));
        assert_eq!(check(Role::Owner, Role::Owner, None, 2), Ok(()));
        assert_eq!(
            check(Role::Owner, Role::Owner, Some(Role::Owner), 1),
            Ok(())
        );
        assert_eq!(
            check(Role::Admin, Role::Member, Some(Role::Owner), 1),
            Err(NotPermitted)
        );
        assert_eq!(check(Role::Admin, Role::Owner, None, 3), Err(NotPermitted));
        assert_eq!(
            check(Role::Admin, Role::Viewer, Some(Role::Admin), 1),
            Ok(())
        );
        assert_eq!(
            check(Role::Member, Role::Viewer, None, 1),
            Err(NotPermitted)
        );
        assert_eq!(
            check(Role::Viewer, Role::Viewer, Some(Role::Viewer), 1),
            Err(NotPermitted)
        );
    }

    #[test]
    fn emails_are_keyed_in_lower_case() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "a b@x.com",
            "a@b@c",
            "a@.x",
            "a@x.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horsE", &hash));
        assert!(!password_matches("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
        assert!(!password_matches("x", decoy_password_hash()));
    }

    #[test]
    fn new_passwords_have_a_length_between_bounds() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}

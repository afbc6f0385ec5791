//! What the kernel and the events call things: the enforced roles' names by
//! the id the kernel knows each by, and the kernel's hash of a host name.
//! A leaf: the policy's writers ([`super::kernel`], [`super::llm_endpoints`])
//! and its readers ([`super::rate`], the events) share these without
//! depending on each other.

use std::sync::{Arc, RwLock};

use plumbline_ebpf::abi::{NAME_HASH_BASIS, NAME_HASH_PRIME};

use super::policy::Policy;

/// The enforced roles' names, by the id the kernel knows each by (0: none).
/// Cloning shares them: a reloaded policy renames for every holder.
#[derive(Debug, Clone, Default)]
pub struct RoleNames(Arc<RwLock<Vec<String>>>);

impl RoleNames {
    pub fn of(&self, role: u32) -> String {
        let names = self.0.read().unwrap_or_else(|e| e.into_inner());
        names.get(role as usize).filter(|n| !n.is_empty()).cloned().unwrap_or_else(|| format!("role {role}"))
    }

    /// The names of `policy`'s roles, from now on.
    pub fn set(&self, policy: &Policy) {
        let names = std::iter::once(String::new()).chain(policy.roles.iter().map(|r| r.name.clone())).collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = names;
    }
}

/// The kernel's hash of `host` (`api.example.com`) in DNS wire form: each
/// label after its length byte, lower case, hashed from the last byte to the
/// first (`PLB_NAME_HASH` in the ABI header).
pub fn name_hash(host: &str) -> u64 {
    let mut wire = Vec::with_capacity(host.len() + 1);
    for label in host.trim_end_matches('.').split('.') {
        wire.push(label.len() as u8);
        wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    wire.iter().rev().fold(NAME_HASH_BASIS, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(NAME_HASH_PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffix_s_hash_is_on_the_way_to_the_hash_of_every_name_below_it() {
        // The kernel hashes a name from its end and looks up each label's
        // start: the hash of `example.com` is met while hashing `api.example.com`.
        let wire = b"\x03api\x07example\x03com";
        let mut hash = NAME_HASH_BASIS;
        let mut at_label = Vec::new();
        for (i, byte) in wire.iter().enumerate().rev() {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(NAME_HASH_PRIME);
            if i == 0 || i == 4 || i == 12 {
                at_label.push(hash);
            }
        }
        assert_eq!(at_label, [name_hash("com"), name_hash("Example.COM."), name_hash("api.example.com")]);
        assert_ne!(name_hash("example.com"), name_hash("examplecom"));
    }

    #[test]
    fn a_role_without_a_name_is_named_by_its_id() {
        let names = RoleNames::default();
        let policy = Policy::parse(
            "[[roles]]\nname = \"r\"\n[[workloads]]\nrole = \"r\"\nfield = \"PROCESS_NAME\"\npattern = \"x\"\n",
        )
        .unwrap();
        names.set(&policy);
        assert_eq!((names.of(1).as_str(), names.of(0).as_str(), names.of(7).as_str()), ("r", "role 0", "role 7"));
    }
}

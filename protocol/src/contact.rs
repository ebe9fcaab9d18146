//! Contact strings: how an operator tells another city where its node is.
//!
//! `labnet://<NodeId>@<host>:<port>`, printed by `labnet id` and read by
//! `labnet peers add`. The NodeId pins the key, so a wrong or hijacked address
//! can make a dial fail but can never make it reach the wrong node.

use std::fmt;
use std::str::FromStr;

use crate::node_id::{NodeId, NodeIdError};

/// The URI scheme of contact strings.
pub const CONTACT_SCHEME: &str = "labnet://";

/// The longest host part accepted (a DNS name is at most 253 characters).
const HOST_LEN_MAX: usize = 253;

/// A node's id and where to dial it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Who: the key the dialer will insist on.
    pub node_id: NodeId,
    /// Where: `host:port`.
    pub address: String,
}

/// Why a string is not a contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// It does not start with `labnet://`.
    #[error("a contact starts with {CONTACT_SCHEME} (as printed by `labnet id`)")]
    Scheme,
    /// No `@` between id and address.
    #[error("a contact is labnet://NODEID@HOST:PORT; there is no '@'")]
    MissingAt,
    /// The id part is not a NodeId.
    #[error("the NodeId in the contact is invalid: {0}")]
    NodeId(#[from] NodeIdError),
    /// The address part is not `host:port`.
    #[error("the address in the contact is invalid: {0}")]
    Address(String),
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CONTACT_SCHEME}{}@{}", self.node_id, self.address)
    }
}

/// `text` without `prefix`, if it starts with it in any case: how people
/// paste contact strings and invite tokens.
pub(crate) fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    text.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| text.get(prefix.len()..))
}

impl FromStr for Contact {
    type Err = ContactError;

    fn from_str(s: &str) -> Result<Contact, ContactError> {
        let s = s.trim();
        let rest = strip_prefix_ignore_case(s, CONTACT_SCHEME).ok_or(ContactError::Scheme)?;
        let (id, address) = rest.split_once('@').ok_or(ContactError::MissingAt)?;
        let node_id = id.parse()?;
        validate_address(address).map_err(ContactError::Address)?;
        Ok(Contact {
            node_id,
            address: address.to_string(),
        })
    }
}

/// Checks that `address` is `host:port` with a port from 1 to 65535.
pub fn validate_address(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("'{address}' has no :PORT"))?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(format!("'{port}' is not a port from 1 to 65535")),
        Ok(_) => {}
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.len() > HOST_LEN_MAX {
        return Err("the host is empty or too long".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
    {
        return Err(format!("'{host}' is not a host name or IP address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let id = NodeId::from_public_key(&[3; 32]);
        let c = Contact {
            node_id: id,
            address: "modena.example.org:7447".into(),
        };
        assert_eq!(c.to_string().parse::<Contact>(), Ok(c.clone()));
        let v6 = Contact {
            node_id: id,
            address: "[::1]:7447".into(),
        };
        assert_eq!(v6.to_string().parse::<Contact>(), Ok(v6));
        assert_eq!("http://x@y:1".parse::<Contact>(), Err(ContactError::Scheme));
        assert_eq!(
            format!("labnet://{id}").parse::<Contact>(),
            Err(ContactError::MissingAt)
        );
        assert!(matches!(
            format!("labnet://{id}@host").parse::<Contact>(),
            Err(ContactError::Address(_))
        ));
        assert!(matches!(
            format!("labnet://{id}@host:0").parse::<Contact>(),
            Err(ContactError::Address(_))
        ));
        assert!(matches!(
            "labnet://ABC@host:1".parse::<Contact>(),
            Err(ContactError::NodeId(_))
        ));
    }
}

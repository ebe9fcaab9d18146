//! Fixtures shared by the anonymizer's integration tests.

use labnet_node::lab::{MappingArea, Stakeholder};

/// A roster member known by name only: the one field the anonymizer scrubs
/// from free text, with every other field empty. Tests that need more set
/// those fields over it (`Stakeholder { area, ..stakeholder(name) }`).
pub(crate) fn stakeholder(name: &str) -> Stakeholder {
    Stakeholder {
        name: name.into(),
        organisation: String::new(),
        area: MappingArea::CivilSociety,
        email: String::new(),
        phone: String::new(),
        migrant_background: None,
        nationality: None,
        groups: vec![],
        notes: String::new(),
    }
}

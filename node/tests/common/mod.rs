//! Fixtures shared by the anonymizer's integration tests.

// Each test crate includes this module and uses only some of its fixtures.
#![allow(dead_code)]

use labnet_node::lab::{MappingArea, Practice, Stakeholder};

/// A practice with its id, city and name, every other field at its default.
/// Tests that need more set those fields over it
/// (`Practice { description, ..bare_practice(id, city, name) }`).
pub(crate) fn bare_practice(id: &str, city: &str, name: &str) -> Practice {
    Practice {
        id: id.into(),
        city: city.into(),
        name: name.into(),
        ..Practice::default()
    }
}

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

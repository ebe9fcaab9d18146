//! The import format's tests: whole files, every problem at once, where it is.

use super::*;
use crate::lab::MappingArea;

const PARTNERS: &str = include_str!("../../../data/practices.json");

#[test]
fn partner_practices_import_and_round_trip() {
    let ps = parse_practices(ImportInput::Text(PARTNERS), Some(ImportFormat::Json)).unwrap();
    assert_eq!(ps.len(), 25);
    let json = export_practices_json(&ps).unwrap();
    let again = parse_practices(ImportInput::Text(&json), Some(ImportFormat::Json)).unwrap();
    assert_eq!(ps, again);
}

#[test]
fn json_errors_are_all_collected_with_paths() {
    let text = r#"{"practices": [
        {"id": "a", "city": "C", "name": "N", "thematic_area": "health",
         "indicators": [{"label": "x", "achieved": 1}, {"label": "y", "achieved": "lots"}],
         "internal_note": "x"},
        {"id": "a", "city": "C", "name": "M"}
    ]}"#;
    let errs = parse_practices(ImportInput::Text(text), None)
        .unwrap_err()
        .errors;
    let has = |loc: &str, field: &str| errs.iter().any(|e| e.location == loc && e.field == field);
    assert!(
        has("practices[0].thematic_area", "thematic_area"),
        "{errs:?}"
    );
    assert!(
        has("practices[0].indicators[1].achieved", "achieved"),
        "{errs:?}"
    );
    assert!(has("practices[0]", "internal_note"), "{errs:?}");
    assert!(has("practices[1]", "id"), "{errs:?}");
    assert!(errs
        .iter()
        .all(|e| !e.expected.is_empty() || e.field.is_empty()));
}

#[test]
fn csv_rows_parse_and_errors_name_row_and_line() {
    let text = "city,name,thematic_area,indicators,challenges\n\
                Mechelen,Reference group,education,share|32.7|30|%;people|12||people,a;b\n\
                Mechelen,Other,health,bad|many||people,\n";
    let errs = parse_practices(ImportInput::Text(text), Some(ImportFormat::Csv))
        .unwrap_err()
        .errors;
    assert!(
        errs.iter()
            .any(|e| e.location == "row 2 (line 3).thematic_area"),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.location == "row 2 (line 3).indicators[0].achieved"),
        "{errs:?}"
    );
    let ok = "city,name,indicators,challenges\nMechelen,Reference group,share|32.7|30|%;people|12||people,a;b\n";
    let ps = parse_practices(ImportInput::Text(ok), Some(ImportFormat::Csv)).unwrap();
    assert_eq!(ps[0].id, "mechelen-reference-group");
    assert_eq!(ps[0].indicators[1].achieved, Some(12.0));
    assert_eq!(ps[0].challenges, vec!["a", "b"]);
}

#[test]
fn csv_unknown_column_is_named() {
    let text = "city,name,secret\nA,B,c\n";
    let errs = parse_practices(ImportInput::Text(text), Some(ImportFormat::Csv))
        .unwrap_err()
        .errors;
    assert!(errs
        .iter()
        .any(|e| e.field == "secret" && e.problem == "unknown column"));
}

#[test]
fn roster_parses_and_checks_areas() {
    let ok = r#"{"stakeholders": [{"name": "José Pérez", "area": "economy", "groups": ["lsrg"]}]}"#;
    let r = parse_roster(ImportInput::Text(ok), None).unwrap();
    assert_eq!(r.stakeholders[0].area, MappingArea::Economy);
    let bad = r#"{"stakeholders": [{"name": "X", "area": "sports", "age": 3}]}"#;
    let errs = parse_roster(ImportInput::Text(bad), None)
        .unwrap_err()
        .errors;
    assert!(errs.iter().any(|e| e.location == "stakeholders[0].area"));
    assert!(errs.iter().any(|e| e.field == "age"));
    let csv = "name,area,groups,migrant_background\nAna Ruiz,civil-society,lsrg;board,yes\n";
    let r = parse_roster(ImportInput::Text(csv), Some(ImportFormat::Csv)).unwrap();
    assert_eq!(r.stakeholders[0].groups, vec!["lsrg", "board"]);
    assert_eq!(r.stakeholders[0].migrant_background, Some(true));
}

#[test]
fn slugs_strip_accents() {
    assert_eq!(
        slug("Pont-de-Claix", "Ateliers sociolinguistiques (été)"),
        "pont-de-claix-ateliers-sociolinguistiques-ete"
    );
}

//! Measures over-scrubbing: runs the anonymizer over the 25 partner practices
//! (`node/data/practices.json`, the cities' State-of-the-Art report), with no
//! roster, and prints every word it removed or changed, in context, with the
//! rule that did it.
//!
//! The practices hold no personal data (their summaries were rewritten and
//! their contacts are empty), so every word removed here is a word that was not
//! personal data: the cost of failing closed. Suppressed and rounded figures
//! are listed too, apart.
//!
//! ```text
//! cargo run -p labnet-node --example overscrub [-- PATH/TO/practices.json]
//! ```
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use labnet_node::lab::import::{parse_practices, ImportFormat, ImportInput};
use labnet_node::lab::Roster;
use labnet_node::share::report::Rule;
use labnet_node::share::{anonymize, AnonymizationPolicy};

const PARTNERS: &str = include_str!("../data/practices.json");

/// Rules that change a figure or a date rather than remove words.
fn changes_only(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::DateDay | Rule::CountRounded | Rule::IndicatorRounded | Rule::PrivateField
    )
}

fn is_figure(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::IndicatorBelowMinimum
            | Rule::NumeratorBelowMinimum
            | Rule::DenominatorBelowMinimum
            | Rule::ComputedNumeratorBelowMinimum
            | Rule::RemainderBelowMinimum
            | Rule::TargetBelowMinimum
            | Rule::SecondarySuppression
    )
}

fn main() -> Result<(), String> {
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?,
        None => PARTNERS.to_string(),
    };
    let practices = parse_practices(ImportInput::Text(&text), Some(ImportFormat::Json))
        .map_err(|e| format!("{e:?}"))?;
    let policy = AnonymizationPolicy::default();
    let mut words_removed = 0usize;
    let mut by_rule: BTreeMap<Rule, usize> = BTreeMap::new();
    let mut figures = 0usize;
    let mut changed = 0usize;
    let mut total_words = 0usize;
    for p in &practices {
        let a = anonymize(p, &Roster::default(), &policy).map_err(|e| format!("{}: {e}", p.id))?;
        total_words += serde_json::to_string(&a.practice)
            .map_err(|e| e.to_string())?
            .split_whitespace()
            .count();
        for r in &a.report.removals {
            let kind = if changes_only(r.rule) {
                changed += 1;
                "changed"
            } else if is_figure(r.rule) {
                figures += 1;
                "figure "
            } else {
                // Words a removal took: the original is not in the report, so
                // count each placeholder as one word removed.
                words_removed += 1;
                *by_rule.entry(r.rule).or_default() += 1;
                "REMOVED"
            };
            println!(
                "{kind} {:<40} {:<28} {}",
                p.id,
                format!("{:?}", r.rule),
                r.excerpt
            );
        }
    }
    println!();
    println!(
        "{} practices, about {total_words} published words: {words_removed} piece(s) of text removed that were not personal data, {figures} figure(s) suppressed, {changed} date(s) or count(s) coarsened",
        practices.len()
    );
    for (rule, n) in by_rule {
        println!("  {n:>3} {:?}: {}", rule, rule.describe());
    }
    Ok(())
}

//! Statistical disclosure control for a practice's indicators: primary and
//! secondary suppression, and rounding so that versions cannot be subtracted.
//!
//! Each indicator is a cell. What it counts is read from its unit
//! ([`super::counts::is_people_unit`], [`super::counts::is_percent_unit`]) and
//! from its `numerator` and `denominator`, the raw counts behind a figure,
//! which are used for checking and never published.
//!
//! # Primary suppression
//!
//! A cell's figures are withheld (`suppressed: true`, `achieved` and `target`
//! absent) when:
//!
//! - it counts people (unit `people`, `partecipanti`, `Frauen`..., or no unit)
//!   and `achieved` is below the minimum;
//! - its `numerator` or its `denominator` is below the minimum;
//! - it is a percentage with a denominator and no numerator, and the people it
//!   stands for, computed from them (8.3 % of 12 is 1), are below the minimum;
//! - its remainder, the base minus the count (the people *not* counted), is
//!   above zero and below the minimum: 30 learners "out of 33 enrolled" tells
//!   that 3 did not move up.
//!
//! A percentage with neither numerator nor denominator is published as given:
//! the city attests its base (FORMAT.md). A planned count of people (`target`)
//! below the minimum is withheld alone.
//!
//! # Totals and parts: secondary suppression
//!
//! The model has no separate "total" field, so a relation is read from what
//! the cities already write:
//!
//! - a cell *declares its total* with its `denominator` (12 women with
//!   `denominator: 15` are a part of 15), or in its label ("out of 33
//!   enrolled", "su 40", "sur 25"; see [`super::counts::label_base`]);
//! - cells that declare the same total are parts of it;
//! - every declared total is taken as known to readers (a base is routinely in
//!   the city's own reports, in another cell or in the label itself), even
//!   though the denominator is not published.
//!
//! A second cell is then suppressed, until nothing changes, wherever a hidden
//! count could be recovered by subtraction:
//!
//! - *pairs*: two published people counts of the practice, or a published count
//!   and a declared total, that differ by more than zero and less than the
//!   minimum: "a total of 15 next to 12 women reveals 3 men" even when the city
//!   declared nothing. The smaller published cell goes;
//! - *parts of a total*: when the parts of a total add up to no more than it
//!   (they may be disjoint), the total minus the published parts is what is
//!   hidden; if that is above zero and below the minimum, the smallest
//!   published part goes too (30 = 15 women + 12 men + 3 suppressed others).
//!
//! Overlapping parts are covered by the pair rule (each part against its total);
//! a subtraction that needs three published cells or more where the parts
//! overlap is not looked for.
//!
//! # Across versions: rounding
//!
//! Peers keep every version of a publication, so two versions of one count
//! must not differ by fewer people than the minimum (15 participants, then 18,
//! says 3 joined). Of the two remedies, holding an update back until the change
//! is large enough and rounding, labnet rounds, as Eurostat does for small
//! cells: every published count of people is a multiple of the minimum
//! (nearest, halves up; 1733 becomes 1730 with the default of 10), and a
//! percentage with a denominator is published as the rounded count over its
//! denominator. Rounding was chosen because:
//!
//! - it holds between *any* two versions a peer holds, not only consecutive
//!   ones: holding back compares with the last version, and a later change back
//!   can still differ by little from an older one;
//! - it is stateless, so the anonymizer stays a pure function of the practice
//!   (the preview equals the share, whatever was published before), and a
//!   re-issued publication with a fresh history is protected the same way;
//! - held-back figures would stay wrong for an unbounded time, with nothing in
//!   the publication saying so; a rounded figure is off by less than half the
//!   minimum, and the preview says it was rounded.
//!
//! Suppression is decided on the true counts, then the published ones are
//! rounded. Free-text counts of people are rounded the same way
//! ([`super::scrub`]). Counts of things (projects, ideas) are published as
//! they are.

use super::counts::{is_people_unit, is_percent_unit, label_base, round_to_base};
use super::report::Rule;
use crate::lab::Indicator;

/// The most indicators one practice may have: the secondary rules compare
/// every pair, repeatedly. A practice past it is refused, not checked in part.
pub const INDICATORS_MAX: usize = 256;

/// Decimals a recomputed percentage is published with.
const PERCENT_DECIMALS_SCALE: f64 = 100.0;

/// What a cell counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// People: its `achieved` is a count of people.
    People,
    /// A percentage.
    Percent,
    /// Something else (projects, ideas): only its numerator and denominator
    /// count people.
    Other,
}

/// One decision on a figure of a cell, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `achieved` or `target`.
    pub field: &'static str,
    /// The rule.
    pub rule: Rule,
    /// Why, with the figures.
    pub reason: String,
}

/// What is published of one indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The published `achieved`.
    pub achieved: Option<f64>,
    /// The published `target`.
    pub target: Option<f64>,
    /// Whether a figure was withheld.
    pub suppressed: bool,
    /// Each rule applied.
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone)]
struct Cell {
    kind: CellKind,
    /// The declared total (denominator, or the base in the label).
    total: Option<f64>,
    /// The people this cell stands for, when known.
    count: Option<f64>,
    suppressed: bool,
}

/// What a cell counts, from its unit.
pub fn kind_of(ind: &Indicator) -> CellKind {
    let unit = ind.unit.as_deref().filter(|u| !u.trim().is_empty());
    if unit.is_some_and(is_percent_unit) {
        CellKind::Percent
    } else if is_people_unit(unit) {
        CellKind::People
    } else {
        CellKind::Other
    }
}

/// Decides what is published of each indicator of a practice (see the module
/// docs). The figures must be finite and not negative; the caller checks.
pub fn decide(indicators: &[Indicator], min_count: u32) -> Vec<Decision> {
    let min = f64::from(min_count);
    let mut cells = Vec::with_capacity(indicators.len());
    let mut out = Vec::with_capacity(indicators.len());
    for ind in indicators {
        let kind = kind_of(ind);
        let total = ind
            .denominator
            .map(|d| d as f64)
            .or_else(|| label_base(&ind.label).map(|b| b as f64));
        let numerator = ind.numerator.map(|n| n as f64);
        let count = match kind {
            CellKind::People => numerator.or(ind.achieved),
            CellKind::Percent => numerator.or_else(|| {
                total
                    .zip(ind.achieved)
                    .map(|(d, a)| (a * d / 100.0).round())
            }),
            CellKind::Other => numerator,
        };
        let mut notes = Vec::new();
        let mut why = |rule: Rule, extra: String| {
            notes.push(Note {
                field: "achieved",
                rule,
                reason: format!("{} ({extra})", rule.describe()),
            })
        };
        if total.is_some_and(|d| d < min) {
            why(
                Rule::DenominatorBelowMinimum,
                format!("minimum {min_count}"),
            );
        }
        if numerator.is_some_and(|n| n < min) {
            why(Rule::NumeratorBelowMinimum, format!("minimum {min_count}"));
        }
        if kind == CellKind::Percent && numerator.is_none() && count.is_some_and(|c| c < min) {
            why(
                Rule::ComputedNumeratorBelowMinimum,
                format!("minimum {min_count}"),
            );
        }
        if kind == CellKind::People && ind.achieved.is_some_and(|a| a < min) {
            why(Rule::IndicatorBelowMinimum, format!("minimum {min_count}"));
        }
        if let (Some(t), Some(c)) = (total, count) {
            let rest = t - c;
            if rest < 0.0 {
                why(
                    Rule::RemainderBelowMinimum,
                    "its count exceeds its base, so it cannot be checked".into(),
                );
            } else if rest > 0.0 && rest < min {
                why(Rule::RemainderBelowMinimum, format!("minimum {min_count}"));
            }
        }
        let suppressed = !notes.is_empty();
        let mut target = ind.target;
        if !suppressed && kind == CellKind::People && target.is_some_and(|t| t < min) {
            notes.push(Note {
                field: "target",
                rule: Rule::TargetBelowMinimum,
                reason: format!(
                    "{} (minimum {min_count})",
                    Rule::TargetBelowMinimum.describe()
                ),
            });
            target = None;
        }
        cells.push(Cell {
            kind,
            total,
            count,
            suppressed,
        });
        out.push(Decision {
            achieved: if suppressed { None } else { ind.achieved },
            target: if suppressed { None } else { target },
            suppressed: suppressed || target != ind.target,
            notes,
        });
    }
    secondary(&mut cells, &mut out, min);
    round(indicators, &cells, &mut out, min_count);
    out
}

/// A published count: a cell not suppressed whose people are known.
fn published(c: &Cell) -> Option<f64> {
    (!c.suppressed && c.kind != CellKind::Other)
        .then_some(c.count)
        .flatten()
}

fn suppress_second(cells: &mut [Cell], out: &mut [Decision], i: usize, why: String) {
    cells[i].suppressed = true;
    out[i].achieved = None;
    out[i].target = None;
    out[i].suppressed = true;
    out[i].notes.push(Note {
        field: "achieved",
        rule: Rule::SecondarySuppression,
        reason: format!("{} ({why})", Rule::SecondarySuppression.describe()),
    });
}

/// The secondary rules, until nothing changes.
fn secondary(cells: &mut [Cell], out: &mut [Decision], min: f64) {
    let small = |d: f64| d > 0.0 && d < min;
    // Each round suppresses a cell or ends, so this ends within n rounds.
    for _ in 0..=cells.len() {
        let mut victim: Option<(usize, String)> = None;
        'pairs: for i in 0..cells.len() {
            let Some(a) = published(&cells[i]) else {
                continue;
            };
            for (j, other) in cells.iter().enumerate() {
                if i == j {
                    continue;
                }
                if let Some(b) = published(other) {
                    if small((a - b).abs()) {
                        // The smaller goes.
                        let v = if a < b { i } else { j };
                        victim = Some((
                            v,
                            format!(
                                "indicators {} and {} differ by fewer than the minimum",
                                i.min(j),
                                i.max(j)
                            ),
                        ));
                        break 'pairs;
                    }
                }
                if let Some(t) = other.total {
                    if small((a - t).abs()) {
                        victim = Some((i, format!("it differs by fewer than the minimum from the total declared by indicator {j}")));
                        break 'pairs;
                    }
                }
            }
        }
        if victim.is_none() {
            victim = remainder_victim(cells, min);
        }
        match victim {
            Some((v, why)) => suppress_second(cells, out, v, why),
            None => return,
        }
    }
}

/// Parts of one total whose published sum leaves a small hidden remainder: the
/// smallest published part to suppress.
fn remainder_victim(cells: &[Cell], min: f64) -> Option<(usize, String)> {
    let mut totals: Vec<f64> = cells.iter().filter_map(|c| c.total).collect();
    totals.sort_by(f64::total_cmp);
    totals.dedup();
    for t in totals {
        let parts: Vec<usize> = (0..cells.len())
            .filter(|&i| cells[i].total == Some(t) && cells[i].count.is_some())
            .collect();
        let all: f64 = parts.iter().filter_map(|&i| cells[i].count).sum();
        if parts.len() < 2 || all > t {
            continue;
        }
        let shown: f64 = parts.iter().filter_map(|&i| published(&cells[i])).sum();
        let hidden = t - shown;
        if hidden > 0.0 && hidden < min {
            let smallest = parts
                .iter()
                .copied()
                .filter(|&i| published(&cells[i]).is_some())
                .min_by(|&a, &b| {
                    published(&cells[a])
                        .unwrap_or(f64::MAX)
                        .total_cmp(&published(&cells[b]).unwrap_or(f64::MAX))
                });
            if let Some(s) = smallest {
                return Some((
                    s,
                    "the total its parts declare, minus the published parts, leaves fewer hidden people than the minimum".to_string(),
                ));
            }
        }
    }
    None
}

/// Rounds the published counts of people (see "Across versions").
fn round(indicators: &[Indicator], cells: &[Cell], out: &mut [Decision], min_count: u32) {
    for (i, ind) in indicators.iter().enumerate() {
        if cells[i].suppressed {
            continue;
        }
        let rounded = match cells[i].kind {
            CellKind::People => ind.achieved.map(|a| round_to_base(a, min_count)),
            CellKind::Percent => match (cells[i].count, cells[i].total, ind.achieved) {
                (Some(c), Some(t), Some(_)) if t > 0.0 => {
                    let pct = 100.0 * round_to_base(c, min_count) / t;
                    Some((pct * PERCENT_DECIMALS_SCALE).round() / PERCENT_DECIMALS_SCALE)
                }
                _ => ind.achieved,
            },
            CellKind::Other => ind.achieved,
        };
        if rounded != out[i].achieved {
            out[i].achieved = rounded;
            out[i].notes.push(Note {
                field: "achieved",
                rule: Rule::IndicatorRounded,
                reason: format!("{} ({min_count})", Rule::IndicatorRounded.describe()),
            });
        }
    }
}

/// An indicator as the suppression tests write one: `achieved` in `unit`,
/// with the counts behind it when known and no target. Here and in
/// `node/tests`.
#[cfg(any(test, feature = "test-support"))]
pub fn measured(
    label: &str,
    unit: &str,
    achieved: f64,
    numerator: Option<u64>,
    denominator: Option<u64>,
) -> Indicator {
    Indicator {
        label: label.into(),
        achieved: Some(achieved),
        target: None,
        unit: Some(unit.into()),
        numerator,
        denominator,
    }
}

/// Counts of people declared as parts of `total`, as the suppression tests
/// write a table: each `(label, count)` is measured in people, with its count
/// as numerator and `total` as denominator. Here and in `node/tests`.
#[cfg(any(test, feature = "test-support"))]
pub fn parts_of(total: u64, parts: &[(&str, u32)]) -> Vec<Indicator> {
    parts
        .iter()
        .map(|&(label, count)| {
            measured(
                label,
                "people",
                f64::from(count),
                Some(u64::from(count)),
                Some(total),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use measured as ind;

    /// Whether a decision carries a note of `rule`.
    fn has_rule(d: &Decision, rule: Rule) -> bool {
        d.notes.iter().any(|n| n.rule == rule)
    }

    fn published(d: &[Decision]) -> Vec<Option<f64>> {
        d.iter().map(|d| d.achieved).collect()
    }

    #[test]
    fn a_total_next_to_its_large_part_reveals_the_small_rest() {
        // 15 participants and 12 women: 3 men. Undeclared: the pair rule.
        let d = decide(
            &[
                ind("participants", "people", 15.0, None, None),
                ind("women", "people", 12.0, None, None),
            ],
            10,
        );
        assert_eq!(published(&d), [Some(20.0), None]);
        assert_eq!(d[1].notes[0].rule, Rule::SecondarySuppression);
        // Declared with a denominator: the remainder rule.
        let d = decide(&parts_of(15, &[("women", 12)]), 10);
        assert_eq!(published(&d), [None]);
        assert_eq!(d[0].notes[0].rule, Rule::RemainderBelowMinimum);
    }

    #[test]
    fn a_suppressed_part_is_not_recovered_from_the_total_and_the_other_parts() {
        // 30 = 15 women + 12 men + 3 others: others suppressed; 30 - 15 - 12 = 3,
        // so a second part goes. Men and women differ by 3 too: the pair rule
        // takes the smaller first.
        let d = decide(
            &parts_of(30, &[("women", 15), ("men", 12), ("others", 3)]),
            10,
        );
        assert_eq!(published(&d), [Some(20.0), None, None]);
        assert!(has_rule(&d[2], Rule::NumeratorBelowMinimum));
        assert!(has_rule(&d[1], Rule::SecondarySuppression));
    }

    #[test]
    fn parts_of_a_total_leaving_a_small_hidden_remainder() {
        // 60 = 25 + 25 + 10 hidden? No: 25 + 30 + 5 (suppressed): 60-25-30 = 5.
        let d = decide(&parts_of(60, &[("a", 25), ("b", 30), ("c", 5)]), 10);
        assert_eq!(d[2].achieved, None);
        assert!(d[0].achieved.is_none() || d[1].achieved.is_none(), "{d:?}");
    }

    #[test]
    fn a_percentage_of_a_small_denominator_only_is_computed() {
        // 8.3 % of 12 is one person.
        let d = decide(&[ind("found a job", "%", 8.3, None, Some(12))], 10);
        assert_eq!(d[0].achieved, None);
        assert!(has_rule(&d[0], Rule::ComputedNumeratorBelowMinimum));
        // Without a base the city attests it: as given.
        let d = decide(&[ind("found a job", "%", 8.3, None, None)], 10);
        assert_eq!(d[0].achieved, Some(8.3));
    }

    #[test]
    fn label_base_makes_the_remainder_visible() {
        let d = decide(
            &[ind(
                "moved up a level (out of 33 enrolled)",
                "people",
                30.0,
                None,
                None,
            )],
            10,
        );
        assert_eq!(d[0].achieved, None);
    }

    #[test]
    fn versions_of_a_count_differ_by_multiples_of_the_minimum() {
        let v = |n: f64| {
            decide(&[ind("participants", "people", n, None, None)], 10)[0]
                .achieved
                .unwrap()
        };
        for (a, b) in [(15.0, 18.0), (14.0, 15.0), (96.0, 99.0), (1733.0, 1736.0)] {
            let diff = (v(b) - v(a)).abs();
            assert!(diff == 0.0 || diff >= 10.0, "{a} -> {b}: {diff}");
            assert_eq!(diff % 10.0, 0.0);
        }
        // A percentage with a base: the rounded count over the base.
        let d = decide(&[ind("women", "%", 55.0, None, Some(40))], 10);
        assert_eq!(d[0].achieved, Some(50.0));
    }
}

//! What an import reports: one [`ImportError`] per problem, all of them in one
//! [`ImportErrors`].
//!
//! The wording of these messages is what a city's facilitator reads while fixing
//! a file, and tests check it: change it only on purpose.

use std::fmt;

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Where: a JSON path, or `row N (line L)` for CSV, or `file` for the whole file.
    pub location: String,
    /// The field concerned (empty when the problem is the file itself).
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// What would be valid.
    pub expected: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.location, self.problem)?;
        } else {
            write!(
                f,
                "{}: field '{}': {}",
                self.location, self.field, self.problem
            )?;
        }
        if !self.expected.is_empty() {
            write!(f, " (expected {})", self.expected)?;
        }
        Ok(())
    }
}

/// Every problem found in an import file; nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors {
    /// The problems, in file order.
    pub errors: Vec<ImportError>,
}

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the import file:", self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A problem with the file as a whole (its type, its encoding, its top level).
pub(super) fn file_error(problem: impl Into<String>, expected: impl Into<String>) -> ImportErrors {
    ImportErrors {
        errors: vec![ImportError {
            location: "file".into(),
            field: String::new(),
            problem: problem.into(),
            expected: expected.into(),
        }],
    }
}

/// Records one problem.
pub(super) fn push(
    errs: &mut Vec<ImportError>,
    loc: &str,
    field: &str,
    problem: impl Into<String>,
    expected: &str,
) {
    errs.push(ImportError {
        location: loc.to_string(),
        field: field.to_string(),
        problem: problem.into(),
        expected: expected.to_string(),
    });
}

/// `Ok` when nothing was recorded, else every problem at once.
pub(super) fn all_or_nothing<T>(value: T, errs: Vec<ImportError>) -> Result<T, ImportErrors> {
    if errs.is_empty() {
        Ok(value)
    } else {
        Err(ImportErrors { errors: errs })
    }
}

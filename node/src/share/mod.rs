//! Sharing (placeholder while it is written).
pub mod classes;
pub mod scrub;

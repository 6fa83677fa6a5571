//! Placeholder: filled by the checker issue.

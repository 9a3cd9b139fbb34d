//! The division tree import.

//! Anxin's domain: plain Rust, no I/O.
//!
//! Everything here is a value type or a pure rule: identifiers, codes, documents, phone numbers,
//! coordinates, masking, the division re-import diff, roles and permissions. Storage, HTTP and
//! templates sit around this crate; property tests live beside the rules they check.
//!
//! Errors: every fallible function here returns [`DomainError`], whose `code()` is the stable
//! string the UI translates.

#[macro_use]
mod string_enum;

pub mod alarm;
pub mod area;
pub mod calendar;
pub mod campaign;
pub mod clock;
pub mod divdiff;
pub mod division;
pub mod document;
pub mod error;
pub mod fund;
pub mod geo;
pub mod hazard;
pub mod ids;
pub mod mask;
pub mod people;
pub mod phone;
pub mod plan;
pub mod roles;
pub mod rules;
pub mod supplies;
pub mod warning;

pub use clock::{Clock, ManualClock, SystemClock, SHANGHAI};
pub use divdiff::{DivisionChange, DivisionPlan, ExistingNode, IncomingNode, ParentRef};
pub use division::{DivisionCode, Level};
pub use document::{gb11643_check_digit, DocType, Document};
pub use error::DomainError;
pub use geo::{Crs, LonLat};
pub use ids::{IdGen, SeededIdGen, SystemIdGen};
pub use mask::{mask_document, mask_name, mask_phone};
pub use people::{
    ContactChannel, FacilityKind, FacilityStatus, HouseholdRole, PopulationType, Sex,
    VulnerableCategory,
};
pub use phone::Phone;
pub use roles::{role_scope_kinds, Permission, Role, Scope, ScopeKind, Validity};

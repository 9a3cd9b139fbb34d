//! Warnings to people: workflow, targeting, channels, reach and CAP 1.2.
//!
//! - [`workflow`]: the steps over the store (`anxin_store::warnings`), with the fan-out to the
//!   notification service after commit (SMS through the `warning` template);
//! - [`promote`]: an alarm promoted to a draft warning, its fields filled in;
//! - [`cap`]: CAP 1.2 export, Atom feed and a validating import that refuses DTDs and entities;
//! - [`dsig`]: the XML-DSig enveloped signature of an imported alert, checked with the key
//!   configured for its sender (`[[warnings.trusted]]`).
//!
//! Targeting (which residents an area reaches) lives in the store and uses
//! `anxin_domain::area::PointIndex` over building locations. See docs/WARNINGS.md.

pub mod cap;
pub mod config;
pub mod dsig;
pub mod promote;
pub mod workflow;

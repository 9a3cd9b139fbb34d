//! The domain layer's one error type.
//!
//! Two audiences read it. The UI gets [`DomainError::code`], a stable dotted snake_case code it
//! translates (the code never changes once published; add a new variant instead). Logs get the
//! English `Display` text, which names the field and the rule broken but never the rejected value:
//! what a user typed into an ID-number or phone field is personal data, and logs must not hold it.

use crate::division::DivisionCode;
use crate::document::DocType;
use crate::roles::{Role, ScopeKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A closed vocabulary (enum) or a simple field got a value outside its range.
    #[error("invalid value for {field}")]
    ValueInvalid { field: &'static str },

    #[error("{doc_type} number is empty")]
    DocumentEmpty { doc_type: DocType },
    #[error("{doc_type} number does not match the format: {expected}")]
    DocumentFormat {
        doc_type: DocType,
        expected: &'static str,
    },
    #[error("{doc_type} number has a region or prefix that does not fit: {expected}")]
    DocumentRegion {
        doc_type: DocType,
        expected: &'static str,
    },
    #[error("{doc_type} number holds no valid birth date")]
    DocumentBirthDate { doc_type: DocType },
    #[error("{doc_type} number fails its check digit")]
    DocumentChecksum { doc_type: DocType },
    #[error("a person without a document must not have a document number")]
    DocumentUnexpectedNumber,

    #[error("phone number not recognised: {reason}")]
    PhoneFormat { reason: &'static str },

    #[error("division code not recognised: {reason}")]
    DivisionCodeFormat { reason: &'static str },
    #[error("division code {code} appears more than once")]
    DivisionDuplicateCode { code: DivisionCode },
    #[error("division {code} names a parent that is not in the same list")]
    DivisionParentMissing { code: DivisionCode },
    #[error("division {code}: level does not fit its code or its parent")]
    DivisionLevelMismatch { code: DivisionCode },
    #[error("division plan cannot be applied: {reason}")]
    DivisionPlanInvalid { reason: &'static str },

    #[error("coordinate out of range: {axis}")]
    GeoOutOfRange { axis: &'static str },
    #[error("coordinate is not a finite number")]
    GeoNotFinite,

    #[error("grant validity ends before it starts")]
    GrantValidity,
    #[error("role {role} cannot be granted on a {scope}")]
    GrantScope { role: Role, scope: ScopeKind },
}

impl DomainError {
    /// The stable code the UI translates.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ValueInvalid { .. } => "value.invalid",
            Self::DocumentEmpty { .. } => "document.empty",
            Self::DocumentFormat { .. } => "document.format",
            Self::DocumentRegion { .. } => "document.region",
            Self::DocumentBirthDate { .. } => "document.birth_date",
            Self::DocumentChecksum { .. } => "document.checksum",
            Self::DocumentUnexpectedNumber => "document.unexpected_number",
            Self::PhoneFormat { .. } => "phone.format",
            Self::DivisionCodeFormat { .. } => "division.code_format",
            Self::DivisionDuplicateCode { .. } => "division.duplicate_code",
            Self::DivisionParentMissing { .. } => "division.parent_missing",
            Self::DivisionLevelMismatch { .. } => "division.level_mismatch",
            Self::DivisionPlanInvalid { .. } => "division.plan_invalid",
            Self::GeoOutOfRange { .. } => "geo.out_of_range",
            Self::GeoNotFinite => "geo.not_finite",
            Self::GrantValidity => "grant.validity",
            Self::GrantScope { .. } => "grant.scope_kind",
        }
    }

    /// The input field the error is about, when there is one, so a form can mark it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::ValueInvalid { field } => Some(field),
            Self::DocumentEmpty { .. }
            | Self::DocumentFormat { .. }
            | Self::DocumentRegion { .. }
            | Self::DocumentBirthDate { .. }
            | Self::DocumentChecksum { .. }
            | Self::DocumentUnexpectedNumber => Some("document_number"),
            Self::PhoneFormat { .. } => Some("phone"),
            Self::DivisionCodeFormat { .. } => Some("division_code"),
            Self::GeoOutOfRange { axis } => Some(axis),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dotted_snake_case_and_distinct() {
        let code = DivisionCode::parse("510104").expect("valid");
        let all = [
            DomainError::ValueInvalid { field: "sex" },
            DomainError::DocumentEmpty {
                doc_type: DocType::Passport,
            },
            DomainError::DocumentFormat {
                doc_type: DocType::MainlandId,
                expected: "x",
            },
            DomainError::DocumentRegion {
                doc_type: DocType::MainlandId,
                expected: "x",
            },
            DomainError::DocumentBirthDate {
                doc_type: DocType::MainlandId,
            },
            DomainError::DocumentChecksum {
                doc_type: DocType::MainlandId,
            },
            DomainError::DocumentUnexpectedNumber,
            DomainError::PhoneFormat { reason: "x" },
            DomainError::DivisionCodeFormat { reason: "x" },
            DomainError::DivisionDuplicateCode { code: code.clone() },
            DomainError::DivisionParentMissing { code: code.clone() },
            DomainError::DivisionLevelMismatch { code },
            DomainError::DivisionPlanInvalid { reason: "x" },
            DomainError::GeoOutOfRange { axis: "lat" },
            DomainError::GeoNotFinite,
            DomainError::GrantValidity,
            DomainError::GrantScope {
                role: Role::Resident,
                scope: ScopeKind::Node,
            },
        ];
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let c = e.code();
            assert!(seen.insert(c), "duplicate code {c}");
            let (head, tail) = c.split_once('.').expect("dotted");
            for part in [head, tail] {
                assert!(!part.is_empty());
                assert!(part.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
            }
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn messages_name_the_rule_not_the_value() {
        let e = DomainError::DocumentChecksum {
            doc_type: DocType::MainlandId,
        };
        assert_eq!(e.to_string(), "mainland_id number fails its check digit");
        assert_eq!(e.field(), Some("document_number"));
    }
}

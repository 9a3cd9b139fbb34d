//! One macro for the many closed vocabularies (roles, levels, document types, …). Each needs the
//! same four faces: a stable snake_case string for storage and the API (`as_str`, serde,
//! `FromStr`), and a Chinese label for the UI (`zh`). Writing them by hand invites a serde name that
//! drifts from `as_str`; generating both from one literal rules that out.

/// `string_enum! { pub enum Name: "field" { Variant = "snake", "中文", … } }`. `field` is the name
/// reported in [`crate::DomainError::ValueInvalid`] when parsing fails.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal, $zh:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $s)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $($name::$variant),+ ];

            /// The stable snake_case name used in storage, the API and serde.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// The Chinese label shown in the UI.
            pub const fn zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($s => Ok($name::$variant),)+
                    _ => Err($crate::error::DomainError::ValueInvalid { field: $field }),
                }
            }
        }
    };
}

/// Shared test for every generated enum: serde, `as_str` and `FromStr` agree.
#[cfg(test)]
pub(crate) fn check_round_trip<T>(all: &[T])
where
    T: Copy
        + std::fmt::Debug
        + PartialEq
        + std::fmt::Display
        + std::str::FromStr
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let mut seen = std::collections::HashSet::new();
    for &v in all {
        let s = v.to_string();
        assert!(seen.insert(s.clone()), "duplicate name {s}");
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
            "{s} is not snake_case"
        );
        let json = serde_json::to_string(&v).expect("serialises");
        assert_eq!(json, format!("\"{s}\""));
        let back: T = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, v);
        let parsed: T = s.parse().ok().expect("parses");
        assert_eq!(parsed, v);
    }
}

//! `tagged_union!`: polymorphic JSON objects discriminated by `"kind"`, the way
//! the reference serialises every pydantic union (`{"...", "kind": "ClassName"}`).
//!
//! Known kinds parse into typed variants; any other kind is kept verbatim in
//! `Unknown`, so a newer peer never breaks parsing and nothing is lost when the
//! value is written back out.

/// Declares an enum whose variants are chosen by the JSON `kind` field.
macro_rules! tagged_union {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $kind:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            /// A kind this crate does not model; the whole object, `kind` included.
            Unknown(serde_json::Map<String, serde_json::Value>),
        }

        impl $name {
            /// The `kind` discriminator (the reference's Python class name).
            pub fn kind(&self) -> &str {
                match self {
                    $( $name::$variant(_) => $kind, )*
                    $name::Unknown(map) => map.get("kind").and_then(|k| k.as_str()).unwrap_or(""),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( $name::$variant(inner) => $crate::wire::macros::Tagged { inner, kind: $kind }.serialize(serializer), )*
                    $name::Unknown(map) => map.serialize(serializer),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
                let kind = match map.get("kind") {
                    Some(serde_json::Value::String(k)) => k.clone(),
                    Some(_) => return Err(D::Error::custom("field `kind` must be a string")),
                    None => return Err(D::Error::missing_field("kind")),
                };
                match kind.as_str() {
                    $( $kind => {
                        map.remove("kind");
                        serde_json::from_value(serde_json::Value::Object(map))
                            .map($name::$variant)
                            .map_err(|e| D::Error::custom(format_args!("in {}: {e}", $kind)))
                    } )*
                    _ => Ok($name::Unknown(map)),
                }
            }
        }
    };
}

pub(crate) use tagged_union;

/// Serialises `inner` followed by `"kind"`, the reference's field order.
#[derive(serde::Serialize)]
pub(crate) struct Tagged<'a, T: serde::Serialize> {
    #[serde(flatten)]
    pub inner: &'a T,
    pub kind: &'static str,
}

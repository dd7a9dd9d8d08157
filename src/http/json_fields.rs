//! A JSON object read member by member, for a parser that reports every
//! offending field at once: raw values in document order (duplicates kept,
//! so they can be refused), each checked into a field type of the domain.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::FieldError;
use crate::domain::TextField;
use crate::domain::decimal::{Decimal, DecimalError};

/// A JSON object's members with their raw values, in document order.
pub(super) struct Fields<'a> {
    path: String,
    members: Vec<(String, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    pub(super) fn read(
        raw: &'a RawValue,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let where_ = if path.is_empty() {
            "request body"
        } else {
            path
        };
        match serde_json::from_str::<Members<'a>>(raw.get()) {
            Ok(Members(members)) => {
                let mut seen = std::collections::HashSet::new();
                for (name, _) in &members {
                    if !seen.insert(name.as_str()) {
                        errors.push(FieldError::new(join(path, name), "appears more than once"));
                    }
                }
                Some(Self {
                    path: path.to_owned(),
                    members,
                })
            }
            Err(_) => {
                let field = if path.is_empty() { "" } else { path };
                errors.push(FieldError::new(
                    field,
                    format!("{where_} must be a JSON object"),
                ));
                None
            }
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    pub(super) fn error(&self, name: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(join(&self.path, name), message)
    }

    pub(super) fn refuse_others(
        &self,
        allowed: &[&str],
        server_owned: &[&str],
        errors: &mut Vec<FieldError>,
    ) {
        for (name, _) in &self.members {
            if allowed.contains(&name.as_str()) {
                continue;
            }
            let message = if server_owned.contains(&name.as_str()) {
                "is set by the server and cannot be sent".to_string()
            } else {
                format!(
                    "is not a known field; expected one of: {}",
                    allowed.join(", ")
                )
            };
            errors.push(self.error(name, message));
        }
    }

    /// A required text field, trimmed.
    pub(super) fn text<T: TextField>(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
        match self.optional_text(name, errors) {
            Some(Some(value)) => Some(value),
            Some(None) => {
                errors.push(self.error(name, "is required"));
                None
            }
            None => None,
        }
    }

    /// An optional text field: `Some(None)` when absent, null or blank, `None` when invalid.
    pub(super) fn optional_text<T: TextField>(
        &self,
        name: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Option<T>> {
        let Some(raw) = self.get(name) else {
            return Some(None);
        };
        let Ok(value) = serde_json::from_str::<Option<String>>(raw.get()) else {
            errors.push(self.error(name, "must be a string"));
            return None;
        };
        match value.map(|value| T::parse(&value)).transpose() {
            Ok(value) => Some(value.flatten()),
            Err(message) => {
                errors.push(self.error(name, message));
                None
            }
        }
    }

    /// `checked`'s value, or `None` with its refusal recorded against `name`.
    pub(super) fn checked<T>(
        &self,
        name: &str,
        checked: Result<T, String>,
        errors: &mut Vec<FieldError>,
    ) -> Option<T> {
        checked
            .map_err(|message| errors.push(self.error(name, message)))
            .ok()
    }

    /// A decimal field: `Some(None)` when optional and absent or null, `None` when invalid.
    pub(super) fn decimal(
        &self,
        name: &str,
        required: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<Option<Decimal>> {
        match self.get(name) {
            Some(raw) if raw.get() != "null" => match Decimal::from_json(raw) {
                Ok(value) => Some(Some(value)),
                Err(DecimalError::NotANumber) => {
                    errors.push(self.error(name, "must be a decimal number"));
                    None
                }
                Err(DecimalError::OutOfRange) => {
                    errors.push(self.error(name, "is out of range"));
                    None
                }
            },
            _ if required => {
                errors.push(self.error(name, "is required"));
                None
            }
            _ => Some(None),
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Object members in document order, duplicates kept so they can be reported.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

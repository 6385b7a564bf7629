//! Strict JSON: [`parse_strict`] refuses duplicate member names and nesting deeper than a limit.
//!
//! serde_json keeps the last of two equal member names, so `{"subject":"a","subject":"b"}`
//! would silently mean "b"; an account, a JWT header or payload must not be read two ways.
//! No I/O here.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON: the message is serde_json's, which gives a position and never quotes input.
    #[error("{0}")]
    Syntax(String),
    /// An object names the same member twice.
    #[error("member {0:?} appears more than once")]
    DuplicateMember(String),
    /// Arrays and objects nest deeper than allowed.
    #[error("it nests deeper than {max_depth} levels")]
    TooDeep { max_depth: usize },
}

/// Marker messages passed through serde's string errors and recognised on the way out.
const DUPLICATE: &str = "\u{0}duplicate member\u{0}";
const TOO_DEEP: &str = "\u{0}too deep\u{0}";

/// How deep any JSON document edge-sts reads may nest (the contract's 32): a token's header and
/// claims, a request body, a fetched key set or discovery document, a stored record. A record is
/// written from a request body, so it reads back within the same limit.
pub const MAX_DEPTH: usize = 32;

/// Parses `text` as one JSON value; objects and arrays may nest at most `max_depth` levels.
pub fn parse_strict(text: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    // Our own depth limit replaces serde_json's fixed 128 (which would overflow nothing here).
    let value = Strict {
        depth_left: max_depth,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value))
    .map_err(|error| described(error.to_string(), max_depth))?;
    Ok(value)
}

/// [`parse_strict`] for any serde deserializer (`serde_json::from_value`, a field of a larger
/// document), its refusals said the same way.
pub fn strict_value<'de, D: Deserializer<'de>>(
    deserializer: D,
    max_depth: usize,
) -> Result<Value, D::Error> {
    Strict {
        depth_left: max_depth,
    }
    .deserialize(deserializer)
    .map_err(|error| D::Error::custom(described(error.to_string(), max_depth)))
}

/// The refusal a deserializer's error `message` stands for.
fn described(message: String, max_depth: usize) -> JsonError {
    if let Some(rest) = message.strip_prefix(DUPLICATE) {
        let name = rest.split(" at line ").next().unwrap_or(rest);
        JsonError::DuplicateMember(name.to_owned())
    } else if message.starts_with(TOO_DEEP) {
        JsonError::TooDeep { max_depth }
    } else {
        JsonError::Syntax(message)
    }
}

/// A `Value` deserializer that knows how many more levels it may open.
#[derive(Clone, Copy)]
struct Strict {
    depth_left: usize,
}

impl Strict {
    fn nested<E: serde::de::Error>(self) -> Result<Self, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(Self { depth_left }),
            None => Err(E::custom(TOO_DEEP)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.contains_key(&name) {
                return Err(A::Error::custom(format!("{DUPLICATE}{name}")));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_ordinary_json() {
        let value = parse_strict(br#"{"a":[1,-2,3.5,true,null,"x"],"b":{"c":{}}}"#, 32).unwrap();
        assert_eq!(value, json!({"a":[1,-2,3.5,true,null,"x"],"b":{"c":{}}}));
    }

    #[test]
    fn refuses_duplicate_member_names_at_any_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"b":2,"a":3}}"#,
            r#"[{"a":1,"a":1}]"#,
        ] {
            assert_eq!(
                parse_strict(text.as_bytes(), 32),
                Err(JsonError::DuplicateMember("a".into())),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_nesting_past_the_limit() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse_strict(nested(32).as_bytes(), 32).is_ok());
        assert_eq!(
            parse_strict(nested(33).as_bytes(), 32),
            Err(JsonError::TooDeep { max_depth: 32 })
        );
        // Far past serde_json's own limit, without overflowing the stack.
        assert_eq!(
            parse_strict(nested(100_000).as_bytes(), 32),
            Err(JsonError::TooDeep { max_depth: 32 })
        );
    }

    #[test]
    fn refuses_syntax_errors_and_trailing_data() {
        for text in ["", "{", "{\"a\":1}x", "{\"a\":1} {}", "[1,]", "\"\\ud800\""] {
            assert!(
                matches!(parse_strict(text.as_bytes(), 32), Err(JsonError::Syntax(_))),
                "{text:?}"
            );
        }
    }
}

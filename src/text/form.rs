//! `application/x-www-form-urlencoded` decoding, for token requests, introspection and the
//! admin list's query string.
//!
//! Strict and bounded: at most [`MAX_FORM_PARAMETERS`] parameters, counted before anything is
//! decoded; no parameter twice; a `%` not followed by two hex digits, or bytes that are not
//! UTF-8 once decoded, are errors rather than guesses. Decoding is linear in the input, so a
//! 64 KiB body of thousands of tiny parameters costs no more than one long one; the check for a
//! repeated name compares each name with those before it, at most 496 pairs of 32 names. No I/O
//! here.

/// Most parameters in one form (the contract). The largest real request, an RFC 8693 exchange with
/// every optional parameter, has 9; Entra clients send 6.
pub const MAX_FORM_PARAMETERS: usize = 32;

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("a '%' is not followed by two hex digits")]
    BadPercentEncoding,
    #[error("a decoded name or value is not UTF-8")]
    NotUtf8,
    /// More than [`MAX_FORM_PARAMETERS`] parameters.
    #[error("it has more than {MAX_FORM_PARAMETERS} parameters")]
    TooManyParameters,
    /// A parameter name appears twice.
    #[error("parameter {0} is given more than once")]
    Repeated(String),
}

/// A decoded form: each name once, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The parameters in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// `value` percent-encoded for a query string: everything but RFC 3986's unreserved
/// characters is escaped, so it reads back the same through [`parse_form`].
pub fn encode_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Decodes `name=value&…`; empty segments (`a=1&&b=2`) are skipped and a name without `=` has
/// an empty value.
pub fn parse_form(input: &[u8]) -> Result<Form, FormError> {
    let segments = || input.split(|&b| b == b'&').filter(|pair| !pair.is_empty());
    // Counted before anything is decoded: the count is one pass over the bytes.
    if segments().nth(MAX_FORM_PARAMETERS).is_some() {
        return Err(FormError::TooManyParameters);
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in segments() {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(name)?;
        // No hash set: a form has at most 32 names, and a set's code would be compiled by
        // every new isolate's first token request.
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(FormError::Repeated(name));
        }
        pairs.push((name, decode(value)?));
    }
    Ok(Form { pairs })
}

fn decode(input: &[u8]) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .ok_or(FormError::BadPercentEncoding)?;
                let high = hex_value(hex[0]).ok_or(FormError::BadPercentEncoding)?;
                let low = hex_value(hex[1]).ok_or(FormError::BadPercentEncoding)?;
                bytes.push(high << 4 | low);
                i += 2;
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn an_encoded_value_reads_back_the_same() {
        for value in [
            "ci-terraform",
            "alice@example.com",
            "2026-11-23T12:00:00.000+01:00",
            "a b&c=d%é",
        ] {
            let form = parse_form(format!("v={}", encode_component(value)).as_bytes()).unwrap();
            assert_eq!(form.get("v"), Some(value));
        }
        assert_eq!(encode_component("a+b c"), "a%2Bb%20c");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_form(input.as_bytes())
            .unwrap()
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn decodes_pairs_in_order() {
        assert_eq!(
            pairs("limit=10&cursor=a%2Fb%3D&scope=a+b&x&&y="),
            [
                ("limit", "10"),
                ("cursor", "a/b="),
                ("scope", "a b"),
                ("x", ""),
                ("y", "")
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert_eq!(
            pairs("n=%C3%A9%e2%9c%93"),
            [("n".to_owned(), "é✓".to_owned())]
        );
        assert!(pairs("").is_empty());
        let form = parse_form(b"a=1&b=2").unwrap();
        assert_eq!((form.get("b"), form.get("c")), (Some("2"), None));
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        for bad in ["a=%", "a=%4", "a=%zz", "%g0=1"] {
            assert_eq!(
                parse_form(bad.as_bytes()),
                Err(FormError::BadPercentEncoding),
                "{bad}"
            );
        }
        assert_eq!(parse_form(b"a=%ff"), Err(FormError::NotUtf8));
    }

    #[test]
    fn a_repeated_name_is_refused_also_when_spelled_differently() {
        assert_eq!(
            parse_form(b"scope=a&x=1&scope=b"),
            Err(FormError::Repeated("scope".into()))
        );
        assert_eq!(
            parse_form(b"scope=a&%73cope=b"),
            Err(FormError::Repeated("scope".into()))
        );
    }

    #[test]
    fn at_most_32_parameters_counted_before_decoding() {
        let names = |count: usize| {
            (0..count)
                .map(|i| format!("p{i}=v"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert!(parse_form(names(32).as_bytes()).is_ok());
        assert_eq!(
            parse_form(names(33).as_bytes()),
            Err(FormError::TooManyParameters)
        );
        // The hostile form of the review: 16,000 distinct empty names in 64 KiB. It is refused
        // by the count, before a single name is decoded, even though its tail is not decodable.
        let hostile = format!("{}&%zz", names(16_000));
        assert_eq!(
            parse_form(hostile.as_bytes()),
            Err(FormError::TooManyParameters)
        );
        // Empty segments are not parameters.
        assert!(parse_form(format!("{}{}", "&".repeat(10_000), names(32)).as_bytes()).is_ok());
    }
}

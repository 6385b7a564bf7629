//! `application/x-www-form-urlencoded` decoding, for query strings and (later) token requests.
//!
//! Strict: a `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded, are
//! errors rather than guesses. No I/O here.

use std::fmt;

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    BadPercentEncoding,
    NotUtf8,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPercentEncoding => write!(f, "a '%' is not followed by two hex digits"),
            Self::NotUtf8 => write!(f, "a decoded name or value is not UTF-8"),
        }
    }
}

/// Decodes `name=value&…` pairs in order; empty segments (`a=1&&b=2`) are skipped and a
/// name without `=` has an empty value.
pub fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
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
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_form(input.as_bytes()).unwrap()
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
}

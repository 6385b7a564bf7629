//! Text rules shared across the API: which characters a displayed name may not hold, and the
//! character set of error descriptions. No I/O here.

/// Unicode's format characters (general category Cf), as `(first, last)` code point ranges:
/// invisible characters that change how the text around them is shown — bidirectional
/// overrides (U+202E writes the rest backwards), zero-width spaces and joiners, tags. A name
/// holding one can show as a different name in the console's list or delete confirmation.
/// Unicode 17.0, generated with Node.js:
/// `for (c = 0; c <= 0x10FFFF; c++) /\p{Cf}/u.test(String.fromCodePoint(c))`.
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a format character (Cf), bidirectional controls included.
pub fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_RANGES
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Whether `byte` may appear in an RFC 6749 §5.2 `error_description`: printable ASCII
/// (%x20-7E) except `"` and `\`.
pub fn is_description_byte(byte: u8) -> bool {
    matches!(byte, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// `text` in RFC 6749 §5.2's character set, so every OAuth client can read it (Authlib, for
/// one, raises on anything else): a `"` becomes `'` (descriptions quote values with it), and
/// any other byte outside the set is percent-encoded, as in a URL (`é` → `%C3%A9`, `\` →
/// `%5C`), so nothing is lost. Every error body passes through here.
pub fn description_charset(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'"' => out.push('\''),
            b'%' => out.push_str("%25"),
            byte if is_description_byte(byte) => out.push(char::from(byte)),
            byte => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_characters_include_the_bidi_controls_and_zero_widths() {
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{E0041}',
        ] {
            assert!(is_format(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', ' ', 'é', '中', '\u{2028}', '😀'] {
            assert!(!is_format(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn descriptions_keep_to_rfc_6749_section_5_2() {
        let cases = [
            ("sub \"a\" does not match", "sub 'a' does not match"),
            ("exp − iat", "exp %E2%88%92 iat"),
            ("C:\\x", "C:%5Cx"),
            ("100%", "100%25"),
            ("line\nbreak", "line%0Abreak"),
            ("plain: ok (1/2) [x] {y} ~!", "plain: ok (1/2) [x] {y} ~!"),
        ];
        for (text, expected) in cases {
            let out = description_charset(text);
            assert_eq!(out, expected);
            assert!(out.bytes().all(is_description_byte), "{out}");
        }
    }
}

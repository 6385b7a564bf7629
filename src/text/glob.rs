//! Globs for `subjectPattern` and `claims`: `*` matches any run of characters (also none),
//! `?` exactly one, everything else itself, case-sensitively. No escapes: the contract has none.
//!
//! Matching is iterative (one backtrack point, the last `*`), so a hostile subject costs at
//! most pattern length × subject length steps — never exponential. No I/O here.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A compiled glob: its text, and its characters for matching, split once when an account is
/// read (never per match). Serialised as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    pattern: Vec<char>,
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self::new(&text))
    }
}

impl From<&str> for Glob {
    fn from(pattern: &str) -> Self {
        Self::new(pattern)
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self {
            text: pattern.to_owned(),
            pattern: pattern.chars().collect(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The literal characters before the first wildcard: what every match starts with.
    pub fn literal_prefix(&self) -> String {
        self.pattern
            .iter()
            .take_while(|&&c| c != '*' && c != '?')
            .collect()
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let pattern = &self.pattern;
        let (mut p, mut t) = (0, 0);
        // Where the last `*` was, and the text position it is currently taken to end at.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            // A `*` in the pattern is always a wildcard, also where the text has a `*`: matched
            // as a literal there, it would lose its backtrack point.
            if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, t));
                p += 1;
            } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if let Some((star_p, star_t)) = star {
                // Let the last `*` swallow one more character and retry after it.
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_specified() {
        let cases = [
            (
                "repo:acme/app:ref:refs/heads/main",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            ("repo:acme/app:*", "repo:acme/app:ref:refs/heads/main", true),
            (
                "repo:acme/*:environment:prod",
                "repo:acme/api:environment:prod",
                true,
            ),
            (
                "repo:acme/*:environment:prod",
                "repo:acme/api:environment:staging",
                false,
            ),
            ("repo:acme/app:*", "repo:acme/application:ref:x", false),
            (
                "system:serviceaccount:ns?:builder",
                "system:serviceaccount:ns1:builder",
                true,
            ),
            (
                "system:serviceaccount:ns?:builder",
                "system:serviceaccount:ns12:builder",
                false,
            ),
            ("a*", "a", true),
            ("*", "", true),
            ("?", "", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("Repo:*", "repo:x", false), // case-sensitive
            ("ü?", "üñ", true),          // characters, not bytes
            ("", "", true),
            ("", "x", false),
            // A literal `*` in the text does not eat the pattern's wildcard (the review's case).
            ("lit*c", "lit*bc", true),
            ("lit*c", "lit*c", true),
            ("a*", "a*", true),
            ("a?c", "a*c", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }

    #[test]
    fn knows_its_literal_prefix() {
        assert_eq!(Glob::new("*").literal_prefix(), "");
        assert_eq!(Glob::new("repo:acme/*").literal_prefix(), "repo:acme/");
        assert_eq!(Glob::new("repo:a?me/*").literal_prefix(), "repo:a");
        assert_eq!(Glob::new("repo:x").literal_prefix(), "repo:x");
    }

    #[test]
    fn hostile_input_is_quadratic_at_worst() {
        // A pattern that would take exponential time with naive recursive backtracking.
        let pattern = Glob::new(&"*a".repeat(300));
        assert!(!pattern.matches(&"a".repeat(299)));
        assert!(pattern.matches(&"a".repeat(600)));
    }
}

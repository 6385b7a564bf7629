//! Globs for `subjectPattern` and `claims`: `*` matches any run of characters (also none),
//! `?` exactly one, everything else itself, case-sensitively. No escapes: SPEC.md has none.
//!
//! Matching is iterative (one backtrack point, the last `*`), so a hostile subject costs at
//! most pattern length × subject length steps — never exponential. No I/O here.

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.chars().collect(),
        }
    }

    /// Whether the pattern has at least one literal character, i.e. does not match every
    /// string of some length or more.
    pub fn has_literal(&self) -> bool {
        self.pattern.iter().any(|&c| c != '*' && c != '?')
    }

    /// Whether the pattern has any wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.pattern.iter().any(|&c| c == '*' || c == '?')
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let pattern = &self.pattern;
        let (mut p, mut t) = (0, 0);
        // Where the last `*` was, and the text position it is currently taken to end at.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if p < pattern.len() && pattern[p] == '*' {
                star = Some((p, t));
                p += 1;
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
    fn knows_whether_it_has_literals_and_wildcards() {
        assert!(!Glob::new("*").has_literal());
        assert!(!Glob::new("?*?").has_literal());
        assert!(Glob::new("repo:*").has_literal());
        assert!(Glob::new("repo:*").has_wildcard());
        assert!(!Glob::new("repo:x").has_wildcard());
    }

    #[test]
    fn hostile_input_is_quadratic_at_worst() {
        // A pattern that would take exponential time with naive recursive backtracking.
        let pattern = Glob::new(&"*a".repeat(300));
        assert!(!pattern.matches(&"a".repeat(299)));
        assert!(pattern.matches(&"a".repeat(600)));
    }
}

//! Selecting checks by name with `--filter`.

/// One `--filter` pattern: a glob when it contains `*` or `?`, otherwise a
/// substring. Matching ignores letter case, so `Token` selects
/// `missing-token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFilter {
    /// Matches names that contain the text, stored in lower case.
    Substring(String),
    /// Matches whole names: `*` matches any run of characters, `?` one
    /// character. Stored in lower case.
    Glob(String),
}

impl NameFilter {
    /// Reads a pattern as given on the command line.
    pub fn new(pattern: &str) -> NameFilter {
        let pattern = pattern.to_lowercase();
        if pattern.contains(['*', '?']) {
            NameFilter::Glob(pattern)
        } else {
            NameFilter::Substring(pattern)
        }
    }

    /// Returns whether `name` matches, ignoring letter case.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        match self {
            NameFilter::Substring(text) => name.contains(text.as_str()),
            NameFilter::Glob(pattern) => {
                let pattern: Vec<char> = pattern.chars().collect();
                let name: Vec<char> = name.chars().collect();
                glob_matches(&pattern, &name)
            }
        }
    }
}

/// Returns whether `filters` select `name`: any filter matching is
/// enough, and no filters select everything.
pub fn selects(filters: &[NameFilter], name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|filter| filter.matches(name))
}

/// Matches by backtracking to the last `*` only, which bounds the time by
/// the name length times the pattern length, never exponential.
fn glob_matches(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_matches_anywhere() {
        let filter = NameFilter::new("token");
        assert!(filter.matches("missing-token"));
        assert!(filter.matches("token-reserved-characters"));
        assert!(!filter.matches("batch-size"));
    }

    #[test]
    fn glob_matches_whole_name() {
        let filter = NameFilter::new("*-token");
        assert!(filter.matches("missing-token"));
        assert!(filter.matches("wrong-token"));
        assert!(!filter.matches("token-reserved-characters"));
        assert!(NameFilter::new("b?tch-*").matches("batch-size"));
        assert!(!NameFilter::new("batch").matches("unknown-types"));
        assert!(NameFilter::new("*").matches(""));
        assert!(NameFilter::new("a*b*c").matches("aXXbYYc"));
        assert!(!NameFilter::new("a*b*c").matches("aXXbYY"));
    }

    #[test]
    fn matching_ignores_case() {
        assert!(NameFilter::new("Token").matches("missing-token"));
        assert!(NameFilter::new("*-TOKEN").matches("wrong-token"));
        assert!(NameFilter::new("batch").matches("Batch-Size"));
    }

    #[test]
    fn no_filter_selects_all() {
        assert!(selects(&[], "anything"));
        let filters = [NameFilter::new("size"), NameFilter::new("wrong-*")];
        assert!(selects(&filters, "batch-size"));
        assert!(selects(&filters, "wrong-token"));
        assert!(!selects(&filters, "missing-token"));
    }
}

//! Simple glob patterns for the include/exclude filters on the command line:
//! `*` matches any run of characters (including `/`), `?` matches one character,
//! everything else matches itself. No classes, no escapes: filter values are mount
//! points, filesystem types and interface names, for which this is enough and
//! which a user can type without quoting rules.

/// A list of patterns; a value matches the list when it matches any pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobList(Vec<String>);

impl GlobList {
    /// Splits a comma-separated list; blanks around commas and empty items are dropped.
    pub fn parse(list: &str) -> GlobList {
        GlobList(list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect())
    }

    pub fn matches(&self, value: &str) -> bool {
        self.0.iter().any(|p| glob_match(p.as_bytes(), value.as_bytes()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for GlobList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Iterative matcher with single-star backtracking: O(len(p) × len(v)) at worst,
/// no recursion, so a hostile pattern cannot blow the stack.
fn glob_match(p: &[u8], v: &[u8]) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == v[vi] => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let table: &[(&str, &str, bool)] = &[
            ("lo", "lo", true),
            ("lo", "lo0", false),
            ("veth*", "veth12ab", true),
            ("veth*", "eth0", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("/run/user/*", "/run/user/1000", true),
            ("/run/user/*", "/run/user", false),
            ("/dev/*", "/dev/shm/x", true),
            ("cgroup?", "cgroup2", true),
            ("cgroup?", "cgroup", false),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxxcx", false),
            ("a*", "a", true),
        ];
        for &(p, v, want) in table {
            assert_eq!(glob_match(p.as_bytes(), v.as_bytes()), want, "{p:?} vs {v:?}");
        }
    }

    #[test]
    fn list_parsing() {
        let l = GlobList::parse(" tmpfs , ,proc,");
        assert!(l.matches("tmpfs") && l.matches("proc") && !l.matches(""));
        assert_eq!(l.to_string(), "tmpfs,proc");
        assert!(GlobList::parse("").is_empty());
    }
}

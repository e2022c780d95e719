//! Number screening rules and API keys:
//! - `[patterns.NAME]`: an exception pattern group (spec 20 §5), entries `name = 'regex'`,
//!   settings `_match = "search" | "whole"` and `_on_match = "reject" | "accept"`;
//! - `[number_rule.NAME]`: a country allow-list and blocked patterns (spec 50 §7);
//! - `[[api_key]]`: keys accepted in `x-api-key` (spec 50 §17), stored as SHA-256.

use regex::Regex;
use sha2::{Digest, Sha256};

use super::ConfigError;
use super::values::{Section, TomlTable};

/// An exception pattern group, referred to by a service's `_exceptions`.
#[derive(Debug, Clone)]
pub struct PatternGroup {
    pub name: String,
    pub entries: Vec<(String, Regex)>,
    /// `whole`: a pattern must match the whole value; `search` (default): any part of it.
    pub whole: bool,
    /// `reject` (default): a matching number is refused; `accept`: only matching numbers pass.
    pub reject_on_match: bool,
}

impl PatternGroup {
    pub fn parse(file: &str, name: &str, table: &TomlTable) -> Result<PatternGroup, ConfigError> {
        let place = format!("patterns.{name}");
        let s = Section::new(file, &place, table);
        let mut group = PatternGroup {
            name: name.to_string(),
            entries: Vec::new(),
            whole: false,
            reject_on_match: true,
        };
        for key in table.keys() {
            match key.as_str() {
                "_match" => {
                    group.whole = match s.string(key)?.as_deref() {
                        Some("whole") => true,
                        Some("search") => false,
                        other => {
                            return Err(
                                s.invalid(key, format!("expected \"search\" or \"whole\", got {other:?}"))
                            );
                        }
                    }
                }
                "_on_match" => {
                    group.reject_on_match = match s.string(key)?.as_deref() {
                        Some("reject") => true,
                        Some("accept") => false,
                        other => {
                            return Err(
                                s.invalid(key, format!("expected \"reject\" or \"accept\", got {other:?}"))
                            );
                        }
                    }
                }
                entry => {
                    let pattern = s
                        .string(entry)?
                        .ok_or_else(|| s.invalid(entry, "expected a regular expression"))?;
                    let regex = compile(&pattern).map_err(|e| s.invalid(entry, e))?;
                    group.entries.push((entry.to_string(), regex));
                }
            }
        }
        if group.entries.is_empty() {
            return Err(s.invalid("", "a pattern group needs at least one entry"));
        }
        Ok(group)
    }

    /// The name of the first entry that matches `value`.
    pub fn first_match(&self, value: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, re)| match re.find(value) {
                Some(m) if self.whole => m.start() == 0 && m.end() == value.len(),
                Some(_) => true,
                None => false,
            })
            .map(|(name, _)| name.as_str())
    }
}

/// A country and number validation rule, referred to by a service's `_number_rule`.
#[derive(Debug, Clone)]
pub struct NumberRule {
    pub name: String,
    /// ISO 3166 alpha-2 codes, upper case.
    pub allowed_countries: Vec<String>,
    /// Matched (search) against the E.164 digits without `+`.
    pub blocked_patterns: Vec<(String, Regex)>,
}

impl NumberRule {
    pub fn parse(file: &str, name: &str, table: &TomlTable) -> Result<NumberRule, ConfigError> {
        let place = format!("number_rule.{name}");
        let s = Section::new(file, &place, table);
        s.only_known(&["allowed_countries", "blocked_patterns"])?;
        let mut allowed_countries = Vec::new();
        for code in s.list("allowed_countries")? {
            let upper = code.trim().to_ascii_uppercase();
            if upper.parse::<phonenumber::country::Id>().is_err() {
                return Err(s.invalid(
                    "allowed_countries",
                    format!("'{code}' is not an ISO 3166 country code such as US"),
                ));
            }
            allowed_countries.push(upper);
        }
        if allowed_countries.is_empty() {
            return Err(s.invalid(
                "allowed_countries",
                "give at least one country (ISO codes such as US, CA)",
            ));
        }
        let mut blocked_patterns = Vec::new();
        for pattern in s.list("blocked_patterns")? {
            let regex = compile(&pattern).map_err(|e| s.invalid("blocked_patterns", e))?;
            blocked_patterns.push((pattern, regex));
        }
        Ok(NumberRule {
            name: name.to_string(),
            allowed_countries,
            blocked_patterns,
        })
    }
}

/// An API key accepted in `x-api-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
}

impl ApiKey {
    pub fn hash(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    /// Whether `key` is this key (compares hashes, in constant time).
    pub fn accepts(&self, key: &str) -> bool {
        let h = Self::hash(key);
        h.iter()
            .zip(self.sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The `[[api_key]]` array: `name`, and `sha256` (hex) or `key` (plain text, hashed at load).
pub fn api_keys(file: &str, root: &TomlTable) -> Result<Vec<ApiKey>, ConfigError> {
    let Some(value) = root.get("api_key") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = value else {
        return Err(Section::new(file, "", root).invalid("api_key", "expected [[api_key]] entries"));
    };
    let mut keys = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let place = format!("api_key #{}", i + 1);
        let toml::Value::Table(t) = item else {
            return Err(Section::new(file, &place, root).invalid("api_key", "expected a table"));
        };
        let s = Section::new(file, &place, t);
        s.only_known(&["name", "sha256", "key"])?;
        let name = s
            .string("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| s.invalid("name", "missing"))?;
        let sha256 = match (s.string("sha256")?, s.string("key")?) {
            (Some(hex), None) => {
                parse_hex32(&hex).ok_or_else(|| s.invalid("sha256", "expected 64 hexadecimal digits"))?
            }
            (None, Some(key)) if key.len() >= 16 => ApiKey::hash(&key),
            (None, Some(_)) => return Err(s.invalid("key", "an API key needs at least 16 characters")),
            _ => return Err(s.invalid("sha256", "give exactly one of sha256 (preferred) or key")),
        };
        keys.push(ApiKey { name, sha256 });
    }
    Ok(keys)
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn compile(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("the regular expression '{pattern}' does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> TomlTable {
        text.parse().unwrap()
    }

    #[test]
    fn pattern_groups() {
        let g = PatternGroup::parse(
            "f",
            "cb_errors",
            &table("premium = '^\\+1900'\n'bad e-mail' = '@badrobot'\n"),
        )
        .unwrap();
        assert_eq!(g.first_match("+1900123456"), Some("premium"));
        assert_eq!(g.first_match("+33612345678"), None);
        let whole = PatternGroup::parse("f", "w", &table("_match = 'whole'\nd = '[0-9]+'\n")).unwrap();
        assert_eq!(whole.first_match("123"), Some("d"));
        assert_eq!(whole.first_match("+123"), None);
        let e = PatternGroup::parse("f", "bad", &table("x = '(unclosed'\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f: [patterns.bad] x: the regular expression '(unclosed' does not compile"),
            "{e}"
        );
    }

    #[test]
    fn number_rules() {
        let r = NumberRule::parse(
            "f",
            "us",
            &table("allowed_countries = ['us', 'CA']\nblocked_patterns = ['^1234']\n"),
        )
        .unwrap();
        assert_eq!(r.allowed_countries, vec!["US", "CA"]);
        let e = NumberRule::parse("f", "x", &table("allowed_countries = ['XX']\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an ISO 3166 country code"), "{e}");
        assert!(NumberRule::parse("f", "x", &table("allowed_countries = []\n")).is_err());
    }

    #[test]
    fn api_key_hashing() {
        let root = table("[[api_key]]\nname = 'web'\nkey = '0123456789abcdef'\n");
        let keys = api_keys("f", &root).unwrap();
        assert!(keys[0].accepts("0123456789abcdef"));
        assert!(!keys[0].accepts("0123456789abcdeF"));
        let hex: String = ApiKey::hash("0123456789abcdef")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let root = table(&format!("[[api_key]]\nname = 'web'\nsha256 = '{hex}'\n"));
        assert_eq!(api_keys("f", &root).unwrap(), keys);
        assert!(api_keys("f", &table("[[api_key]]\nname = 'w'\nkey = 'short'\n")).is_err());
    }
}

//! Reading typed values out of TOML sections, with errors that name the place.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{ConfigError, Role, User};

pub type TomlTable = toml::Table;

/// One `[section]` of a file, for typed reads.
pub struct Section<'a> {
    file: &'a str,
    name: &'a str,
    table: &'a TomlTable,
}

impl<'a> Section<'a> {
    pub fn new(file: &'a str, name: &'a str, table: &'a TomlTable) -> Self {
        Self { file, name, table }
    }

    pub fn invalid(&self, option: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            section: self.name.to_string(),
            option: option.to_string(),
            problem: problem.into(),
        }
    }

    /// Refuses keys outside `known` (typos in fixed sections are errors).
    pub fn only_known(&self, known: &[&str]) -> Result<(), ConfigError> {
        for key in self.table.keys() {
            if !known.contains(&key.as_str()) {
                let what = if self.name.is_empty() {
                    "unknown section"
                } else {
                    "unknown option"
                };
                return Err(self.invalid(key, format!("{what} (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    /// A sub-table, empty when absent.
    pub fn table(&self, key: &str) -> Result<TomlTable, ConfigError> {
        match self.table.get(key) {
            None => Ok(TomlTable::new()),
            Some(toml::Value::Table(t)) => Ok(t.clone()),
            Some(_) => Err(self.invalid(key, "expected a section")),
        }
    }

    /// The sub-tables of a `[key.NAME]` family.
    pub fn named_tables(&self, key: &str) -> Result<Vec<(String, TomlTable)>, ConfigError> {
        let family = self.table(key)?;
        let mut out = Vec::new();
        for (name, value) in family {
            match value {
                toml::Value::Table(t) => out.push((name, t)),
                _ => return Err(self.invalid(&format!("{key}.{name}"), "expected a section")),
            }
        }
        Ok(out)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(key, "expected a string")),
        }
    }

    pub fn socket_addr(&self, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let text = self.string(key)?.unwrap_or_else(|| default.to_string());
        text.parse().map_err(|_| {
            self.invalid(
                key,
                format!("expected an address such as 127.0.0.1:8080, got '{text}'"),
            )
        })
    }

    pub fn optional_integer_in(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let n = match value {
            toml::Value::Integer(n) => Some(*n),
            toml::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.invalid(
                key,
                format!("expected a whole number from {min} to {max}, got {}", show(value)),
            )),
        }
    }

    pub fn integer_in(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        Ok(self.optional_integer_in(key, min, max)?.unwrap_or(default))
    }

    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.table.get(key) {
            None => Ok(default),
            Some(v) => option_text(v)
                .ok()
                .and_then(|t| parse_bool(&t))
                .ok_or_else(|| self.invalid(key, format!("expected true or false, got {}", show(v)))),
        }
    }

    /// A list given as a comma-separated string or an array of strings.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(split_list(s)),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.trim().to_string()),
                    _ => Err(self.invalid(key, "expected a list of strings")),
                })
                .collect(),
            Some(_) => Err(self.invalid(key, "expected a comma-separated string or a list of strings")),
        }
    }

    /// Every key as text (strings, numbers and booleans).
    pub fn text_map(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        self.table
            .iter()
            .map(|(k, v)| {
                option_text(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|p| self.invalid(k, p))
            })
            .collect()
    }
}

/// The text form of an option value: strings as-is, numbers and booleans canonical.
pub fn option_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => Err(
            "expected a string, number or boolean (write JSON-valued options such as a target list as a string)"
                .to_string(),
        ),
    }
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// The `[[user]]` array.
pub fn users(file: &str, root: &TomlTable) -> Result<Vec<User>, ConfigError> {
    let Some(value) = root.get("user") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = value else {
        return Err(Section::new(file, "", root).invalid("user", "expected [[user]] entries"));
    };
    let mut users = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let place = format!("user #{}", i + 1);
        let toml::Value::Table(t) = item else {
            return Err(Section::new(file, &place, root).invalid("user", "expected a table"));
        };
        let s = Section::new(file, &place, t);
        s.only_known(&["name", "password", "roles"])?;
        let name = s
            .string("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| s.invalid("name", "missing"))?;
        if name.contains(':') {
            return Err(s.invalid("name", "a user name cannot contain ':'"));
        }
        let password = s
            .string("password")?
            .ok_or_else(|| s.invalid("password", "missing"))?;
        let mut roles = Vec::new();
        for r in s.list("roles")? {
            roles.push(match r.as_str() {
                "Administrator" => Role::Administrator,
                "Supervisor" => Role::Supervisor,
                "CallbackReadOnly" => Role::CallbackReadOnly,
                other => {
                    return Err(s.invalid(
                        "roles",
                        format!(
                            "unknown role '{other}' (known: Administrator, Supervisor, CallbackReadOnly)"
                        ),
                    ));
                }
            });
        }
        if roles.is_empty() {
            return Err(s.invalid("roles", "give at least one role"));
        }
        if users.iter().any(|u: &User| u.name == name) {
            return Err(s.invalid("name", format!("user '{name}' is defined twice")));
        }
        users.push(User {
            name,
            password,
            roles,
        });
    }
    Ok(users)
}

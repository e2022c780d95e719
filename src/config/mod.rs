//! Configuration: one TOML file with listeners, storage, users, calendars and the callback
//! **services**, each a `[service.NAME]` section holding the seed's underscore options.
//!
//! A value the server cannot interpret stops start-up with an error naming the file, the
//! section (service) and the option. Conditions that the API contract reports at request time
//! (an unknown `_type`, a missing calendar, ...) are kept as warnings, so a service behaves on
//! the wire exactly as the seed says, and `boomerang config check` still shows them.

mod calendar;
mod capacity;
mod rules;
mod service;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use calendar::{CalendarConfig, DateRule, DayHours, parse_day_hours, parse_timezone};
pub use capacity::{CapacityConfig, HourGrid, MAX_CAPACITY};
pub use rules::{ApiKey, NumberRule, PatternGroup};
pub use service::{
    DEFAULT_MAX_SUBMIT_ATTEMPTS, DEFAULT_TTL_SECS, EwtSource, ServiceConfig,
    check_typed_option as service_check_typed_option, is_valid_key,
};
use values::{Section, TomlTable};

/// The embedded demo configuration (`src/config/demo.toml`).
pub const DEMO_TOML: &str = include_str!("demo.toml");

/// What went wrong while reading a configuration, naming where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: [{section}] {option}: {problem}")]
    Invalid {
        file: String,
        section: String,
        option: String,
        problem: String,
    },
}

/// The whole server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from: a file path, or `<demo>`.
    pub source: String,
    pub http: HttpConfig,
    pub sip: SipConfig,
    pub storage: StorageConfig,
    /// Decimal node number, the prefix of generated callback IDs.
    pub node_id: u16,
    pub callback: CallbackGlobals,
    /// The global `chat` section (only checked for services with `_media_type=chat`).
    pub chat: BTreeMap<String, String>,
    pub users: Vec<User>,
    pub calendars: BTreeMap<String, CalendarConfig>,
    pub capacities: BTreeMap<String, CapacityConfig>,
    pub services: BTreeMap<String, ServiceConfig>,
    /// Exception pattern groups (`_exceptions`).
    pub patterns: BTreeMap<String, PatternGroup>,
    /// Country and number validation rules (`_number_rule`).
    pub number_rules: BTreeMap<String, NumberRule>,
    /// API keys; when any is configured, the service routes require `x-api-key`.
    pub api_keys: Vec<ApiKey>,
    /// Agents, agent groups and routing settings (`[[agent]]`, `[agent_group.*]`, `[routing]`).
    pub routing: crate::routing::RoutingConfig,
    /// Trunks, agent SIP accounts and media settings (`[telephony]`, `[[trunks]]`,
    /// `[[sip_accounts]]`).
    pub telephony: crate::sip::config::TelephonyConfig,
    /// Conditions reported at request time, listed by `config check`.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Browser origins allowed by CORS (none: no CORS headers).
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StorageConfig {
    Sqlite { path: PathBuf },
}

/// GMS-level callback options (the seed's `callback` section).
#[derive(Debug, Clone)]
pub struct CallbackGlobals {
    /// Extra record keys that read endpoints return (`returned-keys`).
    pub returned_keys: Vec<String>,
    /// Extra keys the admin queue query may filter on (`filter-keys`).
    pub filter_keys: Vec<String>,
    /// `_fix_plus_on_int_phone_numbers` of the global section (used by cross-service lookup).
    pub fix_plus: bool,
    /// Largest allowed `_desired_time - now`, seconds (spec 40 §5.5, default 30 days).
    pub desired_time_max_future: i64,
    /// Largest allowed `now - _desired_time`, seconds; `None` = the service's `_ttl`.
    pub desired_time_max_past: Option<i64>,
    /// How long a completed record stays after its expiration time before it is purged.
    pub purge_grace: i64,
}

/// A user of the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub password: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Administrator,
    Supervisor,
    CallbackReadOnly,
}

impl Config {
    /// The embedded demo configuration.
    pub fn demo() -> Config {
        match Config::parse(DEMO_TOML, "<demo>") {
            Ok(config) => config,
            // The demo file is part of the binary and covered by a test.
            Err(e) => panic!("embedded demo configuration is invalid: {e}"),
        }
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let root: TomlTable = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim().to_string(),
        })?;
        let mut warnings = Vec::new();
        let top = Section::new(file, "", &root);
        top.only_known(&[
            "http",
            "sip",
            "storage",
            "node",
            "callback",
            "chat",
            "user",
            "calendar",
            "capacity",
            "service",
            "patterns",
            "number_rule",
            "api_key",
            "agent",
            "agent_group",
            "routing",
            "telephony",
            "trunks",
            "sip_accounts",
        ])?;

        let http_t = top.table("http")?;
        let http_s = Section::new(file, "http", &http_t);
        http_s.only_known(&["listen", "max_body_bytes", "allowed_origins"])?;
        let http = HttpConfig {
            listen: http_s.socket_addr("listen", "127.0.0.1:8080")?,
            allowed_origins: http_s.list("allowed_origins")?,
            max_body_bytes: http_s.integer_in("max_body_bytes", 65536, 1024, 64 * 1024 * 1024)? as usize,
        };

        let sip_t = top.table("sip")?;
        let sip_s = Section::new(file, "sip", &sip_t);
        sip_s.only_known(&["listen"])?;
        let sip = SipConfig {
            listen: sip_s.socket_addr("listen", "127.0.0.1:5060")?,
        };

        let storage_t = top.table("storage")?;
        let storage_s = Section::new(file, "storage", &storage_t);
        storage_s.only_known(&["backend", "path"])?;
        let storage = match storage_s.string("backend")?.as_deref().unwrap_or("sqlite") {
            "sqlite" => StorageConfig::Sqlite {
                path: PathBuf::from(
                    storage_s
                        .string("path")?
                        .unwrap_or_else(|| "./data/boomerang.db".into()),
                ),
            },
            other => {
                return Err(storage_s.invalid(
                    "backend",
                    format!("unknown storage backend '{other}' (known: sqlite)"),
                ));
            }
        };

        let node_t = top.table("node")?;
        let node_s = Section::new(file, "node", &node_t);
        node_s.only_known(&["id"])?;
        let node_id = node_s.integer_in("id", 1, 1, 9999)? as u16;

        let callback_t = top.table("callback")?;
        let cb_s = Section::new(file, "callback", &callback_t);
        let callback = CallbackGlobals {
            returned_keys: cb_s.list("returned-keys")?,
            filter_keys: cb_s.list("filter-keys")?,
            fix_plus: cb_s.boolean("_fix_plus_on_int_phone_numbers", false)?,
            desired_time_max_future: cb_s.integer_in(
                "desired_time_max_future",
                30 * 86400,
                60,
                10 * 365 * 86400,
            )?,
            desired_time_max_past: cb_s.optional_integer_in("desired_time_max_past", 0, 10 * 365 * 86400)?,
            purge_grace: cb_s.integer_in("purge_grace", 3600, 0, 365 * 86400)?,
        };

        let chat_t = top.table("chat")?;
        let chat = Section::new(file, "chat", &chat_t).text_map()?;

        let users = values::users(file, &root)?;

        let mut calendars = BTreeMap::new();
        for (name, table) in top.named_tables("calendar")? {
            let calendar = CalendarConfig::parse(file, &name, &table)?;
            calendars.insert(name, calendar);
        }
        let mut capacities = BTreeMap::new();
        for (name, table) in top.named_tables("capacity")? {
            let capacity = CapacityConfig::parse(file, &name, &table)?;
            capacities.insert(name, capacity);
        }

        let mut patterns = BTreeMap::new();
        for (name, table) in top.named_tables("patterns")? {
            patterns.insert(name.clone(), PatternGroup::parse(file, &name, &table)?);
        }
        let mut number_rules = BTreeMap::new();
        for (name, table) in top.named_tables("number_rule")? {
            number_rules.insert(name.clone(), NumberRule::parse(file, &name, &table)?);
        }
        let api_keys = rules::api_keys(file, &root)?;
        let routing =
            crate::routing::RoutingConfig::from_table(&root).map_err(|problem| ConfigError::Invalid {
                file: file.to_string(),
                section: "routing".into(),
                option: String::new(),
                problem,
            })?;
        let telephony = crate::sip::config::parse(&root).map_err(|e| ConfigError::Invalid {
            file: file.to_string(),
            section: "telephony".into(),
            option: e.field,
            problem: e.message,
        })?;

        // An agent's phone registers with one of the configured SIP accounts.
        if let Some((i, agent, account)) = routing.agents.iter().enumerate().find_map(|(i, a)| {
            a.sip_account
                .as_deref()
                .filter(|u| !telephony.agents.iter().any(|acct| acct.user == *u))
                .map(|u| (i, a.id.clone(), u.to_string()))
        }) {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                section: "agent".into(),
                option: format!("agent[{i}].sip_account"),
                problem: format!("agent '{agent}': no [[sip_accounts]] entry with user = \"{account}\""),
            });
        }

        let mut services = BTreeMap::new();
        for (name, table) in top.named_tables("service")? {
            let service = ServiceConfig::parse(file, &name, &table, &calendars, &chat, &mut warnings)?;
            services.insert(name, service);
        }

        Ok(Config {
            source: file.to_string(),
            http,
            sip,
            storage,
            node_id,
            callback,
            chat,
            users,
            calendars,
            capacities,
            services,
            patterns,
            number_rules,
            api_keys,
            routing,
            telephony,
            warnings,
        })
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_configuration_is_valid() {
        let config = Config::demo();
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sip.listen.to_string(), "127.0.0.1:5060");
        let immediate = config.service("immediate").unwrap();
        assert_eq!(immediate.option("_type"), Some("ors"));
        let scheduled = config.service("scheduled").unwrap();
        assert_eq!(scheduled.option("_business_hours_service"), Some("office"));
        let office = &config.calendars["office"];
        assert_eq!(office.timezone.name(), "Europe/Paris");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    fn error_of(text: &str) -> String {
        Config::parse(text, "test.toml").unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_file_section_and_option() {
        let e = error_of("[service.s1]\n_type='ors'\n_ttl='abc'\n");
        assert_eq!(
            e,
            "test.toml: [service.s1] _ttl: expected a whole number of seconds from 1 to 315360000, got 'abc'"
        );
        let e = error_of("[service.s1]\n_wait_for_agent='maybe'\n");
        assert!(
            e.starts_with("test.toml: [service.s1] _wait_for_agent: expected true or false"),
            "{e}"
        );
        let e = error_of("[http]\nlisten='nowhere'\n");
        assert!(e.starts_with("test.toml: [http] listen:"), "{e}");
        let e = error_of("[htp]\n");
        assert!(e.contains("unknown section"), "{e}");
        let e = error_of("[service.s1]\n_ttl = [1, 2]\n");
        assert!(e.starts_with("test.toml: [service.s1] _ttl:"), "{e}");
        let e = error_of("this is not toml");
        assert!(e.starts_with("test.toml: not valid TOML"), "{e}");
        let e = error_of("[calendar.c]\ntimezone='Mars/Olympus'\n");
        assert!(
            e.starts_with("test.toml: [calendar.c] timezone: unknown time zone"),
            "{e}"
        );
    }

    #[test]
    fn unknown_service_options_are_kept() {
        let c = Config::parse(
            "[service.s1]\n_type='ors'\n_service='callback'\n_foo_bar=7\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.service("s1").unwrap().option("_foo_bar"), Some("7"));
    }

    #[test]
    fn request_time_conditions_are_warnings() {
        let c = Config::parse("[service.w]\n_type='foo'\n_service='callback'\n", "t").unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("_type")), "{:?}", c.warnings);
    }
}

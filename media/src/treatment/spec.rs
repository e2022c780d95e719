//! The value forms of treatment options (spec 20 §2, spec 30 §2.9):
//!
//! - unset or empty: no treatment for that stage;
//! - a file name, relative to the treatments folder (`music.wav`, `GMSApplications/x.wav`),
//!   an absolute path, or a `file://` URL;
//! - an `http(s)://` URL (resolved by the server, not by this crate);
//! - JSON `{"file": "...", "hints": {"am-beep-detection": "on"}}`;
//! - JSON `{}`: explicitly no prompt.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a treatment's audio comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TreatmentSource {
    /// A name relative to the treatments folder (a `GMSApplications/` prefix is removed).
    Name(String),
    /// An absolute path (from an absolute value or a `file://` URL).
    Path(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

/// A treatment to play, with its hints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreatmentSpec {
    /// The audio.
    pub source: TreatmentSource,
    /// Hints from the JSON form (values as strings).
    pub hints: BTreeMap<String, String>,
}

impl TreatmentSpec {
    /// A spec for `source` without hints.
    pub fn new(source: TreatmentSource) -> Self {
        TreatmentSpec {
            source,
            hints: BTreeMap::new(),
        }
    }

    /// The `am-beep-detection` hint: start playback after the answering machine's beep.
    pub fn am_beep_detection(&self) -> bool {
        self.hints
            .get("am-beep-detection")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1"))
    }
}

/// A parsed treatment option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreatmentOption {
    /// Option not set (or empty): the stage's default behaviour.
    Unset,
    /// `{}`: explicitly no prompt.
    Disabled,
    /// Play this.
    Play(TreatmentSpec),
}

/// Why an option value could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not valid JSON although it starts like JSON.
    #[error("treatment option {value:?} is not valid JSON: {reason}")]
    BadJson {
        /// The value.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// A JSON object with hints but no `file`.
    #[error("treatment option {value:?} has no \"file\"")]
    MissingFile {
        /// The value.
        value: String,
    },
    /// `file` or a hint is of the wrong type.
    #[error("treatment option {value:?}: {reason}")]
    BadField {
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A URL scheme other than file/http/https.
    #[error("treatment option {value:?}: unsupported URL scheme")]
    UnsupportedScheme {
        /// The value.
        value: String,
    },
}

fn source_of(value: &str, file: &str) -> Result<TreatmentSource, SpecError> {
    let f = file.trim();
    let lower = f.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let start = f.len() - rest.len();
        let path = f.get(start..).unwrap_or_default();
        let path = path.strip_prefix("localhost").unwrap_or(path);
        return Ok(TreatmentSource::Path(PathBuf::from(path)));
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(TreatmentSource::Url(f.to_string()));
    }
    if let Some((scheme, _)) = f.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(SpecError::UnsupportedScheme {
                value: value.to_string(),
            });
        }
    }
    if f.starts_with('/') {
        return Ok(TreatmentSource::Path(PathBuf::from(f)));
    }
    let name = f.strip_prefix("GMSApplications/").unwrap_or(f);
    Ok(TreatmentSource::Name(name.to_string()))
}

/// Parse a treatment option value.
pub fn parse_option(value: &str) -> Result<TreatmentOption, SpecError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(TreatmentOption::Unset);
    }
    if !(v.starts_with('{') || v.starts_with('"')) {
        return Ok(TreatmentOption::Play(TreatmentSpec::new(source_of(value, v)?)));
    }
    let json: serde_json::Value = serde_json::from_str(v).map_err(|e| SpecError::BadJson {
        value: value.to_string(),
        reason: e.to_string(),
    })?;
    let bad = |reason: &str| SpecError::BadField {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match json {
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(TreatmentOption::Unset),
        serde_json::Value::String(s) => Ok(TreatmentOption::Play(TreatmentSpec::new(source_of(value, &s)?))),
        serde_json::Value::Object(map) => {
            if map.is_empty() {
                return Ok(TreatmentOption::Disabled);
            }
            let file = match map.get("file") {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s,
                Some(serde_json::Value::String(_)) | None => {
                    return Err(SpecError::MissingFile {
                        value: value.to_string(),
                    });
                }
                Some(_) => return Err(bad("\"file\" must be a string")),
            };
            let mut hints = BTreeMap::new();
            match map.get("hints") {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(h)) => {
                    for (k, v) in h {
                        let s = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Bool(b) => b.to_string(),
                            serde_json::Value::Number(n) => n.to_string(),
                            _ => {
                                return Err(bad("hint values must be strings, numbers or booleans"));
                            }
                        };
                        hints.insert(k.clone(), s);
                    }
                }
                Some(_) => return Err(bad("\"hints\" must be an object")),
            }
            Ok(TreatmentOption::Play(TreatmentSpec {
                source: source_of(value, file)?,
                hints,
            }))
        }
        _ => Err(bad("must be a file name, a JSON object or {}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(v: &str) -> TreatmentSpec {
        match parse_option(v).unwrap() {
            TreatmentOption::Play(s) => s,
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn plain_names_paths_and_urls() {
        assert_eq!(
            play("music.wav").source,
            TreatmentSource::Name("music.wav".into())
        );
        assert_eq!(
            play("  GMSApplications/next_customer_rep.wav ").source,
            TreatmentSource::Name("next_customer_rep.wav".into())
        );
        assert_eq!(
            play("/srv/t/a.wav").source,
            TreatmentSource::Path("/srv/t/a.wav".into())
        );
        assert_eq!(
            play("file:///srv/t/a.wav").source,
            TreatmentSource::Path("/srv/t/a.wav".into())
        );
        assert_eq!(
            play("file://localhost/srv/a.wav").source,
            TreatmentSource::Path("/srv/a.wav".into())
        );
        assert_eq!(
            play("https://media.example/a.wav").source,
            TreatmentSource::Url("https://media.example/a.wav".into())
        );
        assert!(matches!(
            parse_option("ftp://x/a.wav"),
            Err(SpecError::UnsupportedScheme { .. })
        ));
        assert_eq!(parse_option("").unwrap(), TreatmentOption::Unset);
        assert_eq!(parse_option("   ").unwrap(), TreatmentOption::Unset);
    }

    #[test]
    fn json_forms_of_the_seed() {
        let s = play(r#"{ "file": "call_fail_ans_machine.wav", "hints":{ "am-beep-detection":"on" } }"#);
        assert_eq!(
            s.source,
            TreatmentSource::Name("call_fail_ans_machine.wav".into())
        );
        assert!(s.am_beep_detection());
        let s = play(r#"{"file": "file_url", "hints": {"hint1": "value", "n": 3, "b": false}}"#);
        assert!(!s.am_beep_detection());
        assert_eq!(s.hints.get("n").map(String::as_str), Some("3"));
        assert_eq!(s.hints.get("b").map(String::as_str), Some("false"));
        assert!(play(r#"{"file":"a.wav","hints":{"am-beep-detection":true}}"#).am_beep_detection());
        assert_eq!(parse_option("{}").unwrap(), TreatmentOption::Disabled);
        assert_eq!(parse_option("{ }").unwrap(), TreatmentOption::Disabled);
        assert_eq!(
            play(r#""quoted.wav""#).source,
            TreatmentSource::Name("quoted.wav".into())
        );
    }

    #[test]
    fn bad_json_is_an_error_naming_the_value() {
        let e = parse_option(r#"{"file": "a.wav""#).unwrap_err();
        assert!(matches!(e, SpecError::BadJson { .. }));
        assert!(e.to_string().contains("a.wav"));
        assert!(matches!(
            parse_option(r#"{"hints": {}}"#),
            Err(SpecError::MissingFile { .. })
        ));
        assert!(matches!(
            parse_option(r#"{"file": 3}"#),
            Err(SpecError::BadField { .. })
        ));
        assert!(matches!(
            parse_option(r#"{"file": "a", "hints": [1]}"#),
            Err(SpecError::BadField { .. })
        ));
        assert!(matches!(
            parse_option(r#"{"file": "a", "hints": {"x": [1]}}"#),
            Err(SpecError::BadField { .. })
        ));
    }
}

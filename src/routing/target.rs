//! Routing targets (`_target`): one target in the seed's single-target syntax
//! `<Target String>@<StatServer name>.<Target Type>`, or a JSON array of up to 15 target
//! objects with `timeout`, `clear` and a statistic condition (spec 10 §4.2, spec 30 §2.8).

use std::fmt;

use serde_json::Value;

use super::skill::SkillExpr;

/// Most targets one `_target` array may hold (8.5.114.09).
pub const MAX_TARGETS: usize = 15;

/// What a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `Name@Stat.GA`: a group of agents.
    Group(String),
    /// `Name@Stat.A`: one agent.
    Agent(String),
    /// A bare name without type suffix: a group of that name if configured, else an agent.
    Name(String),
    /// A skill expression (`?:` prefix, or a bare string containing comparison or logic).
    Skills(SkillExpr),
}

impl Target {
    /// Parses the single-target syntax.
    pub fn parse(text: &str) -> Result<Target, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty target".into());
        }
        let (body, kind) = match text.rsplit_once('@') {
            Some((body, suffix)) => {
                let kind = match suffix.rsplit_once('.') {
                    Some((_stat_server, kind)) => kind.trim(),
                    None => {
                        return Err(format!(
                            "target '{text}': '@{suffix}' is not '@<StatServer>.<type>' (type A or GA)"
                        ));
                    }
                };
                (body.trim(), Some(kind))
            }
            None => (text, None),
        };
        if body.is_empty() {
            return Err(format!("target '{text}' has no name before '@'"));
        }
        let skill_text = body.strip_prefix("?:");
        match (kind, skill_text) {
            (_, Some(expr)) => Ok(Target::Skills(
                SkillExpr::parse(expr).map_err(|e| format!("target '{text}': {e}"))?,
            )),
            (Some(k), None) if k.eq_ignore_ascii_case("GA") => Ok(Target::Group(body.to_string())),
            (Some(k), None) if k.eq_ignore_ascii_case("A") => Ok(Target::Agent(body.to_string())),
            (Some(k), None) => Err(format!(
                "target '{text}': target type '{k}' is not supported (A = agent, GA = agent group)"
            )),
            (None, None) => {
                if body.contains(['>', '<', '=', '&', '|', '!', '(']) {
                    Ok(Target::Skills(
                        SkillExpr::parse(body).map_err(|e| format!("target '{text}': {e}"))?,
                    ))
                } else {
                    Ok(Target::Name(body.to_string()))
                }
            }
        }
    }

    pub fn is_skill_expression(&self) -> bool {
        matches!(self, Target::Skills(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Group(g) => write!(f, "{g}.GA"),
            Target::Agent(a) => write!(f, "{a}.A"),
            Target::Name(n) => write!(f, "{n}"),
            Target::Skills(e) => write!(f, "?:{e}"),
        }
    }
}

/// Statistics a target condition may check, computed from the agent registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// `StatAgentsAvailable`: agents of the target that are ready.
    AgentsAvailable,
    /// `StatAgentsTotal` / `StatAgentsLoggedIn`: agents of the target that are logged in.
    AgentsTotal,
    /// `StatAgentsBusy`: agents on a call or reserved.
    AgentsBusy,
    /// `RStatAgentsReady` / `RStatAgentsReadyvoice` (skill expressions too).
    RAgentsReady,
    /// `RStatAgentsTotal` (skill expressions too).
    RAgentsTotal,
}

impl Stat {
    pub fn parse(name: &str) -> Option<Stat> {
        Some(match name.trim() {
            "StatAgentsAvailable" => Stat::AgentsAvailable,
            "StatAgentsTotal" | "StatAgentsLoggedIn" => Stat::AgentsTotal,
            "StatAgentsBusy" => Stat::AgentsBusy,
            "RStatAgentsReady" | "RStatAgentsReadyvoice" => Stat::RAgentsReady,
            "RStatAgentsTotal" => Stat::RAgentsTotal,
            _ => return None,
        })
    }

    /// Only the `RStat*` statistics apply to skill-expression targets (spec 30 §2.8).
    fn allowed_for_skills(self) -> bool {
        matches!(self, Stat::RAgentsReady | Stat::RAgentsTotal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatCondition {
    pub stat: Stat,
    /// `true` for `<`, `false` for `>`.
    pub less: bool,
    pub value: f64,
}

impl StatCondition {
    /// Default when the `stat_*` fields are absent: skip the target while none of its agents is
    /// logged in (spec 10 §4.2 step 5).
    pub const DEFAULT: StatCondition = StatCondition {
        stat: Stat::AgentsTotal,
        less: true,
        value: 1.0,
    };

    /// Whether the condition holds, i.e. the target is to be skipped.
    pub fn skip(&self, stat_value: u32) -> bool {
        let v = f64::from(stat_value);
        if self.less { v < self.value } else { v > self.value }
    }
}

/// One step of a target list.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStep {
    pub target: Target,
    /// Seconds to wait on this step before moving on; `None` = wait here forever.
    pub timeout_secs: Option<u32>,
    /// `true`: the next step replaces this one; `false`: it is added.
    pub clear: bool,
    pub condition: StatCondition,
}

/// A parsed `_target`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetList {
    pub steps: Vec<TargetStep>,
}

impl TargetList {
    /// Parses `_target`: a JSON array (first non-blank character `[`) or one target.
    pub fn parse(text: &str) -> Result<TargetList, String> {
        let trimmed = text.trim();
        if !trimmed.starts_with('[') {
            return Ok(TargetList {
                steps: vec![TargetStep {
                    target: Target::parse(trimmed)?,
                    timeout_secs: None,
                    clear: false,
                    condition: StatCondition::DEFAULT,
                }],
            });
        }
        let value: Value =
            serde_json::from_str(trimmed).map_err(|e| format!("_target is not valid JSON: {e}"))?;
        let Value::Array(items) = value else {
            return Err("_target must be a JSON array of target objects".into());
        };
        if items.is_empty() {
            return Err("_target array is empty".into());
        }
        if items.len() > MAX_TARGETS {
            return Err(format!(
                "_target has {} targets; at most {MAX_TARGETS} are allowed",
                items.len()
            ));
        }
        let steps = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_step(item).map_err(|e| format!("_target[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TargetList { steps })
    }
}

/// A number given as a JSON number or a string holding one (the seed quotes them).
fn number(value: &Value, field: &str) -> Result<f64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| format!("'{field}' must be a number, got {value}"))
}

fn parse_step(item: &Value) -> Result<TargetStep, String> {
    let Value::Object(obj) = item else {
        return Err(format!("expected a target object, got {item}"));
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "target" | "timeout" | "clear" | "stat_to_check" | "stat_operator" | "stat_value"
        ) {
            return Err(format!("unknown key '{key}'"));
        }
    }
    let target = match obj.get("target") {
        Some(Value::String(s)) => Target::parse(s)?,
        Some(other) => return Err(format!("'target' must be a string, got {other}")),
        None => return Err("'target' is missing".into()),
    };
    let timeout_secs = match obj.get("timeout") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = number(v, "timeout")?;
            if t < 0.0 {
                return Err(format!("'timeout' must not be negative, got {t}"));
            }
            if t > f64::from(u32::MAX) {
                return Err(format!("'timeout' {t} is too large"));
            }
            Some(t.round() as u32)
        }
    };
    let clear = match obj.get("clear") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => return Err(format!("'clear' must be true or false, got {other}")),
    };
    let fields = (
        obj.get("stat_to_check"),
        obj.get("stat_operator"),
        obj.get("stat_value"),
    );
    let condition = match fields {
        (None, None, None) => StatCondition::DEFAULT,
        (Some(stat), Some(op), Some(value)) => {
            let name = stat.as_str().ok_or("'stat_to_check' must be a string")?;
            let stat = Stat::parse(name).ok_or_else(|| {
                format!(
                    "statistic '{name}' is not supported (StatAgentsAvailable, StatAgentsTotal, StatAgentsBusy, RStatAgentsReady, RStatAgentsReadyvoice, RStatAgentsTotal)"
                )
            })?;
            if target.is_skill_expression() && !stat.allowed_for_skills() {
                return Err(format!(
                    "statistic '{name}' cannot be checked on a skill expression (RStatAgentsReady, RStatAgentsReadyvoice or RStatAgentsTotal)"
                ));
            }
            let less = match op.as_str().map(str::trim) {
                Some("<") => true,
                Some(">") => false,
                _ => return Err(format!("'stat_operator' must be \"<\" or \">\", got {op}")),
            };
            StatCondition {
                stat,
                less,
                value: number(value, "stat_value")?,
            }
        }
        _ => return Err("'stat_to_check', 'stat_operator' and 'stat_value' go together".into()),
    };
    Ok(TargetStep {
        target,
        timeout_secs,
        clear,
        condition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_target_suffixes() {
        assert_eq!(
            Target::parse("GMS_AG_Kilfoil@Stat_Server.GA").unwrap(),
            Target::Group("GMS_AG_Kilfoil".into())
        );
        assert_eq!(
            Target::parse("a1@StatServer.A").unwrap(),
            Target::Agent("a1".into())
        );
        assert_eq!(Target::parse("Billing").unwrap(), Target::Name("Billing".into()));
        assert!(
            Target::parse("?:English=20&;Loans=2@StatServer.GA")
                .unwrap()
                .is_skill_expression()
        );
        assert!(
            Target::parse("Billing>5 & English")
                .unwrap()
                .is_skill_expression()
        );
        let e = Target::parse("p@Stat.AP").unwrap_err();
        assert!(e.contains("'AP' is not supported"), "{e}");
        assert!(Target::parse("x@nodot").is_err());
        assert!(Target::parse("@S.GA").is_err());
        assert!(Target::parse("Billing>").is_err());
    }

    #[test]
    fn seed_json_array() {
        let groups = ["Kilfoil", "Milburn", "Monique", "Oladipo", "Sippola"];
        let timeouts = [15, 10, 30, 15, 15];
        let items: Vec<String> = groups
            .iter()
            .zip(timeouts)
            .map(|(g, t)| {
                format!(
                    r#"{{"target":"GMS_AG_{g}@Stat_Server.GA","timeout":"{t}","clear":false,"stat_to_check":"StatAgentsAvailable","stat_operator":"<","stat_value":"1"}}"#
                )
            })
            .collect();
        let list = TargetList::parse(&format!("[{}]", items.join(","))).unwrap();
        assert_eq!(list.steps.len(), 5);
        assert_eq!(list.steps[2].timeout_secs, Some(30));
        assert_eq!(list.steps[4].target, Target::Group("GMS_AG_Sippola".into()));
        let c = list.steps[0].condition;
        assert_eq!((c.stat, c.less, c.value), (Stat::AgentsAvailable, true, 1.0));
        assert!(c.skip(0) && !c.skip(1));
    }

    #[test]
    fn bad_arrays_are_refused_with_a_reason() {
        let one = r#"{"target":"G@S.GA","timeout":"5"}"#;
        let sixteen = format!("[{}]", vec![one; 16].join(","));
        assert!(TargetList::parse(&sixteen).unwrap_err().contains("at most 15"));
        let fifteen = format!("[{}]", vec![one; 15].join(","));
        assert_eq!(TargetList::parse(&fifteen).unwrap().steps.len(), 15);
        let cases = [
            ("[{\"target\":\"G@S.GA\"", "not valid JSON"),
            ("[]", "empty"),
            (r#"[{"target":"G@S.GA","timeout":"-5"}]"#, "negative"),
            (r#"[{"target":"G@S.GA","timeout":"soon"}]"#, "must be a number"),
            (r#"[{"timeout":"5"}]"#, "'target' is missing"),
            (
                r#"[{"target":"G@S.GA","stat_to_check":"StatAgentsAvailable"}]"#,
                "go together",
            ),
            (
                r#"[{"target":"G@S.GA","stat_to_check":"Nope","stat_operator":"<","stat_value":"1"}]"#,
                "not supported",
            ),
            (
                r#"[{"target":"?:A>1@S.GA","stat_to_check":"StatAgentsAvailable","stat_operator":"<","stat_value":"1"}]"#,
                "skill expression",
            ),
            (
                r#"[{"target":"G@S.GA","stat_to_check":"StatAgentsAvailable","stat_operator":"=","stat_value":"1"}]"#,
                "stat_operator",
            ),
            (r#"[{"target":"G@S.GA","color":"red"}]"#, "unknown key"),
            (r#"[{"target":"Billing>"}]"#, "_target[0]"),
        ];
        for (text, want) in cases {
            let e = TargetList::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}

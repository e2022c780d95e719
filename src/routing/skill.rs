//! Skill expressions: `Billing>5 & English`, `?:English=20&Loans=2`, `(A | B) & !C`.
//!
//! Grammar (whitespace ignored): `or := and ('|' and)*`, `and := not ('&' not)*`,
//! `not := '!' not | '(' or ')' | skill [op level]` with `op` one of `> >= < <= = == !=`.
//! A bare skill means "has the skill with a level above 0". The seed's HTML artefact `&;` is
//! read as `&`.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Cmp {
    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
        }
    }
}

/// A parsed skill expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillExpr {
    /// A skill compared with a level; a bare skill is `skill > 0`.
    Skill {
        name: String,
        cmp: Cmp,
        level: i64,
    },
    Not(Box<SkillExpr>),
    And(Vec<SkillExpr>),
    Or(Vec<SkillExpr>),
}

impl SkillExpr {
    /// Whether an agent with these skills (name → level) matches. Skill names compare
    /// case-insensitively; a missing skill has level 0.
    pub fn matches(&self, skills: &BTreeMap<String, i64>) -> bool {
        match self {
            SkillExpr::Skill { name, cmp, level } => {
                let have = skills.get(name.as_str()).copied().unwrap_or(0);
                cmp.holds(have, *level)
            }
            SkillExpr::Not(e) => !e.matches(skills),
            SkillExpr::And(v) => v.iter().all(|e| e.matches(skills)),
            SkillExpr::Or(v) => v.iter().any(|e| e.matches(skills)),
        }
    }

    /// Parses an expression; the error names the problem and where.
    pub fn parse(text: &str) -> Result<SkillExpr, String> {
        let cleaned = text.replace("&;", "&");
        let tokens = tokenize(&cleaned)?;
        if tokens.is_empty() {
            return Err("empty skill expression".into());
        }
        let mut p = Parser { tokens, pos: 0 };
        let e = p.or(0)?;
        match p.tokens.get(p.pos) {
            None => Ok(e),
            Some(t) => Err(format!("unexpected '{t}' in skill expression '{text}'")),
        }
    }
}

impl fmt::Display for SkillExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillExpr::Skill { name, cmp, level } => write!(f, "{name}{}{level}", cmp.as_str()),
            SkillExpr::Not(e) => write!(f, "!({e})"),
            SkillExpr::And(v) | SkillExpr::Or(v) => {
                let sep = if matches!(self, SkillExpr::And(_)) {
                    " & "
                } else {
                    " | "
                };
                write!(f, "(")?;
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, "{sep}")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, ")")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Num(i64),
    Cmp(Cmp),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "{s}"),
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Cmp(c) => write!(f, "{}", c.as_str()),
            Tok::And => write!(f, "&"),
            Tok::Or => write!(f, "|"),
            Tok::Not => write!(f, "!"),
            Tok::Open => write!(f, "("),
            Tok::Close => write!(f, ")"),
        }
    }
}

/// Longest accepted expression, in characters and in tokens: bounds parsing work.
const MAX_LEN: usize = 4096;
const MAX_DEPTH: usize = 64;

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    if text.len() > MAX_LEN {
        return Err(format!("skill expression longer than {MAX_LEN} characters"));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '&' => {
                out.push(Tok::And);
                i += if next == Some('&') { 2 } else { 1 };
            }
            '|' => {
                out.push(Tok::Or);
                i += if next == Some('|') { 2 } else { 1 };
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            '>' | '<' | '=' | '!' => {
                let (tok, len) = match (c, next) {
                    ('>', Some('=')) => (Tok::Cmp(Cmp::Ge), 2),
                    ('<', Some('=')) => (Tok::Cmp(Cmp::Le), 2),
                    ('=', Some('=')) => (Tok::Cmp(Cmp::Eq), 2),
                    ('!', Some('=')) => (Tok::Cmp(Cmp::Ne), 2),
                    ('>', _) => (Tok::Cmp(Cmp::Gt), 1),
                    ('<', _) => (Tok::Cmp(Cmp::Lt), 1),
                    ('=', _) => (Tok::Cmp(Cmp::Eq), 1),
                    _ => (Tok::Not, 1),
                };
                out.push(tok);
                i += len;
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
                let s: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let n = s.parse().map_err(|_| format!("level '{s}' is out of range"))?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.' || *d == '-' || *d == ' ')
                {
                    // Names may contain spaces ("Customer Care"); trailing spaces are trimmed.
                    i += 1;
                }
                let s: String = chars.get(start..i).unwrap_or_default().iter().collect();
                out.push(Tok::Ident(s.trim().to_string()));
            }
            other => return Err(format!("unexpected character '{other}' in skill expression")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self, depth: usize) -> Result<SkillExpr, String> {
        let mut items = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            SkillExpr::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<SkillExpr, String> {
        let mut items = vec![self.unary(depth)?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            SkillExpr::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<SkillExpr, String> {
        if depth > MAX_DEPTH {
            return Err("skill expression nested too deeply".into());
        }
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Not) => Ok(SkillExpr::Not(Box::new(self.unary(depth + 1)?))),
            Some(Tok::Open) => {
                let e = self.or(depth + 1)?;
                match self.tokens.get(self.pos) {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => Err("missing ')' in skill expression".into()),
                }
            }
            Some(Tok::Ident(name)) => {
                if let Some(Tok::Cmp(cmp)) = self.peek().cloned() {
                    self.pos += 1;
                    match self.tokens.get(self.pos).cloned() {
                        Some(Tok::Num(level)) => {
                            self.pos += 1;
                            Ok(SkillExpr::Skill { name, cmp, level })
                        }
                        _ => Err(format!(
                            "skill '{name}' {} must be followed by a level",
                            cmp.as_str()
                        )),
                    }
                } else {
                    Ok(SkillExpr::Skill {
                        name,
                        cmp: Cmp::Gt,
                        level: 0,
                    })
                }
            }
            Some(t) => Err(format!("expected a skill name, found '{t}'")),
            None => Err("skill expression ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skills(list: &[(&str, i64)]) -> BTreeMap<String, i64> {
        list.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn issue_example_and_seed_example() {
        let e = SkillExpr::parse("Billing>5 & English").unwrap();
        assert!(e.matches(&skills(&[("Billing", 6), ("English", 1)])));
        assert!(!e.matches(&skills(&[("Billing", 5), ("English", 1)])));
        assert!(!e.matches(&skills(&[("Billing", 9)])));
        let e = SkillExpr::parse("English=20&;Loans=2").unwrap();
        assert!(e.matches(&skills(&[("English", 20), ("Loans", 2)])));
        assert!(!e.matches(&skills(&[("English", 20), ("Loans", 3)])));
    }

    #[test]
    fn precedence_parentheses_and_negation() {
        let e = SkillExpr::parse("A | B & !C").unwrap();
        assert!(e.matches(&skills(&[("A", 1), ("C", 1)])));
        assert!(!e.matches(&skills(&[("B", 1), ("C", 1)])));
        let e = SkillExpr::parse("(A | B) & C >= 3").unwrap();
        assert!(e.matches(&skills(&[("B", 1), ("C", 3)])));
        assert!(!e.matches(&skills(&[("A", 1), ("C", 2)])));
    }

    #[test]
    fn bad_expressions_are_errors_naming_the_problem() {
        for bad in [
            "",
            "Billing>",
            "Billing > & English",
            "(A",
            "A)",
            "A # B",
            "&A",
            "A=x",
        ] {
            assert!(SkillExpr::parse(bad).is_err(), "{bad}");
        }
        let deep = "(".repeat(200) + "A" + &")".repeat(200);
        assert!(SkillExpr::parse(&deep).is_err());
        assert!(SkillExpr::parse("Billing>99999999999999999999999").is_err());
    }
}

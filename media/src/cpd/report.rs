//! Reports for people and tools: the JSON line of `cpd analyze`, the `--timeline` chart, and
//! the evaluation of a labelled directory. These allocate; the frame path does not use them.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::eval::{Outcome, Report, parse_labels, score};
use super::{BLOCK_MS, Class, Cpd, CpdParams, ToneKind, analyse_pcm, slot_char};
use crate::treatment::{self, TreatmentError};

/// Decode a file (any format the treatment loader reads, resampled to 8 kHz mono) and run it
/// through a fresh engine.
pub fn analyse_file(path: &Path, params: &CpdParams) -> Result<Cpd, TreatmentError> {
    let t = treatment::load(path)?;
    Ok(analyse_pcm(t.pcm(), params))
}

/// The `cpd analyze` JSON object for one analysed file.
pub fn result_json(file: &str, cpd: &Cpd) -> Value {
    let d = cpd.decision();
    let ev = cpd.evidence();
    let tones: Vec<Value> = ev
        .tones()
        .map(|t| json!({"kind": t.kind.as_str(), "hz": (f64::from(t.hz) * 10.0).round() / 10.0, "start_ms": t.start_ms, "end_ms": t.end_ms}))
        .collect();
    let runs: Vec<Value> = ev
        .runs()
        .into_iter()
        .map(|(c, a, b, db)| json!([c.to_string(), a, b, db]))
        .collect();
    json!({
        "file": file,
        "class": d.map_or("unknown", |d| d.class.as_str()),
        "decision_ms": d.map_or(0, |d| d.at_ms),
        "beep_ms": cpd.beep().map(|b| b.onset_ms),
        "sit_code": d.and_then(|d| d.sit_code).map(|c| c.as_str()),
        "evidence": {
            "rule": d.map_or("none", |d| d.rule),
            "score": d.map_or(0.0, |d| (f64::from(d.score) * 10.0).round() / 10.0),
            "call_state": d.and_then(|d| d.class.call_state()),
            "beep": cpd.beep().map(|b| json!({"onset_ms": b.onset_ms, "reported_ms": b.at_ms, "hz": b.hz.round()})),
            "greeting_end_ms": cpd.greeting_end_ms(),
            "first_voice_ms": ev.first_voice_ms,
            "words": ev.words,
            "voiced_ms": ev.voiced_ms,
            "noise_floor_db": (f64::from(ev.noise_floor_db) * 10.0).round() / 10.0,
            "lost_ms": ev.lost_ms,
            "tones": tones,
            "tones_dropped": ev.tones_dropped,
            "timeline_legend": "[state, start_ms, end_ms, max_dbfs]; state: . quiet, v voice, t tone, x lost",
            "timeline": runs,
        }
    })
}

/// The readable per-100 ms chart of `cpd analyze --timeline`.
pub fn timeline_chart(cpd: &Cpd) -> String {
    let mut out = String::new();
    let d = cpd.decision();
    let beep = cpd.beep();
    for (i, s) in cpd.evidence().timeline().iter().enumerate() {
        let t = i as u32 * 100;
        let bar = ((i32::from(s.max_db) + 70).clamp(0, 70) / 2) as usize;
        let mut marks = String::new();
        if let Some(d) = d
            && (t..t + 100).contains(&d.at_ms)
        {
            let _ = write!(marks, " <- {} ({})", d.class.as_str(), d.rule);
        }
        if let Some(b) = beep
            && (t..t + 100).contains(&b.onset_ms)
        {
            let _ = write!(marks, " <- beep onset {} ms, {:.0} Hz", b.onset_ms, b.hz);
        }
        if let Some(g) = cpd.greeting_end_ms()
            && (t..t + 100).contains(&g)
        {
            marks.push_str(" <- greeting end");
        }
        let _ = writeln!(
            out,
            "{:>6.1}s {:>4} dB {} |{:<35}|{}",
            f64::from(t) / 1000.0,
            s.max_db,
            slot_char(s),
            "#".repeat(bar),
            marks
        );
    }
    out
}

/// Onset of what decided `class`: the first tone of that kind (for SIT the last segment begun
/// before the decision, the third, which the timing target counts from), or the first
/// voice.
pub fn decided_onset_ms(cpd: &Cpd, class: Class) -> Option<u32> {
    let ev = cpd.evidence();
    if class == Class::Sit {
        let at = cpd.decision().map_or(u32::MAX, |d| d.at_ms);
        return ev
            .tones()
            .filter(|t| t.kind == ToneKind::Sit && t.start_ms <= at)
            .last()
            // a third segment shorter than the evidence keeps (60 ms) began where the last
            // one kept ended
            .map(|t| {
                if t.end_ms + BLOCK_MS < at {
                    t.end_ms
                } else {
                    t.start_ms
                }
            });
    }
    let kinds: &[ToneKind] = match class {
        Class::Human | Class::Machine => return ev.first_voice_ms,
        Class::Busy | Class::Ringback => &[ToneKind::CallProgress],
        Class::Sit => &[ToneKind::Sit],
        Class::Fax => &[ToneKind::FaxCng, ToneKind::FaxCed, ToneKind::V21],
        Class::Silence | Class::Unknown => return None,
    };
    ev.tones().find(|t| kinds.contains(&t.kind)).map(|t| t.start_ms)
}

/// Cycle (ms) of the national cadence plan named by a decision's rule, if it is one.
pub fn decided_cycle_ms(rule: &str) -> Option<u32> {
    super::cadence::PLANS
        .iter()
        .find(|p| p.name == rule)
        .map(|p| p.pattern.iter().map(|&d| u32::from(d)).sum())
}

/// Evaluate a labelled directory (`DIR/labels.csv`). Returns the report, the per-file
/// outcomes, and the problems met (bad lines, unreadable files), which are skipped.
pub fn eval_dir(dir: &Path, params: &CpdParams) -> Result<(Report, Vec<Outcome>, Vec<String>), String> {
    let labels_path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&labels_path)
        .map_err(|e| format!("cannot read {}: {e}", labels_path.display()))?;
    let (labels, mut problems) = parse_labels(&text);
    let mut outcomes = Vec::new();
    for label in labels {
        let path = dir.join(&label.file);
        match analyse_file(&path, params) {
            Ok(cpd) => {
                let d = cpd.decision().copied();
                outcomes.push(Outcome {
                    class: d.map_or(super::Class::Unknown, |d| d.class),
                    decision_ms: d.map_or(0, |d| d.at_ms),
                    beep_ms: cpd.beep().map(|b| b.onset_ms),
                    beep_reported_ms: cpd.beep().map(|b| b.at_ms),
                    sit_code: d.and_then(|d| d.sit_code),
                    onset_ms: d.and_then(|d| decided_onset_ms(&cpd, d.class)),
                    cycle_ms: d.and_then(|d| decided_cycle_ms(d.rule)),
                    label,
                });
            }
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((score(&outcomes), outcomes, problems))
}

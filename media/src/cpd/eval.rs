//! `cpd eval`: score the engine on a labelled directory (`labels.csv`: `file,label,beep_at_ms`;
//! labels human, machine, fax_cng, fax_ced, busy, sit, ringback, silence). Allocates freely: this
//! is a tool, not the frame path.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::{Class, SitCode};

/// One line of `labels.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// File name relative to the directory.
    pub file: String,
    /// Label as written.
    pub label: String,
    /// Beep onset (ms), when the file has a beep.
    pub beep_at_ms: Option<u32>,
    /// SIT code, when given as `sit:IC` (optional extension).
    pub sit_code: Option<String>,
}

/// Parse `labels.csv` (an optional fourth column, or `sit:CODE`, gives the expected SIT code; a header line starting with `file` is skipped; blank lines and `#`
/// comments too). Bad lines are reported, not fatal.
pub fn parse_labels(text: &str) -> (Vec<Label>, Vec<String>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("file")) {
            continue;
        }
        let mut it = line.split(',').map(str::trim);
        let (Some(file), Some(label)) = (it.next(), it.next()) else {
            bad.push(format!("line {}: expected file,label,beep_at_ms", n + 1));
            continue;
        };
        let beep = it.next().unwrap_or("");
        let code_col = it.next().filter(|c| !c.is_empty()).map(str::to_ascii_uppercase);
        let beep_at_ms = if beep.is_empty() {
            None
        } else {
            match beep.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v.round() as u32),
                _ => {
                    bad.push(format!("line {}: bad beep_at_ms {beep:?}", n + 1));
                    continue;
                }
            }
        };
        let (label, sit_code) = match label.split_once(':') {
            Some((l, c)) => (l.to_string(), Some(c.to_ascii_uppercase())),
            None => (label.to_string(), code_col),
        };
        if expected_class(&label).is_none() {
            bad.push(format!("line {}: unknown label {label:?}", n + 1));
            continue;
        }
        out.push(Label {
            file: file.to_string(),
            label,
            beep_at_ms,
            sit_code,
        });
    }
    (out, bad)
}

/// The class a label expects.
pub fn expected_class(label: &str) -> Option<Class> {
    Some(match label {
        "human" => Class::Human,
        "machine" => Class::Machine,
        "fax" | "fax_cng" | "fax_ced" => Class::Fax,
        "busy" | "reorder" => Class::Busy,
        "sit" => Class::Sit,
        "ringback" => Class::Ringback,
        "silence" => Class::Silence,
        _ => return None,
    })
}

/// What the engine said about one file.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its label.
    pub label: Label,
    /// Decided class.
    pub class: Class,
    /// When.
    pub decision_ms: u32,
    /// Beep onset reported.
    pub beep_ms: Option<u32>,
    /// When the beep was reported.
    pub beep_reported_ms: Option<u32>,
    /// SIT code.
    pub sit_code: Option<SitCode>,
    /// Onset of what was decided, as the engine heard it: the first tone of the decided kind
    /// (busy, ringback, SIT, fax) or the first voice (human, machine).
    pub onset_ms: Option<u32>,
    /// Cycle of the cadence that decided busy or ringback (ms).
    pub cycle_ms: Option<u32>,
}

/// Beep onsets further than this from the label are false beeps (and misses).
pub const BEEP_MATCH_MS: u32 = 250;

/// Scores of one evaluation.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Files scored.
    pub files: usize,
    /// (expected, decided) -> count.
    pub confusion: BTreeMap<(&'static str, &'static str), usize>,
    /// Per class: (precision, recall, support).
    pub per_class: BTreeMap<&'static str, (f64, f64, usize)>,
    /// Per class, correct decisions: (p50, p95) latency in ms.
    pub latency: BTreeMap<&'static str, (u32, u32)>,
    /// Human-vs-machine accuracy over files labelled human or machine.
    pub hm_accuracy: f64,
    /// Share of human files decided machine.
    pub human_as_machine: f64,
    /// Files with a labelled beep.
    pub beeps_labelled: usize,
    /// Of those, beeps found within [`BEEP_MATCH_MS`].
    pub beeps_found: usize,
    /// Beeps reported where there is none (or far from the labelled one).
    pub false_beeps: usize,
    /// Onset error of found beeps: (p50, p95, max) ms.
    pub onset_error: (u32, u32, u32),
    /// Reporting delay after the true onset, found beeps: (p50, p95, max) ms.
    pub beep_delay: (u32, u32, u32),
    /// SIT files with a labelled code, and how many got it right.
    pub sit_codes: (usize, usize),
    /// Per class, correct decisions: latency after the onset (first tone or first voice),
    /// (p50, p95, max) ms.
    pub after_onset: BTreeMap<&'static str, (u32, u32, u32)>,
    /// Busy and ringback decided right: latency after the first tone onset in cycles of the
    /// matched cadence, (p50, p95, max) in thousandths of a cycle.
    pub cycles: BTreeMap<&'static str, (u32, u32, u32)>,
}

const CLASSES: [Class; 8] = [
    Class::Human,
    Class::Machine,
    Class::Fax,
    Class::Busy,
    Class::Sit,
    Class::Ringback,
    Class::Silence,
    Class::Unknown,
];

/// Percentile (nearest rank) of a sorted-in-place list; 0 for none.
pub fn percentile(v: &mut [u32], pct: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((pct / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied().unwrap_or(0)
}

/// Score outcomes.
pub fn score(outcomes: &[Outcome]) -> Report {
    let mut r = Report {
        files: outcomes.len(),
        ..Report::default()
    };
    let mut lat: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let (mut hm, mut hm_ok, mut humans, mut h_as_m) = (0, 0, 0, 0);
    let (mut errs, mut delays) = (Vec::new(), Vec::new());
    let mut onset_lat: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let mut cycle_lat: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for o in outcomes {
        let Some(want) = expected_class(&o.label.label) else {
            continue;
        };
        *r.confusion.entry((want.as_str(), o.class.as_str())).or_default() += 1;
        if want == o.class {
            lat.entry(want.as_str()).or_default().push(o.decision_ms);
            if let Some(on) = o.onset_ms {
                let after = o.decision_ms.saturating_sub(on);
                onset_lat.entry(want.as_str()).or_default().push(after);
                if let Some(cycle) = o.cycle_ms.filter(|&c| c > 0) {
                    let milli = (u64::from(after) * 1000 / u64::from(cycle)).min(u64::from(u32::MAX)) as u32;
                    cycle_lat.entry(want.as_str()).or_default().push(milli);
                }
            }
        }
        if matches!(want, Class::Human | Class::Machine) {
            hm += 1;
            hm_ok += usize::from(want == o.class);
        }
        if want == Class::Human {
            humans += 1;
            h_as_m += usize::from(o.class == Class::Machine);
        }
        match (o.label.beep_at_ms, o.beep_ms) {
            (Some(truth), Some(got)) if truth.abs_diff(got) <= BEEP_MATCH_MS => {
                r.beeps_labelled += 1;
                r.beeps_found += 1;
                errs.push(truth.abs_diff(got));
                delays.push(o.beep_reported_ms.unwrap_or(got).saturating_sub(truth));
            }
            (Some(_), got) => {
                r.beeps_labelled += 1;
                r.false_beeps += usize::from(got.is_some());
            }
            (None, Some(_)) => r.false_beeps += 1,
            (None, None) => {}
        }
        if want == Class::Sit
            && let Some(code) = &o.label.sit_code
        {
            r.sit_codes.0 += 1;
            r.sit_codes.1 += usize::from(o.sit_code.map(SitCode::as_str) == Some(code.as_str()));
        }
    }
    for c in CLASSES {
        let name = c.as_str();
        let tp = r.confusion.get(&(name, name)).copied().unwrap_or(0);
        let support: usize = r
            .confusion
            .iter()
            .filter(|((e, _), _)| *e == name)
            .map(|(_, n)| n)
            .sum();
        let predicted: usize = r
            .confusion
            .iter()
            .filter(|((_, d), _)| *d == name)
            .map(|(_, n)| n)
            .sum();
        if support == 0 && predicted == 0 {
            continue;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        r.per_class
            .insert(name, (ratio(tp, predicted), ratio(tp, support), support));
    }
    for (name, mut v) in lat {
        let p50 = percentile(&mut v, 50.0);
        let p95 = percentile(&mut v, 95.0);
        r.latency.insert(name, (p50, p95));
    }
    let spread = |mut v: Vec<u32>| {
        let max = v.iter().copied().max().unwrap_or(0);
        (percentile(&mut v, 50.0), percentile(&mut v, 95.0), max)
    };
    for (name, v) in onset_lat {
        r.after_onset.insert(name, spread(v));
    }
    for (name, v) in cycle_lat {
        r.cycles.insert(name, spread(v));
    }
    r.hm_accuracy = if hm == 0 { 1.0 } else { hm_ok as f64 / hm as f64 };
    r.human_as_machine = if humans == 0 {
        0.0
    } else {
        h_as_m as f64 / humans as f64
    };
    let max = |v: &[u32]| v.iter().copied().max().unwrap_or(0);
    r.onset_error = (
        percentile(&mut errs, 50.0),
        percentile(&mut errs, 95.0),
        max(&errs),
    );
    r.beep_delay = (
        percentile(&mut delays, 50.0),
        percentile(&mut delays, 95.0),
        max(&delays),
    );
    r
}

impl Report {
    /// Beep recall (1.0 when no file has a beep).
    pub fn beep_recall(&self) -> f64 {
        if self.beeps_labelled == 0 {
            1.0
        } else {
            self.beeps_found as f64 / self.beeps_labelled as f64
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used: Vec<&'static str> = CLASSES
            .iter()
            .map(|c| c.as_str())
            .filter(|n| self.per_class.contains_key(n))
            .collect();
        writeln!(f, "files: {}", self.files)?;
        writeln!(f, "\nconfusion matrix (rows: label, columns: decided)")?;
        let mut head = format!("{:>10}", "");
        for c in &used {
            let _ = write!(head, " {c:>9}");
        }
        writeln!(f, "{head}")?;
        for e in &used {
            let mut row = format!("{e:>10}");
            for d in &used {
                let n = self.confusion.get(&(*e, *d)).copied().unwrap_or(0);
                let _ = write!(row, " {n:>9}");
            }
            writeln!(f, "{row}")?;
        }
        writeln!(
            f,
            "\n{:>10} {:>9} {:>9} {:>7} {:>8} {:>8}   {:>24}   cycles p50/p95/max",
            "class", "precision", "recall", "files", "p50 ms", "p95 ms", "after onset p50/p95/max"
        )?;
        for c in &used {
            let (p, rc, n) = self.per_class.get(c).copied().unwrap_or((0.0, 0.0, 0));
            let (l50, l95) = self.latency.get(c).copied().unwrap_or((0, 0));
            let onset = self
                .after_onset
                .get(c)
                .map_or(String::from("-"), |(a, b, m)| format!("{a}/{b}/{m} ms"));
            let cycles = self.cycles.get(c).map_or(String::new(), |(a, b, m)| {
                let x = |v: &u32| f64::from(*v) / 1000.0;
                format!("{:.2}/{:.2}/{:.2}", x(a), x(b), x(m))
            });
            writeln!(
                f,
                "{c:>10} {:>8.1}% {:>8.1}% {n:>7} {l50:>8} {l95:>8}   {onset:>24}   {cycles}",
                p * 100.0,
                rc * 100.0
            )?;
        }
        writeln!(
            f,
            "(latency from the first sample; \"after onset\": from the first tone of the decided kind (SIT: \
             the third segment) or the first voice; cycles: of the matched busy/ringback cadence)"
        )?;
        writeln!(
            f,
            "\nhuman vs machine accuracy: {:.1}%   human decided machine: {:.1}%",
            self.hm_accuracy * 100.0,
            self.human_as_machine * 100.0
        )?;
        writeln!(
            f,
            "beeps: {}/{} found (recall {:.1}%), false beeps: {}, onset error p50/p95/max: {}/{}/{} ms, \
             reported after onset p50/p95/max: {}/{}/{} ms",
            self.beeps_found,
            self.beeps_labelled,
            self.beep_recall() * 100.0,
            self.false_beeps,
            self.onset_error.0,
            self.onset_error.1,
            self.onset_error.2,
            self.beep_delay.0,
            self.beep_delay.1,
            self.beep_delay.2
        )?;
        if self.sit_codes.0 > 0 {
            writeln!(f, "SIT codes: {}/{} correct", self.sit_codes.1, self.sit_codes.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_header_comments_and_bad_lines() {
        let (l, bad) = parse_labels(
            "file,label,beep_at_ms\na.wav,machine,7000\nb.wav,human,\n# x\nc.wav,sit:ic,\nd.wav,cat,\ne.wav,machine,-3\n",
        );
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].beep_at_ms, Some(7000));
        assert_eq!(l[1].beep_at_ms, None);
        assert_eq!(l[2].sit_code.as_deref(), Some("IC"));
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn scores_confusion_latency_and_beeps() {
        let lab = |label: &str, beep| Label {
            file: "f".into(),
            label: label.into(),
            beep_at_ms: beep,
            sit_code: None,
        };
        let o = |label, class, ms, beep_label, beep| Outcome {
            label: lab(label, beep_label),
            class,
            decision_ms: ms,
            beep_ms: beep,
            beep_reported_ms: beep.map(|b| b + 100),
            sit_code: None,
            onset_ms: Some(100),
            cycle_ms: (class == Class::Busy).then_some(1000),
        };
        let r = score(&[
            o("human", Class::Human, 1000, None, None),
            o("human", Class::Machine, 2000, None, None),
            o("machine", Class::Machine, 1800, Some(5000), Some(5020)),
            o("machine", Class::Machine, 1900, Some(6000), None),
            o("busy", Class::Busy, 1100, None, Some(300)),
        ]);
        assert_eq!(r.files, 5);
        assert!((r.hm_accuracy - 0.75).abs() < 1e-9);
        assert!((r.human_as_machine - 0.5).abs() < 1e-9);
        assert_eq!((r.beeps_labelled, r.beeps_found, r.false_beeps), (2, 1, 1));
        assert_eq!(r.onset_error.0, 20);
        assert_eq!(r.beep_delay.0, 120);
        assert_eq!(r.per_class["machine"], (2.0 / 3.0, 1.0, 2));
        assert_eq!(r.latency["machine"], (1800, 1900));
        assert_eq!(r.after_onset["machine"], (1700, 1800, 1800));
        assert_eq!(r.cycles["busy"], (1000, 1000, 1000));
        assert!(r.to_string().contains("confusion matrix"));
    }
}

//! The `boomerang` command line: configuration check and treatment check, as operators run them.

use std::process::Command;

fn boomerang(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(args)
        .output()
        .expect("run boomerang");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_default_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text, _) = boomerang(&["config", "default"]);
    assert_eq!(code, 0);
    let file = dir.path().join("boomerang.toml");
    std::fs::write(&file, text).unwrap();
    let (code, out, err) = boomerang(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("OK (2 services, 1 calendars, 1 users, 0 warnings)"),
        "{out}"
    );
}

#[test]
fn config_check_names_file_service_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[service.sales]\n_type = \"ors\"\n_ttl = -1\n").unwrap();
    let (code, _, err) = boomerang(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml: [service.sales] _ttl:"), "{err}");
    let (code, _, err) = boomerang(&["config", "check", "/nonexistent/boomerang.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn config_check_lists_request_time_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    std::fs::write(
        &file,
        "[service.w]\n_type = \"ors\"\n_service = \"callback\"\n_business_hours_service = \"nope\"\n",
    )
    .unwrap();
    let (code, out, _) = boomerang(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning:") && out.contains("_business_hours_service"),
        "{out}"
    );
}

#[test]
fn treatments_check_passes_shipped_files_and_fails_bad_ones() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/treatments");
    let (code, out, _) = boomerang(&["treatments", "check", shipped]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 cannot be played"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    let (code, out, _) = boomerang(&["treatments", "check", bad.to_str().unwrap(), "/nonexistent.wav"]);
    assert_eq!(code, 1);
    assert!(out.contains("2 cannot be played"), "{out}");
}

/// A 16-bit mono 8 kHz PCM WAV file.
fn write_wav(path: &std::path::Path, samples: &[i16]) {
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cpd_analyze_prints_one_json_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    // US busy: 480 + 620 Hz, 0.5 s on / 0.5 s off, for 6 s.
    let busy: Vec<i16> = (0..48_000)
        .map(|n| {
            if (n / 4000) % 2 == 1 {
                return 0;
            }
            let t = n as f64 / 8000.0;
            let v = (2.0 * std::f64::consts::PI * 480.0 * t).sin()
                + (2.0 * std::f64::consts::PI * 620.0 * t).sin();
            (v * 4000.0) as i16
        })
        .collect();
    let busy_path = dir.path().join("busy.wav");
    write_wav(&busy_path, &busy);
    let silent_path = dir.path().join("silent.wav");
    write_wav(&silent_path, &vec![0i16; 8000 * 8]);
    let (code, out, err) = boomerang(&[
        "cpd",
        "analyze",
        busy_path.to_str().unwrap(),
        silent_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["file"], "busy.wav");
    assert_eq!(lines[0]["class"], "busy", "{}", lines[0]);
    // The tone is already on at the answer: decided from its tail, the off and the second tone,
    // within two cadence cycles (2 s).
    assert!(
        lines[0]["decision_ms"].as_u64().is_some_and(|ms| ms <= 2_000),
        "{}",
        lines[0]
    );
    assert!(lines[0]["evidence"].is_object());
    assert_eq!(lines[1]["class"], "silence", "{}", lines[1]);
    let (code, _, err) = boomerang(&["cpd", "analyze", "/nonexistent.wav"]);
    assert_ne!(code, 0);
    assert!(err.contains("nonexistent.wav"), "{err}");
}

#[test]
fn cpd_eval_scores_a_labelled_directory_with_cadence_cycles() {
    let dir = tempfile::tempdir().unwrap();
    // UK busy (400 Hz, 0.375 s on / 0.375 s off) after 300 ms of silence, and dead air.
    let busy: Vec<i16> = (0..48_000)
        .map(|n: usize| {
            let Some(m) = n.checked_sub(2_400) else { return 0 };
            if (m / 3_000) % 2 == 1 {
                return 0;
            }
            let t = n as f64 / 8000.0;
            ((2.0 * std::f64::consts::PI * 400.0 * t).sin() * 6000.0) as i16
        })
        .collect();
    write_wav(&dir.path().join("busy.wav"), &busy);
    write_wav(&dir.path().join("silent.wav"), &vec![0i16; 8000 * 8]);
    std::fs::write(
        dir.path().join("labels.csv"),
        "file,label,beep_at_ms\nbusy.wav,busy,\nsilent.wav,silence,\n",
    )
    .unwrap();
    let (code, out, err) = boomerang(&["cpd", "eval", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("files: 2"), "{out}");
    assert!(out.contains("confusion matrix"), "{out}");
    let busy_row = out
        .lines()
        .find(|l| l.trim_start().starts_with("busy") && l.contains('%'))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(busy_row.contains("100.0%"), "{busy_row}");
    // latency in cadence cycles after the first tone: (p50, p95, max), all under two cycles
    let cycles = busy_row.split_whitespace().last().unwrap_or("");
    let max: f64 = cycles
        .rsplit('/')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::MAX);
    assert!(max <= 2.0, "{busy_row}");
}

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

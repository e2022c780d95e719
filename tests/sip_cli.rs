//! `boomerang call NUMBER --config FILE`: the real binary places a call through a trunk (SIPp),
//! prints the leg events as JSON lines and exits 0 on a clean call, 1 on a failed one.

use std::time::{Duration, Instant};

#[path = "common/sipp.rs"]
mod sipp;
use sipp::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn run_call(sipp: &Sipp, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("boomerang.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[trunks]]\nname = \"test\"\naddress = \"{}\"\nprefix = \"0\"\nring_timeout_s = 10\n",
            sipp.addr()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .arg("call")
        .arg("600")
        .arg("--config")
        .arg(&cfg)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("boomerang runs");
    let start = Instant::now();
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("boomerang call did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        use std::io::Read;
        let _ = so.read_to_string(&mut out);
    }
    let events = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (code, events)
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn call_command_answered_call_exits_0_with_json_events() {
    let mut sipp = Sipp::uas("uas_answer.xml", &codec_keys(false));
    let treatment = Path::new(env!("CARGO_MANIFEST_DIR")).join("treatments");
    let wav = std::fs::read_dir(&treatment).ok().and_then(|mut d| {
        d.find_map(|e| {
            e.ok()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        })
    });
    let play: Vec<String> = match &wav {
        Some(p) => vec!["--play".into(), p.display().to_string()],
        None => Vec::new(),
    };
    let mut args: Vec<&str> = play.iter().map(String::as_str).collect();
    args.extend(["--timeout", "3"]);
    let (code, events) = run_call(&sipp, &args);
    let k = kinds(&events);
    assert_eq!(code, 0, "{events:?}");
    assert_eq!(k.first().map(String::as_str), Some("dialing"));
    assert!(
        k.contains(&"ringing".to_string()) && k.contains(&"answered".to_string()),
        "{k:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last["event"], "hangup");
    assert_eq!(last["cause"], "local_hangup");
    assert_eq!(last["code"], 200);
    assert_eq!(sipp.wait(), 0);
}

#[test]
fn call_command_busy_exits_1_with_the_sip_code() {
    let mut sipp = Sipp::uas("uas_busy.xml", &codec_keys(false));
    let (code, events) = run_call(&sipp, &[]);
    assert_eq!(code, 1);
    let last = events.last().expect("events");
    assert_eq!(last["event"], "hangup");
    assert_eq!(last["cause"], "busy");
    assert_eq!(last["code"], 486);
    assert_eq!(last["reason"], "Busy Here");
    assert_eq!(sipp.wait(), 0);
}

#[test]
fn call_command_prints_the_cpd_result_of_what_answered() {
    // SIPp answers and plays the fax answer tone: the cpd line says fax, with its evidence.
    let audio = format!("{},-1,0", fixtures().join("audio/fax-ced.ul").display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut sipp = Sipp::uas("uas_answer_speak.xml", &keys);
    let (code, events) = run_call(&sipp, &["--timeout", "3"]);
    assert_eq!(code, 0, "{events:?}");
    let k = kinds(&events);
    let cpd_at = k.iter().position(|e| e == "cpd").expect("a cpd line");
    let answered_at = k.iter().position(|e| e == "answered").expect("answered");
    assert!(answered_at < cpd_at && cpd_at < k.len() - 1, "{k:?}");
    let cpd = events.get(cpd_at).expect("cpd");
    assert_eq!(cpd["class"], "fax", "{cpd}");
    assert!(cpd["decision_ms"].as_u64().is_some());
    assert!(cpd.get("beep_ms").is_some() && cpd.get("sit_code").is_some());
    assert_eq!(cpd["evidence"]["rule"], "fax_ced_2100hz");
    assert_eq!(sipp.wait(), 0);
}

#[test]
fn call_command_cpd_early_hears_the_sit_before_the_404() {
    let audio = format!("{},-1,0", fixtures().join("audio/sit.ul").display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut sipp = Sipp::uas("uas_early_sit_404.xml", &keys);
    let (code, events) = run_call(&sipp, &["--cpd-early"]);
    assert_eq!(code, 1, "a call that ends with 404 is not a clean call");
    let cpd = events.iter().find(|e| e["event"] == "cpd").expect("a cpd line");
    assert_eq!(cpd["class"], "sit");
    assert_eq!(cpd["sit_code"], "IC");
    let last = events.last().expect("events");
    assert_eq!(last["cause"], "invalid_number");
    assert_eq!(sipp.wait(), 0);
}

//! `boomerang call NUMBER [--config FILE] [--trunk NAME] [--play TREATMENT] [--timeout S]`:
//! places one test call through a configured trunk (with failover), prints the leg events as
//! JSON lines (`dialing`, `trying`, `ringing`, `early_media`, `answered`, `cpd`, `dtmf`, `hold`,
//! `hangup` with SIP code and cause) and exits 0 when the call was answered and torn down cleanly.
//!
//! CPD runs on what the callee sends from the answer (`--cpd-early`: from the 183's early
//! media); its line is `{"event":"cpd", ...}` with the result object of `boomerang cpd analyze`
//! (class, decision_ms, beep_ms, sit_code, evidence), printed when decided (a machine: when its
//! beep is heard) or at the latest just before the hangup line.
//!
//! After the answer the treatment given with `--play` is played once and the call is hung up
//! when it ends, or after `--timeout` seconds (default 30), whichever comes first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang::sip::config;
use boomerang_media::cpd::CpdParams;
use boomerang_media::treatment::{self, PlayMode};

#[derive(clap::Args)]
pub struct CallArgs {
    /// The number to dial (the trunk's prefix is added).
    pub number: String,
    /// Configuration file with `[[trunks]]`.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Trunk name (default: the first trunk).
    #[arg(long)]
    pub trunk: Option<String>,
    /// Treatment file to play once the call is answered.
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// Longest time the call may take, in seconds, ringing included.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Run CPD from the early media (183 with SDP) instead of from the answer.
    #[arg(long)]
    pub cpd_early: bool,
    /// Override a CPD parameter: `--cpd-set greeting_ms=1800` (repeatable).
    #[arg(long = "cpd-set", value_name = "KEY=VALUE")]
    pub cpd_set: Vec<String>,
    /// Local SIP address (default: 127.0.0.1 with a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

pub fn run(args: CallArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {}: {e}", args.config.display())),
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => return fail(&format!("{}: {e}", args.config.display())),
    };
    let cfg = match config::parse(&table) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{}: {e}", args.config.display())),
    };
    let trunk = match &args.trunk {
        Some(n) => n.clone(),
        None => match cfg.trunks.first() {
            Some(t) => t.name.clone(),
            None => return fail("no [[trunks]] in the configuration"),
        },
    };
    if cfg.trunk(&trunk).is_none() {
        return fail(&format!("no trunk named '{trunk}'"));
    }
    let mut cpd_params = CpdParams::default();
    for kv in &args.cpd_set {
        let Some((k, v)) = kv.split_once('=') else {
            return fail(&format!("--cpd-set {kv}: expected KEY=VALUE"));
        };
        if let Err(e) = cpd_params.set(k, v) {
            return fail(&format!("--cpd-set {kv}: {e}"));
        }
    }
    let play = match &args.play {
        Some(p) => match treatment::load(p) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => return fail(&format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let mut dcfg = DriverConfig::loopback();
        dcfg.listen = args.listen;
        dcfg.rtp_ports = cfg.rtp_ports;
        dcfg.no_rtp_timeout = cfg.no_rtp_timeout;
        dcfg.relay_threads = cfg.relay_threads;
        dcfg.relay_tick = cfg.relay_tick;
        // Per-trunk signalling: transport, 100rel, session timers.
        dcfg.trunks = cfg.trunks.clone();
        let tel = match Telephony::start(dcfg).await {
            Ok((t, _task)) => t,
            Err(e) => return fail(&format!("cannot bind {}: {e}", args.listen)),
        };
        let mut events = match tel.dial_with_failover(&cfg, &trunk, &args.number).await {
            Ok(rx) => rx,
            Err(e) => return fail(&format!("dial failed: {e}")),
        };
        let deadline = Instant::now() + Duration::from_secs(args.timeout.max(1));
        let mut leg: Option<LegId> = None;
        let mut answered = false;
        let mut hung_up = false;
        loop {
            // After our hangup, the BYE/CANCEL transaction may take up to its timer (32 s).
            let until = if hung_up {
                deadline + Duration::from_secs(40)
            } else {
                deadline
            };
            let wait = until.saturating_duration_since(Instant::now());
            let ev = if answered && play.is_some() {
                // Poll the player so the call ends when the treatment does.
                match tokio::time::timeout(wait.min(Duration::from_millis(200)), events.recv()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        if let Some(l) = leg
                            && !hung_up
                        {
                            let done = tel.media_stats(l).await.map(|s| !s.playing).unwrap_or(true);
                            if done || Instant::now() >= deadline {
                                hung_up = true;
                                let _ = tel.hangup(l).await;
                            }
                        }
                        if hung_up && Instant::now() >= deadline + Duration::from_secs(40) {
                            return fail("the call did not end in time");
                        }
                        continue;
                    }
                }
            } else {
                match tokio::time::timeout(wait, events.recv()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        // Deadline: hang up (CANCEL or BYE) and wait for the end, bounded.
                        if let Some(l) = leg
                            && !hung_up
                        {
                            hung_up = true;
                            let _ = tel.hangup(l).await;
                            continue;
                        }
                        return fail("the call did not end in time");
                    }
                }
            };
            let Some(ev) = ev else { return ExitCode::FAILURE };
            if let Ok(line) = serde_json::to_string(&ev) {
                println!("{line}");
            }
            match ev {
                LegEvent::Dialing { leg: l, .. } => {
                    leg = Some(LegId(l));
                    let _ = tel.start_cpd(LegId(l), cpd_params, args.cpd_early).await;
                }
                LegEvent::Answered { .. } => {
                    answered = true;
                    if let (Some(l), Some(t)) = (leg, &play) {
                        let _ = tel.play(l, t.clone(), PlayMode::Once).await;
                    }
                }
                LegEvent::Hangup { cause, .. } => {
                    // A failover attempt follows a hangup with cause `failover` (or 408).
                    let more = matches!(cause, Cause::Failover | Cause::NoAnswer);
                    if more && !answered {
                        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
                            Ok(Some(next)) => {
                                if let Ok(line) = serde_json::to_string(&next) {
                                    println!("{line}");
                                }
                                if let LegEvent::Dialing { leg: l, .. } = next {
                                    leg = Some(LegId(l));
                                    let _ = tel.start_cpd(LegId(l), cpd_params, args.cpd_early).await;
                                    continue;
                                }
                            }
                            _ => return ExitCode::FAILURE,
                        }
                        return ExitCode::FAILURE;
                    }
                    let clean = answered && matches!(cause, Cause::LocalHangup | Cause::RemoteHangup);
                    return if clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    };
                }
                _ => {}
            }
        }
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

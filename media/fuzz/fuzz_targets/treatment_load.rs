//! Arbitrary bytes as a treatment file (with a .wav name, so both hound and symphonia see it):
//! loading and inspecting must return a value, never panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::Builder::new().suffix(".wav").tempfile() else {
        return;
    };
    if file.write_all(data).is_err() || file.flush().is_err() {
        return;
    }
    let path = file.path();
    let _ = boomerang_media::treatment::load(path);
    let report = boomerang_media::treatment::inspect(path);
    let _ = report.to_string();
});

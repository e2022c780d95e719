//! Configuration parsing never panics: any text gives a configuration or an error naming the
//! place.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = boomerang::config::Config::parse(text, "fuzz.toml");
    }
});

//! Integration tests of the callback REST API (spec 40 §10): each test starts its own server
//! in process (real HTTP over loopback, real SQLite file in a temporary directory) with the
//! §10.0 fixture configuration. Tests are named after the checklist item they cover (`tNN_`);
//! `xNN_` tests cover bad input beyond the checklist.

mod cancel;
mod common;
mod general;
mod read;
mod sessions;
mod start;
mod update;

//! Integration tests of admission control, number screening and the admin API (issue 3;
//! spec 40 §5.7, §5.8, §6.4, §6.9, §6.10, §6.12, §2.8; spec 50 §5.1, §7, §17). Each test
//! starts its own server in process (real HTTP over loopback, real SQLite file in a temporary
//! directory). Tests are named after the spec 40 §10 checklist item they cover (`tNN_`);
//! `cNN_` are concurrency tests, `vNN_` run on a manual clock, `nNN_`/`kNN_`/`aNN_` cover
//! number rules, API keys and roles beyond the checklist, `xNN_` bad input.

mod admission;
mod auth;
mod bulk_delete;
mod common;
mod keys;
mod numbers;
mod queues;
mod report;
mod watermarks;

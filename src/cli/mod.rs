//! The subcommands of the `boomerang` command, one module each.

pub mod call;
pub mod config;
pub mod cpd;
pub mod serve;
pub mod treatments;

//! Per-workload kernel enforcement. A policy file names roles (which
//! executables a workload may run, which files it may read or write, where it
//! may connect) and selects the processes each role confines; every rule is
//! in `audit` mode (the event says `would_deny`, nothing is blocked) or
//! `enforce` mode. [`policy`] parses, validates and compiles the file into
//! the form the BPF maps are filled from, and decides in user space exactly
//! as the kernel side must, so the two can be tested against each other.

pub mod config;
pub mod control;
pub mod enforcer;
pub mod kernel;
pub mod llm_endpoints;
pub mod llm_enforcement;
pub mod names;
pub mod policy;
pub mod quarantine;
pub mod quarantine_updates;
pub mod rate;
pub mod sock_destroy;
pub mod status;
pub mod tier;

//! Plumbline's wire schema (`plumbline.v1`) and query API.
//!
//! The Rust under `gen/` is generated from `proto/plumbline/v1/*.proto` and
//! checked in (see `tests/generated_code_is_fresh.rs`). Around it: building a
//! compact batch ([`BatchBuilder`]), reading one back ([`BatchReader`]), and
//! rendering events as JSON ([`json`]).

pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!("gen/plumbline.v1.rs");
}

mod batch_builder;
mod batch_reader;
mod clock;
pub mod control;
pub mod json;

pub use batch_builder::{BatchBuilder, BatchHeader, Who};
pub use batch_reader::{BatchError, BatchReader, EventRef};
pub use clock::{process_start_key, wall_ns, CLOCK_TICK_NS};

/// `EventBatch.schema_version` of everything in [`v1`].
pub const SCHEMA_VERSION: u32 = 1;

//! Palisade's vulnerability engine: advisory databases in, matches out.
//!
//! `import` reads the public advisory formats (OSV, Debian security tracker, Alpine secdb) into
//! normalised [`record::AdvisoryRecord`]s; `db` stores them in one local file that opens fast and
//! answers "which advisories name this package in this ecosystem"; `version` orders versions the way
//! each package manager does; `matcher` decides which advisories affect an installed package.

pub mod cvss;
pub mod db;
pub mod ignore;
pub mod import;
pub mod keys;
pub mod matcher;
pub mod record;
pub mod update;
pub mod version;

pub use record::{AdvisoryRecord, AffectedPackage, AffectedRange, RangeEvent, RangeKind};

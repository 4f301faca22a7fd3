//! What the rule engine needs from an event source.
//!
//! A source (audit log, node sensor) declares its fields once in an [`EventSchema`]: rules name
//! fields by dotted path and the schema compiles each path into a cheap accessor at load time, so
//! an unknown field is a load error with the rule's name, never a silent non-match at run time.

use crate::value::Val;
use std::fmt::Debug;

/// Compiles rule field paths for one kind of event and names its index dimensions.
pub trait EventSchema: Sized + 'static {
    /// A compiled field accessor (an enum of known fields plus JSON paths below them).
    type Field: Clone + Debug + Send + Sync + 'static;

    /// The `source:` name rules use to target this schema (`audit`, `node`).
    const SOURCE: &'static str;

    /// The index dimensions, in order (e.g. `["verb", "resource", "stage"]` for audit events).
    /// A rule's `match:` block may restrict each; the engine only evaluates rules whose `match:`
    /// admits the event's values.
    const INDEX_DIMENSIONS: &'static [&'static str];

    /// True when every index dimension is also a field path whose string value is exactly the
    /// event's index value. The loader may then take a rule's index restriction from an equality
    /// test the rule's condition requires (`all: [{field: process.name, in: [...]}, ...]`), so
    /// rules are indexed without repeating themselves in `match:`; the condition is still
    /// evaluated, so results do not change.
    const DERIVE_INDEX_FROM_CONDITIONS: bool = false;

    /// Compiles a dotted field path (`objectRef.resource`, `requestObject.spec.hostNetwork`,
    /// `annotations["authorization.k8s.io/decision"]`, `pod.containers`). `Err` carries a message
    /// that names the path and what is known instead.
    fn compile_field(path: &str) -> Result<Self::Field, String>;

    /// Default field paths used to aggregate alerts: who (subject) and on what (resource).
    fn default_subject_field() -> &'static str;
    fn default_resource_field() -> &'static str;
}

/// One event as the engine judges it.
pub trait Event {
    type Schema: EventSchema;

    /// Reads one compiled field. Cheap for model fields; JSON subtrees may be parsed lazily once.
    fn get(&self, field: &<Self::Schema as EventSchema>::Field) -> Val<'_>;

    /// The event's value for index dimension `dimension` (a position in
    /// [`EventSchema::INDEX_DIMENSIONS`]); `None` when the event has none (e.g. no resource).
    fn index_value(&self, dimension: usize) -> Option<&str>;

    /// Event time, nanoseconds since the Unix epoch (stateful rules window on it, so replaying an
    /// old log gives the same alerts as watching it live).
    fn time_nanos(&self) -> i64;

    /// A stable id for evidence (the audit id, a sensor sequence number).
    fn event_id(&self) -> &str;
}

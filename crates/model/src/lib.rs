//! Process definitions: the graph IR the engine runs, and the parsers that build it.
//!
//! A definition is parsed once per deployment and then shared read-only by every instance,
//! so everything the engine needs per step (flow lists, compiled expressions, multi-instance
//! settings) is resolved here, and every error a model can carry is found here, with the
//! element, its id and its line.

mod bpmn;
mod call;
mod diagram;
mod error;
mod event;
mod form;
mod ir;
mod pipeline;
mod template;
mod timer;

pub use bpmn::{FLOWSTONE_NS, parse_bpmn};
pub use call::{Binding, CallSpec, Mapping, Source};
pub use diagram::{Bounds, Diagram, Edge, Point, Shape};
pub use error::ModelError;
pub use event::{EventKind, Trigger};
pub use form::{FormKind, FormProperty};
pub use ir::{
    ActivityOptions, AutoRetry, Definition, EndKind, Flow, FlowId, Listener, ListenerEvent, MAX_SUBPROCESS_DEPTH,
    MiOutput, MultiInstance, Node, NodeId, NodeKind, NodeTimeout, OutputParam, StoneSpec, UserTaskSpec,
};
pub use pipeline::{
    TemplateLookup, YamlTemplate, constant_variable, exclude_nodes, inline_subprocesses, parse_pipeline,
    parse_yaml_templates,
};
pub use template::Template;
pub use timer::{Schedule, TimerDef, TimerKind, TimerTime, parse_instant};

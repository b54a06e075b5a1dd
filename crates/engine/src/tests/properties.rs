//! The engine's invariants over random models and random commands: whatever a model and the
//! commands sent to it are, nothing panics, a refused command changes nothing, an ended
//! instance holds no open task, every waiting token waits on an open task, and the state the
//! store keeps reads back as it was written.

use super::*;
use crate::Stored;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One node of a random model.
#[derive(Debug, Clone)]
enum Shape {
    Expression,
    User {
        items: Option<(u8, bool)>,
    },
    Stone {
        items: Option<(u8, bool)>,
    },
    Exclusive {
        threshold: u8,
    },
    Parallel,
    Terminate,
    /// An embedded subprocess around one user task, one stone task or an error end event,
    /// perhaps multi-instance, perhaps with an error boundary event leading to the end.
    Sub {
        inner: u8,
        items: Option<(u8, bool)>,
        caught: bool,
    },
}

fn shape() -> impl Strategy<Value = Shape> {
    let items = prop::option::of((0u8..4, any::<bool>()));
    prop_oneof![
        Just(Shape::Expression),
        items.clone().prop_map(|items| Shape::User { items }),
        items.prop_map(|items| Shape::Stone { items }),
        (0u8..4).prop_map(|threshold| Shape::Exclusive { threshold }),
        Just(Shape::Parallel),
        Just(Shape::Terminate),
        (0u8..3, prop::option::of((0u8..3, any::<bool>())), any::<bool>())
            .prop_map(|(inner, items, caught)| Shape::Sub { inner, items, caught }),
    ]
}

/// Nodes, and for each node after the start the earlier node a flow comes from, plus extra
/// flows (some leading back, from exclusive gateways only).
fn random_model() -> impl Strategy<Value = (Vec<Shape>, Vec<usize>, Vec<(usize, usize)>)> {
    prop::collection::vec(shape(), 1..8).prop_flat_map(|shapes| {
        let n = shapes.len();
        let firsts = (1..=n).map(|j| 0..j).collect::<Vec<_>>();
        let extra = prop::collection::vec((0..=n, 0..=n), 0..6);
        (Just(shapes), firsts, extra)
    })
}

fn multi((count, sequential): (u8, bool)) -> String {
    format!(
        r#"<multiInstanceLoopCharacteristics isSequential="{sequential}"><loopCardinality>{count}</loopCardinality></multiInstanceLoopCharacteristics>"#
    )
}

/// The model as BPMN: node 0 is the start, nodes 1..=n the shapes, node n+1 the end.
fn bpmn(shapes: &[Shape], firsts: &[usize], extra: &[(usize, usize)]) -> String {
    let n = shapes.len();
    let mut body = String::from(r#"<startEvent id="n0"/>"#);
    for (i, s) in shapes.iter().enumerate() {
        let id = i + 1;
        body.push_str(&match s {
            Shape::Expression => {
                format!(r#"<serviceTask id="n{id}" flowable:expression="${{k + 1}}" flowable:resultVariable="k"/>"#)
            }
            Shape::User { items } => {
                format!(r#"<userTask id="n{id}">{}</userTask>"#, items.map(multi).unwrap_or_default())
            }
            Shape::Stone { items } => format!(
                r#"<serviceTask id="n{id}" flowstone:stone="S" flowstone:namespace="ns{id}">{}</serviceTask>"#,
                items.map(multi).unwrap_or_default()
            ),
            Shape::Exclusive { .. } => format!(r#"<exclusiveGateway id="n{id}"/>"#),
            Shape::Parallel => format!(r#"<parallelGateway id="n{id}"/>"#),
            Shape::Terminate => format!(r#"<endEvent id="n{id}"><terminateEventDefinition/></endEvent>"#),
            Shape::Sub { inner, items, caught } => {
                let body = match inner {
                    0 => format!(r#"<userTask id="n{id}t"/><sequenceFlow sourceRef="n{id}t" targetRef="n{id}e"/><endEvent id="n{id}e"/>"#),
                    1 => format!(
                        r#"<serviceTask id="n{id}t" flowstone:stone="S" flowstone:namespace="sub{id}"/><sequenceFlow sourceRef="n{id}t" targetRef="n{id}e"/><endEvent id="n{id}e"/>"#
                    ),
                    _ => format!(r#"<endEvent id="n{id}t"><errorEventDefinition errorRef="E"/></endEvent>"#),
                };
                let boundary = if *caught {
                    format!(
                        r#"<boundaryEvent id="n{id}b" attachedToRef="n{id}"><errorEventDefinition/></boundaryEvent><sequenceFlow sourceRef="n{id}b" targetRef="n{}"/>"#,
                        n + 1
                    )
                } else {
                    String::new()
                };
                format!(
                    r#"<subProcess id="n{id}">{}<startEvent id="n{id}s"/><sequenceFlow sourceRef="n{id}s" targetRef="n{id}t"/>{body}</subProcess>{boundary}"#,
                    items.map(multi).unwrap_or_default()
                )
            }
        });
    }
    body.push_str(&format!(r#"<endEvent id="n{}"/>"#, n + 1));
    let mut flows: Vec<(usize, usize)> = firsts.iter().enumerate().map(|(j, from)| (*from, j + 1)).collect();
    flows.push((n, n + 1));
    for &(from, to) in extra {
        let back = to <= from;
        let from_gateway = from >= 1 && matches!(shapes.get(from - 1), Some(Shape::Exclusive { .. }));
        if to >= 1 && (!back || from_gateway) {
            flows.push((from, to));
        }
    }
    // Terminate ends take no outgoing flows; every other node leads somewhere.
    flows.retain(|(from, _)| !(*from >= 1 && matches!(shapes.get(from - 1), Some(Shape::Terminate))));
    for (i, (from, to)) in flows.iter().enumerate() {
        let condition = match shapes.get(from.wrapping_sub(1)) {
            Some(Shape::Exclusive { threshold }) if *from >= 1 => {
                format!("<conditionExpression>${{k &lt; {}}}</conditionExpression>", threshold + (i as u8 % 3))
            }
            _ => String::new(),
        };
        body.push_str(&format!(
            r#"<sequenceFlow id="f{i}" sourceRef="n{from}" targetRef="n{to}">{condition}</sequenceFlow>"#
        ));
    }
    body
}

/// What to do next, read against the instance's open tasks when it is applied.
#[derive(Debug, Clone)]
struct Step {
    choice: u8,
    pick: u8,
}

fn command(inst: &Instance, step: &Step) -> Command {
    let mut open: Vec<&TaskRecord> = inst.open.values().collect();
    open.sort_by(|a, b| a.id.cmp(&b.id));
    let Some(rec) = (!open.is_empty()).then(|| open[step.pick as usize % open.len()]) else {
        return if step.choice.is_multiple_of(2) { Command::Cancel } else { Command::Delete };
    };
    let task = rec.id.clone();
    let stone = |event| Command::Stone { record: task.clone(), event };
    match step.choice % 12 {
        0 | 1 => Command::CompleteUserTask {
            task: task.clone(),
            variables: vars(json!({"k": step.pick % 5})),
            transient: Map::new(),
        },
        2 => stone(StoneEvent::Begin(Action::Start)),
        3 | 4 => {
            stone(StoneEvent::Success { action: Action::Start, outputs: vars(json!({"ip": "x"})), monitor: false })
        }
        5 => stone(StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: true }),
        6 => stone(StoneEvent::Success { action: Action::Monitor, outputs: Map::new(), monitor: false }),
        7 => stone(StoneEvent::Failed { action: Action::Start, reason: "boom".into() }),
        8 if step.pick.is_multiple_of(2) => stone(StoneEvent::Progress(step.pick)),
        8 => stone(StoneEvent::BpmnError { code: "E".into(), variables: Map::new() }),
        9 => Command::ReRun { task, action: None, parameters: Map::new(), outputs: Map::new() },
        10 => Command::Skip { task },
        _ => Command::SetVariables { task: Some(task), variables: vars(json!({"k": 1})), removed: Vec::new() },
    }
}

/// A database's view of one instance: what [`Instance::store`] wrote so far, the final
/// variables its row holds once it ended, and the last version of each task record.
#[derive(Default)]
struct Db {
    core: String,
    parts: BTreeMap<String, String>,
    final_vars: Option<serde_json::Map<String, serde_json::Value>>,
    records: BTreeMap<String, TaskRecord>,
}

impl Db {
    fn write(&mut self, stored: Stored) {
        self.core = stored.core;
        if stored.clear {
            self.parts.clear();
        }
        for (key, body) in stored.parts {
            match body {
                Some(body) => self.parts.insert(key, body),
                None => self.parts.remove(&key),
            };
        }
    }

    /// The instance as a restart reads it: its state, and the stone tasks it ran filled from
    /// their records.
    fn read(&self) -> Result<Instance, String> {
        let parts = self.parts.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let mut inst = Instance::from_stored(&Stored { core: self.core.clone(), clear: false, parts })
            .map_err(|e| e.to_string())?;
        if let Some(variables) = &self.final_vars {
            inst.variables.clone_from(variables);
        }
        inst.fill_records(|id| self.records.get(id)).map_err(|id| format!("record {id} was never written"))?;
        Ok(inst)
    }
}

/// Checks the invariants, stores what changed (in parts from `parts_from` items) and returns
/// the instance as read back.
fn check(h: &mut Harness, db: &mut Db, parts_from: usize) -> Result<Instance, TestCaseError> {
    for effect in h.effects.drain(..) {
        if let Effect::Task(rec) = effect {
            db.records.insert(rec.id.clone(), *rec);
        }
    }
    let inst = &mut h.inst;
    if !inst.active() {
        prop_assert!(inst.open.is_empty(), "an ended instance holds open tasks: {:?}", inst.open.keys());
    }
    if inst.status == InstanceStatus::Completed {
        prop_assert!(inst.tokens.is_empty(), "a completed instance holds tokens");
        prop_assert!(inst.failure.is_none(), "a completed instance says it failed: {:?}", inst.failure);
    }
    for token in inst.tokens.values() {
        if let Some(wait) = &token.wait {
            prop_assert!(inst.open.contains_key(wait), "a token waits on {wait}, which is not open");
        }
    }
    db.write(inst.store(parts_from).map_err(|e| TestCaseError::fail(e.to_string()))?);
    db.final_vars = (!inst.active()).then(|| inst.variables.clone());
    if db.core.is_empty() {
        prop_assert!(db.parts.is_empty(), "an instance that keeps nothing left parts behind");
        return Ok(inst.clone());
    }
    let read = db.read().map_err(TestCaseError::fail)?;
    prop_assert_eq!(&read, &*inst, "the stored state reads back as written");
    Ok(read)
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_models_under_random_commands_keep_the_invariants(
        (shapes, firsts, extra) in random_model(),
        debug in any::<bool>(),
        parts_from in 0..12usize,
        steps in prop::collection::vec((any::<u8>(), any::<u8>()).prop_map(|(choice, pick)| Step { choice, pick }), 0..24),
    ) {
        let body = bpmn(&shapes, &firsts, &extra);
        let xml = format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn"
              xmlns:flowstone="http://flowstone.dev/bpmn"><process id="p">{body}</process></definitions>"#
        );
        let parsed = parse_bpmn(&xml);
        let Ok(mut defs) = parsed else { return Ok(()) };
        let limits = Limits { max_steps: 2_000, ..Limits::default() };
        let options = StartOptions { debug, ..StartOptions::default() };
        let mut h = Harness::start_limited(defs.remove(0), json!({"k": 0}), options, limits);
        let mut db = Db::default();
        check(&mut h, &mut db, parts_from)?;
        for step in &steps {
            let before = h.inst.clone();
            let cmd = command(&h.inst, step);
            if h.apply(cmd.clone()).is_err() {
                prop_assert_eq!(&h.inst, &before, "a refused {:?} changed the instance", cmd);
            }
            let read = check(&mut h, &mut db, parts_from)?;
            // Half the commands go on from the state as read back, as after a restart (the
            // index is rebuilt from it), half from the state in memory (the index kept up).
            if step.choice >= 128 {
                h.inst = read;
            }
        }
    }
}

//! A model drawn as SVG on the server, with each element's state in one instance on it: the
//! geometry of its BPMN DI when it has one, else a layered layout (each element one column
//! right of the first that leads to it). Styles are inline so that the drawing stands alone.

use flowstone_engine::{TaskRecord, TaskStatus};
use flowstone_model::{Bounds, Definition, NodeKind, Point};
use flowstone_store::{InstanceRow, TaskRow};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use super::html::escape;

/// Where an element stands in an instance, by its latest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A stone or script at work on it.
    Running,
    /// It waits: for a person, a callback, a timer.
    Waiting,
    /// Its latest run failed.
    Failed,
    /// It ran, and the flow went on.
    Done,
}

impl Mark {
    fn class(self) -> &'static str {
        match self {
            Mark::Running => "running",
            Mark::Waiting => "waiting",
            Mark::Failed => "failed",
            Mark::Done => "done",
        }
    }
}

/// An element's state in one instance: its mark, how many times it ran and how many of those
/// runs ended (a multi-instance activity's instances, each a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) mark: Mark,
    pub(crate) runs: usize,
    pub(crate) ended: usize,
}

/// The state of each element that has records, from an instance's records in the order they
/// were made.
pub(crate) fn states<'a>(records: impl IntoIterator<Item = &'a TaskRecord>) -> HashMap<String, State> {
    marks(records.into_iter().map(|r| (r.element.as_str(), r.status, r.end_time)))
}

/// [`states`] from each record's element, status and end. The latest record sets the mark,
/// unless it ended while an earlier run is still open (instances of a multi-instance
/// activity end in any order): the latest open run's mark then shows.
fn marks<'a>(records: impl Iterator<Item = (&'a str, TaskStatus, Option<i64>)>) -> HashMap<String, State> {
    let mut states: HashMap<String, (State, Option<Mark>)> = HashMap::new();
    for (element, status, end_time) in records {
        let mark = match (end_time, status) {
            _ if status.step_failed() || status == TaskStatus::Failed => Mark::Failed,
            (None, TaskStatus::Active) => Mark::Waiting,
            (None, _) => Mark::Running,
            (Some(_), _) => Mark::Done,
        };
        let (state, open) = states.entry(element.to_owned()).or_insert((State { mark, runs: 0, ended: 0 }, None));
        state.mark = mark;
        state.runs += 1;
        if end_time.is_some() {
            state.ended += 1;
        } else if mark != Mark::Failed {
            *open = Some(mark);
        }
    }
    states
        .into_iter()
        .map(|(element, (mut state, open))| {
            if let (Mark::Done, Some(open)) = (state.mark, open.filter(|_| state.ended < state.runs)) {
                state.mark = open;
            }
            (element, state)
        })
        .collect()
}

/// How an element is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Figure {
    Event,
    Gateway,
    Activity,
}

fn figure(kind: &NodeKind) -> Figure {
    match kind {
        NodeKind::ExclusiveGateway { .. }
        | NodeKind::InclusiveGateway { .. }
        | NodeKind::EventGateway
        | NodeKind::ParallelGateway
        | NodeKind::Fork { .. }
        | NodeKind::Converge => Figure::Gateway,
        NodeKind::Task
        | NodeKind::ExpressionTask { .. }
        | NodeKind::JavaScriptTask { .. }
        | NodeKind::StoneTask(_)
        | NodeKind::UserTask(_)
        | NodeKind::SubProcess { .. }
        | NodeKind::Call(_)
        | NodeKind::EventSubProcess { .. } => Figure::Activity,
        _ => Figure::Event,
    }
}

/// Each element's rectangle: from the model's diagram, or laid out in layers.
fn geometry(def: &Definition) -> Vec<Option<Bounds>> {
    if !def.diagram.shapes.is_empty() {
        let by_id: HashMap<&str, Bounds> = def.diagram.shapes.iter().map(|s| (s.element.as_str(), s.bounds)).collect();
        return def.nodes.iter().map(|n| by_id.get(n.id.as_str()).copied()).collect();
    }
    // Breadth first from the elements nothing leads to: the first way in sets the column.
    let mut column: Vec<Option<usize>> = vec![None; def.nodes.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (i, node) in def.nodes.iter().enumerate() {
        if node.incoming.is_empty() {
            column[i] = Some(0);
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        let next = column[i].unwrap_or(0) + 1;
        for flow in &def.nodes[i].outgoing {
            let target = def.flow(*flow).target as usize;
            if column[target].is_none() {
                column[target] = Some(next);
                queue.push_back(target);
            }
        }
    }
    let mut rows: HashMap<usize, usize> = HashMap::new();
    (0..def.nodes.len())
        .map(|i| {
            let col = column[i]?;
            let row = rows.entry(col).or_insert(0);
            let (x, y) = (40.0 + col as f64 * 160.0, 40.0 + *row as f64 * 110.0);
            *row += 1;
            let (width, height) = match figure(&def.nodes[i].kind) {
                Figure::Event => (36.0, 36.0),
                Figure::Gateway => (50.0, 50.0),
                Figure::Activity => (100.0, 80.0),
            };
            // Centred in a cell of 100 × 80.
            Some(Bounds { x: x + (100.0 - width) / 2.0, y: y + (80.0 - height) / 2.0, width, height })
        })
        .collect()
}

const STYLE: &str = "<style>\
.el{fill:#fff;stroke:#475569;stroke-width:1.5}.flow{fill:none;stroke:#94a3b8;stroke-width:1.5;marker-end:url(#arrow)}\
.taken{stroke:#16a34a;stroke-width:2.5}.done .el{fill:#dcfce7;stroke:#16a34a}.running .el{fill:#dbeafe;stroke:#2563eb;stroke-width:3}\
.waiting .el{fill:#fef9c3;stroke:#ca8a04;stroke-width:3}.failed .el{fill:#fee2e2;stroke:#dc2626;stroke-width:3}\
text{font:12px sans-serif;fill:#0f172a}.runs{font-size:10px;fill:#fff}.badge{fill:#334155}</style>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\">\
<path d=\"M0,0L10,5L0,10z\" fill=\"#94a3b8\"/></marker></defs>";

/// An instance's model as SVG with each element's state in it (from its `tasks`); events keep
/// no records, so its start is drawn as run and the end it reached as reached.
pub(crate) fn of_instance(def: &Definition, row: &InstanceRow, tasks: &[TaskRow]) -> String {
    let mut states = states(tasks.iter().map(|t| &t.record));
    let ran = State { mark: Mark::Done, runs: 1, ended: 1 };
    states.entry(def.node(def.start).id.clone()).or_insert(ran);
    if let Some(end) = &row.end_element {
        states.entry(end.clone()).or_insert(ran);
    }
    svg(def, &states)
}

/// The model as SVG with `states` on it; flows between two elements that ran are drawn as
/// taken.
pub(crate) fn svg(def: &Definition, states: &HashMap<String, State>) -> String {
    let boxes = geometry(def);
    let (mut width, mut height) = (200.0f64, 120.0f64);
    for b in boxes.iter().flatten() {
        width = width.max(b.x + b.width + 40.0);
        height = height.max(b.y + b.height + 40.0);
    }
    let mut out = String::with_capacity(256 * def.nodes.len() + 1024);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"diagram\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\">{STYLE}"
    );
    let edges: HashMap<&str, &[Point]> =
        def.diagram.edges.iter().map(|e| (e.element.as_str(), e.waypoints.as_slice())).collect();
    for flow in &def.flows {
        let (Some(from), Some(to)) = (boxes[flow.source as usize], boxes[flow.target as usize]) else { continue };
        let points: Vec<Point> = match edges.get(flow.id.as_str()) {
            Some(points) if points.len() >= 2 => points.to_vec(),
            _ => vec![
                Point { x: from.x + from.width, y: from.y + from.height / 2.0 },
                Point { x: to.x, y: to.y + to.height / 2.0 },
            ],
        };
        let ran = |node: u32| states.contains_key(&def.node(node).id);
        let class = if ran(flow.source) && ran(flow.target) { "flow taken" } else { "flow" };
        let path: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", p.x, p.y)).collect();
        let _ = write!(
            out,
            "<polyline class=\"{class}\" data-flow=\"{}\" points=\"{}\"/>",
            escape(&flow.id),
            path.join(" ")
        );
    }
    // Larger first, so that a subprocess lies under what it holds.
    let mut order: Vec<usize> = (0..def.nodes.len()).filter(|i| boxes[*i].is_some()).collect();
    order.sort_by(|a, b| {
        let area = |i: &usize| boxes[*i].map_or(0.0, |b| b.width * b.height);
        area(b).total_cmp(&area(a))
    });
    for i in order {
        let (node, Some(b)) = (&def.nodes[i], boxes[i]) else { continue };
        let state = states.get(&node.id);
        let class = state.map_or(String::new(), |s| format!(" {}", s.mark.class()));
        let _ = write!(out, "<g class=\"node{class}\" data-element=\"{}\">", escape(&node.id));
        let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
        match figure(&node.kind) {
            Figure::Event => {
                let _ = write!(
                    out,
                    "<circle class=\"el\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{:.1}\"/>",
                    b.width.min(b.height) / 2.0
                );
            }
            Figure::Gateway => {
                let _ = write!(
                    out,
                    "<polygon class=\"el\" points=\"{cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1}\"/>",
                    b.y,
                    b.x + b.width,
                    b.y + b.height,
                    b.x
                );
            }
            Figure::Activity => {
                let _ = write!(
                    out,
                    "<rect class=\"el\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\"/>",
                    b.x, b.y, b.width, b.height
                );
            }
        }
        let label = escape(node.name.as_deref().unwrap_or(&node.id));
        let _ = write!(out, "<title>{label}</title>");
        if figure(&node.kind) == Figure::Activity {
            let _ = write!(out, "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>", cy + 4.0);
        } else if node.name.is_some() {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                b.y + b.height + 14.0
            );
        }
        // How many times it ran; of a multi-instance activity, how many of its instances ended.
        let badge = state.and_then(|s| match node.multi {
            Some(_) => Some(format!("{}/{}", s.ended, s.runs)),
            None => (s.runs > 1).then(|| s.runs.to_string()),
        });
        if let Some(badge) = badge {
            let (x, y) = (b.x + b.width, b.y);
            let half = 4.0 + 3.2 * badge.len() as f64;
            let _ = write!(
                out,
                "<rect class=\"badge\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"18\" rx=\"9\"/><text class=\"runs\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{badge}</text>",
                x - half,
                y - 9.0,
                2.0 * half,
                y + 3.5
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRAIGHT: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
      <process id="p"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
      <userTask id="a" name="Review &lt;now&gt;"/><sequenceFlow id="f2" sourceRef="a" targetRef="g"/>
      <exclusiveGateway id="g"/><sequenceFlow id="f3" sourceRef="g" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

    fn def(source: &str) -> Definition {
        flowstone_model::parse_bpmn(source).unwrap_or_else(|e| panic!("{e}")).remove(0)
    }

    #[test]
    fn a_model_without_geometry_is_laid_out_in_columns_with_its_states_and_names_escaped() {
        let def = def(STRAIGHT);
        let states = HashMap::from([
            ("s".to_owned(), State { mark: Mark::Done, runs: 1, ended: 1 }),
            ("a".to_owned(), State { mark: Mark::Waiting, runs: 3, ended: 2 }),
        ]);
        let svg = svg(&def, &states);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"<g class="node waiting" data-element="a">"#), "{svg}");
        assert!(svg.contains("Review &lt;now&gt;") && !svg.contains("<now>"), "names are escaped");
        assert!(svg.contains(r#"<polyline class="flow taken" data-flow="f1""#), "s ran, then a: {svg}");
        assert!(svg.contains(r#"<polyline class="flow" data-flow="f2""#), "g did not run");
        assert!(svg.contains(">3</text>"), "a ran three times");
        let boxes = geometry(&def);
        let xs: Vec<f64> = boxes.iter().map(|b| b.map_or(-1.0, |b| b.x + b.width / 2.0)).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "each a column right of the one before: {xs:?}");
    }

    #[test]
    fn a_models_own_geometry_is_kept() {
        let source = STRAIGHT.replace(
            "</definitions>",
            r#"<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC">
            <bpmndi:BPMNPlane><bpmndi:BPMNShape bpmnElement="a"><dc:Bounds x="500" y="300" width="120" height="90"/></bpmndi:BPMNShape>
            </bpmndi:BPMNPlane></bpmndi:BPMNDiagram></definitions>"#,
        );
        let svg = svg(&def(&source), &HashMap::new());
        assert!(svg.contains(r#"<rect class="el" x="500.0" y="300.0" width="120.0" height="90.0""#), "{svg}");
        assert!(!svg.contains(r#"data-element="s""#), "an element without a shape is not drawn");
    }

    #[test]
    fn the_latest_record_of_an_element_sets_its_mark() {
        let (a1, a2) = (("a", TaskStatus::Failed, Some(1)), ("a", TaskStatus::Active, None));
        let b = ("b", TaskStatus::Completed, Some(2));
        let states = marks([a1, b, a2].into_iter());
        assert_eq!(states["a"], State { mark: Mark::Waiting, runs: 2, ended: 1 });
        assert_eq!(states["b"], State { mark: Mark::Done, runs: 1, ended: 1 });
        assert_eq!(marks([a1].into_iter())["a"].mark, Mark::Failed);
    }

    #[test]
    fn a_multi_instance_activity_shows_its_ended_instances_of_all_and_waits_while_one_is_open() {
        let source = STRAIGHT.replace(
            r#"<userTask id="a" name="Review &lt;now&gt;"/>"#,
            r#"<userTask id="a" name="Review"><multiInstanceLoopCharacteristics isSequential="false"><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></userTask>"#,
        );
        let def = def(&source);
        let open = ("a", TaskStatus::Active, None);
        let ended = ("a", TaskStatus::Completed, Some(5));
        let states = marks([open, open, ended].into_iter());
        assert_eq!(states["a"], State { mark: Mark::Waiting, runs: 3, ended: 1 }, "one ended last, two wait");
        let svg = svg(&def, &states);
        assert!(svg.contains(r#"<g class="node waiting" data-element="a">"#), "{svg}");
        assert!(svg.contains(">1/3</text>"), "one of three ended: {svg}");
        let all = marks([ended, ended].into_iter());
        assert_eq!((all["a"].mark, all["a"].ended), (Mark::Done, 2));
    }
}

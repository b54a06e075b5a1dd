use super::*;
use serde_json::json;

fn none(_: &str) -> Option<Value> {
    None
}

fn parse(tree: &Value) -> Result<Definition, ModelError> {
    parse_pipeline(tree, "t", None, &none)
}

/// start → a → fork (conditional) → b | c → converge → x (exclusive) → end | back to a.
fn tree() -> Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f8"], "outgoing": ""},
        "activities": {
            "a": {"id": "a", "type": "ServiceActivity", "name": "First", "incoming": ["f1", "f9"], "outgoing": "f2",
                  "component": {"code": "job_execute", "data": {"script": {"hook": true, "value": "${script}"}, "n": {"hook": false, "value": 3}}},
                  "error_ignorable": true, "retryable": true, "skippable": false, "stage_name": "prepare"},
            "b": {"id": "b", "type": "ServiceActivity", "incoming": ["f3"], "outgoing": "f5", "component": {"code": "noop", "data": {}}},
            "c": {"id": "c", "type": "ServiceActivity", "incoming": ["f4"], "outgoing": "f6", "component": {"code": "noop", "data": {}}}
        },
        "gateways": {
            "p": {"id": "p", "type": "ConditionalParallelGateway", "incoming": ["f2"], "outgoing": ["f3", "f4"],
                  "conditions": {"f3": {"evaluate": "${level} >= 1"}, "f4": {"evaluate": "${level} >= 2"}}},
            "v": {"id": "v", "type": "ConvergeGateway", "incoming": ["f5", "f6"], "outgoing": "f7"},
            "x": {"id": "x", "type": "ExclusiveGateway", "incoming": ["f7"], "outgoing": ["f8", "f9"],
                  "conditions": {"f9": {"evaluate": "${_result} == \"again\""}}}
        },
        "flows": {
            "f1": {"id": "f1", "source": "s", "target": "a", "is_default": false},
            "f2": {"id": "f2", "source": "a", "target": "p", "is_default": false},
            "f3": {"id": "f3", "source": "p", "target": "b", "is_default": false},
            "f4": {"id": "f4", "source": "p", "target": "c", "is_default": false},
            "f5": {"id": "f5", "source": "b", "target": "v", "is_default": false},
            "f6": {"id": "f6", "source": "c", "target": "v", "is_default": false},
            "f7": {"id": "f7", "source": "v", "target": "x", "is_default": false},
            "f8": {"id": "f8", "source": "x", "target": "e", "is_default": true},
            "f9": {"id": "f9", "source": "x", "target": "a", "is_default": false}
        },
        "constants": {
            "${script}": {"key": "${script}", "source_type": "custom", "value": "echo ${level}"},
            "${level}": {"key": "${level}", "source_type": "custom", "value": "2"},
            "${_result}": {"key": "${_result}", "source_type": "component_outputs", "source_info": {"b": ["_result"]}, "value": ""}
        },
        "outputs": ["${_result}"],
        "location": [{"id": "a", "type": "tasknode", "x": 10, "y": 20}]
    })
}

fn node<'a>(def: &'a Definition, id: &str) -> &'a Node {
    def.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
}

#[test]
fn a_tree_becomes_the_graph_with_its_components_gateways_and_constants() {
    let def = parse(&tree()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(def.node(def.start).id, "s");
    let NodeKind::StoneTask(a) = &node(&def, "a").kind else { panic!("a is a stone task") };
    assert_eq!((a.stone.as_str(), a.inputs.as_ref().map(Vec::len)), ("job_execute", Some(2)));
    let options = node(&def, "a").options.as_deref().cloned().unwrap_or_default();
    assert!(options.error_ignorable && options.retryable && !options.skippable);
    let b = node(&def, "b").options.as_deref().cloned().unwrap_or_default();
    assert!(!b.error_ignorable && b.retryable && b.skippable, "left out, flags have bamboo-engine's defaults");
    let NodeKind::StoneTask(b) = &node(&def, "b").kind else { panic!("b is a stone task") };
    assert_eq!(b.outputs, [("_result".to_owned(), "_result".to_owned())]);
    let converge = def.node_by_element("v").unwrap_or_default();
    assert!(matches!(node(&def, "p").kind, NodeKind::Fork { conditional: true, converge: c, .. } if c == converge));
    let NodeKind::ExclusiveGateway { default: Some(d) } = node(&def, "x").kind else { panic!("x has a default") };
    assert_eq!(def.flow(d).id, "f8");
    let vars = json!({"_result": "again", "level": "2"}).as_object().cloned().unwrap_or_default();
    let back = def.flows.iter().find(|f| f.id == "f9").and_then(|f| f.condition.clone());
    assert_eq!(back.map(|c| c.eval_bool(&vars)), Some(Ok(true)));
    let mut names: Vec<&str> = def.constants.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["_result", "level", "script"], "output constants start at their value");
    assert_eq!(def.outputs[0].name, "${_result}");
    assert_eq!(def.diagram.shapes[0].bounds.width, 150.0);
}

/// Breaks a tree in one place.
type Breakage = fn(&mut Value);

#[test]
fn broken_trees_are_refused_naming_the_node() {
    let cases: Vec<(Breakage, &str)> = vec![
        (|t| t["flows"]["f3"]["target"] = json!("ghost"), "flow f3: its target `ghost`"),
        (|t| t["activities"]["b"]["type"] = json!("Teleport"), "unknown node type `Teleport`"),
        (|t| t["start_event"] = Value::Null, "no `start_event`"),
        (|t| t["end_event"] = Value::Null, "no `end_event`"),
        (
            |t| t["gateways"]["p"]["conditions"]["f4"]["evaluate"] = json!("${level >}"),
            "p: condition of flow `f4` does not parse",
        ),
        (|t| t["gateways"]["x"]["conditions"] = json!({}), "x: outgoing flow `f9` has no condition"),
        (|t| t["activities"]["a"]["component"]["data"]["n"]["value"] = json!("${1 +}"), "a: input `n` does not parse"),
        (|t| t["activities"]["a"]["component"]["code"] = json!(""), "a: has no component code"),
        (|t| t["activities"]["c"]["incoming"] = json!(["f9"]), "lists incoming flow `f9`"),
    ];
    for (break_it, expected) in cases {
        let mut t = tree();
        break_it(&mut t);
        let message = parse(&t).map(|_| ()).expect_err(expected).to_string();
        let message = message.replace(['"', '<', '>'], "").replace(" id=", " ");
        assert!(message.contains(expected), "{message} should say {expected}");
    }
}

#[test]
fn branches_that_never_converge_are_refused() {
    let mut t = tree();
    // b's branch ends the process instead of meeting c's at the converge gateway.
    t["flows"]["f5"]["target"] = json!("e");
    t["gateways"]["v"]["incoming"] = json!(["f6"]);
    t["end_event"]["incoming"] = json!(["f8", "f5"]);
    let message = parse(&t).map(|_| ()).expect_err("no converge").to_string();
    assert!(message.contains("never meet"), "{message}");
}

#[test]
fn subprocesses_come_inline_or_from_their_template_with_their_own_constants() {
    let child = json!({
        "start_event": {"id": "cs", "type": "EmptyStartEvent", "outgoing": "g1"},
        "end_event": {"id": "ce", "type": "EmptyEndEvent", "incoming": ["g2"]},
        "activities": {"ca": {"id": "ca", "type": "ServiceActivity", "incoming": ["g1"], "outgoing": "g2",
            "component": {"code": "noop", "data": {"who": {"hook": true, "value": "${who}"}}}}},
        "gateways": {},
        "flows": {"g1": {"id": "g1", "source": "cs", "target": "ca"}, "g2": {"id": "g2", "source": "ca", "target": "ce"}},
        "constants": {"${who}": {"key": "${who}", "source_type": "custom", "value": "nobody"}}
    });
    let parent = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"]},
        "activities": {"sub": {"id": "sub", "type": "SubProcess", "template_id": "child", "incoming": ["f1"], "outgoing": "f2",
            "constants": {"${who}": {"value": "${owner}"}}}},
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "sub"}, "f2": {"id": "f2", "source": "sub", "target": "e"}},
        "constants": {"${owner}": {"key": "${owner}", "source_type": "custom", "value": "admin"}}
    });
    let lookup = |id: &str| (id == "child").then(|| child.clone());
    let def = parse_pipeline(&parent, "p", None, &lookup).unwrap_or_else(|e| panic!("{e}"));
    let sub = def.node_by_element("sub").unwrap_or_default();
    let NodeKind::SubProcess { start, locals } = &def.node(sub).kind else { panic!("a subprocess") };
    assert_eq!(def.node(*start).id, "cs");
    assert_eq!(node(&def, "ca").scope, Some(sub));
    let vars = json!({"owner": "kermit"}).as_object().cloned().unwrap_or_default();
    assert_eq!(locals[0].0, "who");
    assert_eq!(locals[0].1.eval(&vars).ok(), Some(json!("kermit")), "the parent's value for the child's constant");
    let missing = parse(&parent).map(|_| ()).expect_err("no template").to_string();
    assert!(missing.contains("template `child` does not exist"), "{missing}");
}

/// The tree of [`tree`] in bamboo-engine's built form: `data.inputs` for constants,
/// `data.outputs`, components' `inputs` and `global_outputs`.
fn built() -> Value {
    let mut t = tree();
    let o = t.as_object_mut().unwrap_or_else(|| panic!("an object"));
    o.remove("constants");
    o.remove("outputs");
    o.insert(
        "data".into(),
        json!({
            "inputs": {
                "${script}": {"type": "splice", "value": "echo ${level}", "is_param": false},
                "${level}": {"type": "plain", "value": "2", "is_param": false},
                "${_result}": {"type": "splice", "source_act": "b", "source_key": "_result", "value": ""},
                "${copied}": {"type": "plain", "value": ""}
            },
            "outputs": ["${_result}", "${copied}"],
            "pre_render_keys": []
        }),
    );
    let a = &mut t["activities"]["a"]["component"];
    let data = a.as_object_mut().and_then(|c| c.remove("data")).unwrap_or_default();
    a["inputs"] =
        json!({"script": {"type": "splice", "value": data["script"]["value"]}, "n": {"type": "plain", "value": 3}});
    a["global_outputs"] = json!({"host": "${copied}"});
    t["activities"]["b"]["component"]["global_outputs"] = json!({"_result": "${_result}"});
    t
}

#[test]
fn a_built_tree_reads_its_data_inputs_outputs_and_global_outputs_as_the_web_form_does() {
    let web = parse(&tree()).unwrap_or_else(|e| panic!("{e}"));
    let def = parse(&built()).unwrap_or_else(|e| panic!("{e}"));
    let names = |d: &Definition| d.constants.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert!(names(&web).iter().all(|n| names(&def).contains(n)), "{:?} ⊂ {:?}", names(&web), names(&def));
    let NodeKind::StoneTask(a) = &node(&def, "a").kind else { panic!("a is a stone task") };
    assert_eq!(a.outputs, [("host".to_owned(), "copied".to_owned())]);
    assert_eq!(a.inputs.as_ref().map(Vec::len), Some(2));
    let NodeKind::StoneTask(b) = &node(&def, "b").kind else { panic!("b is a stone task") };
    assert_eq!(b.outputs, [("_result".to_owned(), "_result".to_owned())], "named twice, copied once");
    let outputs: Vec<&str> = def.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["${_result}", "${copied}"]);
    let mut wrong = built();
    wrong["data"]["inputs"]["${level}"]["type"] = json!("mystery");
    let e = parse(&wrong).expect_err("an input type bamboo does not have");
    assert!(e.message.contains("`mystery`"), "{e}");
}

use super::*;
use crate::{NodeKind, parse_pipeline};

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn refused(source: &str) -> String {
    match parse_yaml_templates(source) {
        Ok(t) => panic!("accepted: {:?}", t.iter().map(|t| &t.tree).collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    }
}

const LOOP: &str = r#"
schema_version: v1
meta: {name: loop, id: main}
spec:
  nodes:
  - {id: s, type: EmptyStartEvent}
  - id: a
    type: ServiceActivity
    name: count
    can_skip: false
    component:
      code: sleep_timer
      data:
        bk_timing: {name: seconds, value: '1', key: '${seconds}'}
        force_check: {value: true}
    output:
      _loop: {name: runs, key: '${_loop}', hide: true}
  - id: g
    type: ExclusiveGateway
    conditions:
      a: {evaluate: '${_loop} < 3', name: again}
      e: {evaluate: '${_loop} >= 3', name: done}
    next: [a, e]
  - {id: e, type: EmptyEndEvent}
  constants:
    ${limit}: {name: limit, value: 3, type: input}
"#;

#[test]
fn nodes_without_next_flow_to_the_node_listed_after_them() {
    let templates = must(parse_yaml_templates(LOOP));
    let tree = &templates[0].tree;
    assert_eq!(templates[0].name, "loop");
    let flows = must(tree["flows"].as_object().ok_or("no flows"));
    let pairs: Vec<(&str, &str)> =
        flows.values().map(|f| (f["source"].as_str().unwrap_or(""), f["target"].as_str().unwrap_or(""))).collect();
    assert_eq!(pairs, [("s", "a"), ("a", "g"), ("g", "a"), ("g", "e")]);
    assert_eq!(tree["start_event"]["outgoing"], "s_line1");
    assert_eq!(tree["activities"]["a"]["incoming"], json!(["s_line1", "s_line3"]));
    assert_eq!(tree["activities"]["a"]["skippable"], false, "can_skip is the tree's skippable");
    assert_eq!(tree["activities"]["a"]["optional"], true, "left out: bk-sops' default");
    assert_eq!(tree["end_event"]["incoming"], json!(["s_line4"]));
    // Conditions are keyed by the flow they guard.
    assert_eq!(tree["gateways"]["g"]["conditions"]["s_line3"]["evaluate"], "${_loop} < 3");
    assert_eq!(tree["gateways"]["g"]["outgoing"], json!(["s_line3", "s_line4"]));
    assert_eq!(tree["location"].as_array().map(Vec::len), Some(4));
}

#[test]
fn inputs_written_with_a_key_are_hooked_to_constants_and_outputs_feed_them() {
    let tree = &must(parse_yaml_templates(LOOP))[0].tree;
    assert_eq!(tree["activities"]["a"]["component"]["data"]["bk_timing"], json!({"hook": true, "value": "${seconds}"}));
    assert_eq!(tree["activities"]["a"]["component"]["data"]["force_check"], json!({"hook": false, "value": true}));
    let seconds = &tree["constants"]["${seconds}"];
    assert_eq!(seconds["source_type"], "component_inputs");
    assert_eq!(seconds["source_info"], json!({"a": ["bk_timing"]}));
    assert_eq!(seconds["source_tag"], "sleep_timer.bk_timing");
    assert_eq!(seconds["value"], "1");
    let runs = &tree["constants"]["${_loop}"];
    assert_eq!((runs["source_type"].as_str(), runs["show_type"].as_str()), (Some("component_outputs"), Some("hide")));
    let limit = &tree["constants"]["${limit}"];
    assert_eq!((limit["source_type"].as_str(), limit["custom_type"].as_str()), (Some("custom"), Some("input")));
    assert_eq!(limit["index"], 2, "constants of nodes come first, as bk-sops numbers them");
    let def = must(parse_pipeline(tree, "loop", None, &|_| None));
    let counted = def.nodes.iter().find(|n| n.id == "a").map(|n| &n.kind);
    assert!(matches!(counted, Some(NodeKind::StoneTask(s)) if s.outputs == [("_loop".to_owned(), "_loop".to_owned())]));
}

#[test]
fn a_subprocess_gets_its_templates_constants_with_the_values_its_node_gives() {
    let source = r#"
schema_version: v1
meta: {name: parent, id: p}
spec:
  nodes:
  - {id: p1, type: EmptyStartEvent}
  - id: p2
    type: SubProcess
    name: child
    template_id: c
    data:
      ${host}: {name: host, value: 10.0.0.1, key: '${target}', type: input}
      ${port}: {value: '8080'}
  - {id: p3, type: EmptyEndEvent}
---
schema_version: v1
meta: {name: child, id: c}
spec:
  nodes:
  - {id: c1, type: EmptyStartEvent}
  - id: c2
    type: ServiceActivity
    name: call
    component: {code: http, data: {url: {value: 'http://${host}:${port}'}}}
  - {id: c3, type: EmptyEndEvent}
  constants:
    ${host}: {name: host, value: localhost}
    ${port}: {name: port, value: '80'}
"#;
    let templates = must(parse_yaml_templates(source));
    let ids: Vec<&str> = templates.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["c", "p"], "a subprocess template comes before its parent");
    let parent = &templates[1].tree;
    let sub = &parent["activities"]["p2"];
    assert_eq!(sub["template_id"], "c");
    assert_eq!(sub["constants"]["${host}"]["value"], "${target}", "hooked to the parent's constant");
    assert_eq!(sub["constants"]["${port}"]["value"], "8080");
    let target = &parent["constants"]["${target}"];
    assert_eq!(
        (target["value"].as_str(), target["source_type"].as_str()),
        (Some("10.0.0.1"), Some("component_inputs"))
    );
    let child = templates[0].tree.clone();
    let def = must(parse_pipeline(parent, "p", None, &|id| (id == "c").then(|| child.clone())));
    assert!(def.nodes.iter().any(|n| n.id == "c2"));
}

#[test]
fn broken_yaml_templates_are_refused_naming_what_is_wrong() {
    assert!(refused("a: [unclosed").contains("no YAML"));
    assert!(refused("schema_version: v1\nmeta: {id: x}\nspec: {nodes: []}").contains("meta.name"));
    let node = |extra: &str| {
        format!(
            "schema_version: v1\nmeta: {{name: t, id: t}}\nspec:\n  nodes:\n  - {{id: s, type: EmptyStartEvent}}\n{extra}  - {{id: e, type: EmptyEndEvent}}\n"
        )
    };
    assert!(refused(&node("  - {id: x, type: Teleport}\n")).contains("unknown node type `Teleport`"));
    assert!(refused(&node("  - {id: s, type: EmptyStartEvent}\n")).contains("appears twice"));
    assert!(refused(&node("  - {id: x, type: ServiceActivity, name: n}\n")).contains("needs `component`"));
    let dangling = node("  - {id: x, type: ServiceActivity, name: n, component: {code: c}, next: [nowhere]}\n");
    assert!(refused(&dangling).contains("`nowhere` is no node"));
    let stray = node("  - {id: g, type: ExclusiveGateway, conditions: {s: {evaluate: '1 == 1'}}, next: [e]}\n");
    assert!(refused(&stray).contains("condition for `s`"));
    // Found by the `yaml` fuzz target: a condition that is no mapping panicked.
    let text = node("  - {id: g, type: ExclusiveGateway, conditions: {e: '1 == 1'}, next: [e]}\n");
    assert!(refused(&text).contains("its condition for `e` must be a mapping"), "{}", refused(&text));
    let default = node("  - {id: g, type: ExclusiveGateway, conditions: {}, default_condition: {e: yes}, next: [e]}\n");
    assert!(refused(&default).contains("its default condition for `e` must be a mapping"), "{}", refused(&default));
    let missing = node("  - {id: g, type: ExclusiveGateway, conditions: {}, next: [e]}\n");
    assert!(refused(&missing).contains("no condition for its next node `e`"));
    let two = node("  - {id: x, type: ServiceActivity, name: n, component: {code: c}, next: [e, s]}\n");
    assert!(refused(&two).contains("only a gateway"));
    let sub = |id: &str, child: &str| {
        format!(
            "schema_version: v1\nmeta: {{name: {id}, id: {id}}}\nspec:\n  nodes:\n  - {{id: {id}s, type: EmptyStartEvent}}\n  - {{id: {id}x, type: SubProcess, name: n, template_id: {child}}}\n  - {{id: {id}e, type: EmptyEndEvent}}\n"
        )
    };
    assert!(refused(&sub("a", "zz")).contains("`zz` is no template of this file"));
    assert!(refused(&format!("{}---\n{}", sub("a", "b"), sub("b", "a"))).contains("includes itself"));
}

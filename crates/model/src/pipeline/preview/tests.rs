use super::*;
use serde_json::json;

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn act(id: &str, incoming: &str, outgoing: &str, optional: bool, data: Value) -> Value {
    json!({"id": id, "type": "ServiceActivity", "incoming": [incoming], "outgoing": outgoing, "optional": optional,
           "component": {"code": "job", "data": data}})
}

/// s → a → p (fork) → [b | c] → j (converge) → d → e; `a`, `b`, `c` optional, `d` not.
fn tree() -> Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f8"], "outgoing": ""},
        "activities": {
            "a": act("a", "f1", "f2", true, json!({"host": {"hook": true, "value": "${host}"}})),
            "b": act("b", "f3", "f5", true, json!({"cmd": {"hook": false, "value": "run ${script}"}})),
            "c": act("c", "f4", "f6", true, json!({})),
            "d": act("d", "f7", "f8", false, json!({}))
        },
        "gateways": {
            "p": {"id": "p", "type": "ParallelGateway", "incoming": ["f2"], "outgoing": ["f3", "f4"]},
            "j": {"id": "j", "type": "ConvergeGateway", "incoming": ["f5", "f6"], "outgoing": "f7"}
        },
        "flows": {
            "f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "p"},
            "f3": {"id": "f3", "source": "p", "target": "b"}, "f4": {"id": "f4", "source": "p", "target": "c"},
            "f5": {"id": "f5", "source": "b", "target": "j"}, "f6": {"id": "f6", "source": "c", "target": "j"},
            "f7": {"id": "f7", "source": "j", "target": "d"}, "f8": {"id": "f8", "source": "d", "target": "e"}
        },
        "constants": {
            "${host}": {"key": "${host}", "source_type": "component_inputs", "source_info": {"a": ["host"]}, "value": "h", "index": 0},
            "${script}": {"key": "${script}", "source_type": "custom", "value": "${path}/x.sh", "index": 1},
            "${path}": {"key": "${path}", "source_type": "custom", "value": "/opt", "index": 2},
            "${rc}": {"key": "${rc}", "source_type": "component_outputs", "source_info": {"d": ["rc"]}, "value": "", "index": 3}
        },
        "outputs": ["${host}", "${rc}"],
        "location": [{"id": "a"}, {"id": "b"}, {"id": "p"}, {"id": "j"}],
        "line": [{"id": "f1", "source": {"id": "s"}, "target": {"id": "a"}}, {"id": "f2"}]
    })
}

#[test]
fn a_left_out_activity_is_bypassed_and_its_constants_go() {
    let (t, unreferred) = must(exclude_nodes(&tree(), &["a".into()]));
    assert!(t["activities"].get("a").is_none());
    assert_eq!(t["flows"]["f1"]["target"], "p", "what led into `a` leads to the node after it");
    assert!(t["flows"].get("f2").is_none());
    assert_eq!(t["gateways"]["p"]["incoming"], json!(["f1"]));
    assert_eq!(t["line"], json!([{"id": "f1", "source": {"id": "s"}, "target": {"id": "p"}}]));
    assert_eq!(unreferred.keys().collect::<Vec<_>>(), ["${host}"]);
    assert_eq!(t["outputs"], json!(["${rc}"]), "an output of a dropped constant goes, output constants stay");
    assert_eq!(t["constants"]["${path}"]["index"], 1, "path is referred to through script");
    must(parse_pipeline(&t, "t", None, &|_| None));
}

#[test]
fn a_parallel_gateway_whose_branches_are_all_left_out_goes_with_its_converge() {
    let (t, unreferred) = must(exclude_nodes(&tree(), &["b".into(), "c".into()]));
    assert!(t["gateways"].as_object().is_some_and(Map::is_empty), "{}", t["gateways"]);
    assert_eq!(t["flows"]["f2"]["target"], "d");
    assert_eq!(t["activities"]["d"]["incoming"], json!(["f2"]));
    assert_eq!(t["flows"].as_object().map(Map::len), Some(3));
    assert_eq!(t["location"], json!([{"id": "a"}]));
    let mut gone: Vec<&String> = unreferred.keys().collect();
    gone.sort();
    assert_eq!(gone, ["${path}", "${script}"]);
    must(parse_pipeline(&t, "t", None, &|_| None));
    // One branch left: the fork stays, the empty branch goes.
    let (t, _) = must(exclude_nodes(&tree(), &["b".into()]));
    assert_eq!(t["gateways"]["p"]["outgoing"], json!(["f4"]));
    assert_eq!(t["gateways"]["j"]["incoming"], json!(["f6"]));
    must(parse_pipeline(&t, "t", None, &|_| None));
}

#[test]
fn only_optional_activities_of_the_tree_can_be_left_out() {
    let e = exclude_nodes(&tree(), &["d".into()]).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("not optional"), "{e}");
    let e = exclude_nodes(&tree(), &["zz".into()]).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("zz") && e.contains("no activity"), "{e}");
}

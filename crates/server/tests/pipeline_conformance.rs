//! Every pipeline tree in `../shared/conformance/bk-sops/` and `../shared/conformance/bamboo-engine/`
//! (template fixtures and the trees inside the API documentation's examples) parses into the
//! engine's graph and runs to its end, with a stand-in worker for every component code. The
//! stand-in answers as a bk-sops component does, `_result` true; the engine adds `_loop`, the
//! number of times that node has run, which the fixtures' loop conditions read. The YAML
//! fixtures (bk-sops' YAML export of two of the JSON ones) become the same trees.

mod common;

use common::{must, shared_dir};
use flowstone_engine::Action;
use flowstone_engine::{Command, Ctx, Effect, Instance, InstanceStatus, Limits, StartOptions, StoneEvent};
use flowstone_model::{Definition, parse_pipeline, parse_yaml_templates};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Every object under `v` that is a pipeline tree, with where it was found.
fn trees(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            if map.contains_key("start_event") && map.contains_key("activities") {
                out.push((path.to_owned(), v.clone()));
            }
            for (k, x) in map {
                trees(x, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                trees(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Runs `def` to its end, answering every stone job; answers the instance and how many
/// times each element ran.
fn run(def: &Definition) -> (Instance, HashMap<String, u64>) {
    let mut counter = 0u64;
    let mut ids = || {
        counter += 1;
        format!("id{counter}")
    };
    let brokered = |_: &str| false;
    let mut ctx = Ctx { now: 1_000, ids: &mut ids, brokered: &brokered, limits: &Limits::default() };
    let (mut inst, mut effects) = Instance::start(def, Map::new(), StartOptions::default(), &mut ctx);
    let mut runs: HashMap<String, u64> = HashMap::new();
    for _ in 0..10_000 {
        let job = effects.iter().find_map(|e| match e {
            Effect::QueueJob(job) => Some(job.clone()),
            _ => None,
        });
        let Some(job) = job else { break };
        effects.retain(|e| !matches!(e, Effect::QueueJob(j) if j.record_id == job.record_id));
        let element = inst.open.get(&job.record_id).map(|r| r.element.clone()).unwrap_or_default();
        let count = runs.entry(element).or_default();
        *count += 1;
        let outputs = json!({"_result": true}).as_object().cloned().unwrap_or_default();
        let event = StoneEvent::Success { action: Action::Start, outputs, monitor: false };
        let more = must(inst.apply(def, Command::Stone { record: job.record_id.clone(), event }, &mut ctx));
        effects.extend(more);
    }
    (inst, runs)
}

fn load(path: &Path) -> Value {
    must(serde_json::from_str(&must(std::fs::read_to_string(path))))
}

#[test]
fn every_shared_pipeline_tree_parses_and_runs_to_its_end() {
    let Some(shared) = shared_dir() else { return };
    let mut files = Vec::new();
    for dir in [
        "conformance/bk-sops/fixtures",
        "conformance/bk-sops/apidoc-examples",
        "conformance/bamboo-engine/doc-examples",
    ] {
        for entry in must(std::fs::read_dir(shared.join(dir))) {
            let path = must(entry).path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut ran = 0;
    let mut failures = Vec::new();
    for file in &files {
        let doc = load(file);
        let templates = doc["pipeline_template_data"]["template"].clone();
        let lookup = |id: &str| templates.get(id).map(|t| t["tree"].clone());
        let mut found = Vec::new();
        trees(&doc, "", &mut found);
        for (at, tree) in found {
            let name = format!("{}{at}", file.file_name().map(|f| f.to_string_lossy()).unwrap_or_default());
            match parse_pipeline(&tree, "t", None, &lookup) {
                Err(e) => failures.push(format!("{name}: {e}")),
                Ok(def) => {
                    let (inst, _) = run(&def);
                    if inst.status != InstanceStatus::Completed {
                        failures.push(format!("{name}: ended {:?} ({:?})", inst.status, inst.failure));
                    }
                    ran += 1;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 13, "only {ran} trees were found");
}

#[test]
fn the_loop_fixture_runs_its_timer_once_per_item_of_its_list() {
    let Some(shared) = shared_dir() else { return };
    let doc = load(&shared.join("conformance/bk-sops/fixtures/test_original_data.json"));
    let template = &doc["pipeline_template_data"]["template"]["n2125aebb4c8334f8ba4d575315a8d94"]["tree"];
    let def = must(parse_pipeline(template, "loop", None, &|_| None));
    let (inst, runs) = run(&def);
    assert_eq!(inst.status, InstanceStatus::Completed);
    // `time_list` is "1,2,3,4": the gateway sends the flow back until `_loop` reaches 4.
    assert_eq!(runs.get("nodeb268d09815476dd8a37d373b89ff"), Some(&4), "{runs:?}");
    assert_eq!(inst.variables.get("_loop"), Some(&json!(4)));
}

/// What a tree is made of, independent of its ids: node types, flows by the types they join,
/// constants with their source, component codes.
fn shape(tree: &Value) -> Vec<String> {
    let mut types: HashMap<String, String> = HashMap::new();
    for field in ["activities", "gateways"] {
        for (id, node) in tree[field].as_object().into_iter().flatten() {
            types.insert(id.clone(), node["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    for field in ["start_event", "end_event"] {
        types.insert(tree[field]["id"].as_str().unwrap_or_default().to_owned(), field.to_owned());
    }
    let kind = |id: &Value| types.get(id.as_str().unwrap_or_default()).cloned().unwrap_or_default();
    let mut out: Vec<String> = types.values().map(|t| format!("node {t}")).collect();
    for flow in tree["flows"].as_object().into_iter().flatten().map(|(_, f)| f) {
        out.push(format!("flow {} -> {}", kind(&flow["source"]), kind(&flow["target"])));
    }
    for (key, c) in tree["constants"].as_object().into_iter().flatten() {
        let fields: Vec<&Value> = c["source_info"].as_object().into_iter().flatten().map(|(_, f)| f).collect();
        out.push(format!("constant {key} {} {} {fields:?}", c["source_type"], c["custom_type"]));
    }
    for node in tree["activities"].as_object().into_iter().flatten().map(|(_, a)| a) {
        out.push(format!("component {}", node["component"]["code"]));
    }
    out.sort();
    out
}

#[test]
fn the_yaml_fixtures_become_the_trees_of_the_json_fixtures_they_were_exported_from_and_run() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("conformance/bk-sops/fixtures");
    let mut checked = 0;
    for (yaml, json) in [
        ("test_yaml_data.yaml", "test_original_data.json"),
        ("test_complicated_yaml_data.yaml", "test_complicated_data.json"),
    ] {
        let templates = must(parse_yaml_templates(&must(std::fs::read_to_string(dir.join(yaml)))));
        let export = load(&dir.join(json));
        let exported = export["pipeline_template_data"]["template"].as_object().cloned().unwrap_or_default();
        let lookup = |id: &str| templates.iter().find(|t| t.id == id).map(|t| t.tree.clone());
        for template in &templates {
            let original = exported
                .values()
                .find(|t| t["name"] == template.name.as_str())
                .unwrap_or_else(|| panic!("{yaml}: no template named {} in {json}", template.name));
            assert_eq!(shape(&template.tree), shape(&original["tree"]), "{yaml}: {}", template.name);
            let def = must(parse_pipeline(&template.tree, &template.id, Some(&template.name), &lookup));
            let (inst, _) = run(&def);
            assert_eq!(inst.status, InstanceStatus::Completed, "{yaml}: {} ({:?})", template.name, inst.failure);
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

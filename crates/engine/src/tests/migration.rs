//! Moving running instances to another version of their model.

use super::*;
use std::collections::BTreeMap;

/// Version 1: a review, then an approval.
const V1: &str = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="review"/>
    <userTask id="review"/><sequenceFlow sourceRef="review" targetRef="approve"/>
    <userTask id="approve"/><sequenceFlow sourceRef="approve" targetRef="e"/><endEvent id="e"/>"#;

/// Version 2: the review renamed `check`, and a step `archive` after the approval.
const V2: &str = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="check"/>
    <userTask id="check"/><sequenceFlow sourceRef="check" targetRef="approve"/>
    <userTask id="approve"/><sequenceFlow sourceRef="approve" targetRef="archive"/>
    <serviceTask id="archive" flowable:expression="${'done'}" flowable:resultVariable="archived"/>
    <sequenceFlow sourceRef="archive" targetRef="e"/><endEvent id="e"/>"#;

fn mapped(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn a_waiting_instance_moves_by_element_id_and_goes_on_in_the_new_version() {
    let mut h = Harness::start(model(V1), json!({}));
    h.complete("review", json!({}));
    let v2 = model(V2);
    let plan = h.inst.plan_migration(&h.def, &v2, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plan.moves, [("approve".to_owned(), "approve".to_owned())]);
    assert!(h.inst.migrate(&plan).is_empty(), "no record was renamed");
    h.def = v2;
    h.complete("approve", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("archived"), Some(&json!("done")), "the new version's step ran");
}

#[test]
fn a_renamed_element_needs_a_mapping_and_its_open_record_takes_the_new_id() {
    let mut h = Harness::start(model(V1), json!({}));
    let v2 = model(V2);
    let refused = h.inst.plan_migration(&h.def, &v2, &BTreeMap::new()).err().unwrap_or_default();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("`review`") && refused[0].contains("activityMappings"), "{refused:?}");
    let plan = h.inst.plan_migration(&h.def, &v2, &mapped(&[("review", "check")])).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plan.moves, [("review".to_owned(), "check".to_owned())]);
    // As in memory right after the task was created: with what its user task started with.
    h.inst.open.values_mut().for_each(|r| r.user = Some(Box::default()));
    let before = h.inst.clone();
    let written = h.inst.migrate(&plan);
    assert_ne!(h.inst, before);
    let renamed: Vec<(&str, bool)> = written
        .iter()
        .filter_map(|e| match e {
            Effect::Task(rec) => Some((rec.element.as_str(), rec.user.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        renamed,
        [("check", false)],
        "the renamed record is written out with its new element, not as a user task created again"
    );
    h.def = v2;
    assert_eq!(h.open_at("check").len(), 1, "the waiting record is at `check` now");
    h.complete("check", json!({}));
    h.complete("approve", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_move_that_cannot_be_made_is_refused_with_every_reason_and_changes_nothing() {
    let h = Harness::start(model(V1), json!({}));
    // `review` mapped to a service task; a mapping of an element the old version lacks.
    let wrong = mapped(&[("review", "archive"), ("nowhere", "check")]);
    let refused = h.inst.plan_migration(&h.def, &model(V2), &wrong).err().unwrap_or_default();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].contains("different kinds"), "{refused:?}");
    assert!(refused[1].contains("`nowhere`"), "{refused:?}");
    let ended = Harness::start(model(W1), json!({}));
    let refused = ended.inst.plan_migration(&ended.def, &model(W1), &BTreeMap::new()).err().unwrap_or_default();
    assert!(refused.iter().any(|r| r.contains("only a running instance")), "{refused:?}");
}

#[test]
fn an_instance_inside_a_subprocess_is_refused_by_name() {
    let sub = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/>
          <userTask id="inner"/><sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"/></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>"#;
    let h = Harness::start(model(sub), json!({}));
    let refused = h.inst.plan_migration(&h.def, &model(sub), &BTreeMap::new()).err().unwrap_or_default();
    assert!(refused.iter().any(|r| r.contains("inside a subprocess")), "{refused:?}");
}

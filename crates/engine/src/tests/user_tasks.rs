//! User tasks: assignment expressions evaluated at creation, variables set through tasks.

use super::*;

const PEOPLE: &str = r#"<startEvent id="start"/><sequenceFlow sourceRef="start" targetRef="review"/>
    <userTask id="review" name="Review ${doc}" flowable:assignee="${author}" flowable:owner="boss"
        flowable:candidateUsers="kermit, ${helper}" flowable:candidateGroups="${groups}"
        flowable:priority="${urgency * 10}" flowable:dueDate="PT2H" flowable:formKey="reviewForm"
        flowable:category="docs">
      <documentation>Please review ${doc}</documentation>
    </userTask>
    <sequenceFlow sourceRef="review" targetRef="end"/><endEvent id="end"/>"#;

fn created(h: &Harness, element: &str) -> UserTaskInfo {
    let rec = h.effects.iter().find_map(|e| match e {
        Effect::Task(r) if r.element == element && r.user.is_some() => Some(r),
        _ => None,
    });
    *rec.and_then(|r| r.user.clone()).unwrap_or_else(|| panic!("no user task created at {element}"))
}

#[test]
fn user_task_people_priority_and_due_date_are_evaluated_at_creation() {
    let h = Harness::start(
        model(PEOPLE),
        json!({"doc": "spec", "author": "fozzie", "helper": "gonzo", "groups": ["sales", "management"], "urgency": 7}),
    );
    let info = created(&h, "review");
    assert_eq!(info.name.as_deref(), Some("Review spec"));
    assert_eq!(info.description.as_deref(), Some("Please review spec"));
    assert_eq!(info.assignee.as_deref(), Some("fozzie"));
    assert_eq!(info.owner.as_deref(), Some("boss"));
    assert_eq!(info.candidate_users, ["kermit", "gonzo"]);
    assert_eq!(info.candidate_groups, ["sales", "management"]);
    assert_eq!(info.priority, 70);
    assert_eq!(info.due_date, Some(1000 + 2 * 3_600_000));
    assert_eq!((info.form_key.as_deref(), info.category.as_deref()), (Some("reviewForm"), Some("docs")));
    let open = &h.inst.open[&h.open_at("review")[0]];
    assert!(open.user.is_none(), "the instance state does not keep what people change in the store");
    assert_eq!(open.name, "Review spec", "the task record shows the evaluated name too");
}

#[test]
fn a_user_task_without_attributes_has_the_default_priority_and_no_people() {
    let h = Harness::start(
        model(r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t"/>"#),
        json!({}),
    );
    let info = created(&h, "t");
    assert_eq!(info, UserTaskInfo { priority: DEFAULT_PRIORITY, ..UserTaskInfo::default() });
}

#[test]
fn a_priority_that_is_not_a_number_fails_the_instance_naming_the_task() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t" flowable:priority="high"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.clone().unwrap_or_default();
    assert!(failure.contains("priority of user task 't'"), "{failure}");
}

#[test]
fn variables_set_through_a_task_reach_the_process_and_transient_ones_are_not_kept() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t"/>
            <sequenceFlow sourceRef="t" targetRef="copy"/>
            <serviceTask id="copy" flowable:expression="${seen}" flowable:resultVariable="copied"/>
            <sequenceFlow sourceRef="copy" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"old": 1}),
    );
    let task = h.open_at("t")[0].clone();
    let set = Command::SetVariables {
        task: Some(task.clone()),
        variables: vars(json!({"a": 2})),
        removed: vec!["old".into()],
    };
    h.apply(set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.variables, vars(json!({"a": 2})));
    let done = Command::CompleteUserTask { task, variables: Map::new(), transient: vars(json!({"seen": "x"})) };
    h.apply(done).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables, vars(json!({"a": 2, "copied": "x"})));
}

#[test]
fn setting_variables_through_a_task_that_is_not_open_is_refused() {
    let mut h =
        Harness::start(model(PEOPLE), json!({"doc": "d", "author": "a", "helper": "h", "groups": "g", "urgency": 1}));
    let set = Command::SetVariables { task: Some("nope".into()), variables: Map::new(), removed: Vec::new() };
    assert_eq!(h.apply(set), Err(EngineError::TaskNotOpen("nope".into())));
}

#[test]
fn the_initiator_variable_exists_even_when_nobody_signed_in() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s" flowable:initiator="starter"/><sequenceFlow sourceRef="s" targetRef="t"/>
            <userTask id="t" flowable:assignee="${starter}"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Running);
    assert_eq!(h.inst.variables.get("starter"), Some(&Value::Null));
    assert_eq!(created(&h, "t").assignee, None);
}

#[test]
fn the_initiator_variable_names_who_started_the_instance_unless_a_start_variable_does() {
    let def = || {
        model(
            r#"<startEvent id="s" flowable:initiator="starter"/><sequenceFlow sourceRef="s" targetRef="t"/>
            <userTask id="t" flowable:assignee="${starter}"/>"#,
        )
    };
    let by = |who: &str| StartOptions { initiator: Some(who.into()), ..StartOptions::default() };
    let h = Harness::start_with(def(), json!({}), by("kermit"));
    assert_eq!(created(&h, "t").assignee.as_deref(), Some("kermit"));
    let h = Harness::start_with(def(), json!({"starter": "gonzo"}), by("kermit"));
    assert_eq!(created(&h, "t").assignee.as_deref(), Some("gonzo"));
}

#[test]
fn expression_listeners_run_on_start_end_create_and_complete_and_may_set_variables() {
    let mut h = Harness::start(
        model(
            r#"<extensionElements>
              <flowable:executionListener event="start" expression="${execution.setVariable('trail', 'p')}"/>
              <flowable:executionListener event="end" expression="${execution.setVariable('trail', trail + '/P')}"/>
            </extensionElements>
            <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
            <userTask id="u" name="Review"><extensionElements>
              <flowable:executionListener event="start" expression="${execution.setVariable('trail', trail + '/u')}"/>
              <flowable:taskListener event="create" expression="${task.setVariable('trail', trail + '/create')}"/>
              <flowable:taskListener event="complete" expression="${task.setVariable('trail', trail + '/complete:' + verdict)}"/>
              <flowable:executionListener event="end" expression="${execution.setVariable('trail', trail + '/U')}"/>
            </extensionElements></userTask>
            <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.variables["trail"], json!("p/u/create"));
    h.complete("u", json!({"verdict": "ok"}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables["trail"], json!("p/u/create/complete:ok/U/P"));
}

#[test]
fn a_listener_that_fails_fails_the_instance_naming_it() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
            <userTask id="u"><extensionElements>
              <flowable:taskListener event="complete" expression="${missing + 1}"/>
            </extensionElements></userTask><sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    h.complete("u", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.clone().unwrap_or_default();
    assert!(failure.contains("`u`") && failure.contains("listener `${missing + 1}`"), "{failure}");
    let task = h.records().into_iter().find(|r| r.element == "u").unwrap_or_else(|| panic!("no record"));
    assert_eq!(task.status, TaskStatus::Failed);
}

#[test]
fn an_expression_service_task_may_set_variables_as_flowable_expressions_do() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
            <serviceTask id="t" flowable:expression="${execution.setVariable('doubled', n * 2)}"/>
            <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"n": 21}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables["doubled"], json!(42));
}

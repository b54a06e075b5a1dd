//! The store contract: every implementation passes the same suite, run here against SQLite
//! (a fresh file per test) and PostgreSQL (a fresh database per test).

use flowstone_engine::{Action, Job, Passage, Stored, TaskRecord, TaskStatus};
use flowstone_store::{
    Acquire, ActivityOrder, ActivityQuery, ActivityRow, AppRow, BkIds, BkTaskEdit, BkTaskRow, BkTaskStart,
    BufferedMessage, ChangedUserTask, ClosedUserTask, CommentRow, DeploymentOrder, DeploymentQuery, DeploymentRow,
    DeploymentWrite, EventQuery, ExecutionQuery, GroupRow, IdentityColumn, IdentityQuery, InstanceFilter,
    InstanceOrder, InstanceRow, JobFilter, JobLease, JobRow, ModelOrder, ModelQuery, ModelRow, NewDeployment, NewModel,
    NewUserTask, OutboxRow, Page, PassageRow, PgStore, PruneQuery, SqliteStore, Store, StoreError, SubscriptionQuery,
    SubscriptionRow, TaskLink, TaskOrder, TaskPartWrite, TaskRow, TaskVariable, TemplateRow, TenantFilter, TextFilter,
    TimerLease, TimerMove, TimerOrder, TimerQuery, TimerRow, TokenRow, UserRow, UserTaskQuery, UserTaskRow,
    VariableFilter, VariableOp, VariableScope, WaitingFor, WriteBatch,
};
use serde_json::json;

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = SqliteStore::open(&dir.path().join("test.db")).await.unwrap_or_else(|e| panic!("{e}"));
    (dir, store)
}

/// A store on a new database of the test PostgreSQL (see [`PgStore::test_database`]).
async fn postgres() -> Option<PgStore> {
    let url = PgStore::test_database("flowstone_contract").await?;
    Some(PgStore::open(&url).await.unwrap_or_else(|e| panic!("{e}")))
}

fn new_model(id: &str, key: &str) -> NewModel {
    NewModel {
        id: id.into(),
        key: key.into(),
        name: Some(format!("{key} name")),
        source: "<xml/>".into(),
        resource: format!("{key}.bpmn"),
    }
}

/// An instance state stored whole.
fn doc(core: &str) -> Stored {
    Stored { core: core.into(), ..Stored::default() }
}

/// An instance state with parts written (`Some`) and removed (`None`).
fn parted(core: &str, clear: bool, parts: &[(&str, Option<&str>)]) -> Stored {
    let parts = parts.iter().map(|(k, b)| ((*k).to_owned(), b.map(str::to_owned))).collect();
    Stored { core: core.into(), clear, parts }
}

fn deployment(id: &str) -> NewDeployment {
    NewDeployment { id: id.into(), ..NewDeployment::default() }
}

/// More rows than one statement writes (a PostgreSQL array statement holds 4,096, a SQLite
/// `VALUES` list 256): every row lands with its values and its NULLs, and a stale write among
/// them still refuses the whole batch.
async fn a_batch_of_thousands_of_rows_writes_each_and_still_refuses_a_stale_one(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    const N: usize = 4_200;
    let ids: Vec<String> = (0..N).map(|n| format!("i{n:05}")).collect();
    let instances = ids.iter().enumerate().map(|(n, id)| {
        let mut row = instance(id, "m", "running", n as i64);
        row.end_time = (n % 2 == 1).then_some(n as i64 + 1);
        row.business_key = (n % 3 == 0).then(|| format!("b{n}"));
        (row, doc(&format!("{{\"n\":{n}}}")))
    });
    let tasks = ids.iter().enumerate().map(|(n, id)| {
        let mut r = record(&format!("r{n:05}"), "t", "produce.success", n as i64);
        r.progress = (n % 2 == 0).then_some(n as u8 % 100);
        r.params = (n % 5 != 0).then(|| json!({"n": n}));
        TaskRow { instance_id: id.clone(), record: r }
    });
    let batch = WriteBatch {
        instances: instances.collect(),
        tasks: tasks.collect(),
        jobs: ids.iter().enumerate().map(|(n, id)| job(id, &format!("r{n:05}"), n as i64)).collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let some = ["i00000", "i00001", "i04095", "i04096", "i04199"];
    let rows = must(store.instances(&some)).await;
    assert_eq!(rows.len(), some.len());
    for row in &rows {
        let n: i64 = row.id[1..].parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((row.start_time, row.end_time), (n, (n % 2 == 1).then_some(n + 1)), "{}", row.id);
        assert_eq!(row.business_key, (n % 3 == 0).then(|| format!("b{n}")), "{}", row.id);
        let state = must(store.instance_state(&row.id)).await.map(|s| s.core);
        assert_eq!(state, Some(format!("{{\"n\":{n}}}")));
    }
    let records = must(store.tasks(&["r00000", "r04095", "r04199"])).await;
    let seen: Vec<(i64, Option<u8>, bool)> =
        records.iter().map(|t| (t.record.create_time, t.record.progress, t.record.params.is_some())).collect();
    assert_eq!(seen, [(0, Some(0), false), (4095, None, false), (4199, None, true)]);
    let (jobs, total) = must(store.list_jobs(&JobFilter::default(), Page { offset: 0, limit: 1 })).await;
    assert_eq!((jobs.len(), total), (1, N as u64));
    a_stale_last_row_refuses_the_batch(store, &ids, |_| doc("{}")).await;
}

/// New rows (an instance at version 1, a record the batch made and its job) and rows written
/// again (an instance at version 2, a record not among the batch's new ones) in one batch all
/// land; a new instance, or a made record or its job whose id is stored already, fails the
/// commit, which writes nothing of its batch.
async fn new_rows_are_inserted_beside_rows_written_again_and_a_new_one_stored_already_fails_the_batch(
    store: &dyn Store,
) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let task = |id: &str, status: &str| TaskRow { instance_id: "old".into(), record: record(id, id, status, 1) };
    let first = WriteBatch {
        instances: vec![(instance("old", "m", "running", 1), doc("{}"))],
        tasks: vec![task("r-old", "start.begin")],
        jobs: vec![job("old", "r-old", 1)],
        ..WriteBatch::default()
    };
    must(store.commit(&first)).await;
    let mixed = WriteBatch {
        instances: vec![
            (InstanceRow { version: 2, ..instance("old", "m", "completed", 1) }, doc("{\"again\":true}")),
            (instance("new", "m", "running", 2), doc("{\"new\":true}")),
        ],
        tasks: vec![task("r-old", "start.success"), task("r-new", "start.begin")],
        jobs: vec![job("old", "r-new", 2)],
        new_records: ["r-new".to_owned()].into_iter().collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&mixed)).await;
    let versions = must(store.instance_versions(&["new", "old"])).await;
    assert_eq!(versions, [("new".to_owned(), 1), ("old".to_owned(), 2)]);
    assert_eq!(must(store.instance_state("old")).await.map(|s| s.core).as_deref(), Some("{\"again\":true}"));
    let statuses: Vec<String> =
        must(store.tasks(&["r-new", "r-old"])).await.iter().map(|t| t.record.status.text()).collect();
    assert_eq!(statuses, ["start.begin", "start.success"]);
    let fails = [
        WriteBatch { instances: vec![(instance("new", "m", "completed", 2), doc("{}"))], ..WriteBatch::default() },
        WriteBatch {
            tasks: vec![task("r-old", "start.failed")],
            new_records: ["r-old".to_owned()].into_iter().collect(),
            ..WriteBatch::default()
        },
        WriteBatch {
            jobs: vec![job("old", "r-old", 3)],
            new_records: ["r-old".to_owned()].into_iter().collect(),
            ..WriteBatch::default()
        },
    ];
    for (n, mut batch) in fails.into_iter().enumerate() {
        batch.instances.push((instance(&format!("other{n}"), "m", "running", 3), doc("{}")));
        assert!(store.commit(&batch).await.is_err(), "batch {n}: a row written first twice fails the commit");
        assert!(must(store.instance(&format!("other{n}"))).await.is_none(), "batch {n}: nothing of it was written");
    }
    assert_eq!(must(store.instance_state("new")).await.map(|s| s.core).as_deref(), Some("{\"new\":true}"));
    let statuses: Vec<String> = must(store.tasks(&["r-old"])).await.iter().map(|t| t.record.status.text()).collect();
    assert_eq!(statuses, ["start.success"]);
    let queued: Vec<(String, i64)> = must(store.list_jobs(&JobFilter::default(), Page { offset: 0, limit: 10 }))
        .await
        .0
        .into_iter()
        .map(|j| (j.job.record_id, j.created_at))
        .collect();
    assert_eq!(queued, [("r-old".to_owned(), 1), ("r-new".to_owned(), 2)]);
}

/// Every row of `ids` (each at version 1) moves on to version 2 but the last, written as if
/// version 2 were its own already: the batch is refused, and the first and last rows stay.
async fn a_stale_last_row_refuses_the_batch(store: &dyn Store, ids: &[String], state: impl Fn(usize) -> Stored) {
    let again = WriteBatch {
        instances: ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let version = if n == ids.len() - 1 { 3 } else { 2 };
                (InstanceRow { version, ..instance(id, "m", "completed", n as i64) }, state(n))
            })
            .collect(),
        ..WriteBatch::default()
    };
    assert!(matches!(store.commit(&again).await, Err(StoreError::Conflict(_))));
    let (first, last) = (ids[0].as_str(), ids[ids.len() - 1].as_str());
    let versions = must(store.instance_versions(&[first, last])).await;
    assert_eq!(versions, [(first.to_owned(), 1), (last.to_owned(), 1)], "nothing of the batch was written");
}

/// Instances whose states pass 64 MB together (PostgreSQL takes them in more than one array
/// statement, which a group of big instances needs to stay under its 1 GB message limit):
/// each lands whole, and a stale one among them still refuses the batch.
async fn a_batch_of_big_instances_writes_each_whole_and_still_refuses_a_stale_one(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let big = |n: usize| format!("{{\"n\":{n},\"text\":\"{}\"}}", "x".repeat(15 * 1024 * 1024));
    let ids: Vec<String> = (0..6).map(|n| format!("big{n}")).collect();
    let batch = WriteBatch {
        instances: ids
            .iter()
            .enumerate()
            .map(|(n, id)| (instance(id, "m", "running", n as i64), doc(&big(n))))
            .collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    for (n, id) in ids.iter().enumerate() {
        let state = must(store.instance_state(id)).await.map(|s| s.core);
        assert!(state.as_deref() == Some(big(n).as_str()), "{id} lost or cut its state");
    }
    a_stale_last_row_refuses_the_batch(store, &ids, |n| doc(&big(n + 1))).await;
}

fn instance(id: &str, model_id: &str, status: &str, start: i64) -> InstanceRow {
    InstanceRow {
        id: id.into(),
        model_id: model_id.into(),
        model_key: "k".into(),
        name: "test".into(),
        status: status.into(),
        variables: "{}".into(),
        start_time: start,
        end_time: None,
        outputs: None,
        final_vars: None,
        failure: None,
        end_element: None,
        version: 1,
        kind: "process".into(),
        parent_id: None,
        rollback_id: None,
        cancel_id: None,
        delete_id: None,
        business_key: None,
        start_user: None,
    }
}

fn job(instance: &str, record: &str, at: i64) -> JobRow {
    JobRow {
        instance_id: instance.into(),
        job: Job {
            record_id: record.into(),
            stone: "noop".into(),
            action: Action::Start,
            params: json!({"a": 1}),
            outputs: Default::default(),
        },
        created_at: at,
        owner: None,
        locked_until: None,
        retries: None,
    }
}

fn acquire<'a>(stones: &'a [&'a str], owner: &'a str, now: i64) -> Acquire<'a> {
    Acquire { stones, owner, now, until: now + 1000, include_own: false, limit: 100, action: None }
}

fn record(id: &str, task_id: &str, status: &str, at: i64) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        task_id: task_id.into(),
        element: "t".into(),
        name: "T".into(),
        kind: "serviceTask".into(),
        namespace: Some("ns".into()),
        stone: Some("noop".into()),
        create_time: at,
        end_time: None,
        status: TaskStatus::parse(status).unwrap_or_else(|| panic!("status {status}")),
        reason: None,
        params: Some(json!({"a": 1})),
        outputs: None,
        progress: None,
        action: None,
        user: None,
    }
}

async fn must<T>(f: impl std::future::Future<Output = flowstone_store::Result<T>>) -> T {
    f.await.unwrap_or_else(|e| panic!("{e}"))
}

/// Commits a deployment of `models` at `at`; answers its models as stored, in the order given.
async fn deploy(store: &dyn Store, deployment: NewDeployment, models: Vec<NewModel>, at: i64) -> Vec<ModelRow> {
    let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
    let write = DeploymentWrite { deployment, models, at };
    must(store.commit(&WriteBatch { deployments: vec![write], ..WriteBatch::default() })).await;
    let mut rows = Vec::new();
    for id in ids {
        rows.push(must(store.model(&id)).await.unwrap_or_else(|| panic!("model {id} not stored")));
    }
    rows
}

async fn deploying_a_key_again_makes_a_new_version(store: &dyn Store) {
    let first = deploy(store, deployment("d1"), vec![new_model("m1", "k"), new_model("m2", "other")], 10).await;
    assert_eq!(first.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 1]);
    let second = deploy(store, deployment("d2"), vec![new_model("m3", "k")], 20).await;
    assert_eq!(second[0].version, 2);
    assert_eq!(must(store.latest_model("k")).await.map(|m| m.id), Some("m3".into()));
    assert_eq!(must(store.model("m1")).await.map(|m| m.deployment_id), Some("d1".into()));
    assert_eq!(must(store.models_of_deployment("d1")).await.len(), 2);
    assert!(must(store.model("nope")).await.is_none());
    let (page, total) = must(store.list_models(None, None, Page { offset: 0, limit: 2 })).await;
    assert_eq!((page.len(), total), (2, 3));
    assert_eq!(page[0].id, "m3", "newest first");
    let (only_k, total) = must(store.list_models(Some("k"), None, Page { offset: 0, limit: 10 })).await;
    assert_eq!((only_k.len(), total), (2, 2));
}

async fn repository_lists_are_filtered_sorted_and_paged_by_the_database(store: &dyn Store) {
    let tenant = |id: &str, name: &str, tenant: Option<&str>, category: Option<&str>| NewDeployment {
        id: id.into(),
        name: Some(name.into()),
        category: category.map(str::to_owned),
        tenant_id: tenant.map(str::to_owned),
    };
    deploy(store, tenant("d1", "alpha", Some("acme"), Some("c1")), vec![new_model("m1", "k1")], 10).await;
    deploy(store, tenant("d2", "beta", None, None), vec![new_model("m2", "k1"), new_model("m3", "k2")], 20).await;
    deploy(store, tenant("d3", "alpine", Some("acme"), Some("c2")), vec![new_model("m4", "k1")], 30).await;
    let ids = |rows: &[DeploymentRow]| rows.iter().map(|d| d.id.clone()).collect::<Vec<_>>();

    let like = DeploymentQuery {
        name: TextFilter { like: Some("al%".into()), ..TextFilter::default() },
        ..DeploymentQuery::default()
    };
    let (rows, total) = must(store.query_deployments(&like, ALL)).await;
    assert_eq!((ids(&rows), total), (vec!["d1".to_owned(), "d3".to_owned()], 2));
    let newest = DeploymentQuery { order: DeploymentOrder::DeployTime, descending: true, ..DeploymentQuery::default() };
    let (rows, total) = must(store.query_deployments(&newest, Page { offset: 1, limit: 1 })).await;
    assert_eq!((ids(&rows), total), (vec!["d2".to_owned()], 3), "one page, the count of all");
    let untenanted = DeploymentQuery {
        tenant: TenantFilter { without: true, ..TenantFilter::default() },
        ..DeploymentQuery::default()
    };
    assert_eq!(ids(&must(store.query_deployments(&untenanted, ALL)).await.0), ["d2"]);
    let not_c1 = DeploymentQuery { category_not: Some("c1".into()), ..DeploymentQuery::default() };
    assert_eq!(ids(&must(store.query_deployments(&not_c1, ALL)).await.0), ["d2", "d3"], "no category is not c1");

    let models = |rows: &[ModelRow]| rows.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    let latest = ModelQuery { latest: true, order: ModelOrder::Key, ..ModelQuery::default() };
    assert_eq!(models(&must(store.query_models(&latest, ALL)).await.0), ["m4", "m3"]);
    let of_acme = ModelQuery {
        tenant: TenantFilter {
            tenant: TextFilter { equals: Some("acme".into()), ..TextFilter::default() },
            without: false,
        },
        order: ModelOrder::Version,
        descending: true,
        ..ModelQuery::default()
    };
    let (rows, total) = must(store.query_models(&of_acme, Page { offset: 0, limit: 1 })).await;
    assert_eq!((models(&rows), total), (vec!["m4".to_owned()], 2));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("acme"));
    let version_one = ModelQuery {
        version: Some(1),
        key: TextFilter { equals: Some("k1".into()), ..TextFilter::default() },
        ..ModelQuery::default()
    };
    assert_eq!(models(&must(store.query_models(&version_one, ALL)).await.0), ["m1"]);
}

async fn a_deployment_goes_with_its_models_only_when_no_instance_stands_in_the_way(store: &dyn Store) {
    let named = NewDeployment { id: "d1".into(), name: Some("first".into()), ..NewDeployment::default() };
    deploy(store, named, vec![new_model("m1", "k")], 10).await;
    deploy(store, deployment("d2"), vec![new_model("m2", "k")], 20).await;
    let d1 = must(store.deployment("d1")).await;
    assert_eq!(d1.map(|d| (d.name, d.deployed_at)), Some((Some("first".into()), 10)));
    assert_eq!(must(store.model("m1")).await.map(|m| m.resource), Some("k.bpmn".into()));
    let (all, total) = must(store.query_deployments(&DeploymentQuery::default(), ALL)).await;
    assert_eq!((all.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), total), (vec!["d1", "d2"], 2));

    let running = instance("i1", "m1", "running", 1);
    let ended =
        InstanceRow { id: "i2".into(), status: "completed".into(), end_time: Some(5), ..instance("i2", "m1", "x", 1) };
    let batch = WriteBatch { instances: vec![(running, doc("{}")), (ended, doc("{}"))], ..WriteBatch::default() };
    must(store.commit(&batch)).await;
    assert_eq!(must(store.delete_deployment("d1", false)).await, 2, "any instance stands in the way");
    assert_eq!(must(store.delete_deployment("d1", true)).await, 1, "with cascade, only running ones do");
    let finished =
        InstanceRow { status: "completed".into(), end_time: Some(6), version: 2, ..instance("i1", "m1", "x", 1) };
    must(store.commit(&WriteBatch { instances: vec![(finished, doc("{}"))], ..WriteBatch::default() })).await;
    assert_eq!(must(store.delete_deployment("d1", true)).await, 0);
    assert!(must(store.deployment("d1")).await.is_none() && must(store.model("m1")).await.is_none());
    assert!(must(store.instance("i1")).await.is_none(), "the ended instances went with it");
    assert_eq!(must(store.latest_model("k")).await.map(|m| m.id), Some("m2".into()));
}

async fn a_batch_commits_instances_tasks_and_jobs_together(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i1", "m", "running", 5), doc("{\"s\":1}"))],
        tasks: vec![TaskRow { instance_id: "i1".into(), record: record("r1", "t1", "produce.success", 5) }],
        jobs: vec![job("i1", "r1", 5)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(must(store.instance("i1")).await.map(|i| i.status), Some("running".into()));
    assert_eq!(must(store.instance_state("i1")).await.map(|s| s.core).as_deref(), Some("{\"s\":1}"));
    assert!(must(store.acquire_jobs(acquire(&["x"], "me", 10))).await.is_empty());
    let taken = must(store.acquire_jobs(acquire(&["noop", "x"], "me", 10))).await;
    assert_eq!((taken.len(), taken[0].owner.as_deref(), taken[0].locked_until), (1, Some("me"), Some(1010)));
    assert_eq!(taken[0].job.params, json!({"a": 1}));

    // A start that monitors: the job keeps its lock and turns into a monitor job.
    let mut row = instance("i1", "m", "running", 5);
    row.version = 2;
    let outputs = json!({"machineId": "m1"}).as_object().cloned().unwrap_or_default();
    let batch = WriteBatch {
        instances: vec![(row, doc("{}"))],
        monitoring_jobs: vec![("r1".into(), outputs.clone())],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let held = must(store.job("r1")).await.unwrap_or_else(|| panic!("job gone"));
    assert_eq!((held.job.action, held.owner.as_deref(), held.job.outputs), (Action::Monitor, Some("me"), outputs));

    // An update replaces the mutable columns and keeps the rest; a task record written again
    // may be a run again, with a new start and new params.
    let mut done = instance("i1", "m", "completed", 999);
    done.version = 3;
    done.end_time = Some(9);
    done.outputs = Some("{\"o\":1}".into());
    let mut finished = record("r1", "t1", "start.success", 7);
    finished.end_time = Some(9);
    finished.outputs = Some(json!({"b": 2}));
    finished.params = Some(json!({"a": 2}));
    let batch = WriteBatch {
        instances: vec![(done, doc("{}"))],
        tasks: vec![TaskRow { instance_id: "i1".into(), record: finished }],
        dropped_jobs: vec!["r1".into()],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let row = must(store.instance("i1")).await.unwrap_or_else(|| panic!("instance gone"));
    assert_eq!((row.status.as_str(), row.start_time, row.end_time), ("completed", 5, Some(9)));
    let task = must(store.task("r1")).await.unwrap_or_else(|| panic!("task gone"));
    assert_eq!((task.record.status.text().as_str(), task.record.create_time), ("start.success", 7));
    assert_eq!(task.record.outputs, Some(json!({"b": 2})));
    assert_eq!((&task.record.params, task.record.stone.as_deref()), (&Some(json!({"a": 2})), Some("noop")));
    assert!(must(store.acquire_jobs(acquire(&["noop"], "other", 99_999))).await.is_empty(), "dropped job is gone");
    assert_eq!(must(store.instance_versions(&["i1", "nope"])).await, [("i1".to_owned(), 3)]);
    let many = must(store.instances(&["nope", "i1"])).await;
    assert_eq!(many, [row], "read many at once, an instance is the row read alone");
    let records = must(store.tasks(&["r1", "nope"])).await;
    assert_eq!(records, [task], "read many at once, a record is the one read alone");
}

async fn an_instance_in_parts_reads_back_as_its_commits_left_it(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let parts_of = async |id| {
        let mut s = must(store.instance_state(id)).await.unwrap_or_else(|| panic!("{id} has no state"));
        s.parts.sort();
        (s.core, s.parts.into_iter().map(|(k, b)| (k, b.unwrap_or_default())).collect::<Vec<_>>())
    };
    let owned =
        |parts: &[(&str, &str)]| parts.iter().map(|(k, b)| ((*k).to_owned(), (*b).to_owned())).collect::<Vec<_>>();
    let first = parted("{\"c\":1}", false, &[("o:a", Some("1")), ("o:b", Some("2")), ("t:1", Some("3"))]);
    let other = parted("{}", false, &[("o:a", Some("other"))]);
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), first), (instance("j", "m", "running", 1), other)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(parts_of("i").await, ("{\"c\":1}".into(), owned(&[("o:a", "1"), ("o:b", "2"), ("t:1", "3")])));

    // Only what changed is written: one part replaced, one removed, one added; the rest stays.
    let changed = parted("{\"c\":2}", false, &[("o:a", Some("1b")), ("t:1", None), ("s:2", Some("4"))]);
    let batch = WriteBatch {
        instances: vec![(InstanceRow { version: 2, ..instance("i", "m", "running", 1) }, changed)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(parts_of("i").await, ("{\"c\":2}".into(), owned(&[("o:a", "1b"), ("o:b", "2"), ("s:2", "4")])));
    // Many at once read back as each alone.
    let ids = ["i".to_owned(), "j".to_owned(), "nope".to_owned()];
    let mut many = must(store.instances_with_state(&ids)).await;
    many.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let alone = [must(store.instance_state("i")).await, must(store.instance_state("j")).await];
    let read: Vec<(String, i64)> = many.iter().map(|(row, _)| (row.id.clone(), row.version)).collect();
    assert_eq!(read, [("i".to_owned(), 2), ("j".to_owned(), 1)], "the rows found, none for an unknown id");
    for ((_, mut state), alone) in many.into_iter().zip(alone) {
        let mut alone = alone.unwrap_or_default();
        state.parts.sort();
        alone.parts.sort();
        assert_eq!(state, alone);
    }

    // A commit that loses the version race writes no part.
    let stale = parted("{}", true, &[("o:z", Some("9"))]);
    let batch = WriteBatch {
        instances: vec![(InstanceRow { version: 2, ..instance("i", "m", "running", 1) }, stale)],
        ..WriteBatch::default()
    };
    assert!(matches!(store.commit(&batch).await, Err(StoreError::Conflict(_))));
    assert_eq!(parts_of("i").await.1.len(), 3);

    // An instance that keeps nothing clears its parts; another instance's stay.
    let batch = WriteBatch {
        instances: vec![(InstanceRow { version: 3, ..instance("i", "m", "completed", 1) }, parted("", true, &[]))],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(parts_of("i").await, (String::new(), Vec::new()));
    assert_eq!(parts_of("j").await.1, owned(&[("o:a", "other")]));
    assert!(must(store.instance_state("nope")).await.is_none());

    // Deleting the deployment with its instances takes their parts.
    let done = InstanceRow { version: 2, end_time: Some(2), ..instance("j", "m", "completed", 1) };
    must(store.commit(&WriteBatch { instances: vec![(done, parted("{}", false, &[]))], ..WriteBatch::default() }))
        .await;
    must(store.commit(&WriteBatch {
        instances: vec![(InstanceRow { version: 4, end_time: Some(2), ..instance("i", "m", "completed", 1) }, doc(""))],
        ..WriteBatch::default()
    }))
    .await;
    assert_eq!(must(store.delete_deployment("d", true)).await, 0);
    deploy(store, deployment("d2"), vec![new_model("m", "k")], 1).await;
    let again = WriteBatch { instances: vec![(instance("j", "m", "running", 1), doc("{}"))], ..WriteBatch::default() };
    must(store.commit(&again)).await;
    assert_eq!(parts_of("j").await.1, Vec::new(), "no part outlived its instance");
}

async fn a_failed_batch_writes_nothing(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        // The second instance names a model that does not exist: the whole batch must fail.
        instances: vec![
            (instance("ok", "m", "running", 1), doc("{}")),
            (instance("bad", "missing", "running", 1), doc("{}")),
        ],
        ..WriteBatch::default()
    };
    assert!(store.commit(&batch).await.is_err());
    assert!(must(store.instance("ok")).await.is_none());
}

async fn instances_list_filters_and_pages(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: (0..5)
            .map(|i| {
                let row = instance(&format!("i{i}"), "m", if i % 2 == 0 { "running" } else { "completed" }, i);
                (InstanceRow { business_key: Some(format!("key{}", 4 - i)), ..row }, doc("{}"))
            })
            .collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let all = InstanceFilter::default();
    let (rows, total) = must(store.list_instances(&all, Page { offset: 1, limit: 2 })).await;
    assert_eq!(total, 5);
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["i3", "i2"]);
    let page = must(store.instances_page(&all, Page { offset: 1, limit: 2 })).await;
    assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["i3", "i2"], "the same page, uncounted");
    assert_eq!(must(store.count_instances(&all, 3)).await, 3, "a count stops at its cap");
    assert_eq!(must(store.count_instances(&all, 100)).await, 5);
    let running = InstanceFilter {
        status: Some("running".into()),
        model_key: Some("k".into()),
        outcome: None,
        ..InstanceFilter::default()
    };
    assert_eq!(must(store.list_instances(&running, Page { offset: 0, limit: 10 })).await.1, 3);
    assert_eq!(must(store.count_instances(&running, 100)).await, 3, "a capped count filters as the list does");
    // Completed instances are left out of the status index and found by walking the ids.
    let completed = InstanceFilter { status: Some("completed".into()), ..InstanceFilter::default() };
    let (rows, total) = must(store.list_instances(&completed, Page { offset: 0, limit: 10 })).await;
    assert_eq!((total, rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()), (2, vec!["i3", "i1"]));
    assert_eq!(must(store.count_instances(&completed, 1)).await, 1);
    let other = InstanceFilter { model_key: Some("other".into()), ..InstanceFilter::default() };
    assert_eq!(must(store.list_instances(&other, Page { offset: 0, limit: 10 })).await.1, 0);
    let open = InstanceFilter { ended: Some(false), model_id: Some("m".into()), ..InstanceFilter::default() };
    assert_eq!(must(store.list_instances(&open, Page { offset: 0, limit: 10 })).await.1, 5, "none has an end time");
    let oldest = InstanceFilter { ascending: true, ..InstanceFilter::default() };
    let (rows, _) = must(store.list_instances(&oldest, Page { offset: 1, limit: 2 })).await;
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["i1", "i2"]);
    let one = InstanceFilter { id: Some("i3".into()), ..InstanceFilter::default() };
    assert_eq!(must(store.list_instances(&one, Page { offset: 0, limit: 10 })).await.1, 1);
    let ended = InstanceFilter { ended: Some(true), ..InstanceFilter::default() };
    assert_eq!(must(store.list_instances(&ended, Page { offset: 0, limit: 10 })).await.1, 0);
    let keyed = InstanceFilter { business_key: Some("none".into()), ..InstanceFilter::default() };
    assert_eq!(must(store.list_instances(&keyed, Page { offset: 0, limit: 10 })).await.1, 0);
    let sorted = async |order, ascending| {
        let filter = InstanceFilter { order, ascending, ..InstanceFilter::default() };
        let (rows, _) = must(store.list_instances(&filter, Page { offset: 0, limit: 3 })).await;
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(sorted(InstanceOrder::BusinessKey, true).await, ["i4", "i3", "i2"]);
    assert_eq!(sorted(InstanceOrder::StartTime, false).await, ["i4", "i3", "i2"]);
    assert_eq!(sorted(InstanceOrder::Duration, true).await, ["i0", "i1", "i2"], "none ended: by id");
}

/// A UUIDv7 id made at `ms`, as the runtime makes instance ids (`n` tells apart those of one
/// millisecond).
fn v7(ms: i64, n: u64) -> String {
    format!("{:08x}-{:04x}-7000-8000-{n:012x}", ms >> 16, ms & 0xffff)
}

async fn instances_are_found_by_when_they_started_what_they_wait_for_and_whom_they_work_for(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    const HOUR: i64 = 3_600_000;
    let base = 1_764_960_000_000;
    // Four instances two hours apart; the last started half an hour after its id was made.
    let at = |k: i64| base + 2 * HOUR * k;
    let ids: Vec<String> = (0..4).map(|k| v7(at(k) - if k == 3 { HOUR / 2 } else { 0 }, k as u64)).collect();
    let batch = WriteBatch {
        instances: ids
            .iter()
            .enumerate()
            .map(|(k, id)| (instance(id, "m", "running", at(k as i64)), doc("{}")))
            .collect(),
        jobs: vec![job(&ids[1], "r1", 1)],
        timers: vec![TimerRow { instance_id: ids[2].clone(), ..timer("t2", 50) }],
        user_tasks: vec![
            NewUserTask { row: user_task("u3", Some(&ids[3]), 1), links: Vec::new() },
            NewUserTask { row: user_task("u-other", Some("elsewhere"), 1), links: Vec::new() },
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let found = async |filter: InstanceFilter| {
        let rows = must(store.instances_page(&filter, Page { offset: 0, limit: 10 })).await;
        assert_eq!(must(store.count_instances(&filter, 10)).await, rows.len() as u64, "counted as listed");
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let between = |from: i64, before: i64| InstanceFilter {
        started_from: Some(from),
        started_before: Some(before),
        ..InstanceFilter::default()
    };
    assert_eq!(found(between(at(1), at(3))).await, [ids[2].clone(), ids[1].clone()], "from is kept, before is not");
    assert_eq!(found(between(at(3), at(4))).await, [ids[3].clone()], "an id made a little before its start");
    assert!(found(between(0, base)).await.is_empty(), "none before");
    let waiting = async |w| found(InstanceFilter { waiting_for: Some(w), ..InstanceFilter::default() }).await;
    assert_eq!(waiting(WaitingFor::Worker).await, [ids[1].clone()]);
    assert_eq!(waiting(WaitingFor::Timer).await, [ids[2].clone()]);
    assert_eq!(waiting(WaitingFor::Person).await, [ids[3].clone()]);
    let mut called = instance(&v7(at(4), 4), "m", "running", at(4));
    called.parent_id = Some(ids[0].clone());
    must(store.commit(&WriteBatch { instances: vec![(called.clone(), doc("{}"))], ..WriteBatch::default() })).await;
    assert_eq!(
        found(InstanceFilter { parent_id: Some(ids[0].clone()), ..InstanceFilter::default() }).await,
        [called.id]
    );
    let late_timer =
        InstanceFilter { waiting_for: Some(WaitingFor::Timer), started_from: Some(at(3)), ..InstanceFilter::default() };
    assert!(found(late_timer).await.is_empty(), "every filter holds at once");
}

async fn tasks_of_an_instance_come_in_creation_order_and_the_open_ones_alone(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let closed = |id: &str, at: i64| TaskRecord { end_time: Some(at + 1), ..record(id, id, "completed", at) };
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}")), (instance("h", "m", "running", 1), doc("{}"))],
        tasks: vec![
            TaskRow { instance_id: "h".into(), record: record("e", "te", "start.begin", 9) },
            TaskRow { instance_id: "i".into(), record: record("d", "td", "start.begin", 5) },
            TaskRow { instance_id: "i".into(), record: closed("b", 2) },
            TaskRow { instance_id: "i".into(), record: closed("a", 3) },
            TaskRow { instance_id: "i".into(), record: record("c", "tc", "start.begin", 4) },
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let ids = |rows: Vec<TaskRow>| rows.into_iter().map(|t| t.record.id).collect::<Vec<_>>();
    assert_eq!(ids(must(store.tasks_of_instance("i")).await), ["b", "a", "c", "d"]);
    assert_eq!(ids(must(store.tasks_of_instances(&["i"], true)).await), ["c", "d"]);
    let both = must(store.tasks_of_instances(&["none", "i", "h"], true)).await;
    let of = |instance: &str| {
        both.iter().filter(|t| t.instance_id == instance).map(|t| t.record.id.as_str()).collect::<Vec<_>>()
    };
    assert_eq!((of("i"), of("h"), both.len()), (vec!["c", "d"], vec!["e"], 3), "each instance's own, oldest first");
    let all = must(store.tasks_of_instances(&["h", "i"], false)).await;
    let of = |instance: &str| {
        all.iter().filter(|t| t.instance_id == instance).map(|t| t.record.id.as_str()).collect::<Vec<_>>()
    };
    assert_eq!(
        (of("i"), of("h")),
        (vec!["b", "a", "c", "d"], vec!["e"]),
        "closed ones too, each instance's oldest first"
    );
    assert!(must(store.tasks_of_instance("none")).await.is_empty());
    assert!(must(store.tasks_of_instances(&["none"], true)).await.is_empty());
}

/// The pass that completed an instance is listed with its activities like every other pass,
/// and stays listed when the instance's row is written again later.
async fn the_pass_that_completed_an_instance_is_listed_after_later_writes_of_its_row(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let pass = |id: &str, element: &str, name: Option<&str>, kind: &'static str, time: i64| PassageRow {
        instance_id: "i".into(),
        passage: Passage { id: id.into(), element: element.into(), name: name.map(str::to_owned), kind, time },
    };
    let started = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        passages: vec![pass("p1", "start", None, "startEvent", 2)],
        ..WriteBatch::default()
    };
    must(store.commit(&started)).await;
    let completed = InstanceRow {
        end_time: Some(9),
        end_element: Some("end".into()),
        version: 2,
        ..instance("i", "m", "completed", 1)
    };
    let ended = WriteBatch {
        instances: vec![(completed.clone(), doc("{}"))],
        passages: vec![pass("p2", "x", None, "exclusiveGateway", 9), pass("p3", "end", Some("Done"), "endEvent", 9)],
        ..WriteBatch::default()
    };
    must(store.commit(&ended)).await;
    let of_i = ActivityQuery { instance_id: Some("i".into()), ..ActivityQuery::default() };
    let all = Page { offset: 0, limit: 100 };
    let listed = |rows: Vec<ActivityRow>| {
        rows.into_iter().map(|a| (a.id, a.element, a.name, a.kind, a.start_time, a.end_time)).collect::<Vec<_>>()
    };
    let expected = vec![
        ("p1".to_owned(), "start".to_owned(), None, "startEvent".to_owned(), 2, Some(2)),
        ("p2".into(), "x".into(), None, "exclusiveGateway".into(), 9, Some(9)),
        ("p3".into(), "end".into(), Some("Done".to_owned()), "endEvent".into(), 9, Some(9)),
    ];
    assert_eq!(listed(must(store.list_activities(&of_i, all)).await.0), expected);
    let deleted = InstanceRow { delete_id: Some("del".into()), version: 3, ..completed };
    must(store.commit(&WriteBatch { instances: vec![(deleted, doc("{}"))], ..WriteBatch::default() })).await;
    assert_eq!(listed(must(store.list_activities(&of_i, all)).await.0), expected, "a later write keeps it");
    let ends = ActivityQuery { kind: Some("endEvent".into()), ..ActivityQuery::default() };
    let (rows, total) = must(store.list_activities(&ends, all)).await;
    assert_eq!((total, rows[0].id.as_str(), rows[0].model_id.as_str()), (1, "p3", "m"));
}

async fn activities_merge_task_records_and_passes_and_executions_show_open_ones(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let pass = |id: &str, element: &str, kind: &'static str, time: i64| PassageRow {
        instance_id: "i".into(),
        passage: Passage { id: id.into(), element: element.into(), name: None, kind, time },
    };
    let mut done = record("t1", "t1", "completed", 3);
    done.end_time = Some(5);
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        tasks: vec![
            TaskRow { instance_id: "i".into(), record: done },
            TaskRow { instance_id: "i".into(), record: record("t2", "t2", "start.begin", 6) },
        ],
        passages: vec![pass("p1", "start", "startEvent", 2), pass("p2", "x", "exclusiveGateway", 5)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let all = Page { offset: 0, limit: 100 };
    let (rows, total) = must(store.list_activities(&ActivityQuery::default(), all)).await;
    let order: Vec<_> = rows.iter().map(|a| (a.id.as_str(), a.start_time, a.end_time)).collect();
    assert_eq!(total, 4);
    assert_eq!(order, [("p1", 2, Some(2)), ("t1", 3, Some(5)), ("p2", 5, Some(5)), ("t2", 6, None)]);
    assert_eq!((rows[0].kind.as_str(), rows[0].model_id.as_str()), ("startEvent", "m"));
    let open = ActivityQuery { finished: Some(false), ..ActivityQuery::default() };
    assert_eq!(must(store.list_activities(&open, all)).await.1, 1);
    let longest = ActivityQuery { order: ActivityOrder::Duration, descending: true, ..ActivityQuery::default() };
    let (rows, _) = must(store.list_activities(&longest, Page { offset: 0, limit: 1 })).await;
    assert_eq!(rows[0].id, "t1", "ended activities by duration, open ones last");
    let gateways = ActivityQuery { kind: Some("exclusiveGateway".into()), ..ActivityQuery::default() };
    assert_eq!(must(store.list_activities(&gateways, all)).await.1, 1);

    let (executions, total) = must(store.list_executions(&ExecutionQuery::default(), all)).await;
    let shape: Vec<_> =
        executions.iter().map(|e| (e.id.as_str(), e.parent_id.as_deref(), e.activity.as_deref())).collect();
    assert_eq!((total, shape), (2, vec![("i", None, None), ("t2", Some("i"), Some("t"))]));
    let of_other = ExecutionQuery { model_key: Some("other".into()), ..ExecutionQuery::default() };
    assert_eq!(must(store.list_executions(&of_other, all)).await.1, 0);
}

async fn a_write_based_on_an_old_version_is_refused_whole(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let first = WriteBatch { instances: vec![(instance("i", "m", "running", 1), doc("{}"))], ..WriteBatch::default() };
    must(store.commit(&first)).await;
    // Two writers both read version 1; the first to commit wins.
    let mut mine = instance("i", "m", "completed", 1);
    mine.version = 2;
    must(store.commit(&WriteBatch { instances: vec![(mine, doc("{}"))], ..WriteBatch::default() })).await;
    let mut theirs = instance("i", "m", "canceled", 1);
    theirs.version = 2;
    let losing = WriteBatch {
        instances: vec![(instance("fresh", "m", "running", 1), doc("{}")), (theirs, doc("{}"))],
        tasks: vec![TaskRow { instance_id: "i".into(), record: record("t", "t", "canceled", 1) }],
        ..WriteBatch::default()
    };
    match store.commit(&losing).await {
        Err(StoreError::Conflict(ids)) => assert!(ids.contains(&"i".to_owned()), "{ids:?}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(must(store.instance("i")).await.map(|i| i.status), Some("completed".into()));
    assert!(must(store.instance("fresh")).await.is_none(), "nothing of the losing batch was written");
    assert!(must(store.task("t")).await.is_none());
}

/// A step of one instance (its row, the record done and the next one, the next job, a
/// passage, the job done dropped) whose instance moved on since it was read is refused whole:
/// on SQLite such a small group runs as one script, every statement before any count is read,
/// so what the statements after the instance's wrote must go with the refusal.
async fn a_stale_step_of_one_instance_is_refused_with_every_row_after_its_instance(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let task = |id: &str, status: &str| TaskRow { instance_id: "i".into(), record: record(id, id, status, 1) };
    let first = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{\"step\":1}"))],
        tasks: vec![task("r1", "start.begin")],
        jobs: vec![job("i", "r1", 1)],
        new_records: ["r1".to_owned()].into_iter().collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&first)).await;
    let step = |version: i64| WriteBatch {
        instances: vec![(InstanceRow { version, ..instance("i", "m", "running", 1) }, doc("{\"step\":2}"))],
        tasks: vec![task("r1", "start.success"), task("r2", "start.begin")],
        jobs: vec![job("i", "r2", 2)],
        dropped_jobs: vec!["r1".to_owned()],
        passages: vec![PassageRow {
            instance_id: "i".into(),
            passage: Passage { id: "p1".into(), element: "g".into(), name: None, kind: "exclusiveGateway", time: 2 },
        }],
        new_records: ["r2".to_owned()].into_iter().collect(),
        ..WriteBatch::default()
    };
    let jobs = || async {
        let (listed, _) = must(store.list_jobs(&JobFilter::default(), Page { offset: 0, limit: 10 })).await;
        listed.into_iter().map(|j| j.job.record_id).collect::<Vec<_>>()
    };
    let statuses = || async {
        must(store.tasks(&["r1", "r2"]))
            .await
            .iter()
            .map(|t| (t.record.id.clone(), t.record.status.text()))
            .collect::<Vec<_>>()
    };
    let passes = || async {
        let passage = ActivityQuery { id: Some("p1".into()), ..ActivityQuery::default() };
        must(store.list_activities(&passage, Page { offset: 0, limit: 10 })).await.1
    };
    assert!(matches!(store.commit(&step(3)).await, Err(StoreError::Conflict(ids)) if ids == ["i"]));
    assert_eq!(must(store.instance_state("i")).await.map(|s| s.core).as_deref(), Some("{\"step\":1}"));
    assert_eq!(statuses().await, [("r1".to_owned(), "start.begin".to_owned())], "no record of the refused step");
    assert_eq!(jobs().await, ["r1"], "the job done stays and the next is not queued");
    assert_eq!(passes().await, 0, "no passage of the refused step");
    must(store.commit(&step(2))).await;
    assert_eq!(must(store.instance_state("i")).await.map(|s| s.core).as_deref(), Some("{\"step\":2}"));
    let landed = [("r1".to_owned(), "start.success".to_owned()), ("r2".to_owned(), "start.begin".to_owned())];
    assert_eq!(statuses().await, landed);
    assert_eq!(jobs().await, ["r2"]);
    assert_eq!(passes().await, 1);
}

/// One instance whose step makes a thousand records with their jobs (a parallel
/// multi-instance's items): on SQLite a script too long to keep prepared, run for its commit
/// alone, twice over. Every row lands, and the stale step after them is refused whole.
async fn a_step_of_one_instance_with_a_thousand_records_lands_whole(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    const N: usize = 1_000;
    let step = |version: i64, round: usize| WriteBatch {
        instances: vec![(
            InstanceRow { version, ..instance("i", "m", "running", 1) },
            doc(&format!("{{\"round\":{round}}}")),
        )],
        tasks: (0..N)
            .map(|n| TaskRow {
                instance_id: "i".into(),
                record: record(&format!("r{round}-{n:04}"), "t", "start.begin", 1),
            })
            .collect(),
        jobs: (0..N).map(|n| job("i", &format!("r{round}-{n:04}"), n as i64)).collect(),
        new_records: (0..N).map(|n| format!("r{round}-{n:04}")).collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&step(1, 0))).await;
    must(store.commit(&step(2, 1))).await;
    assert!(matches!(store.commit(&step(2, 2)).await, Err(StoreError::Conflict(_))), "a stale step is refused");
    let (_, total) = must(store.list_jobs(&JobFilter::default(), Page { offset: 0, limit: 1 })).await;
    assert_eq!(total, 2 * N as u64, "both steps' jobs and none of the refused one's");
    assert_eq!(must(store.tasks(&["r1-0999", "r2-0000"])).await.len(), 1);
    assert_eq!(must(store.instance_state("i")).await.map(|s| s.core).as_deref(), Some("{\"round\":1}"));
}

async fn jobs_are_leased_extended_and_taken_over_when_the_lease_ends(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let mut owned = job("i", "owned", 1);
    (owned.owner, owned.locked_until) = (Some("a".into()), Some(100));
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        jobs: vec![owned, job("i", "free", 2)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let taken: Vec<_> =
        must(store.acquire_jobs(acquire(&["noop"], "b", 50))).await.into_iter().map(|j| j.job.record_id).collect();
    assert_eq!(taken, ["free"], "a held lease is respected");
    let held = JobFilter { locked: Some(true), now: 50, ..JobFilter::default() };
    let (listed, total) = must(store.list_jobs(&held, Page { offset: 0, limit: 10 })).await;
    assert_eq!((total, listed.len()), (2, 2), "both are held now");
    let by_b = JobFilter { owner: Some("b".into()), instance_id: Some("i".into()), ..JobFilter::default() };
    let (listed, _) = must(store.list_jobs(&by_b, Page { offset: 0, limit: 10 })).await;
    assert_eq!(listed.iter().map(|j| j.job.record_id.as_str()).collect::<Vec<_>>(), ["free"]);
    assert_eq!(must(store.extend_jobs("a", &["owned", "free"], 200, false)).await, 1, "only held leases are extended");
    let skipping = store.extend_jobs("a", &["owned", "free"], 200, true);
    assert_eq!(must(skipping).await, 1, "a heartbeat that passes over busy jobs extends the same");
    assert!(must(store.acquire_jobs(acquire(&["noop"], "b", 150))).await.is_empty(), "the extended lease holds");
    let own = Acquire { include_own: true, ..acquire(&["noop"], "a", 150) };
    assert_eq!(must(store.acquire_jobs(own)).await.len(), 1, "an owner takes back its own jobs after a restart");
    let late: Vec<_> =
        must(store.acquire_jobs(acquire(&["noop"], "c", 1_500))).await.into_iter().map(|j| j.job.record_id).collect();
    assert_eq!(late, ["owned", "free"], "ended leases are taken over, oldest first");
}

/// A fetch takes, oldest first, both jobs nobody held and jobs whose lease has ended, and
/// none still held or waiting out a retry's back-off, however many of those come first.
async fn a_fetch_takes_the_oldest_free_and_ended_jobs_and_passes_over_held_ones(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let held = |record: &str, at: i64, until: i64| JobRow {
        owner: Some("w".into()),
        locked_until: Some(until),
        ..job("i", record, at)
    };
    let mut jobs: Vec<JobRow> = (0..500).map(|n| held(&format!("held{n:03}"), n, 10_000)).collect();
    jobs.push(held("ended-old", 600, 900));
    jobs.push(job("i", "free-mid", 700));
    jobs.push(JobRow { locked_until: Some(5_000), ..job("i", "retry-later", 650) });
    jobs.push(held("ended-young", 800, 1_000));
    jobs.push(JobRow { locked_until: Some(1_000), ..job("i", "retry-due", 900) });
    jobs.push(job("i", "free-young", 950));
    let other = Job { stone: "other".into(), ..job("i", "other-stone", 1).job };
    jobs.push(JobRow { job: other, ..job("i", "other-stone", 1) });
    let batch =
        WriteBatch { instances: vec![(instance("i", "m", "running", 1), doc("{}"))], jobs, ..WriteBatch::default() };
    must(store.commit(&batch)).await;
    let take = |limit: u64, owner: &'static str| {
        let acquire = Acquire { limit, ..acquire(&["noop"], owner, 1_000) };
        async move { must(store.acquire_jobs(acquire)).await.into_iter().map(|j| j.job.record_id).collect::<Vec<_>>() }
    };
    assert_eq!(take(3, "a").await, ["ended-old", "free-mid", "ended-young"], "the oldest three, of either kind");
    assert_eq!(take(10, "b").await, ["retry-due", "free-young"], "then the rest; held ones and later retries stay");
    assert!(take(10, "c").await.is_empty());
    let (mine, _) = must(
        store.list_jobs(&JobFilter { owner: Some("a".into()), ..JobFilter::default() }, Page { offset: 0, limit: 10 }),
    )
    .await;
    assert_eq!(mine.iter().map(|j| j.locked_until).collect::<Vec<_>>(), [Some(2_000); 3], "leased until now + 1000");
}

/// Three claimers race for the same jobs: none is handed out twice.
async fn racing_claimers_never_share_a_job(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        jobs: (0..300).map(|n| job("i", &format!("j{n:03}"), n)).collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let handed = race(|owner| async move {
        let got = must(store.acquire_jobs(Acquire { limit: 7, ..acquire(&["noop"], owner, 10) })).await;
        got.into_iter().map(|j| j.job.record_id).collect()
    })
    .await;
    assert_eq!(handed, (300, 300), "every job handed out exactly once");
}

/// Three claimers `a`, `b` and `c` each take batches with `take` until none is left: how many
/// they took together, and how many distinct ones.
async fn race<F, Fut>(take: F) -> (usize, usize)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let claim = |owner: &'static str| {
        let take = &take;
        async move {
            let mut mine = Vec::new();
            loop {
                let got = take(owner).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
        }
    };
    let (a, b, c) = tokio::join!(claim("a"), claim("b"), claim("c"));
    let mut all: Vec<_> = a.into_iter().chain(b).chain(c).collect();
    all.sort();
    let taken = all.len();
    all.dedup();
    (taken, all.len())
}

fn timer(record: &str, due: i64) -> TimerRow {
    TimerRow {
        record_id: record.into(),
        instance_id: "i".into(),
        element: "wait".into(),
        due,
        owner: None,
        locked_until: None,
        model_id: None,
        fired: 0,
    }
}

fn lease(owner: &str, now: i64) -> TimerLease<'_> {
    TimerLease { owner, now, until: now + 1_000, limit: 100 }
}

async fn leased(store: &dyn Store, owner: &str, now: i64) -> Vec<String> {
    must(store.lease_timers(lease(owner, now))).await.into_iter().map(|t| t.record_id).collect()
}

/// Timers are leased once due, earliest first; a lease holds until it ends, then another
/// server takes the timer; a server stopping hands its leases back.
async fn timers_are_leased_when_due_and_taken_over_when_the_lease_ends(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        timers: vec![timer("late", 300), timer("early", 100), timer("later", 5_000)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(must(store.next_timer(0)).await, Some(100));
    assert!(leased(store, "a", 99).await.is_empty(), "nothing is due yet");
    assert_eq!(leased(store, "a", 300).await, ["early", "late"], "due ones, earliest first");
    assert_eq!(must(store.next_timer(300)).await, Some(5_000), "leased timers are not waited for");
    assert_eq!(must(store.next_timer(1_300)).await, Some(100), "one whose lease ended is free again");
    assert!(leased(store, "b", 400).await.is_empty(), "a held lease is respected");
    assert_eq!(leased(store, "b", 1_300).await, ["early", "late"], "ended leases are taken over");
    assert_eq!(must(store.release_timers("b")).await, 2);
    assert_eq!(leased(store, "c", 1_301).await, ["early", "late"], "handed back: taken at once");
    let by_due = TimerQuery { instance_id: Some("i".into()), order: TimerOrder::Due, ..TimerQuery::default() };
    let (all, total) = must(store.list_timers(&by_due, Page { offset: 1, limit: 1 })).await;
    assert_eq!((total, all.iter().map(|t| t.timer.record_id.as_str()).collect::<Vec<_>>()), (3, vec!["late"]));
    assert_eq!((all[0].timer.owner.as_deref(), all[0].model_id.as_str()), (Some("c"), "m"));
    let held = TimerQuery { locked: Some(true), now: 1_302, due_after: Some(100), ..TimerQuery::default() };
    let (all, _) = must(store.list_timers(&held, Page { offset: 0, limit: 10 })).await;
    assert_eq!(all.iter().map(|t| t.timer.record_id.as_str()).collect::<Vec<_>>(), ["late"]);
    let free = TimerQuery { locked: Some(false), now: 1_302, due_before: Some(5_000), ..TimerQuery::default() };
    assert_eq!(must(store.list_timers(&free, Page { offset: 0, limit: 10 })).await.1, 0);
}

/// A timer set again (a cycle's next due time) moves and loses its lease; a timer is
/// forgotten only while set for the time named; a dropped one is gone.
async fn a_timer_set_again_moves_and_is_forgotten_only_for_its_time(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        timers: vec![timer("cycle", 100), timer("once", 100)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(leased(store, "a", 100).await.len(), 2);
    let next =
        WriteBatch { timers: vec![timer("cycle", 200)], dropped_timers: vec!["once".into()], ..WriteBatch::default() };
    must(store.commit(&next)).await;
    assert_eq!(must(store.next_timer(100)).await, Some(200));
    assert!(!must(store.forget_timer("cycle", 100)).await, "set for another time now");
    assert_eq!(leased(store, "b", 200).await, ["cycle"], "moved, and no longer leased to a");
    assert!(must(store.forget_timer("cycle", 200)).await);
    let (all, total) = must(store.list_timers(&TimerQuery::default(), Page { offset: 0, limit: 10 })).await;
    assert_eq!((all.len(), total), (0, 0));
}

/// A timer start event's timer moves on from the due time it fired for once: a second move
/// from that time (another server fired it too) fails its whole commit.
async fn a_start_timer_moves_on_once_from_the_time_it_fired_for(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let start = TimerRow { instance_id: String::new(), model_id: Some("m".into()), ..timer("start:k", 100) };
    must(store.commit(&WriteBatch { timers: vec![start], ..WriteBatch::default() })).await;
    let moved = |to| TimerMove { record_id: "start:k".into(), from: 100, to };
    let first = WriteBatch {
        instances: vec![(instance("i1", "m", "running", 100), doc("{}"))],
        moved_timers: vec![moved(Some((200, 1)))],
        ..WriteBatch::default()
    };
    must(store.commit(&first)).await;
    let again = WriteBatch {
        instances: vec![(instance("i2", "m", "running", 100), doc("{}"))],
        moved_timers: vec![moved(Some((200, 1)))],
        ..WriteBatch::default()
    };
    assert!(matches!(store.commit(&again).await, Err(StoreError::Conflict(_))));
    assert!(must(store.instance("i2")).await.is_none(), "the second start wrote nothing");
    let row = must(store.timer("start:k")).await.unwrap_or_else(|| panic!("the timer went"));
    assert_eq!((row.due, row.fired, row.model_id.as_deref()), (200, 1, Some("m")));
    let last = WriteBatch {
        moved_timers: vec![TimerMove { record_id: "start:k".into(), from: 200, to: None }],
        ..WriteBatch::default()
    };
    must(store.commit(&last)).await;
    assert!(must(store.timer("start:k")).await.is_none(), "its last firing removed it");
}

/// Three servers race for the same due timers: none is leased twice.
async fn racing_servers_never_lease_a_timer_twice(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        timers: (0..300).map(|n| timer(&format!("t{n:03}"), n)).collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let leased = race(|owner| async move {
        let got = must(store.lease_timers(TimerLease { limit: 7, ..lease(owner, 500) })).await;
        got.into_iter().map(|t| t.record_id).collect()
    })
    .await;
    assert_eq!(leased, (300, 300), "every timer leased exactly once");
}

/// A job queued again under its record id (a `reRun`) replaces the old one; a worker's
/// failure with retries left hands it back after the back-off.
async fn a_job_queued_again_replaces_the_old_one_and_retries_wait_their_back_off(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        jobs: vec![job("i", "j", 1)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(must(store.acquire_jobs(acquire(&["noop"], "w1", 10))).await.len(), 1);
    assert!(!must(store.retry_job("j", "w2", Some(2), 500)).await, "only the holder hands a job back");
    assert!(must(store.retry_job("j", "w1", Some(2), 500)).await);
    assert!(must(store.acquire_jobs(acquire(&["noop"], "w2", 100))).await.is_empty(), "the back-off holds");
    let again = must(store.acquire_jobs(acquire(&["noop"], "w2", 600))).await;
    assert_eq!(again.iter().map(|j| j.retries).collect::<Vec<_>>(), [Some(2)]);

    let mut rerun = job("i", "j", 700);
    rerun.job.action = Action::Monitor;
    rerun.job.outputs = json!({"machineId": "m1"}).as_object().cloned().unwrap_or_default();
    let mut row = instance("i", "m", "running", 1);
    row.version = 2;
    row.rollback_id = Some("rb".into());
    must(store.commit(&WriteBatch { instances: vec![(row, doc("{}"))], jobs: vec![rerun], ..WriteBatch::default() }))
        .await;
    let stored = must(store.job("j")).await.unwrap_or_else(|| panic!("job gone"));
    let leases = must(store.leases(&["j", "nope"])).await;
    let lease = JobLease {
        record_id: "j".into(),
        instance_id: "i".into(),
        action: Action::Monitor,
        owner: None,
        retries: None,
    };
    assert_eq!(leases, [lease]);
    assert_eq!((stored.job.action, stored.owner, stored.retries), (Action::Monitor, None, None));
    assert_eq!(stored.job.outputs["machineId"], json!("m1"));
    let inst = must(store.instance("i")).await.unwrap_or_else(|| panic!("instance gone"));
    assert_eq!((inst.kind.as_str(), inst.rollback_id.as_deref()), ("process", Some("rb")));
}

fn user_task(id: &str, instance: Option<&str>, at: i64) -> UserTaskRow {
    UserTaskRow {
        id: id.into(),
        instance_id: instance.map(Into::into),
        model_id: instance.map(|_| "m".into()),
        element: Some("review".into()),
        name: Some(format!("task {id}")),
        priority: 50,
        create_time: at,
        version: 1,
        ..UserTaskRow::default()
    }
}

fn candidate(task: &str, user: Option<&str>, group: Option<&str>) -> TaskLink {
    TaskLink {
        task_id: task.into(),
        user_id: user.map(Into::into),
        group_id: group.map(Into::into),
        kind: "candidate".into(),
    }
}

fn event(id: &str, task: &str, action: &str) -> CommentRow {
    CommentRow {
        id: id.into(),
        kind: "event".into(),
        task_id: Some(task.into()),
        instance_id: None,
        author: Some("kermit".into()),
        time: 5,
        action: action.into(),
        message: "[]".into(),
    }
}

const ALL: Page = Page { offset: 0, limit: 100 };

async fn ids(store: &dyn Store, query: UserTaskQuery) -> Vec<String> {
    let (rows, total) = must(store.list_user_tasks(&query, Some(ALL))).await;
    assert_eq!(total, rows.len() as u64);
    rows.into_iter().map(|r| r.id).collect()
}

async fn user_tasks_come_from_batches_and_close_into_history(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}"))],
        user_tasks: vec![
            NewUserTask { row: user_task("t1", Some("i"), 1), links: vec![candidate("t1", Some("gonzo"), None)] },
            NewUserTask { row: user_task("t2", Some("i"), 2), links: vec![candidate("t2", None, Some("sales"))] },
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    must(store.create_group(&GroupRow { id: "sales".into(), ..GroupRow::default() })).await;
    must(store.add_member("sales", "fozzie")).await;
    let open = || UserTaskQuery { finished: Some(false), ..UserTaskQuery::default() };
    assert_eq!(ids(store, open()).await, ["t1", "t2"]);
    assert_eq!(ids(store, UserTaskQuery { candidate_user: Some("gonzo".into()), ..open() }).await, ["t1"]);
    assert_eq!(
        ids(store, UserTaskQuery { candidate_user: Some("fozzie".into()), ..open() }).await,
        ["t2"],
        "through the group"
    );
    assert_eq!(ids(store, UserTaskQuery { candidate_groups: Some(vec!["sales".into()]), ..open() }).await, ["t2"]);
    assert_eq!(ids(store, UserTaskQuery { model_key: Some("k".into()), ..open() }).await, ["t1", "t2"]);
    let close = WriteBatch {
        instances: vec![(InstanceRow { version: 2, ..instance("i", "m", "running", 1) }, doc("{}"))],
        closed_user_tasks: vec![ClosedUserTask { id: "t1".into(), end_time: 9, reason: None }],
        ..WriteBatch::default()
    };
    must(store.commit(&close)).await;
    assert_eq!(ids(store, open()).await, ["t2"]);
    let finished = UserTaskQuery { finished: Some(true), ..UserTaskQuery::default() };
    assert_eq!(ids(store, finished).await, ["t1"]);
    let t1 = must(store.user_task("t1")).await.unwrap_or_else(|| panic!("t1 gone"));
    assert_eq!((t1.end_time, t1.version), (Some(9), 2));
}

/// A group closes many user tasks in one statement (or a few): each gets its own time and
/// reason, a task closed before keeps its first close, and so does a task closed twice in
/// the group.
async fn user_tasks_closed_together_each_keep_their_first_close(store: &dyn Store) {
    let tasks = (0..300).map(|n| format!("t{n:03}")).chain(["done".to_owned()]);
    let batch = WriteBatch {
        user_tasks: tasks.map(|id| NewUserTask { row: user_task(&id, None, 1), links: Vec::new() }).collect(),
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let first = ClosedUserTask { id: "done".into(), end_time: 5, reason: Some("deleted".into()) };
    must(store.commit(&WriteBatch { closed_user_tasks: vec![first], ..WriteBatch::default() })).await;
    let mut closed: Vec<ClosedUserTask> = (0..300)
        .map(|n| ClosedUserTask {
            id: format!("t{n:03}"),
            end_time: 100 + n,
            reason: (n % 2 == 1).then(|| "canceled".to_owned()),
        })
        .collect();
    closed.push(ClosedUserTask { id: "done".into(), end_time: 50, reason: None });
    closed.push(ClosedUserTask { id: "t000".into(), end_time: 77, reason: Some("again".into()) });
    must(store.commit(&WriteBatch { closed_user_tasks: closed, ..WriteBatch::default() })).await;
    for (id, end, reason) in [
        ("t000", 100, None),
        ("t001", 101, Some("canceled")),
        ("t299", 399, Some("canceled")),
        ("done", 5, Some("deleted")),
    ] {
        let task = must(store.user_task(id)).await.unwrap_or_else(|| panic!("{id} gone"));
        assert_eq!((task.end_time, task.delete_reason.as_deref(), task.version), (Some(end), reason, 2), "{id}");
    }
}

/// Writes a standalone task, as a commit that creates it.
async fn insert_task(store: &dyn Store, row: UserTaskRow) {
    let batch = WriteBatch { user_tasks: vec![NewUserTask { row, links: Vec::new() }], ..WriteBatch::default() };
    must(store.commit(&batch)).await;
}

/// Commits a change of task `t` at `version` (from one below), with its comments and parts.
async fn change_task(store: &dyn Store, version: i64, comments: Vec<CommentRow>, parts: Vec<TaskPartWrite>) {
    let row = UserTaskRow { version, ..user_task("t", None, 1) };
    let batch =
        WriteBatch { changed_user_tasks: vec![ChangedUserTask { row, comments, parts }], ..WriteBatch::default() };
    must(store.commit(&batch)).await;
}

async fn a_task_change_applies_only_on_the_version_it_read(store: &dyn Store) {
    insert_task(store, user_task("t", None, 1)).await;
    let change = |row: UserTaskRow, event| WriteBatch {
        changed_user_tasks: vec![ChangedUserTask { row, comments: vec![event], parts: Vec::new() }],
        ..WriteBatch::default()
    };
    let claimed = UserTaskRow { assignee: Some("kermit".into()), version: 2, ..user_task("t", None, 1) };
    must(store.commit(&change(claimed, event("e1", "t", "Claim")))).await;
    let late = UserTaskRow { assignee: Some("gonzo".into()), version: 2, ..user_task("t", None, 1) };
    let refused = store.commit(&change(late, event("e2", "t", "Claim"))).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(ids)) if ids == &["t".to_owned()]),
        "based on version 1: {refused:?}"
    );
    let stored = must(store.user_task("t")).await.unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored.assignee.as_deref(), Some("kermit"));
    let events = must(store.comments_of_task("t", "event")).await;
    assert_eq!(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e1"], "the refused change left no event");
}

async fn task_list_filters_sort_and_page(store: &dyn Store) {
    for (i, (assignee, priority, due)) in
        [(Some("kermit"), 10, Some(100)), (None, 80, None), (Some("gonzo"), 50, Some(50))].into_iter().enumerate()
    {
        let row = UserTaskRow {
            assignee: assignee.map(Into::into),
            priority,
            due_date: due,
            ..user_task(&format!("t{i}"), None, i as i64)
        };
        insert_task(store, row).await;
    }
    let q = UserTaskQuery::default;
    assert_eq!(ids(store, UserTaskQuery { unassigned: true, ..q() }).await, ["t1"]);
    assert_eq!(ids(store, UserTaskQuery { assignee_like: Some("%o%".into()), ..q() }).await, ["t2"]);
    assert_eq!(ids(store, UserTaskQuery { min_priority: Some(50), ..q() }).await, ["t1", "t2"]);
    assert_eq!(ids(store, UserTaskQuery { due_before: Some(80), ..q() }).await, ["t2"]);
    assert_eq!(ids(store, UserTaskQuery { without_due_date: true, ..q() }).await, ["t1"]);
    assert_eq!(ids(store, UserTaskQuery { involved_user: Some("kermit".into()), ..q() }).await, ["t0"]);
    let by_due = UserTaskQuery { order: TaskOrder::DueDate, ..q() };
    assert_eq!(ids(store, by_due.clone()).await, ["t2", "t0", "t1"], "tasks without a due date last");
    assert_eq!(ids(store, UserTaskQuery { descending: true, ..by_due }).await, ["t0", "t2", "t1"]);
    let (page, total) = must(
        store.list_user_tasks(&UserTaskQuery { order: TaskOrder::Priority, ..q() }, Some(Page { offset: 1, limit: 1 })),
    )
    .await;
    assert_eq!((page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), total), (vec!["t2"], 3));
}

async fn links_variables_comments_and_attachments_hang_on_a_task(store: &dyn Store) {
    insert_task(store, user_task("t", None, 1)).await;
    let link = candidate("t", Some("gonzo"), None);
    change_task(store, 2, vec![event("e1", "t", "AddUserLink")], vec![TaskPartWrite::AddLink(link.clone())]).await;
    assert_eq!(must(store.task_links("t")).await, std::slice::from_ref(&link));
    change_task(store, 3, vec![event("e2", "t", "DeleteUserLink")], vec![TaskPartWrite::RemoveLink(link)]).await;
    assert!(must(store.task_links("t")).await.is_empty());
    let events: Vec<String> = must(store.comments_of_task("t", "event")).await.into_iter().map(|e| e.id).collect();
    assert_eq!(events, ["e1", "e2"]);

    let var = |name: &str, value: &str| TaskVariable {
        name: name.into(),
        kind: "string".into(),
        value: Some(value.into()),
        bytes: None,
    };
    change_task(store, 4, vec![], vec![TaskPartWrite::SetVariables(vec![var("a", "\"1\"")])]).await;
    let binary = TaskVariable { name: "blob".into(), kind: "binary".into(), value: None, bytes: Some(vec![0, 1, 255]) };
    change_task(store, 5, vec![], vec![TaskPartWrite::SetVariables(vec![var("a", "\"3\""), binary.clone()])]).await;
    assert_eq!(must(store.task_variables("t")).await, [var("a", "\"3\""), binary], "set replaces by name");
    change_task(store, 6, vec![], vec![TaskPartWrite::DeleteVariables(Some(vec!["a".into()]))]).await;
    assert_eq!(must(store.task_variables("t")).await.len(), 1);
    change_task(store, 7, vec![], vec![TaskPartWrite::DeleteVariables(None)]).await;
    assert!(must(store.task_variables("t")).await.is_empty());

    let comment =
        CommentRow { kind: "comment".into(), action: "AddComment".into(), message: "hi".into(), ..event("c", "t", "") };
    change_task(store, 8, vec![comment.clone()], vec![]).await;
    assert_eq!(must(store.comments_of_task("t", "comment")).await, std::slice::from_ref(&comment));
    assert_eq!(must(store.comment("c")).await, Some(comment));
    let deletes = vec![TaskPartWrite::DeleteComment("c".into()), TaskPartWrite::DeleteComment("e1".into())];
    change_task(store, 9, vec![], deletes).await;
    assert!(must(store.comment("c")).await.is_none());
    assert!(must(store.comment("e1")).await.is_some(), "events are not comments");

    let file = flowstone_store::AttachmentRow {
        id: "a".into(),
        task_id: Some("t".into()),
        instance_id: None,
        name: "doc".into(),
        description: None,
        kind: Some("text/plain".into()),
        url: None,
        content: Some(b"hello".to_vec()),
        has_content: true,
        author: Some("kermit".into()),
        time: 3,
    };
    change_task(store, 10, vec![event("e5", "t", "AddAttachment")], vec![TaskPartWrite::AddAttachment(file)]).await;
    let listed = must(store.attachments("t")).await;
    assert_eq!((listed.len(), listed[0].content.is_none()), (1, true), "lists leave the content out");
    assert_eq!(must(store.attachment("a")).await.and_then(|a| a.content), Some(b"hello".to_vec()));
    change_task(store, 11, vec![], vec![TaskPartWrite::DeleteAttachment("a".into())]).await;
    assert!(must(store.attachment("a")).await.is_none());

    change_task(store, 12, vec![], vec![TaskPartWrite::AddLink(candidate("t", None, Some("sales")))]).await;
    change_task(store, 13, vec![], vec![TaskPartWrite::Delete]).await;
    assert!(must(store.user_task("t")).await.is_none());
    assert!(must(store.comments_of_task("t", "event")).await.is_empty(), "its events went with it");
    assert!(must(store.task_links("t")).await.is_empty(), "its links went with it");
}

async fn tasks_are_filtered_by_their_own_and_their_process_variables_in_the_database(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    // `small` keeps its variables in its state document, `large` one part each (a name with a
    // dot and a quote must still be found as itself).
    let small = doc(r#"{"variables": {"n": 5, "s": "Kermit", "b": true, "o": {"a": [1, 2]}, "z": null}}"#);
    let large = parted(
        r#"{"variables": {}}"#,
        false,
        &[("v:n", Some("12.5")), ("v:s", Some("\"gonzo\"")), ("v:a.\"b", Some("1"))],
    );
    let batch = WriteBatch {
        instances: vec![(instance("small", "m", "running", 1), small), (instance("large", "m", "running", 1), large)],
        user_tasks: vec![
            NewUserTask { row: user_task("t_small", Some("small"), 1), links: Vec::new() },
            NewUserTask { row: user_task("t_large", Some("large"), 2), links: Vec::new() },
            NewUserTask { row: user_task("t_alone", None, 3), links: Vec::new() },
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let local = |name: &str, value: &str| TaskVariable {
        name: name.into(),
        kind: "json".into(),
        value: Some(value.into()),
        bytes: None,
    };
    let alone = UserTaskRow { version: 2, ..user_task("t_alone", None, 3) };
    let vars = vec![local("n", "7"), local("s", "\"Fozzie\""), local("l", "[1,2]")];
    let change = ChangedUserTask { row: alone, comments: Vec::new(), parts: vec![TaskPartWrite::SetVariables(vars)] };
    must(store.commit(&WriteBatch { changed_user_tasks: vec![change], ..WriteBatch::default() })).await;

    let find = async |scope, name: Option<&str>, op: &str, value: serde_json::Value| {
        let op = VariableOp::parse(op).unwrap_or_else(|| panic!("{op}"));
        let filter = VariableFilter { scope, name: name.map(Into::into), op, value };
        ids(store, UserTaskQuery { finished: Some(false), variables: vec![filter], ..UserTaskQuery::default() }).await
    };
    let process = VariableScope::Process;
    assert_eq!(find(process, Some("n"), "equals", json!(5)).await, ["t_small"]);
    assert_eq!(find(process, Some("n"), "equals", json!(5.0)).await, ["t_small"], "a number of another spelling");
    assert_eq!(find(process, Some("n"), "greaterThan", json!(6)).await, ["t_large"]);
    assert_eq!(find(process, Some("n"), "lessThanOrEquals", json!(12.5)).await, ["t_large", "t_small"]);
    assert_eq!(
        find(process, Some("n"), "notEquals", json!(5)).await,
        ["t_large"],
        "a missing variable matches nothing"
    );
    assert_eq!(find(process, Some("s"), "equals", json!("Kermit")).await, ["t_small"]);
    assert_eq!(find(process, Some("s"), "equalsIgnoreCase", json!("GONZO")).await, ["t_large"]);
    assert_eq!(find(process, Some("s"), "notEqualsIgnoreCase", json!("kermit")).await, ["t_large"]);
    assert_eq!(find(process, Some("s"), "likeIgnoreCase", json!("k%")).await, ["t_small"]);
    assert_eq!(find(process, Some("s"), "like", json!("%o_zo")).await, ["t_large"]);
    assert_eq!(find(process, Some("s"), "greaterThan", json!("L")).await, ["t_large"], "text by bytes");
    assert_eq!(find(process, Some("s"), "lessThan", json!(3)).await, Vec::<String>::new(), "text is not a number");
    assert_eq!(find(process, Some("b"), "equals", json!(true)).await, ["t_small"]);
    assert_eq!(find(process, Some("b"), "lessThan", json!(true)).await, Vec::<String>::new());
    assert_eq!(find(process, Some("o"), "equals", json!({"a": [1, 2]})).await, ["t_small"]);
    assert_eq!(find(process, Some("z"), "equals", json!(null)).await, ["t_small"]);
    assert_eq!(find(process, Some("a.\"b"), "equals", json!(1)).await, ["t_large"]);
    assert_eq!(find(process, None, "equals", json!("gonzo")).await, ["t_large"], "any variable");
    let task = VariableScope::Task;
    assert_eq!(find(task, Some("n"), "greaterThanOrEquals", json!(7)).await, ["t_alone"]);
    assert_eq!(find(task, Some("s"), "equals", json!("Fozzie")).await, ["t_alone"]);
    assert_eq!(find(task, Some("l"), "equals", json!([1, 2])).await, ["t_alone"]);
    assert_eq!(find(task, None, "equals", json!(7)).await, ["t_alone"]);
    assert_eq!(
        find(task, Some("n"), "equals", json!(5)).await,
        Vec::<String>::new(),
        "process variables are not the task's"
    );
    let both = vec![
        VariableFilter { scope: process, name: Some("n".into()), op: VariableOp::GreaterThan, value: json!(0) },
        VariableFilter { scope: process, name: Some("s".into()), op: VariableOp::Like, value: json!("K%") },
    ];
    let query = UserTaskQuery { finished: Some(false), variables: both, ..UserTaskQuery::default() };
    assert_eq!(ids(store, query).await, ["t_small"], "every filter holds");
}

async fn users_groups_and_memberships(store: &dyn Store) {
    let user = |id: &str| UserRow { id: id.into(), first_name: Some(id.to_uppercase()), ..UserRow::default() };
    assert!(must(store.create_user(&user("kermit"))).await);
    assert!(!must(store.create_user(&user("kermit"))).await, "ids are unique");
    must(store.create_user(&user("gonzo"))).await;
    must(store.create_group(&GroupRow {
        id: "sales".into(),
        name: Some("Sales".into()),
        kind: Some("assignment".into()),
    }))
    .await;
    assert!(must(store.add_member("sales", "gonzo")).await);
    assert!(!must(store.add_member("sales", "gonzo")).await);
    let members = IdentityQuery { member: Some("sales".into()), ..IdentityQuery::default() };
    let (users, total) = must(store.list_users(&members, ALL)).await;
    assert_eq!((users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), total), (vec!["gonzo"], 1));
    let of_gonzo = IdentityQuery { member: Some("gonzo".into()), ..IdentityQuery::default() };
    assert_eq!(must(store.list_groups(&of_gonzo, ALL)).await.1, 1);
    assert!(must(store.update_user(&UserRow { email: Some("g@x".into()), ..user("gonzo") })).await);
    assert_eq!(must(store.user("gonzo")).await.and_then(|u| u.email).as_deref(), Some("g@x"));
    let like = IdentityQuery {
        like: vec![(IdentityColumn::FirstName, "%O%".into())],
        order: (IdentityColumn::Id, true),
        ..IdentityQuery::default()
    };
    let (users, total) = must(store.list_users(&like, ALL)).await;
    assert_eq!((users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), total), (vec!["gonzo"], 1));
    let by_email = IdentityQuery { equal: vec![(IdentityColumn::Email, "g@x".into())], ..IdentityQuery::default() };
    assert_eq!(must(store.list_users(&by_email, ALL)).await.1, 1);
    let everyone = IdentityQuery { order: (IdentityColumn::Id, true), ..IdentityQuery::default() };
    let ids: Vec<String> = must(store.list_users(&everyone, ALL)).await.0.into_iter().map(|u| u.id).collect();
    assert_eq!(ids, ["kermit", "gonzo"], "sorted by id, descending");
    assert!(must(store.delete_user("gonzo")).await);
    assert_eq!(must(store.list_groups(&of_gonzo, ALL)).await.1, 0, "memberships go with the user");
    assert!(must(store.delete_group("sales")).await);
    assert!(!must(store.delete_group("sales")).await);
}

async fn tokens_are_found_by_hash_and_go_with_their_user(store: &dyn Store) {
    must(store.create_user(&UserRow { id: "kermit".into(), ..UserRow::default() })).await;
    let token = TokenRow { hash: "ab12".into(), user_id: "kermit".into(), created_at: 1, expires_at: 9 };
    must(store.create_token(&token)).await;
    assert_eq!(must(store.token("ab12")).await, Some(token.clone()));
    assert!(must(store.token("ab13")).await.is_none());
    assert!(must(store.delete_token("ab12")).await);
    assert!(!must(store.delete_token("ab12")).await, "a revoked token is gone");
    let other = TokenRow { hash: "cd34".into(), ..token.clone() };
    must(store.create_token(&token)).await;
    must(store.create_token(&other)).await;
    assert_eq!(must(store.delete_user_tokens("kermit")).await, 2, "all of a user's tokens go at once");
    assert!(must(store.token("cd34")).await.is_none());
    must(store.create_token(&token)).await;
    must(store.delete_user("kermit")).await;
    assert!(must(store.token("ab12")).await.is_none(), "a deleted user's tokens are revoked");
}

async fn bk_sops_apps_keep_their_secret_unless_replaced(store: &dyn Store) {
    let app = |hash: &str, businesses: Option<&[&str]>| AppRow {
        secret_hash: hash.into(),
        businesses: businesses.map(|b| b.iter().map(|s| (*s).to_owned()).collect()),
    };
    assert!(must(store.put_app("esb", &app("h1", None), 1, false)).await);
    assert!(!must(store.put_app("esb", &app("h2", None), 2, false)).await, "an existing app is not overwritten");
    assert_eq!(must(store.app("esb")).await, Some(app("h1", None)));
    assert!(must(store.put_app("esb", &app("h3", Some(&["2", "5"])), 3, true)).await);
    assert_eq!(must(store.app("esb")).await, Some(app("h3", Some(&["2", "5"]))), "a new secret and businesses");
    assert_eq!(must(store.app("other")).await, None);
}

async fn bk_sops_templates_and_tasks_get_numbers_and_a_task_is_edited_until_it_starts_once(store: &dyn Store) {
    let template = TemplateRow {
        id: must(store.reserve_id(BkIds::Templates)).await,
        biz_id: 2,
        name: "deploy".into(),
        description: None,
        creator: "admin".into(),
        model_id: "m".into(),
        pipeline_template_id: "n1".into(),
        created_at: 1,
        edited_at: 1,
    };
    let first = template.id;
    let second = must(store.reserve_id(BkIds::Templates)).await;
    assert!(second > first, "{second} after {first}");
    // A template comes with the model of its tree, in one commit.
    let deployment = DeploymentWrite {
        deployment: NewDeployment { id: "d".into(), ..NewDeployment::default() },
        models: vec![NewModel {
            id: "m".into(),
            key: "n1".into(),
            name: None,
            source: "{}".into(),
            resource: "n1.json".into(),
        }],
        at: 1,
    };
    let templates = vec![template.clone(), TemplateRow { id: second, biz_id: 3, ..template.clone() }];
    must(store.commit(&WriteBatch { deployments: vec![deployment], bk_templates: templates, ..WriteBatch::default() }))
        .await;
    assert_eq!(must(store.model("m")).await.map(|m| (m.key, m.version)), Some(("n1".into(), 1)));
    assert_eq!(must(store.template(first)).await.map(|t| t.name), Some("deploy".into()));
    assert_eq!(must(store.templates_of(2)).await.len(), 1);
    assert_eq!(must(store.bk_businesses()).await, [2, 3], "the businesses with a template");
    let task = BkTaskRow {
        id: must(store.reserve_id(BkIds::Tasks)).await,
        biz_id: 2,
        template_id: Some(first),
        name: "run".into(),
        creator: "admin".into(),
        executor: None,
        model_id: "m".into(),
        instance_id: None,
        constants: "{}".into(),
        create_method: "api".into(),
        flow_type: "common".into(),
        created_at: 2,
        started_at: None,
    };
    let id = task.id;
    must(store.commit(&WriteBatch { bk_tasks: vec![task], ..WriteBatch::default() })).await;
    let edit = WriteBatch {
        edited_bk_tasks: vec![BkTaskEdit { id, name: "run again".into(), constants: r#"{"${a}":1}"#.into() }],
        ..WriteBatch::default()
    };
    must(store.commit(&edit)).await;
    let edited = must(store.bk_task(id)).await.map(|t| (t.name, t.constants));
    assert_eq!(edited, Some(("run again".into(), r#"{"${a}":1}"#.into())), "a task not started takes an edit");
    let start = |instance: &str, at| WriteBatch {
        started_bk_tasks: vec![BkTaskStart { id, instance_id: instance.into(), executor: "ops".into(), at }],
        ..WriteBatch::default()
    };
    must(store.commit(&start("i1", 3))).await;
    let again = store.commit(&start("i2", 4)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a task starts once: {again:?}");
    let late = store.commit(&edit).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "a started task takes no edit: {late:?}");
    let stored = must(store.bk_task(id)).await.unwrap_or_else(|| panic!("task {id}"));
    assert_eq!(
        (stored.instance_id.as_deref(), stored.executor.as_deref(), stored.started_at),
        (Some("i1"), Some("ops"), Some(3))
    );
    assert_eq!(must(store.bk_task(id + 100)).await, None);
}

async fn data_survives_reopening(path: &std::path::Path) {
    {
        let store = SqliteStore::open(path).await.unwrap_or_else(|e| panic!("{e}"));
        deploy(&store, deployment("d"), vec![new_model("m", "k")], 1).await;
    }
    let store = SqliteStore::open(path).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(must(store.model("m")).await.is_some());
}

fn wait(record: &str, instance: &str, name: &str, key: Option<&str>, at: i64) -> SubscriptionRow {
    SubscriptionRow {
        record_id: record.into(),
        instance_id: instance.into(),
        model_id: "m".into(),
        starts: None,
        tenant_id: None,
        element: "catch".into(),
        kind: "message".into(),
        name: name.into(),
        correlation_key: key.map(str::to_owned),
        created_at: at,
    }
}

fn message<'a>(name: &'a str, key: Option<&'a str>, starts: bool) -> EventQuery<'a> {
    EventQuery { kind: "message", name, key, starts, tenant: None, after: None, limit: 10 }
}

async fn reached(store: &dyn Store, event: EventQuery<'_>) -> Vec<String> {
    must(store.waiting(&event)).await.into_iter().map(|w| w.record_id).collect()
}

/// A message finds the waits of its name (and key) oldest first, and start events apart; a
/// page goes on after the last one read; ended waits go; a new version's start events
/// replace the old one's; a wait is forgotten only once its instance ended; an instance's
/// waits are listed through its records (each wait is kept on the record of what waits, and
/// a batch with a wait whose record is nowhere fails); a record written closed ends its wait.
async fn event_subscriptions_are_found_by_name_and_key_oldest_first(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let start = SubscriptionRow { starts: Some("k".into()), ..wait("start:k:ms", "", "pay", None, 1) };
    let catching =
        |instance: &str, id: &str| TaskRow { instance_id: instance.into(), record: record(id, id, "active", 1) };
    let batch = WriteBatch {
        instances: vec![(instance("i", "m", "running", 1), doc("{}")), (instance("j", "m", "running", 1), doc("{}"))],
        tasks: vec![catching("i", "b"), catching("j", "a"), catching("i", "c"), catching("i", "other")],
        subscriptions: vec![
            wait("b", "i", "pay", Some("7"), 20),
            wait("a", "j", "pay", Some("7"), 10),
            wait("c", "i", "pay", Some("8"), 5),
            wait("other", "i", "ship", None, 1),
            start,
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    assert_eq!(reached(store, message("pay", Some("7"), false)).await, ["a", "b"], "oldest first, by key");
    assert_eq!(reached(store, message("pay", None, false)).await, ["c", "a", "b"], "no key: every key");
    assert_eq!(reached(store, message("pay", None, true)).await, ["start:k:ms"], "start events apart");
    let keys = ["7".to_owned(), "8".to_owned(), "9".to_owned()];
    let mut oldest: Vec<String> =
        must(store.oldest_waits("pay", None, &keys)).await.into_iter().map(|w| w.record_id).collect();
    oldest.sort();
    assert_eq!(oldest, ["a", "c"], "one per key, the oldest; none for a key nothing waits with");
    assert!(must(store.oldest_waits("pay", Some("t1"), &keys)).await.is_empty(), "of the tenant's only");
    assert!(must(store.oldest_waits("ship", None, &[])).await.is_empty());
    let next = EventQuery { after: Some((10, "a")), ..message("pay", None, false) };
    assert_eq!(reached(store, next).await, ["b"]);
    let ended = WriteBatch { dropped_subscriptions: vec!["a".into()], ..WriteBatch::default() };
    must(store.commit(&ended)).await;
    assert_eq!(reached(store, message("pay", Some("7"), false)).await, ["b"]);
    let replaced = WriteBatch { replaced_starts: vec!["k".into()], ..WriteBatch::default() };
    must(store.commit(&replaced)).await;
    assert!(reached(store, message("pay", None, true)).await.is_empty(), "the new version starts with none");
    assert!(!must(store.forget_subscription("b")).await, "its instance still runs");
    let query =
        SubscriptionQuery { instance_id: Some("i".into()), order: "created_at", ..SubscriptionQuery::default() };
    let (listed, total) = must(store.list_subscriptions(&query, Page { offset: 0, limit: 2 })).await;
    let ids: Vec<&str> = listed.iter().map(|w| w.record_id.as_str()).collect();
    assert_eq!((total, ids), (3, vec!["other", "c"]));
    let one = must(store.subscription("c")).await;
    assert_eq!(one.and_then(|w| w.correlation_key).as_deref(), Some("8"));
    let by_event = ExecutionQuery { event: Some(("message".into(), "ship".into())), ..ExecutionQuery::default() };
    let (executions, _) = must(store.list_executions(&by_event, Page { offset: 0, limit: 10 })).await;
    let ids: Vec<&str> = executions.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["other"], "the wait's open record is its execution");
    // A delivered message closes the record that waited and ends its wait in the same write;
    // a wait set and dropped in one batch is dropped.
    let closed = TaskRow {
        instance_id: "i".into(),
        record: TaskRecord { end_time: Some(40), ..record("c", "c", "completed", 1) },
    };
    let delivered = WriteBatch {
        tasks: vec![closed, catching("j", "d")],
        subscriptions: vec![wait("d", "j", "pay", Some("9"), 40)],
        dropped_subscriptions: vec!["c".into(), "d".into()],
        ..WriteBatch::default()
    };
    must(store.commit(&delivered)).await;
    assert!(must(store.subscription("c")).await.is_none(), "the closed record waits no more");
    assert!(must(store.subscription("d")).await.is_none(), "set and dropped in one batch");
    let keys = ["8".to_owned(), "9".to_owned()];
    assert!(must(store.oldest_waits("pay", None, &keys)).await.is_empty());
    let record_c = must(store.task("c")).await.unwrap_or_else(|| panic!("record c gone"));
    assert_eq!((record_c.record.end_time, record_c.record.status.text().as_str()), (Some(40), "completed"));
    let orphan = WriteBatch {
        instances: vec![(instance("o", "m", "running", 1), doc("{}"))],
        subscriptions: vec![wait("nowhere", "o", "pay", Some("9"), 30)],
        ..WriteBatch::default()
    };
    assert!(store.commit(&orphan).await.is_err(), "a wait is kept on its record: none, no commit");
    assert!(must(store.instance("o")).await.is_none());
}

fn buffered(id: &str, key: Option<&str>, tenant: Option<&str>, at: i64, expires: i64) -> BufferedMessage {
    BufferedMessage {
        id: id.into(),
        name: "pay".into(),
        correlation_key: key.map(str::to_owned),
        tenant_id: tenant.map(str::to_owned),
        variables: r#"{"paid":true}"#.into(),
        created_at: at,
        expires_at: expires,
    }
}

/// A kept message is taken once, oldest first, by a wait of its name whose key it carries (a
/// message without a key by any) and of its tenant (one without a tenant by any); one whose
/// time ran out is not taken, and goes when the next is kept.
async fn buffered_messages_are_taken_once_by_a_wait_they_fit(store: &dyn Store) {
    assert_eq!(must(store.buffered_until()).await, None);
    for m in [
        buffered("keyed", Some("7"), None, 10, 1_000),
        buffered("other-key", Some("8"), None, 11, 1_000),
        buffered("tenant", None, Some("t1"), 12, 1_000),
        buffered("any", None, None, 13, 2_000),
        buffered("old", Some("7"), None, 1, 50),
    ] {
        assert!(must(store.buffer_message(&m, 5)).await);
    }
    assert!(!must(store.buffer_message(&buffered("sixth", None, None, 14, 1_000), 5)).await, "at most 5 are kept");
    assert_eq!(must(store.buffered_until()).await, Some(2_000));
    let taken = |wait: SubscriptionRow| async move { must(store.take_buffered(&wait, 100)).await.map(|m| m.id) };
    assert_eq!(
        taken(wait("w", "i", "pay", Some("7"), 0)).await.as_deref(),
        Some("keyed"),
        "the expired one is passed over"
    );
    assert_eq!(
        taken(wait("w", "i", "pay", Some("7"), 0)).await.as_deref(),
        Some("any"),
        "a keyless message fits any key"
    );
    assert_eq!(taken(wait("w", "i", "pay", Some("7"), 0)).await, None, "each is taken once");
    let of_t2 = SubscriptionRow { tenant_id: Some("t2".into()), ..wait("w", "i", "pay", None, 0) };
    assert_eq!(taken(of_t2).await, None, "another tenant's wait takes neither `tenant` nor a keyed one");
    let of_t1 = SubscriptionRow { tenant_id: Some("t1".into()), ..wait("w", "i", "pay", None, 0) };
    assert_eq!(taken(of_t1).await.as_deref(), Some("tenant"));
    assert_eq!(taken(wait("w", "i", "ship", Some("8"), 0)).await, None, "another name");
    assert!(must(store.unbuffer("other-key")).await);
    assert!(!must(store.unbuffer("other-key")).await, "taken back once");
    assert!(must(store.buffer_message(&buffered("later", None, None, 60, 1_500), 5)).await);
    assert!(!must(store.unbuffer("old")).await, "an expired one went when the next was kept");
}

fn thrown(id: &str, node: &str, at: i64) -> OutboxRow {
    OutboxRow {
        id: id.into(),
        node: node.into(),
        kind: "message".into(),
        name: "pay".into(),
        correlation_key: Some("7".into()),
        tenant_id: None,
        created_at: at,
    }
}

/// What a commit throws stays, per server, oldest first, until it is sent.
async fn thrown_events_stay_in_the_outbox_of_their_server_until_sent(store: &dyn Store) {
    let batch = WriteBatch {
        outbox: vec![thrown("b", "n1", 20), thrown("a", "n1", 10), thrown("c", "n2", 5)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let ids = |rows: Vec<OutboxRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(must(store.unsent("n1")).await), ["a", "b"]);
    assert_eq!(must(store.unsent("n2")).await, [thrown("c", "n2", 5)]);
    must(store.sent(&["a".into(), "c".into()])).await;
    assert_eq!(ids(must(store.unsent("n1")).await), ["b"]);
    assert!(must(store.unsent("n2")).await.is_empty());
}

/// An instance of model `m` that ended at `end` with `status`, belonging to `parent`.
fn ended(id: &str, model: &str, status: &str, end: i64, parent: Option<&str>) -> InstanceRow {
    InstanceRow { end_time: Some(end), parent_id: parent.map(str::to_owned), ..instance(id, model, status, 1) }
}

fn pruning(ended_before: i64) -> PruneQuery {
    PruneQuery { ended_before, ..PruneQuery::default() }
}

async fn roots(
    store: &dyn Store,
    query: &PruneQuery,
    after: Option<&str>,
    limit: u64,
) -> (Vec<String>, Option<String>) {
    let (families, last) = must(store.prunable(query, after, limit)).await;
    (families.into_iter().map(|f| f.root).collect(), last)
}

async fn ended_families_are_read_whole_and_pruned_with_all_they_own_or_not_at_all(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let tenant = NewDeployment { tenant_id: Some("acme".into()), ..deployment("d2") };
    deploy(store, tenant, vec![new_model("m2", "k2")], 1).await;
    let mut other = ended("t", "m2", "failed", 10, None);
    other.model_key = "k2".into();
    let rows = [
        ended("a", "m", "completed", 10, None),
        ended("a-call", "m", "completed", 9, Some("a")),
        ended("a-call-rollback", "m", "completed", 9, Some("a-call")),
        ended("b", "m", "completed", 10, None),
        instance("b-delete", "m", "running", 11),
        ended("n", "m", "completed", 100, None),
        other,
        instance("x", "m", "running", 1),
    ];
    let mut b_delete = rows[4].clone();
    b_delete.parent_id = Some("b".into());
    let instances: Vec<_> = rows
        .iter()
        .map(|r| if r.id == "b-delete" { b_delete.clone() } else { r.clone() })
        .map(|r| (r, parted("{}", false, &[("p", Some("part"))])))
        .collect();
    let owned_by = |id: &str| TaskRow {
        instance_id: id.into(),
        record: record(&format!("r-{id}"), &format!("r-{id}"), "start.begin", 2),
    };
    let passage = |id: &str| PassageRow {
        instance_id: id.into(),
        passage: Passage { id: format!("p-{id}"), element: "s".into(), name: None, kind: "startEvent", time: 1 },
    };
    let ids = ["a", "a-call", "a-call-rollback", "b", "t"];
    let batch = WriteBatch {
        instances,
        tasks: ids.iter().map(|id| owned_by(id)).collect(),
        passages: ids.iter().map(|id| passage(id)).collect(),
        jobs: vec![job("a-call", "r-a-call", 2), job("t", "r-t", 2)],
        timers: vec![TimerRow { instance_id: "a".into(), ..timer("r-a", 50) }],
        subscriptions: vec![wait("r-a-call-rollback", "a-call-rollback", "go", None, 2)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;

    // Top-level only, ended before the time, with no member running; `last` is where the
    // next read goes on, past the families passed over.
    assert_eq!(roots(store, &pruning(50), None, 10).await, (vec!["a".into(), "t".into()], Some("t".into())));
    assert_eq!(roots(store, &pruning(50), None, 2).await, (vec!["a".into()], Some("b".into())));
    assert_eq!(roots(store, &pruning(50), Some("b"), 2).await, (vec!["t".into()], Some("t".into())));
    assert_eq!(roots(store, &pruning(50), Some("t"), 2).await, (vec![], None));
    assert_eq!(roots(store, &pruning(500), None, 10).await.0, ["a", "n", "t"]);
    let by_key = PruneQuery { model_key: Some("k2".into()), ..pruning(50) };
    let by_tenant = PruneQuery { tenant_id: Some("acme".into()), ..pruning(50) };
    let by_status = PruneQuery { status: Some("failed".into()), ..pruning(50) };
    let by_id = PruneQuery { id: Some("t".into()), ..pruning(50) };
    for query in [by_key, by_tenant, by_status, by_id] {
        assert_eq!(roots(store, &query, None, 10).await.0, ["t"], "{query:?}");
    }
    let (families, _) = must(store.prunable(&pruning(50), None, 1)).await;
    let members: Vec<&str> = families[0].members.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(members, ["a", "a-call", "a-call-rollback"]);

    // A member changed since it was read: nothing of the batch goes.
    let mut stale = families[0].members.clone();
    stale[1].1 = 0;
    let err = store.commit(&WriteBatch { pruned: stale, ..WriteBatch::default() }).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(must(store.task("r-a")).await.is_some(), "a refused prune deletes nothing");

    must(store.commit(&WriteBatch { pruned: families[0].members.clone(), ..WriteBatch::default() })).await;
    for id in ["a", "a-call", "a-call-rollback"] {
        assert!(must(store.instance(id)).await.is_none(), "{id} is gone");
        assert!(must(store.instance_state(id)).await.is_none(), "{id}'s state is gone");
        assert!(must(store.tasks_of_instance(id)).await.is_empty(), "{id}'s records are gone");
        assert!(must(store.task(&format!("r-{id}"))).await.is_none());
    }
    assert!(must(store.job("r-a-call")).await.is_none(), "its jobs are gone");
    assert!(must(store.timer("r-a")).await.is_none(), "its timers are gone");
    assert!(must(store.subscription("r-a-call-rollback")).await.is_none(), "its waits are gone");
    let activities = must(store.list_activities(&ActivityQuery::default(), Page { offset: 0, limit: 100 })).await.0;
    assert!(activities.iter().all(|a| !a.instance_id.starts_with("a")), "its passages are gone");
    for id in ["b", "b-delete", "n", "t", "x"] {
        assert!(must(store.instance(id)).await.is_some(), "{id} stays");
    }
    assert!(must(store.job("r-t")).await.is_some(), "what others own stays");
    assert_eq!(roots(store, &pruning(50), None, 10).await.0, ["t"]);
}

async fn jobs_are_counted_as_waiting_or_held_by_whoever_holds_their_lease(store: &dyn Store) {
    let leased = |instance: &str, record: &str, owner: &str, until: i64| JobRow {
        owner: Some(owner.into()),
        locked_until: Some(until),
        ..job(instance, record, 1)
    };
    let batch = WriteBatch {
        jobs: vec![
            job("i", "free", 3),
            leased("i", "w1-a", "worker-1", 100),
            leased("i", "w1-b", "worker-1", 150),
            leased("i", "lapsed", "worker-2", 40),
        ],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;
    let waiting = must(store.waiting_jobs(50)).await;
    assert_eq!(waiting.iter().map(|w| w.2).sum::<i64>(), 2, "the free job and the lapsed lease: {waiting:?}");
    let held = must(store.held_jobs(50)).await;
    let held: Vec<(&str, i64, i64)> = held.iter().map(|(owner, _, n, until)| (owner.as_str(), *n, *until)).collect();
    assert_eq!(held, [("worker-1", 2, 150)], "a lease that ended holds nothing");
}

async fn work_that_has_not_moved_is_found_oldest_first(store: &dyn Store) {
    deploy(store, deployment("d"), vec![new_model("m", "k")], 1).await;
    let mut debug = instance("debug", "m", "debug", 1);
    debug.version = 1;
    let rows = vec![
        instance("queued", "m", "running", 1),
        instance("called", "m", "running", 1),
        instance("failing", "m", "running", 1),
        instance("held", "m", "running", 1),
        instance("fresh", "m", "running", 100),
        debug,
        ended("done", "m", "completed", 5, None),
    ];
    let owned = |instance: &str, id: &str, status: &str, at: i64| TaskRow {
        instance_id: instance.into(),
        record: record(id, id, status, at),
    };
    let held = JobRow { owner: Some("w".into()), locked_until: Some(100), ..job("held", "r-held", 5) };
    let batch = WriteBatch {
        instances: rows.into_iter().map(|r| (r, doc("{}"))).collect(),
        tasks: vec![
            owned("queued", "r-queued", "start.begin", 2),
            owned("called", "r-called", "start.success", 3),
            owned("failing", "r-failing", "start.failed", 4),
            owned("held", "r-held", "start.begin", 5),
            owned("fresh", "r-fresh", "start.begin", 100),
        ],
        jobs: vec![job("queued", "r-queued", 2), held, job("fresh", "r-fresh", 100)],
        timers: vec![timer("t-later", 40), timer("t-overdue", 10), timer("t-future", 500)],
        ..WriteBatch::default()
    };
    must(store.commit(&batch)).await;

    let stuck = must(store.stuck(50, 60, 10)).await;
    let jobs: Vec<&str> = stuck.jobs.iter().map(|j| j.job.record_id.as_str()).collect();
    assert_eq!(jobs, ["r-queued"], "a held lock is someone's work");
    let callbacks: Vec<&str> = stuck.callbacks.iter().map(|t| t.record.id.as_str()).collect();
    assert_eq!(callbacks, ["r-called"], "queued and failed records are not awaiting a callback");
    let instances: Vec<(&str, i64)> = stuck.instances.iter().map(|(i, at)| (i.id.as_str(), *at)).collect();
    assert_eq!(instances, [("debug", 1), ("queued", 2), ("called", 3), ("failing", 4), ("held", 5)]);
    let timers: Vec<&str> = stuck.timers.iter().map(|t| t.record_id.as_str()).collect();
    assert_eq!(timers, ["t-overdue", "t-later"], "timers due before the time, first due first");
    assert_eq!(stuck.pending_timers, 3, "every timer set counts as pending");

    let later = must(store.stuck(50, 200, 10)).await;
    let jobs: Vec<&str> = later.jobs.iter().map(|j| j.job.record_id.as_str()).collect();
    assert_eq!(jobs, ["r-queued", "r-held"], "a lock that ended holds nothing");
    let one = must(store.stuck(50, 60, 1)).await;
    assert_eq!((one.jobs.len(), one.callbacks.len(), one.instances.len(), one.timers.len()), (1, 1, 1, 1));
}

macro_rules! contract {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, store) = super::sqlite().await;
            super::$name(&store).await;
        }
    )*};
}

macro_rules! contract_pg {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(store) = super::postgres().await else { return };
            super::$name(&store).await;
        }
    )*};
}

macro_rules! suite {
    ($each:ident) => {
        $each!(
            deploying_a_key_again_makes_a_new_version,
            a_deployment_goes_with_its_models_only_when_no_instance_stands_in_the_way,
            repository_lists_are_filtered_sorted_and_paged_by_the_database,
            a_batch_commits_instances_tasks_and_jobs_together,
            a_batch_of_thousands_of_rows_writes_each_and_still_refuses_a_stale_one,
            new_rows_are_inserted_beside_rows_written_again_and_a_new_one_stored_already_fails_the_batch,
            a_batch_of_big_instances_writes_each_whole_and_still_refuses_a_stale_one,
            user_tasks_closed_together_each_keep_their_first_close,
            an_instance_in_parts_reads_back_as_its_commits_left_it,
            a_failed_batch_writes_nothing,
            instances_list_filters_and_pages,
            instances_are_found_by_when_they_started_what_they_wait_for_and_whom_they_work_for,
            tasks_of_an_instance_come_in_creation_order_and_the_open_ones_alone,
            activities_merge_task_records_and_passes_and_executions_show_open_ones,
            the_pass_that_completed_an_instance_is_listed_after_later_writes_of_its_row,
            a_write_based_on_an_old_version_is_refused_whole,
            a_stale_step_of_one_instance_is_refused_with_every_row_after_its_instance,
            a_step_of_one_instance_with_a_thousand_records_lands_whole,
            jobs_are_leased_extended_and_taken_over_when_the_lease_ends,
            a_fetch_takes_the_oldest_free_and_ended_jobs_and_passes_over_held_ones,
            racing_claimers_never_share_a_job,
            timers_are_leased_when_due_and_taken_over_when_the_lease_ends,
            a_timer_set_again_moves_and_is_forgotten_only_for_its_time,
            racing_servers_never_lease_a_timer_twice,
            a_start_timer_moves_on_once_from_the_time_it_fired_for,
            a_job_queued_again_replaces_the_old_one_and_retries_wait_their_back_off,
            user_tasks_come_from_batches_and_close_into_history,
            a_task_change_applies_only_on_the_version_it_read,
            task_list_filters_sort_and_page,
            tasks_are_filtered_by_their_own_and_their_process_variables_in_the_database,
            links_variables_comments_and_attachments_hang_on_a_task,
            users_groups_and_memberships,
            tokens_are_found_by_hash_and_go_with_their_user,
            bk_sops_apps_keep_their_secret_unless_replaced,
            bk_sops_templates_and_tasks_get_numbers_and_a_task_is_edited_until_it_starts_once,
            event_subscriptions_are_found_by_name_and_key_oldest_first,
            buffered_messages_are_taken_once_by_a_wait_they_fit,
            thrown_events_stay_in_the_outbox_of_their_server_until_sent,
            ended_families_are_read_whole_and_pruned_with_all_they_own_or_not_at_all,
            work_that_has_not_moved_is_found_oldest_first,
            jobs_are_counted_as_waiting_or_held_by_whoever_holds_their_lease
        );
    };
}

mod postgres_store {
    suite!(contract_pg);

    /// Test and benchmark databases are never dropped by their maker; the next one made drops
    /// those older than an hour, and leaves younger ones and any other database alone.
    #[tokio::test]
    async fn making_a_database_drops_those_made_over_an_hour_ago() {
        use sqlx::Connection;
        let Some(url) = flowstone_store::PgStore::test_database("flowstone_sweep").await else { return };
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let old = format!("flowstone_sweep_t{}_00000000000000aa", now - 7200);
        let young = format!("flowstone_sweep_t{}_00000000000000bb", now - 60);
        let other = format!("flowstone_sweep_kept_{now}");
        for name in [&old, &young, &other] {
            let create = format!("CREATE DATABASE \"{name}\"");
            sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await.unwrap_or_else(|e| panic!("{e}"));
        }
        flowstone_store::PgStore::test_database("flowstone_sweep").await;
        let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!names.contains(&old), "an hour-old database is dropped");
        assert!(names.contains(&young) && names.contains(&other), "younger and other databases stay");
        for name in [&young, &other] {
            let drop = format!("DROP DATABASE \"{name}\"");
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A heartbeat extends many leases in one statement; a commit holding one of those jobs'
    /// rows (and waiting, perhaps, on another the heartbeat locked) is passed over, not waited
    /// for, so the two never deadlock.
    #[tokio::test]
    async fn a_heartbeat_passes_over_a_job_a_commit_holds_and_extends_the_rest() {
        use flowstone_store::{Store, WriteBatch};
        let Some(url) = flowstone_store::PgStore::test_database("flowstone_contract").await else { return };
        let store = super::must(flowstone_store::PgStore::open(&url)).await;
        super::deploy(&store, super::deployment("d"), vec![super::new_model("m", "k")], 1).await;
        let held = |id: &str| {
            let mut job = super::job("i", id, 1);
            (job.owner, job.locked_until) = (Some("a".into()), Some(100));
            job
        };
        let batch = WriteBatch {
            instances: vec![(super::instance("i", "m", "running", 1), super::doc("{}"))],
            jobs: vec![held("busy"), held("idle")],
            ..WriteBatch::default()
        };
        super::must(store.commit(&batch)).await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let mut commit = pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("UPDATE jobs SET action = action WHERE record_id = 'busy'")
            .execute(&mut *commit)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let heartbeat = store.extend_jobs("a", &["busy", "idle"], 500, true);
        let extended = tokio::time::timeout(std::time::Duration::from_secs(20), heartbeat)
            .await
            .unwrap_or_else(|_| panic!("the heartbeat waited for the commit"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(extended, 1, "the busy job is passed over");
        commit.rollback().await.unwrap_or_else(|e| panic!("{e}"));
        let extended = super::must(store.extend_jobs("a", &["busy", "idle"], 600, true)).await;
        assert_eq!(extended, 2, "once the commit ends, both are extended");
        pool.close().await;
    }
}

mod sqlite_store {
    suite!(contract);

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        super::data_survives_reopening(&dir.path().join("reopen.db")).await;
    }
}

//! The `flowstone` binary end to end: `serve` on a fresh data directory, then `deploy`,
//! `start` and `ps` against it, a clean stop on SIGTERM, and a second `serve` that finds
//! everything the first one acknowledged.

use std::process::{Command, Output};

mod common;

use common::{BIN, Serve, free_port, must};

fn run(port: u16, args: &[&str]) -> Output {
    must(
        Command::new(BIN)
            .args(args)
            .env("FLOWSTONE_SERVER", format!("http://127.0.0.1:{port}"))
            .env("FLOWSTONE_PASSWORD", common::PASSWORD)
            .output(),
    )
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serve_deploy_start_ps_and_restart() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let server = Serve::start(dir.path(), port);

    let model = dir.path().join("hello.bpmn");
    must(std::fs::write(
        &model,
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="hello">
           <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/><userTask id="wait"/></process></definitions>"#,
    ));
    let deployed = stdout(&run(port, &["deploy", model.to_str().unwrap_or_default()]));
    assert!(deployed.contains("\"key\": \"hello\""), "{deployed}");

    let started = stdout(&run(port, &["start", "w1_straight"]));
    assert!(started.contains("\"processStatus\": \"success\""), "the bundled W1 example runs: {started}");
    let waiting = stdout(&run(port, &["start", "hello", "--var", "n=3", "--var", "who=ann", "--name", "greeting"]));
    assert!(waiting.contains("\"processStatus\": \"running\""), "{waiting}");
    assert!(waiting.contains(r#"{\"n\":3,\"who\":\"ann\"}"#), "vars are JSON when they parse: {waiting}");

    let id = waiting.split("\"processInstanceId\": \"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
    let tasks = stdout(&run(port, &["tasks", id]));
    assert!(tasks.contains("wait") && tasks.contains("active") && tasks.contains("(1 tasks)"), "{tasks}");
    assert!(tasks.lines().next().is_some_and(|h| h.contains("NAMESPACE") && h.contains("PROGRESS")), "{tasks}");
    let unknown = run(port, &["tasks", "nope"]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("404"));

    let ps = stdout(&run(port, &["ps"]));
    assert!(ps.contains("greeting") && ps.contains("w1_straight") && ps.contains("(2 of 2)"), "{ps}");
    let ps = stdout(&run(port, &["ps", "--status", "running"]));
    assert!(ps.contains("(1 of 1)"), "{ps}");

    let failed = run(port, &["start", "nope"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("404"), "errors say what the server said");

    server.terminate();
    let server = Serve::start(dir.path(), port);
    let ps = stdout(&run(port, &["ps", "--key", "hello"]));
    assert!(ps.contains("greeting") && ps.contains("running"), "the waiting instance survives a restart: {ps}");
    server.terminate();
}

/// `flowstone serve` with no admin password on `port`, and its standard output.
fn serve_without_password(dir: &std::path::Path, port: u16) -> (common::Process, std::process::ChildStdout) {
    let mut child = must(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", &dir.to_string_lossy()])
            .env_remove("FLOWSTONE_ADMIN_PASSWORD")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn(),
    );
    let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    common::wait_listening(port);
    (common::Process(child), out)
}

#[test]
fn the_first_start_prints_a_generated_admin_password_once_and_it_signs_in() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let (server, out) = serve_without_password(dir.path(), port);
    let mut line = String::new();
    must(std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line));
    let password = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(line.contains("created the user `admin`") && password.len() >= 12, "{line}");
    let signed_in = |password: &str| {
        must(
            Command::new(BIN)
                .args(["ps"])
                .env("FLOWSTONE_SERVER", format!("http://127.0.0.1:{port}"))
                .env("FLOWSTONE_PASSWORD", password)
                .output(),
        )
    };
    let admitted = signed_in(&password);
    assert!(admitted.status.success(), "{}", String::from_utf8_lossy(&admitted.stderr));
    let refused = signed_in("wrong");
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("401"));
    server.terminate();

    let (server, mut out) = serve_without_password(dir.path(), port);
    server.terminate();
    let mut printed = String::new();
    must(std::io::Read::read_to_string(&mut out, &mut printed));
    assert!(!printed.contains("password"), "the password is shown only when the admin is made: {printed}");
}

#[test]
fn serve_refuses_an_unsupported_database_url() {
    let out = must(Command::new(BIN).args(["serve", "--database", "mysql://x", "--listen", "127.0.0.1:0"]).output());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[test]
fn help_describes_every_command() {
    let help = stdout(&must(Command::new(BIN).arg("--help").output()));
    for cmd in ["serve", "deploy", "start", "ps", "tasks", "bench"] {
        assert!(help.contains(cmd), "{help}");
    }
}

#[test]
fn the_task_list_benchmark_finds_every_total_it_built_on_a_small_backlog() {
    // The benchmark checks each answer's `total` against the backlog it made; a wrong
    // filter fails the run.
    let out = must(Command::new(BIN).args(["bench", "--modes", "tasks", "--tasks", "300"]).output());
    let text = stdout(&out);
    assert!(text.contains("300 open tasks made"), "{text}");
    assert_eq!(text.matches("200 samples").count(), 6, "{text}");
}

#[test]
fn app_add_prints_a_secret_once_that_signs_in_to_the_bk_sops_api() {
    let dir = must(tempfile::tempdir());
    let data = dir.path().to_str().unwrap_or_default();
    let added = stdout(&must(Command::new(BIN).args(["app", "add", "esb", "--data-dir", data]).output()));
    let secret = added.lines().find_map(|l| l.strip_prefix("bk_app_secret: ")).unwrap_or_default().to_owned();
    assert!(secret.len() >= 24, "{added}");
    let again = must(Command::new(BIN).args(["app", "add", "esb", "--data-dir", data]).output());
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let port = free_port();
    let server = Serve::start(dir.path(), port);
    let call = |secret: &str| {
        let url = format!("http://127.0.0.1:{port}/api/c/compapi/v2/sops/get_template_list/");
        let body = serde_json::json!({"bk_app_code": "esb", "bk_app_secret": secret, "bk_biz_id": 1});
        let runtime = must(tokio::runtime::Builder::new_current_thread().enable_all().build());
        let answer = runtime.block_on(async {
            must(must(reqwest::Client::new().post(&url).json(&body).send().await).json::<serde_json::Value>().await)
        });
        (answer["result"].clone(), answer["code"].clone())
    };
    assert_eq!(call(&secret), (serde_json::json!(true), serde_json::json!(0)));
    assert_eq!(
        call("wrong"),
        (serde_json::json!(false), serde_json::json!(3_540_100)),
        "bk-sops' code for a refusal of credentials"
    );
    server.terminate();
}

#[test]
fn the_pipeline_benchmark_runs_its_trees_to_their_end() {
    let args =
        ["bench", "--modes", "pipeline-engine,pipeline", "--nodes", "5", "--concurrency", "2", "--seconds", "0.2"];
    let text = stdout(&must(Command::new(BIN).args(args).output()));
    assert!(text.contains("pipeline tree of 5 nodes (engine)"), "{text}");
    assert!(
        text.contains("pipeline tree of 5 nodes (SQLite, 2 trees at once)") && text.contains("2 samples"),
        "{text}"
    );
}

/// `flowstone serve` on `port` with `args`, its log (standard error) written to `log`.
fn serve_logging_to(dir: &std::path::Path, port: u16, args: &[&str], log: &std::path::Path) -> common::Process {
    let listen = format!("127.0.0.1:{port}");
    let data_dir = dir.to_string_lossy();
    let child = must(
        Command::new(BIN)
            .args([&["serve", "--listen", &listen, "--data-dir", &data_dir][..], args].concat())
            .env("FLOWSTONE_ADMIN_PASSWORD", common::PASSWORD)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(must(std::fs::File::create(log)))
            .spawn(),
    );
    common::wait_listening(port);
    common::Process(child)
}

#[test]
fn serve_logs_each_request_and_lifecycle_event_without_colour_codes_or_as_json() {
    let dir = must(tempfile::tempdir());
    let (port, log) = (free_port(), dir.path().join("text.log"));
    let server = serve_logging_to(dir.path(), port, &[], &log);
    stdout(&run(port, &["start", "w1_straight"]));
    let machines = dir.path().join("machines").to_string_lossy().into_owned();
    let worker_args = ["--stones", "BillingStone", "--machines-dir", &machines, "--worker-id", "w-logs", "--wait", "1"];
    let worker = common::Process::worker(&format!("http://127.0.0.1:{port}"), &worker_args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !must(std::fs::read_to_string(&log)).contains("worker joined") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    worker.terminate();
    server.terminate();
    let text = must(std::fs::read_to_string(&log));
    assert!(text.lines().any(|l| l.contains("worker joined") && l.contains("worker=w-logs")), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when standard error is not a terminal: {text}");
    let access = text.lines().find(|l| l.contains("flowstone::access") && l.contains("POST")).unwrap_or_default();
    for field in ["path=/process", "status=200", "user=admin", "ms="] {
        assert!(access.contains(field), "the request's line has {field}: {text}");
    }
    assert!(text.lines().any(|l| l.contains("model deployed") && l.contains("key=w1_straight")), "{text}");
    assert!(text.lines().any(|l| l.contains("process started") && l.contains("key=w1_straight")), "{text}");
    assert!(text.lines().any(|l| l.contains("process completed")), "{text}");

    let dir = must(tempfile::tempdir());
    let (port, log) = (free_port(), dir.path().join("json.log"));
    let server = serve_logging_to(dir.path(), port, &["--log-format", "json"], &log);
    let failed = run(port, &["start", "nope"]);
    assert!(!failed.status.success());
    server.terminate();
    let lines: Vec<serde_json::Value> =
        must(std::fs::read_to_string(&log)).lines().map(|l| must(serde_json::from_str(l))).collect();
    let refused = lines.iter().find(|l| l["target"] == "flowstone::access" && l["fields"]["status"] == 404);
    let refused = refused.unwrap_or_else(|| panic!("no line for the refused start: {lines:?}"));
    assert_eq!(
        (refused["fields"]["method"].as_str(), refused["fields"]["user"].as_str()),
        (Some("POST"), Some("admin"))
    );
    assert_eq!(refused["level"], "INFO");
}

/// `flowstone ARGS…` against the server on `port` with only the credentials in `env`.
fn run_with(port: u16, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env("FLOWSTONE_SERVER", format!("http://127.0.0.1:{port}"));
    for name in ["FLOWSTONE_PASSWORD", "FLOWSTONE_TOKEN", "FLOWSTONE_ADMIN_PASSWORD", "FLOWSTONE_USER"] {
        command.env_remove(name);
    }
    must(command.envs(env.iter().copied()).output())
}

#[test]
fn the_cli_signs_in_as_admin_with_the_servers_admin_password_and_says_what_it_sent_when_refused() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let _server = Serve::start(dir.path(), port);
    let ps = stdout(&run_with(port, &[("FLOWSTONE_ADMIN_PASSWORD", common::PASSWORD)], &["ps"]));
    assert!(ps.contains("(0 of 0)"), "{ps}");

    let wrong = run_with(port, &[("FLOWSTONE_ADMIN_PASSWORD", "wrong")], &["ps"]);
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && said.contains("401"), "{said}");
    assert!(said.contains("signed in as `admin` with the password of FLOWSTONE_ADMIN_PASSWORD"), "{said}");

    let wrong = run_with(port, &[("FLOWSTONE_PASSWORD", "wrong")], &["ps"]);
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("with the password of --password / FLOWSTONE_PASSWORD"), "{said}");

    let none = run_with(port, &[("FLOWSTONE_USER", "ann")], &["ps"]);
    let said = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success() && said.contains("no credentials"), "{said}");
}

#[test]
fn the_cli_completes_cancels_deletes_and_drives_debug_mode() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let _server = Serve::start(dir.path(), port);
    let model = dir.path().join("approve.bpmn");
    must(std::fs::write(
        &model,
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="approve">
           <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="ask"/><userTask id="ask"/>
           <sequenceFlow sourceRef="ask" targetRef="e"/><endEvent id="e"/></process></definitions>"#,
    ));
    stdout(&run(port, &["deploy", model.to_str().unwrap_or_default()]));
    let process_id = |answer: &str| {
        answer
            .split("\"processInstanceId\": \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    let task_of = |process: &str| {
        let tasks = stdout(&run(port, &["tasks", process]));
        tasks.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap_or_default().to_owned()
    };

    let first = process_id(&stdout(&run(port, &["start", "approve"])));
    stdout(&run(port, &["complete", &task_of(&first), "--var", "approved=true"]));
    let ps = stdout(&run(port, &["ps", "--status", "success"]));
    assert!(ps.contains(&first), "completing the task ends the process: {ps}");
    let vars = stdout(&run(port, &["vars", &first]));
    assert!(vars.lines().any(|l| l.starts_with("approved") && l.ends_with("true")), "{vars}");
    let watched = stdout(&run(port, &["watch", &first]));
    assert!(watched.contains("success") && watched.contains("[####################] 100%"), "{watched}");

    let second = process_id(&stdout(&run(port, &["start", "approve"])));
    stdout(&run(port, &["cancel", &second]));
    assert!(stdout(&run(port, &["ps", "--status", "canceled"])).contains(&second));
    let watched = run(port, &["watch", &second]);
    let said = String::from_utf8_lossy(&watched.stderr);
    assert!(!watched.status.success() && said.contains("ended canceled"), "{said}");
    stdout(&run(port, &["delete", &second]));

    let third = process_id(&stdout(&run(port, &["start", "approve"])));
    for args in [vec!["resume", "TASK"], vec!["rerun", "TASK", "--queue-type", "start", "--param", "size=2"]] {
        let args: Vec<String> =
            args.iter().map(|a| if *a == "TASK" { task_of(&third) } else { (*a).to_owned() }).collect();
        let refused = run(port, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && said.contains("409"), "{args:?} outside debug mode: {said}");
    }
}

#[test]
fn history_prune_deletes_ended_processes_and_a_dry_run_only_counts() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let _server = Serve::start(dir.path(), port);
    let model = dir.path().join("quick.bpmn");
    must(std::fs::write(
        &model,
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="quick">
           <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="e"/><endEvent id="e"/></process></definitions>"#,
    ));
    stdout(&run(port, &["deploy", model.to_str().unwrap_or_default()]));
    for _ in 0..3 {
        stdout(&run(port, &["start", "quick"]));
    }
    let dry = stdout(&run(port, &["history", "prune", "--older-than", "0s", "--key", "quick", "--dry-run"]));
    assert!(dry.contains("would delete 3 processes"), "{dry}");
    assert!(stdout(&run(port, &["ps", "--key", "quick"])).contains("(3 of 3)"), "a dry run deletes nothing");
    let young = stdout(&run(port, &["history", "prune", "--older-than", "1d"]));
    assert!(young.contains("deleted 0 processes"), "{young}");
    let pruned = stdout(&run(port, &["history", "prune", "--older-than", "0s", "--key", "quick"]));
    assert!(pruned.contains("deleted 3 processes"), "{pruned}");
    assert!(stdout(&run(port, &["ps", "--key", "quick"])).contains("(0 of 0)"));
    let refused = run(port, &["history", "prune", "--older-than", "soon"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("olderThan"), "{said}");
}

#[test]
fn stuck_lists_a_job_no_worker_takes_and_its_process() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let data = dir.path().to_string_lossy().into_owned();
    let _server = Serve::start_args(&["--data-dir", &data, "--stones", "none"], port);
    let model = dir.path().join("waits.bpmn");
    must(std::fs::write(
        &model,
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
           <process id="waits"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="w"/>
           <serviceTask id="w" flowstone:stone="nobody"/><sequenceFlow sourceRef="w" targetRef="e"/><endEvent id="e"/>
           </process></definitions>"#,
    ));
    stdout(&run(port, &["deploy", model.to_str().unwrap_or_default()]));
    stdout(&run(port, &["start", "waits"]));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let stuck = stdout(&run(port, &["stuck", "--after", "0s"]));
    assert!(stuck.contains("1 stone job(s) no worker took"), "{stuck}");
    assert!(stuck.contains("no worker fetches `nobody`"), "{stuck}");
    assert!(stuck.contains("1 process(es) without a step"), "{stuck}");
    let quiet = stdout(&run(port, &["stuck", "--after", "1h"]));
    assert!(quiet.contains("0 stone job(s)"), "{quiet}");
}

#[test]
fn migrate_moves_a_running_process_to_the_latest_version_with_a_renamed_task_mapped() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let _server = Serve::start(dir.path(), port);
    let version = |task: &str| {
        format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="moving">
               <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="{task}"/><userTask id="{task}"/>
               <sequenceFlow sourceRef="{task}" targetRef="e"/><endEvent id="e"/></process></definitions>"#
        )
    };
    let (v1, v2) = (dir.path().join("v1.bpmn"), dir.path().join("v2.bpmn"));
    must(std::fs::write(&v1, version("ask")));
    must(std::fs::write(&v2, version("confirm")));
    stdout(&run(port, &["deploy", v1.to_str().unwrap_or_default()]));
    let started = stdout(&run(port, &["start", "moving"]));
    let process = started
        .split("\"processInstanceId\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    stdout(&run(port, &["deploy", v2.to_str().unwrap_or_default()]));
    let refused = run(port, &["migrate", &process]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("`ask`"), "{said}");
    let dry = stdout(&run(port, &["migrate", &process, "--map", "ask=confirm", "--dry-run"]));
    assert!(dry.lines().any(|l| l.split_whitespace().eq(["ask", "confirm"])), "{dry}");
    let moved = stdout(&run(port, &["migrate", &process, "--map", "ask=confirm"]));
    assert!(moved.contains("moved to the latest version"), "{moved}");
    let tasks = stdout(&run(port, &["tasks", &process]));
    let task = tasks.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap_or_default().to_owned();
    stdout(&run(port, &["complete", &task]));
    assert!(stdout(&run(port, &["ps", "--status", "success"])).contains(&process));
}

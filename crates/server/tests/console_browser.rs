//! The console in a real headless Chromium, driven through chromedriver (WebDriver): sign in,
//! open an instance, watch its diagram change as the instance moves on elsewhere — without
//! the page being reloaded — then start the cluster example from the models page in debug
//! mode with a failing stone, and reRun it with edited parameters from its page; claim and
//! complete a task from the inbox; cancel two instances in bulk under a progress bar; skip a
//! failed bk-sops node and call back the next from the task's canvas, retry another with an
//! edited input and choose its gateway's flow by clicking it on the diagram; open an
//! instance with the keyboard alone; read the main pages at a desktop's and a phone's size.
//! Without `chromedriver` on the `PATH` the test says SKIPPED and passes, except in CI
//! (`CI=true`, where `.ci/run` installs Debian's `chromium` and `chromium-driver`).

mod common;

use common::{Backend, PASSWORD, TestServer, must};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium session, or none (said loudly) where chromedriver is not installed.
async fn browser() -> Option<(Driver, Client)> {
    let port = must(std::net::TcpListener::bind("127.0.0.1:0")).local_addr().map(|a| a.port()).unwrap_or(0);
    let spawned =
        Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let driver = match spawned {
        Ok(child) => Driver(child),
        Err(e) => {
            assert!(std::env::var("CI").is_err(), "chromedriver is needed in CI: {e}");
            eprintln!("SKIPPED: no chromedriver ({e}); install Debian's chromium and chromium-driver");
            return None;
        }
    };
    let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let capabilities = serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), options)]);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "chromedriver gave no session: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

const REVIEW: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="review" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
    <userTask id="check" name="Check"/><sequenceFlow id="f2" sourceRef="check" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

/// Clicks the element `css` finds, again should a live redraw replace it in between.
async fn click(browser: &Client, css: &str) {
    for _ in 0..20 {
        match shown(browser, css).await.click().await {
            Ok(()) => return,
            // The element was replaced (a stale reference, or a node no longer in the document).
            Err(e)
                if ["stale element", "does not belong to the document"].iter().any(|m| e.to_string().contains(m)) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{css} kept being redrawn");
}

/// Waits for an element of the page, at most 20 s.
async fn shown(browser: &Client, css: &str) -> fantoccini::elements::Element {
    must(browser.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_a_diagram_live_reruns_a_stone_completes_an_inbox_task_and_works_bk_nodes_on_the_canvas() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else { return };
    let Some((_driver, browser)) = browser().await else { return };
    must(browser.goto(&format!("{}/", s.base)).await);
    must(shown(&browser, "#user").await.send_keys("admin").await);
    must(browser.find(Locator::Css("#password")).await).send_keys(PASSWORD).await.unwrap_or_else(|e| panic!("{e}"));
    must(must(browser.find(Locator::Css("form.signin button")).await).click().await);
    shown(&browser, "#instances").await;

    // A diagram that changes while it is watched.
    s.deploy(REVIEW).await;
    let id = s.start_process("review", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    must(browser.goto(&format!("{}/console", s.base)).await);
    click(&browser, &format!("a[href='/console/instances/{id}']")).await;
    shown(&browser, "g.node.waiting[data-element='check']").await;
    must(browser.execute("window.notReloaded = true;", vec![]).await);
    let open = s.tasks(&id).await.into_iter().find(|t| t["status"] == "active");
    let task = open.and_then(|t| t["id"].as_str().map(str::to_owned)).unwrap_or_default();
    let (status, body) = s.put(&format!("/task/{task}/complete"), None).await;
    assert!(status.is_success(), "{body}");
    shown(&browser, "g.node.done[data-element='check']").await;
    shown(&browser, "g.node.done[data-element='e']").await;
    let kept = must(browser.execute("return window.notReloaded === true;", vec![]).await);
    assert_eq!(kept, json!(true), "the page changed without a reload");

    // The cluster example started from the models page in debug mode, its billing stone
    // failing, then run again with edited parameters.
    must(browser.goto(&format!("{}/console/models", s.base)).await);
    let cluster = Locator::XPath("//table[@id='models']//a[text()='cluster']");
    must(must(browser.wait().at_most(Duration::from_secs(20)).for_element(cluster).await).click().await);
    let variables = shown(&browser, "form.start textarea[name='variables']").await;
    must(variables.clear().await);
    let failing = json!({"slaveNum": "1", "buyNum": "1", "Bingo::RS::FRONT::RSBILLING": {"fail": "no credit"},
        "master-1a": {"instanceType": "m2.large"}, "slave-": {"instanceType": "m2.large"}});
    must(variables.send_keys(&failing.to_string()).await);
    click(&browser, "form.start input[name='debug']").await;
    click(&browser, "form.start button").await;
    shown(&browser, "#live").await;
    let url = must(browser.current_url().await);
    let id = url.path().rsplit('/').next().unwrap_or_default().to_owned();
    s.wait_for(&id, "debug").await;
    must(browser.refresh().await);
    click(&browser, "#tasks details.do summary").await;
    let parameters = shown(&browser, "#tasks details.do textarea[name='parameters']").await;
    must(parameters.clear().await);
    must(parameters.send_keys(r#"{"fail": false}"#).await);
    click(&browser, "#tasks details.do form[action$='/rerun'] button").await;
    until_status(&browser, &s, &id, "completed").await;

    // A person's task, claimed and completed from the inbox.
    s.deploy(MINE).await;
    let mine = s.start_process("mine", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    must(browser.goto(&format!("{}/console/inbox", s.base)).await);
    click(&browser, "#inbox form[action$='/claim'] button").await;
    let variables = shown(&browser, "#inbox form[action$='/complete'] textarea").await;
    must(variables.clear().await);
    must(variables.send_keys(r#"{"approved": true}"#).await);
    click(&browser, "#inbox form[action$='/complete'] button").await;
    s.wait_for(&mine, "success").await;

    // Two waiting instances canceled in bulk, one at a time under a progress bar.
    for _ in 0..2 {
        s.start_process("review", json!({})).await;
    }
    must(browser.goto(&format!("{}/console?model=review&status=running", s.base)).await);
    for checkbox in must(browser.find_all(Locator::Css("#instances input[name='id']")).await) {
        must(checkbox.click().await);
    }
    must(must(browser.find(Locator::Css("#bulk select[name='action'] option[value='cancel']")).await).click().await);
    click(&browser, "#bulk button").await;
    let said = shown(&browser, "#progress[data-finished] output").await;
    assert_eq!(must(said.text().await), "cancel: 2 of 2 sent, 2 done");
    let bar = must(
        browser.execute("var p = document.querySelector('#progress progress'); return [p.value, p.max];", vec![]).await,
    );
    assert_eq!(bar, json!([2, 2]), "the bar is full");
    assert_eq!(must(browser.find_all(Locator::Css("#progress tbody tr")).await).len(), 2, "each outcome shown");

    // A bk-sops task whose first node failed, skipped from its canvas; its second node,
    // waiting for a callback, called back.
    let made = s
        .bk_ok(
            "create_template",
            json!({"bk_biz_id": 5, "name": "ops", "pipeline_tree": common::bk_fail_then_callback()}),
        )
        .await;
    s.bk_ok("create_and_start_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "run"})).await;
    let newest = flowstone_store::Page { offset: 0, limit: 1 };
    let filter = flowstone_store::InstanceFilter { kind: Some("process".into()), ..Default::default() };
    let (rows, _) = s.runtime().store().list_instances(&filter, newest).await.unwrap_or_else(|e| panic!("{e}"));
    let bk = rows.first().map(|r| r.id.clone()).unwrap_or_default();
    s.wait_for(&bk, "debug").await;
    must(browser.goto(&format!("{}/console/instances/{bk}", s.base)).await);
    shown(&browser, "g.node.failed[data-element='a']").await;
    click(&browser, "#tasks details.do summary").await;
    click(&browser, "#tasks details.do form[action$='/skip'] button").await;
    click(&browser, "#tasks tr:last-child details.do summary").await;
    click(&browser, "#tasks details.do form[action$='/callback'] button").await;
    until_status(&browser, &s, &bk, "completed").await;

    // Another whose first node failed, retried from its canvas with an edited input; its
    // gateway, which then could not choose, given a flow by clicking it on the diagram.
    let made = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "choose", "pipeline_tree": choosing()})).await;
    s.bk_ok("create_and_start_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "run"})).await;
    let (rows, _) = s.runtime().store().list_instances(&filter, newest).await.unwrap_or_else(|e| panic!("{e}"));
    let retried = rows.first().map(|r| r.id.clone()).unwrap_or_default();
    s.wait_for(&retried, "debug").await;
    must(browser.goto(&format!("{}/console/instances/{retried}", s.base)).await);
    click(&browser, "#tasks details.do summary").await;
    let parameters = shown(&browser, "#tasks details.do textarea[name='parameters']").await;
    must(parameters.clear().await);
    must(parameters.send_keys(r#"{"fail": null}"#).await);
    click(&browser, "#tasks details.do form[action$='/rerun'] button").await;
    shown(&browser, "g.node.failed[data-element='x']").await;
    click(&browser, "polyline[data-flow='f4']").await;
    let chosen = must(browser.execute("return document.querySelector(\"select[name='flow']\").value;", vec![]).await);
    assert_eq!(chosen, json!("f4"), "the flow clicked on the diagram is chosen");
    click(&browser, "form[action$='/choose'] button").await;
    until_status(&browser, &s, &retried, "completed").await;

    keyboard_reaches_an_instance(&browser, &s).await;
    pages_read_at_a_desktops_and_a_phones_size(&browser, &s, &id).await;
    must(browser.close().await);
}

/// From the instance list, the keyboard alone opens an instance: Tab moves through links and
/// controls in order, Enter follows the focused link.
async fn keyboard_reaches_an_instance(browser: &Client, s: &TestServer) {
    must(browser.set_window_size(1280, 800).await);
    must(browser.goto(&format!("{}/console", s.base)).await);
    shown(browser, "#instances").await;
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    for _ in 0..80 {
        must(must(browser.active_element().await).send_keys(&tab).await);
        let on = must(browser.execute("var a = document.activeElement; return a.closest('#instances tbody') ? a.getAttribute('href') : null;", vec![]).await);
        if let Some(href) = on.as_str().filter(|h| h.starts_with("/console/instances/")) {
            let enter = char::from(fantoccini::key::Key::Enter).to_string();
            must(must(browser.active_element().await).send_keys(&enter).await);
            shown(browser, "#live").await;
            assert_eq!(must(browser.current_url().await).path(), href, "Enter opened the focused instance");
            return;
        }
    }
    panic!("Tab never reached an instance's link");
}

/// The main pages at 1280×800 and at a phone's 390×844: none scrolls sideways (wide tables and
/// drawings scroll inside themselves). With `FLOWSTONE_SCREENSHOTS=DIR`, each is saved there
/// as `PAGE-SIZE.png` (the README's pictures come from this).
async fn pages_read_at_a_desktops_and_a_phones_size(browser: &Client, s: &TestServer, instance: &str) {
    let shots = std::env::var_os("FLOWSTONE_SCREENSHOTS").map(std::path::PathBuf::from);
    let one = format!("/console/instances/{instance}");
    let pages = [
        ("instances", "/console"),
        ("instance", one.as_str()),
        ("models", "/console/models"),
        ("inbox", "/console/inbox"),
        ("incidents", "/console/incidents"),
        ("stones", "/console/stones"),
    ];
    for (size, width, height) in [("desktop", 1280, 800), ("phone", 390, 844)] {
        must(browser.set_window_size(width, height).await);
        for (name, path) in pages {
            must(browser.goto(&format!("{}{path}", s.base)).await);
            shown(browser, "main h1").await;
            let sideways = must(
                browser
                    .execute(
                        "var d = document.documentElement; return [d.scrollWidth - d.clientWidth, d.clientWidth];",
                        vec![],
                    )
                    .await,
            );
            assert_eq!(sideways[0], json!(0), "{path} scrolls sideways at {size} ({sideways})");
            if let Some(dir) = &shots {
                must(std::fs::create_dir_all(dir));
                must(std::fs::write(dir.join(format!("{name}-{size}.png")), must(browser.screenshot().await)));
            }
        }
    }
}

/// Waits until the instance's page shows `status`, at most 30 s.
async fn until_status(browser: &Client, s: &TestServer, id: &str, wanted: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Read in one step: the live part may be redrawn between a find and a read.
        let status = must(browser.execute("return document.getElementById('status').textContent;", vec![]).await);
        if status == wanted {
            return;
        }
        if std::time::Instant::now() >= deadline {
            let source = must(browser.source().await);
            panic!("the page shows {status}; the process is {}: {source}", s.process(id).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A bk-sops tree whose node `a` fails until its `fail` input is cleared, then whose gateway
/// `x` finds no flow to take (`f3` to the end wants `go` to be yes, `f4` to `b` wants maybe).
fn choosing() -> serde_json::Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3", "f5"]},
        "activities": {
            "a": {"id": "a", "type": "ServiceActivity", "incoming": ["f1"], "outgoing": "f2",
                  "component": {"code": "noop", "data": {"fail": {"hook": false, "value": "disk full"}}}},
            "b": {"id": "b", "type": "ServiceActivity", "incoming": ["f4"], "outgoing": "f5",
                  "component": {"code": "noop", "data": {}}}
        },
        "gateways": {"x": {"id": "x", "type": "ExclusiveGateway", "incoming": ["f2"], "outgoing": ["f3", "f4"],
            "conditions": {"f3": {"evaluate": "${go} == \"yes\""}, "f4": {"evaluate": "${go} == \"maybe\""}}}},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "x"},
                  "f3": {"id": "f3", "source": "x", "target": "e"}, "f4": {"id": "f4", "source": "x", "target": "b"},
                  "f5": {"id": "f5", "source": "b", "target": "e"}},
        "constants": {"${go}": {"key": "${go}", "name": "go", "source_type": "custom", "value": "no"}}
    })
}

/// A task of the signed-in admin's.
const MINE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
  <process id="mine" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="approve"/>
    <userTask id="approve" name="Approve" flowable:candidateUsers="admin"/><sequenceFlow id="f2" sourceRef="approve" targetRef="e"/>
    <endEvent id="e"/></process></definitions>"#;

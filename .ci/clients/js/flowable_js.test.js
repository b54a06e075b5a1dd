// Flowable's JavaScript external worker client (npm @flowable-oss/external-worker-client),
// unchanged, against a real Flowstone server: FLOWSTONE_BASE and FLOWSTONE_PASSWORD name it.
// Run by .ci/clients/run with `node --test`.

const test = require("node:test");
const assert = require("node:assert/strict");
const { ExternalWorkerClient } = require("@flowable-oss/external-worker-client");

const BASE = process.env.FLOWSTONE_BASE;
const PASSWORD = process.env.FLOWSTONE_PASSWORD;
const FLOWABLE = `${BASE}/flowable-rest`;
const BASIC = "Basic " + Buffer.from(`admin:${PASSWORD}`).toString("base64");

async function call(method, path, body, type = "application/json") {
  const response = await fetch(BASE + path, {
    method,
    headers: { authorization: BASIC, "content-type": type },
    body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const MODEL = (key, topic, compensate) => `<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:flowable="http://flowable.org/bpmn" xmlns:flowstone="http://flowstone.dev/bpmn">
  <error id="declined" errorCode="DECLINED"/>
  <process id="${key}"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/>
  <serviceTask id="work" name="Work" flowable:type="external-worker" flowable:topic="${topic}"${compensate ? ' flowstone:compensate="true"' : ""}/>
  <boundaryEvent id="caught" attachedToRef="work"><errorEventDefinition errorRef="declined"/></boundaryEvent>
  <sequenceFlow sourceRef="caught" targetRef="onError"/><userTask id="onError" name="On error"/>
  <sequenceFlow sourceRef="work" targetRef="after"/><userTask id="after" name="After"/></process></definitions>`;

async function deploy(compensate = false) {
  const key = "js_" + Math.random().toString(36).slice(2, 10);
  const topic = key + "_topic";
  await call("POST", "/model", MODEL(key, topic, compensate), "application/xml");
  return { key, topic };
}

async function start(key, variables) {
  return (await call("POST", "/process", { key, processName: "js client", variables })).id;
}

const processOf = (id) => call("GET", `/process/${id}`);

async function openUserTasks(id) {
  const tasks = await call("GET", `/task?processInstanceId=${id}`);
  return tasks.filter((t) => t.status === "active").map((t) => t.name).sort();
}

async function variablesOf(id) {
  const vars = await call("GET", `/flowable-rest/service/runtime/process-instances/${id}/variables`);
  return Object.fromEntries(vars.map((v) => [v.name, { type: v.type, value: v.value }]));
}

async function waitUntil(check, ms = 20000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

// One client signs in with a bearer token, as the client's README shows for Flowable Trial.
let tokenClient;
test.before(async () => {
  const { token } = await call("POST", "/auth/tokens", {});
  tokenClient = new ExternalWorkerClient({ flowableHost: FLOWABLE, workerId: "js-worker", auth: { token } });
});
const basicClient = () =>
  new ExternalWorkerClient({ flowableHost: FLOWABLE, workerId: "js-worker", auth: { username: "admin", password: PASSWORD } });

test("the README's sample: a handler returning success() completes the job", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, {});
  const subscription = tokenClient.subscribe({
    topic,
    numberOfTasks: 1,
    waitPeriodSeconds: 0.2,
    callbackHandler(job, workResultBuilder) {
      return workResultBuilder.success();
    },
  });
  try {
    assert.ok(await waitUntil(async () => (await openUserTasks(id)).join() === "After"));
  } finally {
    subscription.unsubscribe();
  }
});

test("a handler returning nothing completes the job", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, {});
  const subscription = basicClient().subscribe({ topic, waitPeriodSeconds: 0.2, callbackHandler() {} });
  try {
    assert.ok(await waitUntil(async () => (await openUserTasks(id)).join() === "After"));
  } finally {
    subscription.unsubscribe();
  }
});

test("acquired jobs carry typed variables, and complete sets every type", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, { amount: 42, customer: "kermit", vip: true, ratio: 0.5 });
  const rest = tokenClient._restClient;
  const [job] = await rest.acquireJob({ topic, lockDuration: "PT1M", numberOfTasks: 5 });
  assert.equal(job.processInstanceId, id);
  assert.equal(job.elementId, "work");
  const seen = Object.fromEntries(job.variables.map((v) => [v.name, [v.type, v.value]]));
  assert.deepEqual(seen.amount, ["integer", 42]);
  assert.deepEqual(seen.customer, ["string", "kermit"]);
  assert.deepEqual(seen.vip, ["boolean", true]);
  assert.deepEqual(seen.ratio, ["double", 0.5]);
  assert.ok(!Number.isNaN(Date.parse(job.lockExpirationTime)), job.lockExpirationTime);
  const variables = [
    { name: "s", type: "string", value: "text" },
    { name: "i", type: "integer", value: 7 },
    { name: "l", type: "long", value: 9007199254740991 },
    { name: "sh", type: "short", value: 3 },
    { name: "d", type: "double", value: 2.5 },
    { name: "b", type: "boolean", value: false },
    { name: "dt", type: "date", value: "2026-12-03T10:00:00.000Z" },
    { name: "j", type: "json", value: { k: [1, 2] } },
  ];
  await rest.completeJob({ jobId: job.id, variables });
  const found = await variablesOf(id);
  assert.equal(found.s.value, "text");
  assert.equal(found.i.value, 7);
  assert.equal(found.l.value, 9007199254740991);
  assert.equal(found.sh.value, 3);
  assert.equal(found.d.value, 2.5);
  assert.equal(found.b.value, false);
  assert.ok(String(found.dt.value).startsWith("2026-12-03T10:00:00"), JSON.stringify(found.dt));
  assert.deepEqual(found.j.value, { k: [1, 2] });
});

test("a BPMN error without variables reaches the boundary event", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, {});
  const subscription = basicClient().subscribe({
    topic,
    waitPeriodSeconds: 0.2,
    callbackHandler(job, result) {
      return result.bpmnError().errorCode("DECLINED");
    },
  });
  try {
    assert.ok(await waitUntil(async () => (await openUserTasks(id)).join() === "On error"));
  } finally {
    subscription.unsubscribe();
  }
});

test("failures count retries down, then the process fails and no job of it comes again", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, {});
  const rest = basicClient()._restClient;
  const [job] = await rest.acquireJob({ topic, lockDuration: "PT1M" });
  await rest.failJob({ jobId: job.id, errorMessage: "db down", retries: 2, retryTimeout: "PT0S" });
  const again = await rest.acquireJob({ topic, lockDuration: "PT1M" });
  assert.deepEqual(again.map((j) => [j.id, j.retries]), [[job.id, 2]]);
  await rest.failJob({ jobId: job.id, errorMessage: "db down", errorDetails: "for good", retries: 0 });
  assert.equal((await processOf(id)).processStatus, "failed");
  assert.deepEqual(await rest.acquireJob({ topic, lockDuration: "PT1M", numberOfTasks: 10 }), []);
});

test("a handler that throws fails the job until its tries are spent", async () => {
  const { key, topic } = await deploy();
  const id = await start(key, {});
  let calls = 0;
  const original = console.error;
  console.error = () => {}; // the client logs each failure
  const subscription = basicClient().subscribe({
    topic,
    waitPeriodSeconds: 0.2,
    callbackHandler() {
      calls += 1;
      throw new Error("the printer is on fire");
    },
  });
  try {
    assert.ok(await waitUntil(async () => (await processOf(id)).processStatus === "failed"));
  } finally {
    subscription.unsubscribe();
    console.error = original;
  }
  assert.equal(calls, 3, "each try ran the handler once");
  // The client sends a thrown Error as JSON.stringify makes it: `{}` (a thrown string is sent as is).
  assert.equal((await processOf(id)).reason, "task work failed: {}");
});

test("jobs are listed and read", async () => {
  const { key, topic } = await deploy();
  await start(key, {});
  const rest = tokenClient._restClient;
  const [job] = await rest.acquireJob({ topic, lockDuration: "PT1M" });
  const listed = await rest.listJobs();
  assert.ok(listed.data.some((j) => j.id === job.id));
  const one = await rest.getJob(job.id);
  assert.equal(one.lockOwner, "js-worker");
  await assert.rejects(rest.getJob("no-such-job"), (e) => e.response.status === 404);
});

test("a subscription runs several jobs over a while, each once", async () => {
  const { key, topic } = await deploy();
  const ids = [];
  for (let n = 0; n < 6; n++) ids.push(await start(key, { n }));
  const done = [];
  const subscription = basicClient().subscribe({
    topic,
    numberOfTasks: 2,
    waitPeriodSeconds: 0.2,
    callbackHandler(job, result) {
      const n = job.variables.find((v) => v.name === "n").value;
      done.push(n);
      return result.success().variable("doubled", n * 2, "integer");
    },
  });
  try {
    ids.push(await start(key, { n: 6 }));
    const all = async () => (await Promise.all(ids.map(openUserTasks))).every((t) => t.join() === "After");
    assert.ok(await waitUntil(all));
  } finally {
    subscription.unsubscribe();
  }
  assert.deepEqual(done.sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal((await variablesOf(ids[3])).doubled.value, 6);
});

test("a worker of the topic never sees a compensating job", async () => {
  const { key, topic } = await deploy(true);
  const id = await start(key, {});
  const rest = basicClient()._restClient;
  const [job] = await rest.acquireJob({ topic, lockDuration: "PT1M" });
  await rest.failJob({ jobId: job.id, errorMessage: "lost", retries: 0 });
  assert.equal((await processOf(id)).processStatus, "rollingBack");
  assert.deepEqual(await rest.acquireJob({ topic, lockDuration: "PT1M", numberOfTasks: 10 }), []);
  const undo = await rest.acquireJob({ topic: `${topic}:rollback`, lockDuration: "PT1M" });
  assert.deepEqual(undo.map((j) => j.elementId), ["work"]);
  await rest.completeJob({ jobId: undo[0].id });
  assert.equal((await processOf(id)).processStatus, "rolledBack");
});

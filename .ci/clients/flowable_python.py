"""Flowable's Python external worker client (PyPI flowable-external-worker-client), unchanged,
against a real Flowstone server: FLOWSTONE_BASE and FLOWSTONE_PASSWORD name it.

Run by .ci/clients/run; each test deploys its own model and starts its own processes.
"""

import os
import threading
import time
import unittest
import uuid

import requests
from requests.auth import HTTPBasicAuth

from flowable.external_worker_client import ExternalWorkerClient
from flowable.external_worker_client.flowable_rest_exception import FlowableRestException
from flowable.external_worker_client.restclient import FlowableExternalWorkerRestClient

BASE = os.environ["FLOWSTONE_BASE"]
AUTH = HTTPBasicAuth("admin", os.environ["FLOWSTONE_PASSWORD"])
FLOWABLE = BASE + "/flowable-rest"

MODEL = """<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:flowable="http://flowable.org/bpmn" xmlns:flowstone="http://flowstone.dev/bpmn">
  <error id="declined" errorCode="DECLINED"/>
  <process id="{key}"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/>
  <serviceTask id="work" name="Work" flowable:type="external-worker" flowable:topic="{topic}"{compensate}/>
  <boundaryEvent id="caught" attachedToRef="work"><errorEventDefinition errorRef="declined"/></boundaryEvent>
  <sequenceFlow sourceRef="caught" targetRef="onError"/><userTask id="onError" name="On error"/>
  <sequenceFlow sourceRef="work" targetRef="after"/><userTask id="after" name="After"/></process></definitions>"""


def deploy(compensate=False):
    """A model of its own: its key and its topic."""
    key = "py_" + uuid.uuid4().hex[:8]
    topic = key + "_topic"
    extra = ' flowstone:compensate="true"' if compensate else ""
    xml = MODEL.format(key=key, topic=topic, compensate=extra)
    r = requests.post(BASE + "/model", data=xml, headers={"content-type": "application/xml"}, auth=AUTH)
    r.raise_for_status()
    return key, topic


def start(key, variables):
    body = {"key": key, "processName": "python client", "variables": variables}
    r = requests.post(BASE + "/process", json=body, auth=AUTH)
    r.raise_for_status()
    return r.json()["id"]


def process(pid):
    r = requests.get(BASE + "/process/" + pid, auth=AUTH)
    r.raise_for_status()
    return r.json()


def open_user_tasks(pid):
    r = requests.get(BASE + "/task", params={"processInstanceId": pid}, auth=AUTH)
    r.raise_for_status()
    return sorted(t["name"] for t in r.json() if t["status"] == "active")


def variables_of(pid):
    r = requests.get(FLOWABLE + "/service/runtime/process-instances/" + pid + "/variables", auth=AUTH)
    r.raise_for_status()
    return {v["name"]: (v["type"], v["value"]) for v in r.json()}


def rest_client(worker="py-worker"):
    return FlowableExternalWorkerRestClient(FLOWABLE, worker, auth=AUTH)


def wait_until(check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


class FlowablePythonClient(unittest.TestCase):
    def test_acquired_jobs_carry_typed_variables_and_parse(self):
        key, topic = deploy()
        pid = start(key, {"amount": 42, "customer": "kermit", "vip": True, "ratio": 0.5, "tags": ["a", "b"]})
        jobs = rest_client().acquire_jobs(topic, "PT1M", number_of_tasks=5)
        self.assertEqual(len(jobs), 1)
        job = jobs[0]
        self.assertEqual(job.process_instance_id, pid)
        self.assertEqual(job.element_id, "work")
        self.assertEqual(job.element_name, "Work")
        self.assertIsNotNone(job.create_time, "createTime parses")
        self.assertIsNotNone(job.lock_expiration_time, "lockExpirationTime parses")
        seen = {v.name: (v.type, v.value) for v in job.variables}
        self.assertEqual(seen["amount"], ("integer", 42))
        self.assertEqual(seen["customer"], ("string", "kermit"))
        self.assertEqual(seen["vip"], ("boolean", True))
        self.assertEqual(seen["ratio"], ("double", 0.5))
        self.assertEqual(seen["tags"][1], ["a", "b"])

    def test_complete_sets_every_variable_type_the_client_offers(self):
        key, topic = deploy()
        pid = start(key, {})
        client = ExternalWorkerClient(FLOWABLE, "py-worker", auth=AUTH)

        def handler(job, result):
            return (
                result.success()
                .variable_string("s", "text")
                .variable_int("i", 7)
                .variable_float("f", 2.5)
                .variable_boolean("b", False)
                .variable_json("j", {"k": [1, 2]})
            )

        subscription = client.subscribe(topic, handler, wait_period_seconds=0.2)
        try:
            self.assertTrue(wait_until(lambda: open_user_tasks(pid) == ["After"]), open_user_tasks(pid))
        finally:
            subscription.unsubscribe(10)
        found = variables_of(pid)
        self.assertEqual(found["s"][1], "text")
        self.assertEqual(found["i"][1], 7)
        self.assertEqual(found["f"][1], 2.5)
        self.assertEqual(found["b"][1], False)
        self.assertEqual(found["j"][1], {"k": [1, 2]})

    def test_a_handler_returning_nothing_completes_the_job(self):
        key, topic = deploy()
        pid = start(key, {})
        subscription = ExternalWorkerClient(FLOWABLE, "py-worker", auth=AUTH).subscribe(
            topic, lambda job, result: None, wait_period_seconds=0.2
        )
        try:
            self.assertTrue(wait_until(lambda: open_user_tasks(pid) == ["After"]), open_user_tasks(pid))
        finally:
            subscription.unsubscribe(10)

    def test_a_bpmn_error_reaches_the_boundary_event(self):
        key, topic = deploy()
        pid = start(key, {})
        client = rest_client()
        job = client.acquire_jobs(topic, "PT1M")[0]
        from flowable.external_worker_client import EngineRestVariable

        client.job_with_bpmn_error(job.id, [EngineRestVariable("why", "string", "card")], "DECLINED")
        self.assertEqual(open_user_tasks(pid), ["On error"])
        self.assertEqual(variables_of(pid)["why"][1], "card")

    def test_failures_count_retries_down_then_the_process_fails_without_a_second_job(self):
        key, topic = deploy()
        pid = start(key, {})
        client = rest_client()
        job = client.acquire_jobs(topic, "PT1M")[0]
        client.fail_job(job.id, "db down", retries=2, retry_timeout="PT0S")
        again = client.acquire_jobs(topic, "PT1M")
        self.assertEqual([(j.id, j.retries) for j in again], [(job.id, 2)])
        client.fail_job(job.id, "db down", "for good", retries=0)
        self.assertEqual(process(pid)["processStatus"], "failed")
        self.assertEqual(client.acquire_jobs(topic, "PT1M", number_of_tasks=10), [], "no compensating job")

    def test_a_handler_that_throws_fails_the_job_with_its_message(self):
        key, topic = deploy()
        pid = start(key, {})
        calls = []

        def handler(job, result):
            calls.append(job.id)
            raise RuntimeError("the printer is on fire")

        subscription = ExternalWorkerClient(FLOWABLE, "py-worker", auth=AUTH).subscribe(
            topic, handler, wait_period_seconds=0.2
        )
        try:
            # A job starts with 3 tries; each failure hands it out again until none is left.
            self.assertTrue(wait_until(lambda: process(pid)["processStatus"] == "failed"), process(pid))
        finally:
            subscription.unsubscribe(10)
        self.assertEqual(len(calls), 3, "each try ran the handler once, and nothing ran it again")
        self.assertIn("the printer is on fire", process(pid)["reason"])

    def test_jobs_are_listed_and_read(self):
        key, topic = deploy()
        start(key, {})
        client = rest_client()
        job = client.acquire_jobs(topic, "PT1M")[0]
        listed = client.list_jobs()
        self.assertIn(job.id, [j.id for j in listed.data])
        one = client.get_job(job.id)
        self.assertEqual((one.id, one.lock_owner), (job.id, "py-worker"))
        self.assertIsNotNone(one.lock_expiration_time)
        with self.assertRaises(FlowableRestException) as refused:
            client.get_job("no-such-job")
        self.assertIn("status code 404", str(refused.exception))

    def test_subscribe_runs_several_jobs_over_a_while(self):
        key, topic = deploy()
        pids = [start(key, {"n": n}) for n in range(6)]
        done = []
        lock = threading.Lock()

        def handler(job, result):
            n = {v.name: v.value for v in job.variables}["n"]
            with lock:
                done.append(n)
            return result.success().variable_int("doubled", n * 2)

        subscription = ExternalWorkerClient(FLOWABLE, "py-worker", auth=AUTH).subscribe(
            topic, handler, wait_period_seconds=0.2, number_of_tasks=2
        )
        try:
            late = start(key, {"n": 6})
            pids.append(late)
            self.assertTrue(wait_until(lambda: all(open_user_tasks(p) == ["After"] for p in pids)))
        finally:
            subscription.unsubscribe(10)
        self.assertEqual(sorted(done), list(range(7)), "each job once")
        self.assertEqual(variables_of(pids[3])["doubled"][1], 6)

    def test_a_worker_of_the_topic_never_sees_a_compensating_job(self):
        key, topic = deploy(compensate=True)
        pid = start(key, {"parcel": "p1"})
        client = rest_client()
        job = client.acquire_jobs(topic, "PT1M")[0]
        client.fail_job(job.id, "lost", retries=0)
        self.assertEqual(process(pid)["processStatus"], "rollingBack")
        self.assertEqual(client.acquire_jobs(topic, "PT1M", number_of_tasks=10), [])
        undo = client.acquire_jobs(topic + ":rollback", "PT1M")
        self.assertEqual([j.element_id for j in undo], ["work"])
        client.complete_job(undo[0].id)
        self.assertEqual(process(pid)["processStatus"], "rolledBack")


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""BlueKing's API SDK (PyPI bkapi-component-open), unchanged, against a real Flowstone server:
its own sign-in (the X-Bkapi-Authorization header), every sops call it offers that Flowstone
serves (periodic tasks too), and refusals returned as bk-sops' `result: false` envelope rather than raised.
FLOWSTONE_BASE, BK_APP_CODE and BK_APP_SECRET name the server and the application,
FLOWSTONE_PASSWORD the admin's password (for a bearer token, the SDK's `access_token`).
"""

import os
import unittest

import requests
from bkapi_component.open.client import Client

BASE = os.environ["FLOWSTONE_BASE"]
APP, SECRET = os.environ["BK_APP_CODE"], os.environ["BK_APP_SECRET"]

TREE = {
    "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
    "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"], "outgoing": ""},
    "activities": {
        "wait": {
            "id": "wait", "type": "ServiceActivity", "name": "Wait", "incoming": ["f1"], "outgoing": "f2",
            "component": {"code": "sdk_component", "data": {"who": {"hook": True, "value": "${who}"}}},
        }
    },
    "gateways": {},
    "flows": {
        "f1": {"id": "f1", "source": "s", "target": "wait", "is_default": False},
        "f2": {"id": "f2", "source": "wait", "target": "e", "is_default": False},
    },
    "constants": {"${who}": {"key": "${who}", "name": "who", "source_type": "custom", "value": "nobody"}},
    "outputs": ["${who}"],
}


def sdk(username="ops"):
    client = Client(endpoint=BASE, bk_api_ver="v2")
    client.update_bkapi_authorization(bk_app_code=APP, bk_app_secret=SECRET, bk_username=username)
    return client


def template(biz):
    """A template, made through the one call the SDK does not offer (`create_template`)."""
    body = {"bk_app_code": APP, "bk_app_secret": SECRET, "bk_username": "ops", "bk_biz_id": biz,
            "name": "sdk", "pipeline_tree": TREE}
    answer = requests.post(BASE + "/api/c/compapi/v2/sops/create_template/", json=body).json()
    assert answer["result"], answer
    return answer["data"]["template_id"]


class BlueKingSdk(unittest.TestCase):
    def ok(self, answer):
        self.assertTrue(answer["result"], answer)
        self.assertEqual(answer["code"], 0)
        return answer["data"]

    def test_the_sdk_signs_in_with_its_header_and_runs_a_task_through_its_calls(self):
        client, biz = sdk(), 21
        template_id = template(biz)
        listed = self.ok(client.sops.get_template_list({"bk_biz_id": biz}))
        self.assertEqual([t["id"] for t in listed], [template_id])
        info = self.ok(client.sops.get_template_info({"bk_biz_id": biz, "template_id": template_id}))
        self.assertIn("wait", info["pipeline_tree"]["activities"])
        preview = self.ok(client.sops.preview_task_tree({"bk_biz_id": biz, "template_id": template_id}))
        self.assertIn("pipeline_tree", preview)

        task = self.ok(client.sops.create_task(
            {"bk_biz_id": biz, "template_id": template_id, "name": "sdk task", "constants": {"${who}": "kermit"}}
        ))
        task_id = task["task_id"]
        self.assertEqual(self.ok(client.sops.get_task_status({"bk_biz_id": biz, "task_id": task_id}))["state"], "CREATED")
        self.ok(client.sops.start_task({"bk_biz_id": biz, "task_id": task_id}))
        status = self.ok(client.sops.get_task_status({"bk_biz_id": biz, "task_id": task_id}))
        self.assertEqual(status["state"], "RUNNING")
        detail = self.ok(client.sops.get_task_detail({"bk_biz_id": biz, "task_id": task_id}))
        self.assertEqual(detail["executor"], "ops")
        many = self.ok(client.sops.get_tasks_status({"bk_biz_id": biz, "task_id_list": [task_id]}))
        self.assertEqual([t["id"] for t in many], [task_id])
        node = self.ok(client.sops.get_task_node_detail({"bk_biz_id": biz, "task_id": task_id, "node_id": "wait"}))
        self.assertEqual(node["state"], "READY")
        self.ok(client.sops.get_task_node_data({"bk_biz_id": biz, "task_id": task_id, "node_id": "wait"}))
        # The component runs nowhere here; a callback finishes it, and the task with it.
        self.ok(client.sops.node_callback(
            {"bk_biz_id": biz, "task_id": task_id, "node_id": "wait", "callback_data": {"done": True}}
        ))
        self.assertEqual(self.ok(client.sops.get_task_status({"bk_biz_id": biz, "task_id": task_id}))["state"], "FINISHED")

        listed = client.sops.get_task_list({"bk_biz_id": biz, "keyword": "sdk", "is_started": "true"})
        self.assertEqual(([t["id"] for t in self.ok(listed)], listed["count"]), ([task_id], 1))

        started = self.ok(client.sops.create_and_start_task({"bk_biz_id": biz, "template_id": template_id, "name": "two"}))
        self.ok(client.sops.operate_task({"bk_biz_id": biz, "task_id": started["task_id"], "action": "revoke"}))
        revoked = self.ok(client.sops.get_task_status({"bk_biz_id": biz, "task_id": started["task_id"]}))
        self.assertEqual(revoked["state"], "REVOKED")

    def test_the_sdks_other_served_calls_answer_in_bk_sops_shape(self):
        client, biz = sdk(), 23
        template_id = template(biz)
        task_id = self.ok(client.sops.create_task(
            {"bk_biz_id": biz, "template_id": template_id, "name": "before", "constants": {"${who}": "kermit"}}
        ))["task_id"]
        edited = client.sops.modify_constants_for_task(
            {"bk_biz_id": biz, "task_id": task_id, "name": "after", "constants": {"${who}": "piggy"}}
        )
        self.assertEqual(self.ok(edited), "success")
        detail = self.ok(client.sops.get_task_detail({"bk_biz_id": biz, "task_id": task_id}))
        self.assertEqual((detail["name"], detail["constants"]["${who}"]["value"]), ("after", "piggy"))
        counted = self.ok(client.sops.query_task_count({"bk_biz_id": biz, "group_by": "status", "conditions": {}}))
        self.assertEqual(counted["total"], 1)
        self.assertEqual([(g["code"], g["value"]) for g in counted["groups"]],
                         [("CREATED", 1), ("EXECUTING", 0), ("FINISHED", 0)])
        self.ok(client.sops.start_task({"bk_biz_id": biz, "task_id": task_id}))
        late = client.sops.modify_constants_for_task({"bk_biz_id": biz, "task_id": task_id, "constants": {}})
        self.assertEqual((late["result"], late["code"]), (False, 3540000), late)
        states = self.ok(client.sops.get_tasks_manual_intervention_state({"bk_biz_id": biz, "task_id_list": [task_id]}))
        self.assertEqual(states, [{"id": task_id, "manual_intervention_required": False}])

        fast = self.ok(client.sops.fast_create_task({"bk_biz_id": biz, "name": "fast", "pipeline_tree": TREE}))
        self.assertIn("task_id", fast)
        yaml = ("schema_version: v1\nmeta: {id: t1, name: sdk yaml}\nspec:\n  nodes:\n"
                "  - {id: n1, type: EmptyStartEvent}\n"
                "  - {id: n2, type: ServiceActivity, name: pause, component: {code: pause_node, data: {}}}\n"
                "  - {id: n3, type: EmptyEndEvent}\n")
        imported = self.ok(client.sops.import_project_template({"bk_biz_id": biz, "template_data": yaml}))
        self.assertEqual(imported["count"], 1, imported)
        paused = self.ok(client.sops.create_and_start_task(
            {"bk_biz_id": biz, "template_id": imported["templates"][0]["template_id"], "name": "paused"}
        ))["task_id"]
        self.ok(client.sops.operate_task({"bk_biz_id": biz, "task_id": paused, "action": "pause"}))
        states = self.ok(client.sops.get_tasks_manual_intervention_state({"bk_biz_id": biz, "task_id_list": [paused]}))
        self.assertEqual(states, [{"id": paused, "manual_intervention_required": True}])
        self.ok(client.sops.operate_task({"bk_biz_id": biz, "task_id": paused, "action": "resume"}))
        self.ok(client.sops.operate_node(
            {"bk_biz_id": biz, "task_id": paused, "node_id": "n2", "action": "callback", "data": {"ok": 1}}
        ))
        self.assertEqual(self.ok(client.sops.get_task_status({"bk_biz_id": biz, "task_id": paused}))["state"], "FINISHED")

        plugins = self.ok(client.sops.get_plugin_list({"bk_biz_id": biz}))
        self.assertIn("pause_node", [p["code"] for p in plugins])
        plugin = self.ok(client.sops.get_plugin_detail({"bk_biz_id": biz, "code": "pause_node"}))
        self.assertEqual((plugin["code"], plugin["version"]), ("pause_node", "legacy"))
        projects = self.ok(client.sops.get_user_project_list({}))
        self.assertIn(biz, [p["bk_biz_id"] for p in projects])
        project = self.ok(client.sops.get_user_project_detail({"bk_biz_id": biz}))
        self.assertEqual(project["project_id"], biz)

    def test_refusals_come_back_as_the_envelope_not_as_exceptions(self):
        client, biz = sdk(), 22
        missing = client.sops.get_task_status({"bk_biz_id": biz, "task_id": 999999})
        self.assertEqual((missing["result"], missing["code"]), (False, 3540400), missing)
        bad = client.sops.operate_task({"bk_biz_id": biz, "task_id": 1, "action": "dance"})
        self.assertEqual((bad["result"], bad["code"]), (False, 3540000), bad)
        task_id = self.ok(client.sops.create_and_start_task(
            {"bk_biz_id": biz, "template_id": template(biz), "name": "once"}
        ))["task_id"]
        twice = client.sops.start_task({"bk_biz_id": biz, "task_id": task_id})
        self.assertEqual((twice["result"], twice["code"]), (False, 3545000), twice)
        unserved = client.sops.get_common_template_list({"bk_biz_id": biz})
        self.assertEqual((unserved["result"], unserved["code"]), (False, 3545100), unserved)

    def test_periodic_tasks_through_the_sdks_calls(self):
        client, biz = sdk(), 25
        cron = {"minute": "0", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
        made = self.ok(client.sops.create_periodic_task({
            "bk_biz_id": biz, "template_id": template(biz), "name": "nightly", "cron": cron,
            "constants": {"${who}": "night"},
        }))
        self.assertEqual((made["enabled"], made["cron"]), (False, "0 3 * * * (m/h/d/dM/MY)"))
        self.assertEqual(made["form"]["${who}"]["value"], "night")
        listed = self.ok(client.sops.get_periodic_task_list({"bk_biz_id": biz}))
        self.assertEqual([p["id"] for p in listed], [made["id"]])
        info = self.ok(client.sops.get_periodic_task_info({"bk_biz_id": biz, "task_id": made["id"]}))
        self.assertEqual(info["pipeline_tree"]["constants"]["${who}"]["value"], "night")
        enabled = self.ok(client.sops.set_periodic_task_enabled({"bk_biz_id": biz, "task_id": made["id"], "enabled": True}))
        self.assertEqual(enabled, {"enabled": True})
        moved = self.ok(client.sops.modify_cron_for_periodic_task(
            {"bk_biz_id": biz, "task_id": made["id"], "cron": {"minute": "*/5"}}))
        self.assertEqual(moved, {"cron": "*/5 * * * * (m/h/d/dM/MY)"})
        constants = self.ok(client.sops.modify_constants_for_periodic_task(
            {"bk_biz_id": biz, "task_id": made["id"], "constants": {"${who}": "day"}}))
        self.assertEqual(constants["${who}"]["value"], "day")
        missing = client.sops.get_periodic_task_info({"bk_biz_id": biz, "task_id": 999999})
        self.assertEqual((missing["result"], missing["code"]), (False, 3540400), missing)

    def test_an_access_token_signs_in_its_user(self):
        issued = requests.post(BASE + "/auth/tokens", json={"expiresInSeconds": 600},
                               auth=("admin", os.environ["FLOWSTONE_PASSWORD"])).json()
        client = Client(endpoint=BASE, bk_api_ver="v2")
        # With an access token the SDK sends it alone (it stands for app and user).
        client.update_bkapi_authorization(bk_app_code=APP, bk_app_secret=SECRET, access_token=issued["token"])
        task_id = self.ok(client.sops.create_task({"bk_biz_id": 24, "template_id": template(24), "name": "tok"}))["task_id"]
        detail = self.ok(client.sops.get_task_detail({"bk_biz_id": 24, "task_id": task_id}))
        self.assertEqual(detail["creator"], "admin")
        client.update_bkapi_authorization(bk_app_code=APP, bk_app_secret=SECRET, access_token="not-a-token")
        refused = client.sops.get_template_list({"bk_biz_id": 24})
        self.assertEqual((refused["result"], refused["code"]), (False, 3540100), refused)

    def test_wrong_credentials_are_refused_in_the_envelope(self):
        client = Client(endpoint=BASE, bk_api_ver="v2")
        client.update_bkapi_authorization(bk_app_code=APP, bk_app_secret="wrong", bk_username="ops")
        refused = client.sops.get_template_list({"bk_biz_id": 2})
        self.assertEqual((refused["result"], refused["code"]), (False, 3540100), refused)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Schemathesis hooks for Flowstone's CI run."""

import os

import schemathesis

BK_SOPS = "/api/c/compapi/v2/sops/"


@schemathesis.hook
def map_body(context, body):
    """A fetch waits up to `waitTime` ms for a job; no job comes in this run, so keep waits short
    (the long poll itself is tested in the server's own tests)."""
    if context.operation.path == "/worker/fetch" and isinstance(body, dict):
        wait = body.get("waitTime")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool):
            body["waitTime"] = min(wait, 200)
    # A prune would delete the run's own process once the platform phase ended it: only count.
    if context.operation.path == "/history/prune" and isinstance(body, dict):
        body["dryRun"] = True
    # bk-sops calls carry the run's app credentials, so that they reach past the sign-in.
    if context.operation.path.startswith(BK_SOPS) and isinstance(body, dict):
        body.pop("access_token", None)
        body["bk_app_code"], body["bk_app_secret"] = os.environ["ST_BK_APP"].split(":", 1)
    return body


@schemathesis.hook
def map_query(context, query):
    """A read of a process may wait up to `wait` ms for its status to change; the run's process
    never changes while it is read, so keep waits short (the wait itself is tested in the
    server's own tests)."""
    if context.operation.path == "/process/{id}" and isinstance(query, dict):
        wait = query.get("wait")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool):
            query["wait"] = min(wait, 200)
    return query

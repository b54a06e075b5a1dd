"""Schemathesis hooks for Flowstone's CI run."""

import schemathesis


@schemathesis.hook
def map_body(context, body):
    """A fetch waits up to `waitTime` ms for a job; no job comes in this run, so keep waits short
    (the long poll itself is tested in the server's own tests)."""
    if context.operation.path == "/worker/fetch" and isinstance(body, dict):
        wait = body.get("waitTime")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool):
            body["waitTime"] = min(wait, 200)
    return body

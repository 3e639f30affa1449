"""schemathesis hooks for the fuzzing run (SCHEMATHESIS_HOOKS=hooks).

Glance's JSON-patch media types are JSON without a `+json` suffix, which
schemathesis cannot know: send them as JSON text."""
import json

import schemathesis


@schemathesis.serializer(
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
def json_patch(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": json.dumps(value, default=str).encode()}

"""Summarize one schemathesis JSON report: prints a line for
docs/compatibility.md and exits non-zero when the run found a failure or an
error (a timeout is an error), or left an operation untested."""
import json
import sys

service, path = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        report = json.load(f)
except (OSError, ValueError) as e:
    print(f"fuzz {service}: no report ({e})")
    sys.exit(1)

ops = report["operations"]
cases = report["test_cases"]
failures = report.get("failures", [])
errors = report.get("errors", [])
print(
    f"fuzz {service}: {ops['tested']}/{ops['total']} operations, "
    f"{cases['generated']} cases, {sum(f['count'] for f in failures)} failures, "
    f"{len(errors)} errors, {report['running_time']:.0f} s"
)
for f in failures:
    print(f"  {f['code']} {f['title']}: {f['count']} in {', '.join(f.get('operations', [])[:8])}")
for e in errors[:10]:
    print(f"  error: {json.dumps(e)[:300]}")
untested = ops["total"] - ops["tested"]
if untested:
    print(f"  {untested} operations untested (the time budget ran out, or they errored)")
sys.exit(0 if report.get("complete") and not failures and not errors and not untested else 1)

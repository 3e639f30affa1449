"""Summarize one schemathesis JSON report: prints a line for
docs/compatibility.md and exits non-zero when the run found a failure, an
error of the API or of its document (a timeout is a "Network Error" or an
"Unresponsive Operation"), or left an operation untested. The tool's own
generation errors ("Runtime Error", e.g. Hypothesis calling a draw flaky,
and failed health checks) are printed, not counted."""
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
TOOL_ERRORS = {"Runtime Error", "Failed Health Check"}
all_errors = report.get("errors", [])
errors = [e for e in all_errors if e["title"] not in TOOL_ERRORS]
tool_errors = [e for e in all_errors if e["title"] in TOOL_ERRORS]
print(
    f"fuzz {service}: {ops['tested']}/{ops['total']} operations, "
    f"{cases['generated']} cases, {sum(f['count'] for f in failures)} failures, "
    f"{sum(e['count'] for e in errors)} errors, {report['running_time']:.0f} s"
)
for f in failures:
    print(f"  {f['code']} {f['title']}: {f['count']} in {', '.join(f.get('operations', [])[:8])}")
for e in errors[:10]:
    print(f"  error: {e['title']} ({e['count']})")
for e in tool_errors:
    print(f"  schemathesis's own error, not counted: {e['title']} ({e['count']})")
untested = ops["total"] - ops["tested"]
if untested:
    print(f"  {untested} operations untested (the time budget ran out, or they errored)")
sys.exit(0 if report.get("complete") and not failures and not errors and not untested else 1)

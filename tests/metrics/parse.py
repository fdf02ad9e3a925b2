"""Reads a Prometheus text exposition from the file named on the command
line with prometheus_client's own parser, and writes what it understood, one line each, for tests/metrics.rs:

    family NAME TYPE
    sample NAME LABEL=VALUE,LABEL=VALUE VALUE

Labels are sorted, so a test can look a sample up by its text. A parse
error is a traceback and exit status 1.
"""

import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as exposition:
    text = exposition.read()
for family in text_string_to_metric_families(text):
    print(f"family {family.name} {family.type}")
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        print(f"sample {sample.name} {labels} {sample.value!r}")

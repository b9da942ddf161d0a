#!/usr/bin/env python3
"""Fetches a Prometheus /metrics page and parses it with prometheus_client's
text parser (which raises on malformed text). Prints one JSON object:
{"families": {name: type}, "samples": [[name, labels, value], ...]}.
Usage: parse_metrics.py URL"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode("utf-8")
    families, samples = {}, []
    for f in text_string_to_metric_families(text):
        families[f.name] = f.type
        for s in f.samples:
            samples.append([s.name, s.labels, s.value])
    print(json.dumps({"families": families, "samples": samples}))


if __name__ == "__main__":
    main()

"""Renders the Home Assistant REST sensors of README.md against a /metrics document.

Usage: render_ha_templates.py README.md metrics.json
Prints one line per sensor: NAME<TAB>RENDERED. The YAML is the block between
the <!-- ha-rest-begin --> and <!-- ha-rest-end --> markers of the README, so the
recipe a reader copies is the one tested (tests/it/push.rs).
"""
import json
import re
import sys

import jinja2
import yaml

readme = open(sys.argv[1], encoding="utf-8").read()
block = re.search(r"<!-- ha-rest-begin -->\s*```yaml\n(.*?)```\s*<!-- ha-rest-end -->", readme, re.S)
if not block:
    sys.exit("no ha-rest block in the README")
config = yaml.safe_load(block.group(1))
doc = json.load(open(sys.argv[2], encoding="utf-8"))
env = jinja2.Environment(undefined=jinja2.StrictUndefined)
env.tests["eq"] = lambda a, b: a == b
for rest in config["rest"]:
    for sensor in rest["sensor"]:
        value = env.from_string(sensor["value_template"]).render(value_json=doc, value=json.dumps(doc))
        print(f"{sensor['name']}\t{value.strip()}")

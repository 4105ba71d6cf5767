"""These scenarios must be refused (exit 2 on both backends): tests/scenario/
test_hunt_topologies.py checks that they are, at the step it names.  tcemu's pytest plugin
would collect them as scenarios that must pass, so they are not collected here."""

collect_ignore_glob = ["*.tcemu.yaml"]

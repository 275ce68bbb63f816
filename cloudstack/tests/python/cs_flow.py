"""The ngine-io `cs` client against the local cloud: the whole flow a user of CloudStack runs.

Usage: cs_flow.py ENDPOINT KEY SECRET METHOD PORT
Prints one JSON object with what it saw; exits non-zero on the first surprise.
"""
import json
import sys
import urllib.request

import cs

endpoint, key, secret, method, port = sys.argv[1:6]
client = cs.CloudStack(endpoint=endpoint, key=key, secret=secret, method=method,
                       timeout=10, poll_interval=0.2, job_timeout=30)
seen = {"method": method}

zones = client.listZones()["zone"]
offerings = client.listServiceOfferings()["serviceoffering"]
templates = client.listTemplates(templatefilter="executable")["template"]
small = next(o for o in offerings if o["name"] == "small")
seen["zones"] = [z["name"] for z in zones]
seen["offerings"] = sorted(o["name"] for o in offerings)
seen["templates"] = [t["name"] for t in templates]

# A name with the characters whose encoding differs between clients (space, ~, *, /, +, é)
# goes in displayname, so the signature check sees them.
started = client.deployVirtualMachine(
    zoneid=zones[0]["id"], serviceofferingid=small["id"], templateid=templates[0]["id"],
    name=f"cs-{method}", displayname="cs flow a*b/c+d é", group="python")
assert "id" in started and "jobid" in started, started
vm = client._jobresult(started["jobid"])["virtualmachine"]
assert vm["id"] == started["id"], (vm, started)
seen["deployed_state"] = vm["state"]

listed = client.listVirtualMachines(id=vm["id"])
assert listed["count"] == 1, listed
vm = listed["virtualmachine"][0]
nic = next(n for n in vm["nic"] if n["isdefault"])
seen.update(listed_state=vm["state"], ip=nic["ipaddress"], group=vm["group"],
            displayname=vm["displayname"])
for field in ("zoneid", "templateid", "serviceofferingid", "hostid", "created"):
    assert vm.get(field), (field, vm)

with urllib.request.urlopen(f"http://{nic['ipaddress']}:{port}/", timeout=5) as answer:
    seen["http_status"] = answer.status
    seen["http_vm_id"] = answer.headers["x-ballast-vm-id"]

job = client.destroyVirtualMachine(id=vm["id"], expunge=True)
client._jobresult(job["jobid"])
seen["after_destroy"] = client.listVirtualMachines(id=vm["id"])
seen["vm_id"] = vm["id"]

wrong = cs.CloudStack(endpoint=endpoint, key=key, secret=secret + "-wrong", method=method)
try:
    wrong.listZones()
    raise SystemExit("a wrong secret was accepted")
except cs.CloudStackApiException as error:
    seen["wrong_secret_status"] = error.response.status_code
    seen["wrong_secret_error"] = error.error

print(json.dumps(seen))

"""The ngine-io `cs` client against the local cloud's per-account VM limit: a `user`-role
account deploys stopped VMs until it is refused, as a script that loops over deploys would.

Usage: cs_limit.py ENDPOINT KEY SECRET ATTEMPTS
Prints one JSON object with what it saw; exits non-zero on the first surprise.
"""
import json
import sys

import cs

endpoint, key, secret, attempts = sys.argv[1:5]
client = cs.CloudStack(endpoint=endpoint, key=key, secret=secret, timeout=10,
                       poll_interval=0.1, job_timeout=30)
zone = client.listZones()["zone"][0]
offering = client.listServiceOfferings(name="small")["serviceoffering"][0]
template = client.listTemplates(templatefilter="executable")["template"][0]

seen = {"deployed": 0}
for n in range(int(attempts)):
    try:
        started = client.deployVirtualMachine(
            zoneid=zone["id"], serviceofferingid=offering["id"], templateid=template["id"],
            name=f"loop-{n}", startvm="false")
    except cs.CloudStackApiException as error:
        seen["refused_at"] = n
        seen["status"] = error.response.status_code
        seen["error"] = error.error
        break
    client._jobresult(started["jobid"])
    seen["deployed"] += 1

seen["listed"] = client.listVirtualMachines().get("count", 0)
print(json.dumps(seen))

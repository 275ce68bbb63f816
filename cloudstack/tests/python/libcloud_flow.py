"""apache-libcloud's CloudStack driver against the local cloud.

Usage: libcloud_flow.py ENDPOINT_HOST ENDPOINT_PORT KEY SECRET PORT
Prints one JSON object with what it saw; exits non-zero on the first surprise.
"""
import json
import sys
import urllib.request

from libcloud.compute.providers import get_driver
from libcloud.compute.types import InvalidCredsError, NodeState, Provider

host, api_port, key, secret, port = sys.argv[1:6]
Driver = get_driver(Provider.CLOUDSTACK)
# secure=False: without it libcloud speaks TLS even to an http:// endpoint (peers.md §5).
driver = Driver(key=key, secret=secret, host=host, port=int(api_port), path="/client/api",
                secure=False)
seen = {}

locations = driver.list_locations()
sizes = driver.list_sizes()
images = driver.list_images()
seen["locations"] = [l.name for l in locations]
seen["sizes"] = sorted(s.name for s in sizes)
seen["images"] = [i.name for i in images]
size = next(s for s in sizes if s.name == "small")

# libcloud sends startvm=False unless told otherwise.
node = driver.create_node(name="libcloud-vm", size=size, image=images[0],
                          location=locations[0], ex_start_vm=True)
seen["created_state"] = node.state

listed = [n for n in driver.list_nodes() if n.id == node.id]
assert len(listed) == 1, listed
node = listed[0]
ips = node.private_ips + node.public_ips
seen.update(listed_state=node.state, ips=ips, running=node.state == NodeState.RUNNING)

with urllib.request.urlopen(f"http://{ips[0]}:{port}/", timeout=5) as answer:
    seen["http_status"] = answer.status
    seen["http_vm_id"] = answer.headers["x-ballast-vm-id"]
seen["node_id"] = node.id

seen["destroyed"] = driver.destroy_node(node, ex_expunge=True)
seen["after_destroy"] = [n.id for n in driver.list_nodes() if n.id == node.id]

wrong = Driver(key=key, secret=secret + "-wrong", host=host, port=int(api_port),
               path="/client/api", secure=False)
try:
    wrong.list_locations()
    raise SystemExit("a wrong secret was accepted")
except InvalidCredsError as error:
    seen["wrong_secret"] = type(error).__name__

print(json.dumps(seen))

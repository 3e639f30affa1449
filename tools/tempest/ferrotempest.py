#!/usr/bin/env python3
"""Helpers for tools/tempest/run.sh (run with the tooling venv's python).

  ferrotempest.py conf --workspace WS --service identity --out FILE
      write tempest.conf for the local all-in-one (settings from env, below)
  ferrotempest.py preflight
      authenticate as admin and check that every catalog endpoint is on
      loopback; exit 2 if one is not (tempest would follow it)
  ferrotempest.py summarize --subunit FILE --tests FILE --service NAME
                            --failed-out FILE
      count results, write failing test ids, print the closing line

Environment (all optional):
  FERROSTACK_AUTH_URL         identity v3 URL     [http://127.0.0.1:5000/v3]
  FERROSTACK_ADMIN_USER / _PASSWORD / _PROJECT    [admin / admin_pass / admin]
  FERROSTACK_DOMAIN           domain name for users and projects [Default]
  FERROSTACK_REGION           [RegionOne]
  FERROSTACK_SERVICES         comma list of services that exist, tempest
                              names: keystone,glance,neutron,nova,cinder,
                              swift,horizon [keystone]; the service under
                              test is added automatically
  TEMPEST_IDENTITY_TRUST                      [false]
  TEMPEST_IDENTITY_ACCESS_RULES               [true]
  TEMPEST_IDENTITY_SECURITY_COMPLIANCE        [false]
  TEMPEST_IDENTITY_DOMAIN_SPECIFIC_DRIVERS    [false]
  TEMPEST_IDENTITY_IMMUTABLE_USER_SOURCE      [false]
  TEMPEST_IDENTITY_API_EXTENSIONS             [OS-EC2,OS-INHERIT]
  TEMPEST_IDENTITY_USE_SYSTEM_TOKEN           [false]
  TEMPEST_CREATE_ISOLATED_NETWORKS            [false]
  TEMPEST_OBJECT_DISCOVERABLE_APIS            [what /info announces]
  TEMPEST_DEBUG                               [true] (HTTP traces in log)
  TEMPEST_CONF_EXTRA          path of an ini fragment merged last (wins)

Volume (min/max microversion from the running API; flags at tempest's
defaults unless said, extend_attached_volume on where tempest's is off):
  TEMPEST_VOLUME_BUILD_TIMEOUT    [volume] build_timeout, s    [120]
  TEMPEST_VOLUME_BACKUP / _SNAPSHOT / _CLONE                   [true]
  TEMPEST_VOLUME_EXTEND_ATTACHED  extend_attached_volume       [true] (tempest: false)

The external network `public` (created when missing; its physical network
is `public`, which an all-in-one maps to a bridge with
FERROSTACK__NETWORK_AGENT__BRIDGE_MAPPINGS=public:br-ex):
  TEMPEST_PUBLIC_CIDR                         [172.24.4.0/24]
  TEMPEST_PUBLIC_GATEWAY                      [172.24.4.1]

Compute. The defaults suit the fake hypervisor driver (scripts/tempest.sh);
scripts/tempest-vm.sh sets them for real QEMU guests:
  TEMPEST_COMPUTE_IMAGE_FILE      a bootable disk image, uploaded as the
                                  public images `tempest-guest` (image_ref)
                                  and `tempest-guest-alt` (image_ref_alt)
                                  [unset: two 4 KiB raw images
                                  `tempest-image`/`-alt`, which only the fake
                                  driver accepts]
  TEMPEST_COMPUTE_IMAGE_FORMAT    its disk_format              [qcow2]
  TEMPEST_COMPUTE_FLAVOR_REF      flavor_ref (m1.tiny)         [1]
  TEMPEST_COMPUTE_FLAVOR_REF_ALT  flavor_ref_alt (m1.small)    [2]
  TEMPEST_COMPUTE_BUILD_TIMEOUT   [compute] build_timeout, s   [60]
  TEMPEST_COMPUTE_MIN_MICROVERSION / _MAX_MICROVERSION         [2.1 / 2.1]
  [compute-feature-enabled] flags (tempest's default in brackets after ours):
  TEMPEST_COMPUTE_VNC_CONSOLE       vnc_console       [false] (tempest: false)
  TEMPEST_COMPUTE_CONFIG_DRIVE      config_drive      [false] (tempest: true)
  TEMPEST_COMPUTE_METADATA_SERVICE  metadata_service  [false] (tempest: true)
  TEMPEST_COMPUTE_SNAPSHOT          snapshot          [true]  (tempest: true)
  TEMPEST_COMPUTE_CONSOLE_OUTPUT    console_output    [true]  (tempest: true)
  TEMPEST_COMPUTE_INTERFACE_ATTACH  interface_attach  [false] (tempest: true)
  Compute hosts (scripts/tempest.sh's TEMPEST_COMPUTE_HOSTS=2 starts two):
  TEMPEST_COMPUTE_HOSTS           min_compute_nodes            [1]
  with 2 or more, the migration flags default on:
  TEMPEST_COMPUTE_COLD_MIGRATION  cold_migration    [on with 2 hosts] (tempest: true)
  TEMPEST_COMPUTE_LIVE_MIGRATION  live_migration and block_migration_for_
                                  live_migration (no shared instance
                                  storage: block migration is the kind
                                  Ferrostack has) [on with 2 hosts]
                                  (tempest: true / false)
  TEMPEST_COMPUTE_VOLUME_BACKED_LIVE_MIGRATION
                                  volume_backed_live_migration
                                  [as live_migration] (tempest: false)
  [validation] (guest SSH; tempest's defaults in brackets after ours):
  TEMPEST_VALIDATION                run_validation    [false] (tempest: true)
  TEMPEST_VALIDATION_SSH_USER       image_ssh_user    [root]
  TEMPEST_VALIDATION_CONNECT_METHOD connect_method    [floating]
  TEMPEST_VALIDATION_NETWORK_FOR_SSH  network_for_ssh [private]
  TEMPEST_VALIDATION_PING_TIMEOUT     ping_timeout    [120]
  TEMPEST_VALIDATION_CONNECT_TIMEOUT  connect_timeout [60]
  TEMPEST_VALIDATION_SSH_TIMEOUT      ssh_timeout     [300]
  (auth_method = keypair and ip_version_for_ssh = 4 are fixed: the only
  method tempest has and the only family the test guest gets by DHCP.)
  With validation on, tempest SSHes to floating IPs of the public network:
  the loopback guard must allow its CIDR (FERROSTACK_LOOPBACK_GUARD_ALLOW,
  see tools/tempest/loopback_guard).
"""

import argparse
import configparser
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

# tempest API package -> [service_available] option it needs
SERVICE_FLAG = {
    "identity": None,  # keystone is always assumed by tempest
    "image": "glance",
    "network": "neutron",
    "compute": "nova",
    "volume": "cinder",
    "object_storage": "swift",
    # telemetry-tempest-plugin: its own [service_available] flags (below)
    "telemetry": None,
}
ALL_FLAGS = ["cinder", "neutron", "glance", "swift", "nova", "horizon"]


def env(name, default):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default):
    value = env(name, None)
    if value is None:
        return "true" if default else "false"
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return "true"
    if low in ("0", "false", "no", "off"):
        return "false"
    sys.exit("ferrotempest: %s=%r is not a boolean" % (name, value))


def auth_settings():
    return {
        "auth_url": env("FERROSTACK_AUTH_URL", "http://127.0.0.1:5000/v3"),
        "user": env("FERROSTACK_ADMIN_USER", "admin"),
        "password": env("FERROSTACK_ADMIN_PASSWORD", "admin_pass"),
        "project": env("FERROSTACK_ADMIN_PROJECT", "admin"),
        "domain": env("FERROSTACK_DOMAIN", "Default"),
        "region": env("FERROSTACK_REGION", "RegionOne"),
    }


def is_loopback_url(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("localhost", "localhost.localdomain"):
        return True
    if host == "::1":
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(
        p.isdigit() for p in parts)


# ---------------------------------------------------------------- conf


def admin_token_and_catalog(a):
    """(token, catalog) of the admin user, or (None, []) when unreachable."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": a["user"], "password": a["password"],
            "domain": {"name": a["domain"]}}}},
        "scope": {"project": {"name": a["project"],
                              "domain": {"name": a["domain"]}}}}}
    req = urllib.request.Request(
        a["auth_url"].rstrip("/") + "/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return (resp.headers.get("X-Subject-Token"),
                    json.load(resp).get("token", {}).get("catalog", []))
    except (urllib.error.URLError, OSError, ValueError):
        return None, []


def network_extensions(a):
    """The extension aliases the running networking API reports, so tempest
    runs exactly the tests of what is implemented."""
    token, catalog = admin_token_and_catalog(a)
    url = next((ep["url"] for s in catalog if s.get("type") == "network"
                for ep in s.get("endpoints", [])
                if ep.get("interface") == "public"), None)
    if not token or not url or not is_loopback_url(url):
        return None
    req = urllib.request.Request(url.rstrip("/") + "/v2.0/extensions",
                                 headers={"X-Auth-Token": token})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return sorted(e["alias"] for e in json.load(resp)["extensions"])
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def network_api(a):
    """(token, base URL) of the networking API, or (None, None)."""
    token, catalog = admin_token_and_catalog(a)
    url = next((ep["url"] for s in catalog if s.get("type") == "network"
                for ep in s.get("endpoints", [])
                if ep.get("interface") == "public"), None)
    if not token or not url or not is_loopback_url(url):
        return None, None
    return token, url.rstrip("/") + "/v2.0"


def served_microversions(a, service_type, version_url):
    """(min, max) microversion the running API of `service_type` advertises,
    so that tempest runs exactly the microversion tests it serves; (None,
    None) when it cannot be asked. `version_url` maps the catalog URL to
    the URL of the version document."""
    token, catalog = admin_token_and_catalog(a)
    url = next((ep["url"] for s in catalog if s.get("type") == service_type
                for ep in s.get("endpoints", [])
                if ep.get("interface") == "public"), None)
    if not token or not url or not is_loopback_url(url):
        return None, None
    try:
        doc = call_json("GET", version_url(url), token)
        # Nova answers {"version": {...}}; Cinder's /v3/ {"versions": [{...}]}.
        version = doc["version"] if "version" in doc else doc["versions"][0]
        return version.get("min_version") or None, version.get("version") or None
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError,
            IndexError):
        return None, None


def compute_microversions(a):
    return served_microversions(a, "compute", lambda u: u.rstrip("/") + "/")


def volume_microversions(a):
    # The catalog has /v3/<project>; the version document is at /v3/.
    return served_microversions(
        a, "block-storage",
        lambda u: re.sub(r"(/v3)(/.*)?$", r"\1", u.rstrip("/")) + "/")


def call_json(method, url, token, body=None):
    req = urllib.request.Request(
        url, method=method, headers={"X-Auth-Token": token,
                                     "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return json.load(resp)


def public_network_id(a):
    """The external network tempest's router and floating IP tests use,
    created as devstack does (`public`, 172.24.4.0/24, no DHCP) when missing.
    With the fake driver it lives only in the all-in-one's database; with
    real guests (scripts/tempest-vm.sh) its physical network `public` is a
    bridge holding the gateway address, so floating IPs answer."""
    token, base = network_api(a)
    if not token:
        return None
    try:
        nets = call_json("GET", base + "/networks?name=public", token)["networks"]
        if nets:
            return nets[0]["id"]
        net = call_json("POST", base + "/networks", token, {"network": {
            "name": "public", "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "public"}})["network"]
        call_json("POST", base + "/subnets", token, {"subnet": {
            "name": "public-subnet", "network_id": net["id"], "ip_version": 4,
            "cidr": env("TEMPEST_PUBLIC_CIDR", "172.24.4.0/24"),
            "gateway_ip": env("TEMPEST_PUBLIC_GATEWAY", "172.24.4.1"),
            "enable_dhcp": False}})
        return net["id"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        print("ferrotempest: could not create the public network: %s" % e,
              file=sys.stderr)
        return None


def upload_image(opener, image_url, token, image_id, path):
    """PUT a file as an image's data (streamed)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        req = urllib.request.Request(
            image_url + "/v2/images/%s/file" % image_id, method="PUT",
            data=f, headers={"X-Auth-Token": token,
                             "Content-Type": "application/octet-stream",
                             "Content-Length": str(size)})
        opener.open(req, timeout=600).read()


def compute_fixtures(a):
    """What tempest's compute tests boot from, created when missing: two
    public images and a shared network `private` with a subnet behind
    devstack's `router1`. The images are TEMPEST_COMPUTE_IMAGE_FILE (a
    bootable guest) when set, else a few bytes of raw disk (the fake driver
    never reads them). Returns (image_id, image_alt_id) or (None, None)."""
    image_file = env("TEMPEST_COMPUTE_IMAGE_FILE", None)
    if image_file and not os.path.isfile(image_file):
        sys.exit("ferrotempest: TEMPEST_COMPUTE_IMAGE_FILE %s not found"
                 % image_file)
    token, catalog = admin_token_and_catalog(a)

    def endpoint(kind):
        return next((ep["url"].rstrip("/") for s in catalog if s.get("type") == kind
                     for ep in s.get("endpoints", [])
                     if ep.get("interface") == "public"), None)
    image_url, net_url = endpoint("image"), endpoint("network")
    if not token or not image_url or not net_url or not (
            is_loopback_url(image_url) and is_loopback_url(net_url)):
        return None, None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        ids = []
        names = (("tempest-guest", "tempest-guest-alt") if image_file
                 else ("tempest-image", "tempest-image-alt"))
        disk_format = (env("TEMPEST_COMPUTE_IMAGE_FORMAT", "qcow2")
                       if image_file else "raw")
        for name in names:
            found = [i for i in call_json(
                "GET", image_url + "/v2/images?name=" + name, token)["images"]
                if i.get("status") == "active"]
            if found:
                ids.append(found[0]["id"])
                continue
            img = call_json("POST", image_url + "/v2/images", token, {
                "name": name, "disk_format": disk_format,
                "container_format": "bare",
                "visibility": "public", "min_disk": 0, "min_ram": 0})
            if image_file:
                upload_image(opener, image_url, token, img["id"], image_file)
            else:
                req = urllib.request.Request(
                    image_url + "/v2/images/%s/file" % img["id"], method="PUT",
                    data=b"\0" * 4096, headers={"X-Auth-Token": token,
                                                "Content-Type": "application/octet-stream"})
                opener.open(req, timeout=30).read()
            ids.append(img["id"])
        nets = call_json("GET", net_url + "/v2.0/networks?name=private", token)["networks"]
        if not nets:
            net = call_json("POST", net_url + "/v2.0/networks", token, {"network": {
                "name": "private", "shared": True}})["network"]
            subnet = call_json("POST", net_url + "/v2.0/subnets", token, {"subnet": {
                "name": "private-subnet", "network_id": net["id"], "ip_version": 4,
                "cidr": "10.1.0.0/20"}})["subnet"]
            # devstack's router1: private behind public, for floating IPs.
            public = public_network_id(a)
            if public:
                router = call_json("POST", net_url + "/v2.0/routers", token, {"router": {
                    "name": "router1",
                    "external_gateway_info": {"network_id": public}}})["router"]
                call_json("PUT", net_url + "/v2.0/routers/%s/add_router_interface"
                          % router["id"], token, {"subnet_id": subnet["id"]})
        return ids[0], ids[1]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        print("ferrotempest: could not create the compute fixtures: %s" % e,
              file=sys.stderr)
        return None, None


def add_telemetry(conf):
    """telemetry-tempest-plugin's options: Aodh (alarming) and Gnocchi
    (metric) from the catalog; no Prometheus/sg-core, and Ceilometer off
    so the Heat/Nova scenario tests stay out."""
    conf["service_available"].update({
        "aodh": "true", "gnocchi": "true", "ceilometer": "false",
        "sg_core": "false",
    })
    conf["alarming_plugin"] = {"catalog_type": "alarming",
                               "endpoint_type": "publicURL"}
    conf["metric"] = {"catalog_type": "metric", "endpoint_type": "publicURL"}
    conf["telemetry_services"] = {"metric_backends": "gnocchi",
                                  "alarm_backend": "mysql"}


def build_conf(workspace, service):
    a = auth_settings()
    if not is_loopback_url(a["auth_url"]):
        sys.exit("ferrotempest: FERROSTACK_AUTH_URL %s is not loopback"
                 % a["auth_url"])
    services = {s.strip() for s in
                env("FERROSTACK_SERVICES", "keystone").split(",") if s.strip()}
    if SERVICE_FLAG.get(service):
        services.add(SERVICE_FLAG[service])
    if service == "compute":
        # Servers boot from images on networks, and attach volumes.
        services |= {"glance", "neutron", "cinder"}
    if service == "volume":
        # Volumes are made from images and attached to servers.
        services |= {"glance", "neutron", "nova"}
    unknown = services - set(ALL_FLAGS) - {"keystone"}
    if unknown:
        sys.exit("ferrotempest: unknown service(s) in FERROSTACK_SERVICES: %s"
                 % ", ".join(sorted(unknown)))

    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # keep option case
    conf["DEFAULT"] = {
        "debug": env_bool("TEMPEST_DEBUG", True),
        "log_dir": os.path.join(workspace, "logs"),
        "log_file": "tempest.log",
        "use_stderr": "false",
    }
    conf["oslo_concurrency"] = {
        "lock_path": os.path.join(workspace, "tempest_lock"),
    }
    conf["auth"] = {
        # tempest creates (and deletes) its own projects and users per test
        # class with these admin credentials
        "use_dynamic_credentials": "true",
        "create_isolated_networks": env_bool(
            "TEMPEST_CREATE_ISOLATED_NETWORKS", False),
        "admin_username": a["user"],
        "admin_password": a["password"],
        "admin_project_name": a["project"],
        "admin_domain_name": a["domain"],
        "admin_user_domain_name": a["domain"],
        "admin_project_domain_name": a["domain"],
        "default_credentials_domain_name": a["domain"],
    }
    conf["identity"] = {
        "auth_version": "v3",
        "uri_v3": a["auth_url"],
        "region": a["region"],
        "catalog_type": "identity",
        "v3_endpoint_type": "public",
        "admin_role": "admin",
        "default_domain_id": "default",
        "admin_domain_scope": "false",
        "use_system_token": env_bool("TEMPEST_IDENTITY_USE_SYSTEM_TOKEN",
                                     False),
        "disable_ssl_certificate_validation": "true",
    }
    conf["identity-feature-enabled"] = {
        # OS-TRUST delegation (TrustsV3TestJSON, 6 tests)
        "trust": env_bool("TEMPEST_IDENTITY_TRUST", False),
        # v3 is the only identity API tempest tests; also asserted by
        # test_identity_v3_existence (GET / must list a v3 version)
        "api_v3": "true",
        # extensions consulted by tempest 47: OS-EC2 (EC2CredentialsTest)
        # and OS-INHERIT (InheritsV3TestJSON); "all" = every one
        "api_extensions": env("TEMPEST_IDENTITY_API_EXTENSIONS",
                              "OS-EC2,OS-INHERIT"),
        # app-credential access rules (AccessRulesV3Test + 1 app-cred test)
        "access_rules": env_bool("TEMPEST_IDENTITY_ACCESS_RULES", True),
        # PCI-DSS options: lockout, password history/age (4 tests)
        "security_compliance": env_bool(
            "TEMPEST_IDENTITY_SECURITY_COMPLIANCE", False),
        # only changes list calls (adds domain_id filter); skips nothing
        "domain_specific_drivers": env_bool(
            "TEMPEST_IDENTITY_DOMAIN_SPECIFIC_DRIVERS", False),
        # read-only identity backend (LDAP); must be false with dynamic creds
        "immutable_user_source": env_bool(
            "TEMPEST_IDENTITY_IMMUTABLE_USER_SOURCE", False),
    }
    conf["service_available"] = {
        flag: ("true" if flag in services else "false") for flag in ALL_FLAGS
    }
    if service == "telemetry":
        add_telemetry(conf)
    conf["validation"] = {
        # Guest SSH: only with guests that boot (scripts/tempest-vm.sh).
        "run_validation": env_bool("TEMPEST_VALIDATION", False),
    }
    if conf["validation"]["run_validation"] == "true":
        conf["validation"].update({
            "image_ssh_user": env("TEMPEST_VALIDATION_SSH_USER", "root"),
            "image_alt_ssh_user": env("TEMPEST_VALIDATION_SSH_USER", "root"),
            "auth_method": "keypair",
            "connect_method": env("TEMPEST_VALIDATION_CONNECT_METHOD",
                                  "floating"),
            "ip_version_for_ssh": "4",
            "network_for_ssh": env("TEMPEST_VALIDATION_NETWORK_FOR_SSH",
                                   "private"),
            "ping_timeout": env("TEMPEST_VALIDATION_PING_TIMEOUT", "120"),
            "connect_timeout": env("TEMPEST_VALIDATION_CONNECT_TIMEOUT", "60"),
            "ssh_timeout": env("TEMPEST_VALIDATION_SSH_TIMEOUT", "300"),
        })
    conf["service-clients"] = {"http_timeout": "120"}
    conf["image"] = {
        # Only used to decide whether the task-import test runs; the task is
        # refused before anything is fetched (and the guard allows loopback only).
        "http_image": "http://127.0.0.1:9/cirros.img",
        "image_caching_enabled": "false",
    }
    conf["image-feature-enabled"] = {
        "api_v2": "true",
        "import_image": "true",
        "os_glance_reserved": "true",
        "manage_locations": "false",
        "image_conversion": "false",
        "image_format_enforcement": "true",
        "do_secure_hash": "true",
        "http_store_enabled": "false",
        "store_weight_enabled": "false",
    }
    if "swift" in services:
        # What the object API's /info announces (ferrostack-object); old
        # style container sync is not served, so its tests are skipped
        # rather than left to time out. `object_versioning` gates tempest's
        # X-Versions-Location test, which is served.
        conf["object-storage-feature-enabled"] = {
            "discoverable_apis": env(
                "TEMPEST_OBJECT_DISCOVERABLE_APIS",
                "tempurl,slo,dlo,account_quotas,container_quotas,"
                "versioned_writes,bulk_delete,bulk_upload,formpost"),
            "container_sync": "false",
            "object_versioning": "true",
        }
    if "neutron" in services:
        exts = network_extensions(a)
        conf["network-feature-enabled"] = {
            "api_extensions": env("TEMPEST_NETWORK_API_EXTENSIONS",
                                  ",".join(exts) if exts else "all"),
            "ipv6": "true",
            "ipv6_subnet_attributes": "true",
            "port_security": "true",
        }
        public = public_network_id(a)
        if public:
            conf["network"] = {
                "public_network_id": public,
                "floating_network_name": "public",
            }

    if "nova" in services:
        image, image_alt = compute_fixtures(a)
        hosts = env("TEMPEST_COMPUTE_HOSTS", "1")
        if not hosts.isdigit() or int(hosts) < 1:
            sys.exit("ferrotempest: TEMPEST_COMPUTE_HOSTS=%r is not a count"
                     % hosts)
        multi = int(hosts) >= 2
        live = env_bool("TEMPEST_COMPUTE_LIVE_MIGRATION", multi)
        served_min, served_max = compute_microversions(a)
        conf["compute"] = {
            "image_ref": image or "",
            "image_ref_alt": image_alt or "",
            "flavor_ref": env("TEMPEST_COMPUTE_FLAVOR_REF", "1"),
            "flavor_ref_alt": env("TEMPEST_COMPUTE_FLAVOR_REF_ALT", "2"),
            "fixed_network_name": "private",
            "min_compute_nodes": hosts,
            "build_timeout": env("TEMPEST_COMPUTE_BUILD_TIMEOUT", "60"),
            "min_microversion": env("TEMPEST_COMPUTE_MIN_MICROVERSION",
                                    served_min or "2.1"),
            "max_microversion": env("TEMPEST_COMPUTE_MAX_MICROVERSION",
                                    served_max or "2.1"),
        }
        conf["compute-feature-enabled"] = {
            "resize": "true",
            "console_output": env_bool("TEMPEST_COMPUTE_CONSOLE_OUTPUT", True),
            "pause": "true",
            "suspend": "true",
            "snapshot": env_bool("TEMPEST_COMPUTE_SNAPSHOT", True),
            "rescue": "true",
            # Stable device rescue (hw_rescue_device/hw_rescue_bus, and
            # 2.87's volume-backed rescue): the rescue disk is added on the
            # image's device and bus, the server's disks kept.
            "stable_rescue": "true",
            "shelve": "true",
            "shelve_migrate": "false",
            "interface_attach": env_bool("TEMPEST_COMPUTE_INTERFACE_ATTACH",
                                         False),
            "live_migration": live,
            "block_migration_for_live_migration": live,
            "volume_backed_live_migration": env_bool(
                "TEMPEST_COMPUTE_VOLUME_BACKED_LIVE_MIGRATION",
                live == "true"),
            "cold_migration": env_bool("TEMPEST_COMPUTE_COLD_MIGRATION",
                                       multi),
            "change_password": "false",
            "vnc_console": env_bool("TEMPEST_COMPUTE_VNC_CONSOLE", False),
            "spice_console": "false",
            "serial_console": "false",
            "attach_encrypted_volume": "false",
            "personality": "false",
            "config_drive": env_bool("TEMPEST_COMPUTE_CONFIG_DRIVE", False),
            "metadata_service": env_bool("TEMPEST_COMPUTE_METADATA_SERVICE",
                                         False),
            "nova_cert": "false",
            "disk_config": "false",
            "hostname_fqdn_sanitization": "false",
            "console_log": "true",
            "enable_instance_password": "true",
        }

    if "cinder" in services:
        served_min, served_max = volume_microversions(a)
        conf["volume"] = {
            "catalog_type": "block-storage",
            "build_timeout": env("TEMPEST_VOLUME_BUILD_TIMEOUT", "120"),
            # What the file backend's pools report (scheduler-stats/get_pools).
            "storage_protocol": "nbd",
            "vendor_name": "Ferrostack",
            "disk_format": "raw,qcow2",
            "volume_size": "1",
            "min_microversion": served_min or "3.0",
            "max_microversion": served_max or "3.0",
        }
        conf["volume-feature-enabled"] = {
            "api_extensions": "all",
            "backup": env_bool("TEMPEST_VOLUME_BACKUP", True),
            "snapshot": env_bool("TEMPEST_VOLUME_SNAPSHOT", True),
            "clone": env_bool("TEMPEST_VOLUME_CLONE", True),
            "extend_attached_volume": env_bool(
                "TEMPEST_VOLUME_EXTEND_ATTACHED", True),
            "manage_snapshot": "false",
            "manage_volume": "false",
            "multi_backend": "false",
            "replication": "false",
        }

    extra = env("TEMPEST_CONF_EXTRA", None)
    if extra:
        if not os.path.isfile(extra):
            sys.exit("ferrotempest: TEMPEST_CONF_EXTRA %s not found" % extra)
        conf.read(extra)
    return conf


def cmd_conf(args):
    conf = build_conf(os.path.abspath(args.workspace), args.service)
    os.makedirs(os.path.join(os.path.abspath(args.workspace), "logs"),
                exist_ok=True)
    with open(args.out, "w") as f:
        f.write("# generated by tools/tempest/ferrotempest.py for the "
                "Ferrostack all-in-one\n")
        conf.write(f)
    return 0


# ------------------------------------------------------------ preflight


def cmd_preflight(args):
    a = auth_settings()
    if not is_loopback_url(a["auth_url"]):
        print("preflight: auth URL %s is not loopback" % a["auth_url"],
              file=sys.stderr)
        return 2
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": a["user"], "password": a["password"],
            "domain": {"name": a["domain"]}}}},
        "scope": {"project": {"name": a["project"],
                              "domain": {"name": a["domain"]}}}}}
    req = urllib.request.Request(
        a["auth_url"].rstrip("/") + "/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 "Accept": "application/json"},
        method="POST")
    # never follow proxies: talk to the loopback server directly
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            status = resp.status
            token = json.load(resp).get("token", {})
    except urllib.error.HTTPError as e:
        print("preflight: admin token request failed: HTTP %s %s"
              % (e.code, e.read()[:300]), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as e:
        print("preflight: admin token request failed: %s" % e,
              file=sys.stderr)
        return 1
    if status != 201:
        print("preflight: warning: POST /v3/auth/tokens returned %s, "
              "tempest expects 201" % status, file=sys.stderr)
    bad = []
    types = []
    for svc in token.get("catalog", []):
        types.append(svc.get("type"))
        for ep in svc.get("endpoints", []):
            if not is_loopback_url(ep.get("url", "")):
                bad.append("%s %s %s" % (svc.get("type"), ep.get("interface"),
                                         ep.get("url")))
    print("preflight: catalog types: %s" % ", ".join(sorted(
        t for t in types if t)), file=sys.stderr)
    if "identity" not in types:
        print("preflight: warning: no identity service in the catalog; "
              "tempest's identity clients need one", file=sys.stderr)
    if bad:
        print("preflight: catalog endpoints not on loopback (tempest would "
              "call them):\n  " + "\n  ".join(bad), file=sys.stderr)
        return 2
    return 0


# ------------------------------------------------------------ summarize

_ATTR = re.compile(r"\[[^\]]*\]$")
_CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \(([^)]+)\)$")


def base_id(test_id):
    return _ATTR.sub("", test_id)


def read_results(path):
    """Return {test_id: status} from a subunit v2 stream."""
    import subunit
    import testtools

    results = {}

    def on_test(test):
        status = test["status"]
        if status in ("exists", "inprogress", None):
            return
        prev = results.get(test["id"])
        # a test reported twice keeps its worst outcome
        if prev in ("fail", "uxsuccess"):
            return
        results[test["id"]] = status

    with open(path, "rb") as f:
        stream = subunit.ByteStreamToStreamResult(
            f, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            stream.run(result)
        finally:
            result.stopTestRun()
    return results


def cmd_summarize(args):
    expected = []
    if args.tests and os.path.exists(args.tests):
        with open(args.tests) as f:
            expected = [line.strip() for line in f
                        if line.strip().startswith(
                            ("tempest.", "telemetry_tempest_plugin."))]
    results = read_results(args.subunit) if (
        args.subunit and os.path.exists(args.subunit)) else {}

    passed, failed, skipped = set(), [], set()
    by_base = {}
    class_status = {}
    extra_failures = []
    for test_id, status in results.items():
        m = _CLASS_FIXTURE.match(test_id)
        if m:
            kind, cls = m.groups()
            if kind == "setUpClass":
                class_status[cls] = status
            elif status in ("fail", "uxsuccess"):
                extra_failures.append(test_id)  # cleanup of a class failed
            continue
        by_base[base_id(test_id)] = (test_id, status)

    for test_id, status in by_base.values():
        if status in ("success", "xfail"):
            passed.add(test_id)
        elif status == "skip":
            skipped.add(test_id)
        else:
            failed.append(test_id)

    # tests that never reported: attribute them to their class fixture
    # (setUpClass skip -> skipped, setUpClass error -> failed); tests with
    # no result at all (worker crash, run aborted) count as failed
    for test_id in expected:
        if base_id(test_id) in by_base:
            continue
        cls = base_id(test_id).rsplit(".", 1)[0]
        status = class_status.get(cls)
        if status == "skip":
            skipped.add(test_id)
        else:
            failed.append(test_id)

    # class fixtures whose class has no listed test (list unavailable)
    listed_classes = {base_id(t).rsplit(".", 1)[0] for t in expected}
    for cls, status in class_status.items():
        if cls in listed_classes:
            continue
        if status == "skip":
            skipped.add("setUpClass (%s)" % cls)
        elif status not in ("success", "xfail"):
            failed.append("setUpClass (%s)" % cls)

    failed_ids = sorted(set(failed)) + sorted(extra_failures)
    if args.failed_out:
        with open(args.failed_out, "w") as f:
            for test_id in failed_ids:
                f.write(test_id + "\n")
    print("tempest %s: %d passed, %d failed, %d skipped"
          % (args.service, len(passed), len(failed_ids), len(skipped)))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conf")
    c.add_argument("--workspace", required=True)
    c.add_argument("--service", required=True)
    c.add_argument("--out", required=True)
    sub.add_parser("preflight")
    s = sub.add_parser("summarize")
    s.add_argument("--subunit")
    s.add_argument("--tests")
    s.add_argument("--service", required=True)
    s.add_argument("--failed-out")
    args = p.parse_args(argv)
    return {"conf": cmd_conf, "preflight": cmd_preflight,
            "summarize": cmd_summarize}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

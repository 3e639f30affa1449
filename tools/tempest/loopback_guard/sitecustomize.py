"""Loopback-only network guard for test processes (tempest and its workers).

tools/tempest/run.sh puts this directory on PYTHONPATH and sets
FERROSTACK_LOOPBACK_GUARD=1, so every Python process of the run (tempest,
stestr and each stestr worker) imports it at start-up. While active it
refuses, with an error naming the target:

* TCP/UDP connections (connect/connect_ex/sendto) to any address outside
  127.0.0.0/8 and ::1;
* name lookups of anything but loopback names and IP literals, so no DNS
  query leaves the machine either.

A test that tries to reach a catalog URL or a random URL that is not on
this machine therefore fails loudly instead of sending traffic anywhere.
Unix sockets are untouched.
"""

import ipaddress
import os
import socket

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost",
                   "ip6-loopback"}


def _host_str(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host


def _is_loopback(host):
    host = _host_str(host)
    if host is None:
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if getattr(addr, "ipv4_mapped", None) is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _refuse(what, target):
    msg = ("ferrostack loopback guard: refusing %s to %r (tests may only "
           "reach 127.0.0.1/::1; check the catalog and tempest.conf)"
           % (what, target))
    return PermissionError(msg)


def _install():
    inet = (socket.AF_INET, socket.AF_INET6)
    orig_connect = socket.socket.connect
    orig_connect_ex = socket.socket.connect_ex
    orig_sendto = socket.socket.sendto
    orig_getaddrinfo = socket.getaddrinfo
    orig_gethostbyname = socket.gethostbyname
    orig_gethostbyname_ex = socket.gethostbyname_ex

    def _check(sock, address, what):
        if sock.family in inet and isinstance(address, tuple):
            if not _is_loopback(address[0]):
                raise _refuse(what, address)

    def connect(self, address):
        _check(self, address, "connection")
        return orig_connect(self, address)

    def connect_ex(self, address):
        _check(self, address, "connection")
        return orig_connect_ex(self, address)

    def sendto(self, data, *args):
        if args:
            _check(self, args[-1], "datagram")
        return orig_sendto(self, data, *args)

    def _check_name(host):
        if host is None:  # passive/bind lookups (host=None) are local
            return
        if not _is_loopback(host):
            raise socket.gaierror(
                socket.EAI_NONAME,
                "ferrostack loopback guard: refusing to resolve %r"
                % (_host_str(host),))

    def getaddrinfo(host, *args, **kwargs):
        _check_name(host)
        return orig_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):
        _check_name(host)
        return orig_gethostbyname(host)

    def gethostbyname_ex(host):
        _check_name(host)
        return orig_gethostbyname_ex(host)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex


if os.environ.get("FERROSTACK_LOOPBACK_GUARD") == "1":
    _install()

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

One exception, for tempest's guest validation (SSH to a server's floating
IP): FERROSTACK_LOOPBACK_GUARD_ALLOW names the external network of the test
cloud, one CIDR (scripts/tempest-vm.sh sets it to the `public` network,
172.24.4.0/24, whose gateway is a bridge inside the run's private network
namespace). Connections to addresses in that network, and lookups of IP
literals in it, are allowed as well; names are still never resolved. The
CIDR must be a private (RFC 1918 / ULA) network no larger than a /16
(/48), else it is ignored with a message on stderr and only loopback is
allowed, so the setting cannot turn the guard into "allow everything".
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


class _BadAllowance(Exception):
    pass


def _allowed_network():
    """The one extra network FERROSTACK_LOOPBACK_GUARD_ALLOW names, or None."""
    text = os.environ.get("FERROSTACK_LOOPBACK_GUARD_ALLOW", "").strip()
    if not text:
        return None
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise _BadAllowance("FERROSTACK_LOOPBACK_GUARD_ALLOW=%r: %s" % (text, e))
    if not net.is_private or net.is_loopback or net.is_unspecified or (
            net.prefixlen < (16 if net.version == 4 else 48)):
        raise _BadAllowance(
            "FERROSTACK_LOOPBACK_GUARD_ALLOW=%r: only one private network "
            "no larger than /16 (IPv4) or /48 (IPv6) may be allowed" % text)
    return net


_ALLOWED = None  # set by _install()


def _is_loopback(host):
    """Loopback, or an address in the allowed test network."""
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
    if addr.is_loopback:
        return True
    return (_ALLOWED is not None and addr.version == _ALLOWED.version
            and addr in _ALLOWED)


def _refuse(what, target):
    also = " and %s" % _ALLOWED if _ALLOWED is not None else ""
    msg = ("ferrostack loopback guard: refusing %s to %r (tests may only "
           "reach 127.0.0.1/::1%s; check the catalog and tempest.conf)"
           % (what, target, also))
    return PermissionError(msg)


def _install():
    global _ALLOWED
    try:
        _ALLOWED = _allowed_network()
    except _BadAllowance as e:
        # Fail closed: no extra network, and say why on every refusal.
        _ALLOWED = None
        import sys
        print("ferrostack loopback guard: %s; allowing loopback only" % e,
              file=sys.stderr)
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

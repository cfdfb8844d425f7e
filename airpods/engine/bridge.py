"""Pin the MAC address of airpods' network bridge, as netavark 1.9 does and 1.4 does not.

A Linux bridge whose MAC was never set takes the lowest MAC of its ports. netavark before its
"force static mac on bridge interface" change (containers/netavark#833, 2023; Debian 12 ships
1.4.0) leaves it so: when a container whose port had the lowest MAC leaves the network, the
bridge's MAC changes, and every other container keeps the old one in its ARP entry for the
network's gateway. Its packets to the gateway (aardvark-dns there, and everything routed: a
peer, a remote) are lost until that entry is refreshed, which can take minutes. Seen as the
peers' loop test hanging (issue 22): A's gateway waited on DNS for its own llama-server after
two stand-in containers left A's network.

Setting the bridge's MAC once (to its current value) makes the kernel keep it
(addr_assign_type NET_ADDR_SET). Only for rootful Podman on this host, and only for the bridge
that holds the network's own gateway address: anything else is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915
SIOCSIFHWADDR = 0x8924
ARPHRD_ETHER = 1
NET_ADDR_SET = 3  # /sys/class/net/X/addr_assign_type: set by the user, kept by the kernel
SYS_NET = Path("/sys/class/net")


def ipv4_of(interface: str) -> str | None:
    """The interface's primary IPv4 address, or None."""
    request = struct.pack("16s24x", interface.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            answer = fcntl.ioctl(s, SIOCGIFADDR, request)
    except OSError:
        return None
    return socket.inet_ntoa(answer[20:24])


def set_mac(interface: str, mac: str) -> None:
    address = bytes.fromhex(mac.replace(":", ""))
    request = struct.pack("16sH14s8x", interface.encode()[:15], ARPHRD_ETHER, address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFHWADDR, request)


def pin_bridge_mac(interface: str, gateway: str, sys_net: Path = SYS_NET) -> bool:
    """Set `interface`'s MAC to its current value when it is a bridge holding `gateway` whose
    MAC still floats. True when it was pinned now; never raises."""
    base = sys_net / interface
    with contextlib.suppress(OSError, ValueError):
        if os.geteuid() != 0 or not (base / "bridge").is_dir():
            return False
        if int((base / "addr_assign_type").read_text()) == NET_ADDR_SET:
            return False
        if ipv4_of(interface) != gateway:
            return False
        set_mac(interface, (base / "address").read_text().strip())
        return True
    return False

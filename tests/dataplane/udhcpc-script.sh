#!/bin/sh
# udhcpc hook for the stand-in instances: apply the lease like a guest
# would (address, MTU, classless routes or the router option) and record
# what the DHCP server sent in $FS_LEASE_FILE for the test to check.
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        if [ -n "$staticroutes" ]; then
            set -- $staticroutes
            while [ $# -ge 2 ]; do
                ip route replace "$1" via "$2" dev "$interface"
                shift 2
            done
        elif [ -n "$router" ]; then
            for r in $router; do
                ip route replace default via "$r" dev "$interface"
                break
            done
        fi
        if [ -n "$FS_LEASE_FILE" ]; then
            printf 'ip=%s\nmask=%s\nrouter=%s\ndns=%s\nmtu=%s\nstaticroutes=%s\n' \
                "$ip" "$mask" "$router" "$dns" "$mtu" "$staticroutes" > "$FS_LEASE_FILE"
        fi
        ;;
esac
exit 0

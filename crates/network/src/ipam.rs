//! IP address management: CIDRs, allocation pools, gateways, overlap checks
//! and address allocation, for IPv4 and IPv6. Addresses are handled as
//! `u128` so both families share one code path.

use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: u128,
    pub prefix: u8,
    pub v6: bool,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn to_ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(v.into())
    } else {
        IpAddr::V4((v as u32).into())
    }
}

pub fn parse_ip(s: &str) -> Option<(u128, bool)> {
    let ip: IpAddr = s.parse().ok()?;
    Some((to_u128(ip), ip.is_ipv6()))
}

impl Cidr {
    /// Parse `a.b.c.d/n`; host bits must be zero (as Neutron insists).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a valid IP subnet"))?;
        let (addr, v6) = parse_ip(a).ok_or_else(|| format!("'{s}' is not a valid IP subnet"))?;
        let bits = if v6 { 128 } else { 32 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("'{s}' is not a valid IP subnet"))?;
        let c = Cidr { addr, prefix, v6 };
        if c.network() != addr {
            return Err(format!(
                "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
                Cidr {
                    addr: c.network(),
                    ..c
                }
            ));
        }
        Ok(c)
    }

    pub fn bits(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    fn mask(&self) -> u128 {
        let host_bits = (self.bits() - self.prefix) as u32;
        let all: u128 = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    pub fn network(&self) -> u128 {
        self.addr & self.mask()
    }

    pub fn last(&self) -> u128 {
        let host_bits = (self.bits() - self.prefix) as u32;
        let span = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        self.network() | span
    }

    pub fn contains(&self, a: u128, v6: bool) -> bool {
        v6 == self.v6 && a >= self.network() && a <= self.last()
    }

    pub fn overlaps(&self, o: &Cidr) -> bool {
        self.v6 == o.v6 && self.network() <= o.last() && o.network() <= self.last()
    }

    /// First and last usable host (IPv4 drops network and broadcast
    /// addresses; IPv6 drops the subnet-router anycast address).
    pub fn usable(&self) -> (u128, u128) {
        let (n, l) = (self.network(), self.last());
        if self.v6 {
            if self.prefix >= 127 {
                (n, l)
            } else {
                (n + 1, l)
            }
        } else if self.prefix >= 31 {
            (n, l)
        } else {
            (n + 1, l - 1)
        }
    }

    pub fn ip(&self, v: u128) -> String {
        to_ip(v, self.v6).to_string()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", to_ip(self.addr, self.v6), self.prefix)
    }
}

/// Default allocation pools: the usable range minus the gateway.
pub fn default_pools(c: &Cidr, gateway: Option<u128>) -> Vec<(u128, u128)> {
    let (first, last) = c.usable();
    match gateway {
        Some(g) if g >= first && g <= last => {
            let mut out = Vec::new();
            if g > first {
                out.push((first, g - 1));
            }
            if g < last {
                out.push((g + 1, last));
            }
            out
        }
        _ => vec![(first, last)],
    }
}

/// Why requested pools were refused (Neutron answers each differently).
#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    Invalid(String),
    OutOfBounds(String),
    Overlapping(String),
}

impl PoolError {
    pub fn message(&self) -> &str {
        match self {
            PoolError::Invalid(m) | PoolError::OutOfBounds(m) | PoolError::Overlapping(m) => m,
        }
    }
}

/// Validate requested pools: inside the CIDR, well-ordered, not overlapping
/// each other. Carries Neutron's messages.
pub fn validate_pools(c: &Cidr, pools: &[(u128, u128)]) -> Result<(), PoolError> {
    for (i, (s, e)) in pools.iter().enumerate() {
        if s > e {
            return Err(PoolError::Invalid(format!(
                "Allocation pool {}-{} is invalid: start is after end.",
                c.ip(*s),
                c.ip(*e)
            )));
        }
        let (first, last) = c.usable();
        if !c.contains(*s, c.v6) || !c.contains(*e, c.v6) || *s < first || *e > last {
            return Err(PoolError::OutOfBounds(format!(
                "The allocation pool {}-{} spans beyond the subnet cidr {c}.",
                c.ip(*s),
                c.ip(*e)
            )));
        }
        for (s2, e2) in &pools[i + 1..] {
            if s <= e2 && s2 <= e {
                return Err(PoolError::Overlapping(format!(
                    "Found overlapping allocation pools: {}-{} and {}-{}.",
                    c.ip(*s),
                    c.ip(*e),
                    c.ip(*s2),
                    c.ip(*e2)
                )));
            }
        }
    }
    Ok(())
}

/// The EUI-64 address of a MAC in an IPv6 /64 (SLAAC).
pub fn eui64(c: &Cidr, mac: &str) -> Option<u128> {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if b.len() != 6 || !c.v6 {
        return None;
    }
    let iid: [u8; 8] = [b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
    Some(c.network() | u64::from_be_bytes(iid) as u128)
}

/// The first address at or after `from` that lies in one of the pools.
pub fn next_in_pools(pools: &[(u128, u128)], from: u128) -> Option<u128> {
    pools
        .iter()
        .filter(|(_, e)| *e >= from)
        .map(|(s, _)| (*s).max(from))
        .min()
}

/// The first address of the pools not in `used`.
pub fn first_free(pools: &[(u128, u128)], used: &std::collections::HashSet<u128>) -> Option<u128> {
    for (s, e) in pools {
        let mut a = *s;
        loop {
            if !used.contains(&a) {
                return Some(a);
            }
            if a == *e {
                break;
            }
            a += 1;
            // Bound the scan on huge IPv6 pools.
            if a - s > 1_000_000 {
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_addresses() {
        let c = Cidr::parse("50.50.1.0/24").unwrap();
        let gw = c.network() + 1;
        let pools = default_pools(&c, Some(gw));
        assert_eq!(pools.len(), 1);
        assert_eq!(c.ip(pools[0].0), "50.50.1.2");
        assert_eq!(c.ip(pools[0].1), "50.50.1.254");

        let ext = Cidr::parse("192.168.100.0/24").unwrap();
        let (s, _) = parse_ip("192.168.100.110").unwrap();
        let (e, _) = parse_ip("192.168.100.130").unwrap();
        validate_pools(&ext, &[(s, e)]).unwrap();
        let mut used = HashSet::new();
        let a = first_free(&[(s, e)], &used).unwrap();
        assert_eq!(ext.ip(a), "192.168.100.110");
        used.insert(a);
        assert_eq!(
            ext.ip(first_free(&[(s, e)], &used).unwrap()),
            "192.168.100.111"
        );
    }

    #[test]
    fn validation() {
        assert!(Cidr::parse("10.0.0.5/24")
            .unwrap_err()
            .contains("10.0.0.0/24"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        let a = Cidr::parse("10.0.0.0/24").unwrap();
        let b = Cidr::parse("10.0.0.128/25").unwrap();
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&Cidr::parse("10.0.1.0/24").unwrap()));
        let (s, _) = parse_ip("10.0.1.5").unwrap();
        assert!(matches!(
            validate_pools(&a, &[(s, s + 3)]),
            Err(PoolError::OutOfBounds(_))
        ));
        let v6 = Cidr::parse("2001:db8::/64").unwrap();
        assert_eq!(
            v6.ip(eui64(&v6, "fa:16:3e:00:00:01").unwrap()),
            "2001:db8::f816:3eff:fe00:1"
        );
        assert_eq!(
            default_pools(&v6, Some(v6.network() + 1))[0].0,
            v6.network() + 2
        );
    }
}

//! `proxyprotocoltrusted`: the sources a vserver takes PROXY headers from, as addresses
//! (`127.0.0.2`, `::1`) and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`).
//!
//! An IPv4 client seen on an IPv6 listener (`::ffff:10.1.2.3`) matches IPv4 blocks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    network: IpAddr,
    prefix: u8,
}

impl Block {
    /// Whether `ip` is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(ip).into(), self.prefix, 32) == u32::from(net).into()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `bits` (an address `width` bits wide) with all but the first `prefix` bits cleared.
fn masked(bits: u128, prefix: u8, width: u32) -> u128 {
    let host_bits = width - u32::from(prefix);
    if host_bits >= 128 {
        0
    } else {
        bits >> host_bits << host_bits
    }
}

impl FromStr for Block {
    type Err = String;

    fn from_str(text: &str) -> Result<Block, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| {
            format!("`{text}` is not an IP address or CIDR block (such as 10.0.0.0/8)")
        })?;
        let width: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0..={width}"))?,
        };
        let block = Block { network, prefix };
        let bits = match network {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        if masked(bits, prefix, u32::from(width)) != bits {
            return Err(format!(
                "`{text}` has host bits set; the block is {}",
                Block {
                    network: unmask(network, prefix, width),
                    prefix,
                }
            ));
        }
        Ok(block)
    }
}

fn unmask(network: IpAddr, prefix: u8, width: u8) -> IpAddr {
    match network {
        IpAddr::V4(v4) => {
            let bits = masked(u32::from(v4).into(), prefix, width.into()) as u32;
            IpAddr::from(bits.to_be_bytes())
        }
        IpAddr::V6(v6) => IpAddr::from(masked(u128::from(v6), prefix, width.into()).to_be_bytes()),
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A vserver's trusted sources: one block or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSources(Vec<Block>);

impl TrustedSources {
    pub fn new(blocks: Vec<Block>) -> TrustedSources {
        TrustedSources(blocks)
    }

    /// Whether a connection from `ip` must (and may) start with a PROXY header.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_and_single_addresses_match_what_they_cover() {
        let trusted = TrustedSources::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        assert!(trusted.contains(ip("10.255.0.1")));
        assert!(trusted.contains(ip("127.0.0.2")));
        assert!(trusted.contains(ip("::ffff:127.0.0.2")));
        assert!(trusted.contains(ip("2001:db8:1::5")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(!trusted.contains(ip("127.0.0.1")));
        assert!(!trusted.contains(ip("2001:db9::1")));
        let everything: Block = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.9")));
        assert!(!everything.contains(ip("::1")));
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        let err = "10.0.0.1/8".parse::<Block>().unwrap_err();
        assert!(
            err.contains("host bits set; the block is 10.0.0.0/8"),
            "{err}"
        );
        let err = "10.0.0.0/33".parse::<Block>().unwrap_err();
        assert!(err.contains("0..=32"), "{err}");
        let err = "ten".parse::<Block>().unwrap_err();
        assert!(err.contains("not an IP address"), "{err}");
        assert!("::/0".parse::<Block>().is_ok());
    }
}

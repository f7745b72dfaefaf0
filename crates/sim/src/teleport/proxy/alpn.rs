//! The ALPN protocol names the Proxy routes by. The Auth route carries the cluster it is
//! meant for: `teleport-auth@` + lowercase hex of the cluster name + `.teleport.cluster.local`.

/// Prefix of the protocol the Proxy forwards, still encrypted, to the Auth Service.
pub const AUTH_PREFIX: &str = "teleport-auth@";
/// The reverse-tunnel handler's protocol.
pub const REVERSE_TUNNEL: &str = "teleport-reversetunnel";
pub const H2: &str = "h2";
pub const HTTP1: &str = "http/1.1";
/// The suffix that marks an encoded cluster name.
const CLUSTER_SUFFIX: &str = ".teleport.cluster.local";

/// The Auth route's protocol for `cluster` (what a client offers first).
pub fn auth_alpn(cluster: &str) -> String {
    format!(
        "{AUTH_PREFIX}{}{CLUSTER_SUFFIX}",
        hex::encode(cluster.as_bytes())
    )
}

/// The cluster named after [`AUTH_PREFIX`]; the error says why the Proxy would close.
pub fn cluster_of(encoded: &str) -> Result<String, String> {
    let Some(hex_part) = encoded.strip_suffix(CLUSTER_SUFFIX) else {
        return Err(format!("{encoded:?} does not end in {CLUSTER_SUFFIX}"));
    };
    let bytes = hex::decode(hex_part).map_err(|e| format!("{encoded:?} is not hex: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{encoded:?} does not name a UTF-8 cluster"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_name_is_hex_encoded_with_the_local_suffix() {
        assert_eq!(
            auth_alpn("tenant.teleport.sh"),
            "teleport-auth@74656e616e742e74656c65706f72742e7368.teleport.cluster.local"
        );
        let name = auth_alpn("c.test");
        let encoded = name.strip_prefix(AUTH_PREFIX).unwrap();
        assert_eq!(cluster_of(encoded).unwrap(), "c.test");
        assert!(cluster_of("63").is_err());
        assert!(cluster_of("zz.teleport.cluster.local").is_err());
        assert!(cluster_of("ff.teleport.cluster.local").is_err());
    }
}

//! The cluster-name encoding of Teleport's ALPN routing: `teleport-auth@` followed by the
//! lowercase hex of the cluster name and `.teleport.cluster.local` (docs/teleport-proxy.md, "TLS routing to Auth").

use crate::teleport::tls::SERVER_NAME;

/// The ALPN prefix the Proxy forwards, undecrypted, to the Auth Service.
pub const AUTH_ALPN_PREFIX: &str = "teleport-auth@";
/// The ALPN of the reverse-tunnel handler; only used to test for ALPN-stripping fronts.
pub const REVERSE_TUNNEL_ALPN: &str = "teleport-reversetunnel";
/// HTTP/2, which the Auth Service's gRPC server negotiates.
pub const H2_ALPN: &str = "h2";

/// `tenant.teleport.sh` → `74656e616e742e74656c65706f72742e7368.teleport.cluster.local`.
pub fn encode_cluster_name(cluster: &str) -> String {
    format!("{}.{SERVER_NAME}", hex::encode(cluster.as_bytes()))
}

/// The inverse of [`encode_cluster_name`]; the `.teleport.cluster.local` suffix is required.
pub fn decode_cluster_name(encoded: &str) -> Result<String, String> {
    let suffix = format!(".{SERVER_NAME}");
    let hex_part = encoded
        .strip_suffix(&suffix)
        .ok_or_else(|| format!("{encoded:?}: no cluster name is encoded (no {suffix} suffix)"))?;
    let bytes = hex::decode(hex_part)
        .map_err(|e| format!("{encoded:?}: the cluster name is not hex ({e})"))?;
    String::from_utf8(bytes).map_err(|_| format!("{encoded:?}: the cluster name is not UTF-8"))
}

/// The ALPN that routes to `cluster`'s Auth Service through its Proxy.
pub fn auth_alpn(cluster: &str) -> String {
    format!("{AUTH_ALPN_PREFIX}{}", encode_cluster_name(cluster))
}

/// The ALPN list of the TLS-routing handshake: the auth route first, then `h2` (the Proxy
/// matches the client's protocols in the client's order, so `h2` first would reach the web
/// server instead).
pub fn routing_alpn(cluster: &str) -> Vec<Vec<u8>> {
    vec![auth_alpn(cluster).into_bytes(), H2_ALPN.as_bytes().to_vec()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_cloud_tenant_like_teleports_own_example() {
        assert_eq!(
            encode_cluster_name("tenant.teleport.sh"),
            "74656e616e742e74656c65706f72742e7368.teleport.cluster.local"
        );
        assert_eq!(
            auth_alpn("tenant.teleport.sh"),
            "teleport-auth@74656e616e742e74656c65706f72742e7368.teleport.cluster.local"
        );
    }

    #[test]
    fn decoding_round_trips_and_requires_the_suffix() {
        for name in ["sim.teleport.test", "a", "ünïcode.example", ""] {
            assert_eq!(
                decode_cluster_name(&encode_cluster_name(name)).unwrap(),
                name
            );
        }
        let bare = hex::encode("tenant.teleport.sh");
        assert!(
            decode_cluster_name(&bare)
                .unwrap_err()
                .contains("no cluster name is encoded")
        );
        assert!(
            decode_cluster_name("zz.teleport.cluster.local")
                .unwrap_err()
                .contains("not hex")
        );
        assert!(
            decode_cluster_name("ff.teleport.cluster.local")
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn the_routing_alpn_list_puts_the_auth_route_before_h2() {
        let list = routing_alpn("c");
        assert_eq!(
            list,
            vec![
                b"teleport-auth@63.teleport.cluster.local".to_vec(),
                b"h2".to_vec()
            ]
        );
    }
}

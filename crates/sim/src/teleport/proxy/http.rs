//! The Proxy's web side: `/webapi/find` and `/webapi/ping` (unauthenticated discovery, shaped
//! like Teleport's), and `/webapi/connectionupgrade`, which validates the WebSocket request,
//! answers `101`, and feeds the unmasked binary-frame stream back into the ALPN router.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::ws::{
    self, OP_CLOSE, PongHook, SUBPROTOCOL_ALPN, SUBPROTOCOL_ALPN_PING, UPGRADE_PATH, accept_key,
};
use super::{Ctx, UpgradeRecord};

type Body = Full<Bytes>;

/// Serves HTTP/1.1 or HTTP/2 (by ALPN) on a terminated TLS stream, upgrades allowed.
pub(crate) async fn serve<S>(ctx: Arc<Ctx>, io: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(ctx, req)) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .await
    {
        tracing::debug!("proxy sim: HTTP connection ended: {e}");
    }
}

fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/webapi/find" if req.method() == http::Method::GET => json(find(&ctx, false)),
        "/webapi/ping" if req.method() == http::Method::GET => json(find(&ctx, true)),
        UPGRADE_PATH => upgrade(ctx, req),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The discovery answer (`auth` only on `/webapi/ping`).
fn find(ctx: &Ctx, with_auth: bool) -> serde_json::Value {
    let addr = ctx.addr.to_string();
    let mut v = serde_json::json!({
        "proxy": {
            "kube": {"enabled": false},
            "ssh": {
                "listen_addr": addr,
                "web_listen_addr": addr,
                "public_addr": addr,
            },
            "db": {},
            "tls_routing_enabled": ctx.opts.tls_routing_enabled,
            "assist_enabled": false,
        },
        "server_version": ctx.opts.server_version,
        "min_client_version": "17.0.0",
        "cluster_name": ctx.find_cluster(),
        "edition": "oss",
        "fips": false,
    });
    if with_auth {
        v["auth"] =
            serde_json::json!({"type": "local", "second_factor": "otp", "local": {"name": ""}});
    }
    v
}

fn json(v: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("a valid response")
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from(msg.to_string())))
        .expect("a valid response")
}

fn tokens(req: &Request<Incoming>, name: header::HeaderName) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Checks the request like the real server (GET, `Upgrade: websocket`, `Connection:
/// upgrade`, version 13, a 16-byte key), answers 101, and routes the framed stream.
fn upgrade(ctx: Arc<Ctx>, mut req: Request<Incoming>) -> Response<Body> {
    ctx.records().upgrades.push(UpgradeRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    });
    if req.method() != http::Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the connection upgrade needs GET",
        );
    }
    if !tokens(&req, header::UPGRADE)
        .iter()
        .any(|t| t == "websocket")
    {
        return text(StatusCode::BAD_REQUEST, "Upgrade: websocket is required");
    }
    if !tokens(&req, header::CONNECTION)
        .iter()
        .any(|t| t == "upgrade")
    {
        return text(StatusCode::BAD_REQUEST, "Connection: Upgrade is required");
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return text(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version: 13 is required",
        );
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let key_ok = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .is_ok_and(|k| k.len() == 16);
    if !key_ok {
        return text(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be 16 bytes in base64",
        );
    }
    let offered = tokens(&req, header::SEC_WEBSOCKET_PROTOCOL);
    let chosen = [SUBPROTOCOL_ALPN_PING, SUBPROTOCOL_ALPN]
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let stop = ctx.shutdown.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::debug!("proxy sim: upgrade failed: {e}"),
        };
        let Some(chosen) = chosen else {
            // An unknown sub-protocol: a close frame with status 1003 (unsupported data).
            let mut io = upgraded;
            let _ = io
                .write_all(&ws::server_frame(OP_CLOSE, &ws::close_payload(1003)))
                .await;
            return;
        };
        let pings = (chosen == SUBPROTOCOL_ALPN_PING).then(|| {
            let rec = ctx.clone();
            let hook: PongHook = Box::new(move |p| rec.records().pongs.push(p.to_vec()));
            (ctx.opts.ping_interval, hook)
        });
        let stream = ws::serve(upgraded, pings);
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = super::router::route(ctx, Box::new(stream), true) => {}
        }
    });
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key(&key));
    if let Some(p) = chosen {
        resp = resp.header(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp.body(Full::new(Bytes::new()))
        .expect("a valid response")
}

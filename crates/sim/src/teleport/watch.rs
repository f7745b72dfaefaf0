//! WatchEvents: per-kind permission checks (with AllowPartialSuccess), one INIT listing the
//! confirmed kinds, then PUT/DELETE events from the broadcast channel, filtered like
//! Teleport (`id`/`user`/`state`, PUT only). A watcher that falls behind the broadcast
//! buffer, or is ended by the fault switchboard or shutdown, gets `Unavailable`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::model::{KIND_ACCESS_REQUEST, RequestState, UnknownState};
use super::rbac::RoleSet;
use super::state::SimEvent;
use teleport_mattermost_proto::{proto, types};

pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

/// A granted kind with its PUT filter.
#[derive(Debug, Clone)]
pub(crate) struct Granted {
    kind: String,
    id: Option<String>,
    user: Option<String>,
    state: RequestState,
}

impl Granted {
    fn matches(&self, ev: &SimEvent) -> bool {
        if self.kind != ev.kind {
            return false;
        }
        match (&ev.request, ev.is_put) {
            (Some((id, user, state)), true) => {
                self.id.as_ref().is_none_or(|x| x == id)
                    && self.user.as_ref().is_none_or(|x| x == user)
                    && (self.state == RequestState::None || self.state == *state)
            }
            _ => true,
        }
    }
}

/// Checks the watch request; returns the granted kinds and the INIT event.
pub(crate) fn authorize(
    caller: &str,
    roles: &RoleSet,
    watch: &proto::Watch,
) -> Result<(Vec<Granted>, proto::Event), Status> {
    if watch.kinds.is_empty() {
        return Err(Status::permission_denied("can't setup global watch"));
    }
    let mut granted = Vec::new();
    let mut confirmed = Vec::new();
    for k in &watch.kinds {
        let own_requests =
            k.kind == KIND_ACCESS_REQUEST && k.filter.get("user").is_some_and(|u| u == caller);
        if !own_requests && let Err(e) = roles.check(&k.kind, &["read"]) {
            if watch.allow_partial_success {
                continue;
            }
            return Err(e);
        }
        granted.push(parse_filter(&k.kind, &k.filter)?);
        confirmed.push(k.clone());
    }
    if granted.is_empty() {
        return Err(Status::invalid_argument(
            "none of the requested kinds can be watched",
        ));
    }
    let init = proto::Event {
        r#type: proto::Operation::Init as i32,
        resource: Some(proto::event::Resource::WatchStatus(types::WatchStatusV1 {
            kind: "watch_status".into(),
            sub_kind: String::new(),
            version: "v1".into(),
            metadata: Some(types::Metadata {
                name: "watch_status".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            spec: Some(types::WatchStatusSpecV1 { kinds: confirmed }),
        })),
    };
    Ok((granted, init))
}

fn parse_filter(kind: &str, filter: &HashMap<String, String>) -> Result<Granted, Status> {
    let mut g = Granted {
        kind: kind.to_string(),
        id: None,
        user: None,
        state: RequestState::None,
    };
    if kind != KIND_ACCESS_REQUEST {
        return Ok(g);
    }
    for (k, v) in filter {
        match k.as_str() {
            "id" => g.id = Some(v.clone()).filter(|s| !s.is_empty()),
            "user" => g.user = Some(v.clone()).filter(|s| !s.is_empty()),
            "state" => {
                g.state = v
                    .parse()
                    .map_err(|e: UnknownState| Status::invalid_argument(e.to_string()))?
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown filter key {other}"
                )));
            }
        }
    }
    Ok(g)
}

struct Watcher {
    init: Option<proto::Event>,
    rx: broadcast::Receiver<Arc<SimEvent>>,
    granted: Vec<Granted>,
    kill: CancellationToken,
    shutdown: CancellationToken,
    done: bool,
}

/// The event stream of one watcher. `rx` must be subscribed before INIT is built, so no
/// change between INIT and the first event is lost.
pub(crate) fn stream(
    init: proto::Event,
    rx: broadcast::Receiver<Arc<SimEvent>>,
    granted: Vec<Granted>,
    kill: CancellationToken,
    shutdown: CancellationToken,
) -> EventStream {
    let w = Watcher {
        init: Some(init),
        rx,
        granted,
        kill,
        shutdown,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(w, |mut w| async move {
        if w.done {
            return None;
        }
        if let Some(init) = w.init.take() {
            return Some((Ok(init), w));
        }
        loop {
            let end = |w: &mut Watcher, msg: String| {
                w.done = true;
                Err(Status::unavailable(msg))
            };
            tokio::select! {
                biased;
                _ = w.kill.cancelled() => {
                    let e = end(&mut w, "watcher closed: the auth server is restarting".into());
                    return Some((e, w));
                }
                _ = w.shutdown.cancelled() => {
                    let e = end(&mut w, "watcher closed: the auth server is shutting down".into());
                    return Some((e, w));
                }
                r = w.rx.recv() => match r {
                    Ok(ev) if w.granted.iter().any(|g| g.matches(&ev)) => {
                        return Some((Ok(ev.event.clone()), w));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        let e = end(&mut w, format!(
                            "watcher queue overflow: {n} events were dropped because the client reads too slowly; watch again and re-list"
                        ));
                        return Some((e, w));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    }))
}

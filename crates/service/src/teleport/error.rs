//! `TeleportError`: what a caller of the Teleport client branches on, mapped from gRPC
//! status codes the way Teleport's `trace` package maps them, with the server's
//! message kept verbatim.

use std::error::Error as _;
use std::time::Duration;

use tonic::Code;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeleportError {
    /// `NotFound`: the request, user or data does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// `AlreadyExists`.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// `PermissionDenied` (Teleport's AccessDenied): fix the plugin's role, or tell the user.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// `FailedPrecondition` (Teleport's CompareFailed): someone else wrote first; re-read.
    #[error("compare failed: {0}")]
    CompareFailed(String),
    /// `InvalidArgument` (Teleport's BadParameter).
    #[error("bad parameter: {0}")]
    BadParameter(String),
    /// `Unavailable`, a broken connection or a timeout: retry with backoff.
    #[error("connection problem: {0}")]
    ConnectionProblem(String),
    /// Anything else, with its gRPC code.
    #[error("Teleport answered {code:?}: {message}")]
    Other { code: Code, message: String },
}

impl TeleportError {
    /// The service's one rule for "would the same call, made again later, likely succeed
    /// without anyone changing anything?" — used by start-up, the watch, the bridge's
    /// plugin-data port and the review flow alike.
    ///
    /// Transient: connection problems (`Unavailable`, a broken transport, our own timeout),
    /// and the codes a healthy-but-busy or restarting Teleport answers with:
    /// `DeadlineExceeded` (the server gave up within the deadline we sent), `Cancelled` (the
    /// server cancelled the call, e.g. while shutting down), `ResourceExhausted` (rate
    /// limit), `Aborted`, and `Unknown`/`Internal` (what Teleport ends streams and backend
    /// hiccups with on restarts and cache re-initialisation). Waiting is the fix for all.
    ///
    /// Permanent: everything that needs someone to act or describes the data itself —
    /// `NotFound`, `AlreadyExists`, `PermissionDenied`, `InvalidArgument`, `Unimplemented`,
    /// `Unauthenticated`, `OutOfRange`, `DataLoss` — and `FailedPrecondition`
    /// ([`TeleportError::CompareFailed`]): a compare-and-swap conflict is not cured by
    /// repeating the same write; the caller re-reads first.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ConnectionProblem(_) => true,
            Self::Other { code, .. } => matches!(
                code,
                Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::Unknown
                    | Code::Internal
            ),
            Self::NotFound(_)
            | Self::AlreadyExists(_)
            | Self::PermissionDenied(_)
            | Self::CompareFailed(_)
            | Self::BadParameter(_) => false,
        }
    }

    /// The server's message (or ours for local failures), without the category prefix.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::PermissionDenied(m)
            | Self::CompareFailed(m)
            | Self::BadParameter(m)
            | Self::ConnectionProblem(m) => m,
            Self::Other { message, .. } => message,
        }
    }

    pub(crate) fn timeout(what: &str, after: Duration) -> Self {
        Self::ConnectionProblem(format!(
            "{what}: no answer from Teleport within {}s",
            after.as_secs_f32()
        ))
    }

    pub(crate) fn invalid_response(what: &str, detail: impl std::fmt::Display) -> Self {
        Self::Other {
            code: Code::Internal,
            message: format!("{what}: unexpected answer from Teleport: {detail}"),
        }
    }
}

impl From<tonic::Status> for TeleportError {
    fn from(s: tonic::Status) -> Self {
        let message = s.message().to_string();
        match s.code() {
            Code::NotFound => Self::NotFound(message),
            Code::AlreadyExists => Self::AlreadyExists(message),
            Code::PermissionDenied => Self::PermissionDenied(message),
            Code::FailedPrecondition => Self::CompareFailed(message),
            Code::InvalidArgument => Self::BadParameter(message),
            Code::Unavailable => Self::ConnectionProblem(message),
            // tonic reports a broken connection or its own timeout with these codes; tell
            // them apart from a server-side error by the error chain.
            Code::Unknown | Code::Internal | Code::Cancelled if is_transport(&s) => {
                Self::ConnectionProblem(describe_transport(&s))
            }
            code => Self::Other { code, message },
        }
    }
}

fn is_transport(s: &tonic::Status) -> bool {
    if s.message().contains("Timeout expired") {
        return true;
    }
    let mut cur = s.source();
    while let Some(e) = cur {
        if e.is::<std::io::Error>() || e.is::<hyper::Error>() || e.is::<tonic::transport::Error>() {
            return true;
        }
        cur = e.source();
    }
    false
}

fn describe_transport(s: &tonic::Status) -> String {
    let mut out = s.message().to_string();
    let mut cur = s.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_like_teleport_trace() {
        let cases = [
            (Code::NotFound, "NotFound"),
            (Code::AlreadyExists, "AlreadyExists"),
            (Code::PermissionDenied, "PermissionDenied"),
            (Code::FailedPrecondition, "CompareFailed"),
            (Code::InvalidArgument, "BadParameter"),
            (Code::Unavailable, "ConnectionProblem"),
            (Code::ResourceExhausted, "Other"),
        ];
        for (code, want) in cases {
            let e = TeleportError::from(tonic::Status::new(code, "server text"));
            assert!(format!("{e:?}").starts_with(want), "{code:?} -> {e:?}");
            assert_eq!(e.message(), "server text");
        }
    }

    #[test]
    fn every_grpc_code_is_classified_transient_or_permanent() {
        let transient = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Unknown,
            Code::Internal,
        ];
        let permanent = [
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::Unimplemented,
            Code::Unauthenticated,
            Code::OutOfRange,
            Code::DataLoss,
        ];
        for code in transient {
            let e = TeleportError::from(tonic::Status::new(code, "server text"));
            assert!(e.is_transient(), "{code:?} -> {e:?} should be transient");
        }
        for code in permanent {
            let e = TeleportError::from(tonic::Status::new(code, "server text"));
            assert!(!e.is_transient(), "{code:?} -> {e:?} should be permanent");
        }
        // Every code but Ok is in one list or the other.
        assert_eq!(transient.len() + permanent.len(), 16);
        assert!(TeleportError::timeout("Ping", Duration::from_secs(1)).is_transient());
    }

    #[test]
    fn an_io_error_under_unknown_is_a_connection_problem() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let s = tonic::Status::from_error(Box::new(io));
        let e = TeleportError::from(s);
        assert!(e.is_transient(), "{e:?}");
    }
}

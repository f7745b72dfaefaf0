//! Build identity, printed by `version` and exported as the build-info metric.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REF: Option<&str> = option_env!("TM_GIT_REF");
pub const RUSTC: &str = env!("TM_RUSTC_VERSION");

/// `teleport-mattermost v<semver> git:<sha> rustc <version>`; the git part only when known.
pub fn line() -> String {
    match GIT_REF {
        Some(g) if !g.is_empty() => format!("teleport-mattermost v{VERSION} git:{g} rustc {RUSTC}"),
        _ => format!("teleport-mattermost v{VERSION} rustc {RUSTC}"),
    }
}

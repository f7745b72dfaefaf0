//! Secret values (tokens, HMAC keys) that may be written inline or, starting with `/`, as the
//! path of a file holding them (the upstream convention, handy for Kubernetes secrets).

use std::io::Read;
use std::path::Path;

use secrecy::SecretString;

/// Files larger than this are not secrets; refusing them avoids reading a wrong path whole.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Returns the secret, or a message naming the file and how to fix it (never the value).
pub fn load(value: &str) -> Result<SecretString, String> {
    if !value.starts_with('/') {
        let v = value.trim();
        return if v.is_empty() {
            Err("is empty".to_string())
        } else {
            Ok(SecretString::from(v.to_string()))
        };
    }
    let path = Path::new(value);
    let mut content = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE).read_to_string(&mut content))
        .map_err(|e| {
            format!(
                "cannot read the file {}: {e}; create it (readable by the service) or write the value itself instead of a path",
                path.display()
            )
        })?;
    let v = content.trim();
    if v.is_empty() {
        return Err(format!(
            "the file {} is empty; put the secret in it",
            path.display()
        ));
    }
    Ok(SecretString::from(v.to_string()))
}

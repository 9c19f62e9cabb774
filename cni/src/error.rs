//! The CNI error result: a code from the spec, a message and details, printed as JSON on
//! stdout with a non-zero exit (CNI spec 1.1, "Error").

use serde::Serialize;

/// The error codes the CNI spec defines (1-99 are the spec's).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration (the message names key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (the runtime need not clean up).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN: u32 = 11;
    /// STATUS: the plugin cannot take new attachments now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: the plugin is not available and existing attachments may have lost their
    /// datapath.
    pub const NOT_AVAILABLE_EXISTING_LOST: u32 = 51;
}

/// One failure, as the runtime is told of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The error JSON, in `version` (the request's, or the newest when it had none).
    pub fn to_json(&self, version: &str) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["cniVersion"] = version.into();
        serde_json::to_string(&v).unwrap_or_default()
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

pub type CniResult<T> = Result<T, CniError>;

/// Shorthands for the common codes.
pub fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_json_has_the_spec_fields() {
        let e = CniError::new(code::INVALID_CONFIG, "bridge is missing").with_details("x");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "cniVersion": "1.0.0", "code": 7, "msg": "bridge is missing", "details": "x"
            })
        );
        let v: serde_json::Value =
            serde_json::from_str(&CniError::new(1, "m").to_json("1.1.0")).unwrap();
        assert!(v.get("details").is_none());
    }
}

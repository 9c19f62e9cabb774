//! Errors of control operations, mapped one to one onto gRPC status codes.

use std::fmt;

/// What kind of failure, as gRPC clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request is malformed (INVALID_ARGUMENT).
    Invalid,
    /// A named object does not exist (NOT_FOUND).
    NotFound,
    /// An object of that name exists already (ALREADY_EXISTS).
    Exists,
    /// The request conflicts with the current state (FAILED_PRECONDITION).
    Conflict,
    /// The switch could not do it (INTERNAL), e.g. the dataplane did not respond.
    Internal,
    /// The switch is not serving now (UNAVAILABLE), e.g. shutting down.
    Unavailable,
}

/// A failed control operation: a code and a one-line message that names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

/// Result of a control operation.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::Invalid,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::NotFound,
            message: message.into(),
        }
    }
    pub fn exists(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::Exists,
            message: message.into(),
        }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::Conflict,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::Internal,
            message: message.into(),
        }
    }
}

impl ApiError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            code: Code::Unavailable,
            message: message.into(),
        }
    }
}

/// INVALID_ARGUMENT naming `field` when a required string field is empty.
pub fn required(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty() {
        return Err(ApiError::invalid(format!("{field} is required")));
    }
    Ok(())
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        // Messages are one line: clients print them as such.
        let msg = e.message.replace(['\n', '\r'], " ");
        match e.code {
            Code::Invalid => tonic::Status::invalid_argument(msg),
            Code::NotFound => tonic::Status::not_found(msg),
            Code::Exists => tonic::Status::already_exists(msg),
            Code::Conflict => tonic::Status::failed_precondition(msg),
            Code::Internal => tonic::Status::internal(msg),
            Code::Unavailable => tonic::Status::unavailable(msg),
        }
    }
}

//! The API server's failure `Status` objects (`kind: Status`, `apiVersion: v1`), as kube-apiserver
//! writes them.

use serde_json::{Value, json};

/// A resource the test server serves, named the way `Status.details` and messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `pods` in the core group.
    Pods,
    /// `network-attachment-definitions` in `k8s.cni.cncf.io`.
    Nads,
    /// `events` in the core group (`v1`).
    CoreEvents,
    /// `events` in `events.k8s.io`.
    Events,
}

impl Resource {
    /// The plural resource name.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Nads => "network-attachment-definitions",
            Resource::CoreEvents | Resource::Events => "events",
        }
    }

    /// The API group; empty for the core group.
    pub(crate) fn group(self) -> &'static str {
        match self {
            Resource::Pods | Resource::CoreEvents => "",
            Resource::Nads => "k8s.cni.cncf.io",
            Resource::Events => "events.k8s.io",
        }
    }

    /// `plural` or `plural.group`, as the API server qualifies a resource in messages.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// `apiVersion` of objects of this resource.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Resource::Pods | Resource::CoreEvents => "v1",
            Resource::Nads => "k8s.cni.cncf.io/v1",
            Resource::Events => "events.k8s.io/v1",
        }
    }

    /// `kind` of objects of this resource.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Resource::Pods => "Pod",
            Resource::Nads => "NetworkAttachmentDefinition",
            Resource::CoreEvents | Resource::Events => "Event",
        }
    }
}

/// A failed API call: the HTTP code and the `Status` object that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiStatus {
    /// HTTP status code, repeated in `Status.code`.
    pub(crate) code: u16,
    /// `Status.reason`, a `metav1.StatusReason`.
    pub(crate) reason: &'static str,
    /// `Status.message`.
    pub(crate) message: String,
    /// `Status.details`; `{}` when `None`.
    pub(crate) details: Option<Value>,
}

impl ApiStatus {
    fn new(code: u16, message: impl Into<String>) -> ApiStatus {
        ApiStatus {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, resource: Resource, name: &str) -> ApiStatus {
        let mut details = json!({"name": name, "kind": resource.plural()});
        if !resource.group().is_empty() {
            details["group"] = json!(resource.group());
        }
        self.details = Some(details);
        self
    }

    /// 404 for a named object that does not exist.
    pub(crate) fn not_found(resource: Resource, name: &str) -> ApiStatus {
        let message = format!("{} \"{name}\" not found", resource.qualified());
        ApiStatus::new(404, message).about(resource, name)
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn no_route() -> ApiStatus {
        ApiStatus::new(404, "the server could not find the requested resource")
    }

    /// 409 `AlreadyExists` for a create whose name is taken.
    pub(crate) fn already_exists(resource: Resource, name: &str) -> ApiStatus {
        let message = format!("{} \"{name}\" already exists", resource.qualified());
        ApiStatus {
            reason: "AlreadyExists",
            ..ApiStatus::new(409, message)
        }
        .about(resource, name)
    }

    /// 409 `Conflict` for a failed precondition (resourceVersion or uid) on an update.
    pub(crate) fn conflict(resource: Resource, name: &str, why: &str) -> ApiStatus {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            resource.qualified()
        );
        ApiStatus::new(409, message).about(resource, name)
    }

    /// 400 `BadRequest`.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiStatus {
        ApiStatus::new(400, message)
    }

    /// 422 `Invalid` for an object that fails validation.
    pub(crate) fn invalid(resource: Resource, name: &str, why: &str) -> ApiStatus {
        let message = format!("{} \"{name}\" is invalid: {why}", resource.kind());
        ApiStatus::new(422, message).about(resource, name)
    }

    /// 415 `UnsupportedMediaType` for a body in a media type the route does not accept.
    pub(crate) fn unsupported_media_type(content_type: &str, accepted: &str) -> ApiStatus {
        let message = format!(
            "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: {accepted}"
        );
        ApiStatus::new(415, message)
    }

    /// 410 `Expired`: a watch resuming from a revision the server no longer has.
    pub(crate) fn gone(message: impl Into<String>) -> ApiStatus {
        ApiStatus::new(410, message)
    }

    /// A fault injected by a test: any code, with the reason the API server uses for it.
    pub(crate) fn injected(code: u16) -> ApiStatus {
        ApiStatus::new(code, format!("injected fault: HTTP {code}"))
    }

    /// The `Status` object sent as the response body.
    pub(crate) fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details.clone().unwrap_or_else(|| json!({})),
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(map) = status.as_object_mut()
        {
            map.remove("reason");
        }
        status
    }
}

/// The `metav1.StatusReason` kube-apiserver reports with an HTTP code.
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_objects() {
        let rows = [
            (
                "pod not found",
                ApiStatus::not_found(Resource::Pods, "x"),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"pods \"x\" not found","reason":"NotFound",
                    "details":{"name":"x","kind":"pods"},"code":404}),
            ),
            (
                "nad not found",
                ApiStatus::not_found(Resource::Nads, "n"),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"network-attachment-definitions.k8s.cni.cncf.io \"n\" not found",
                    "reason":"NotFound",
                    "details":{"name":"n","group":"k8s.cni.cncf.io","kind":"network-attachment-definitions"},
                    "code":404}),
            ),
            (
                "no route",
                ApiStatus::no_route(),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"the server could not find the requested resource","reason":"NotFound",
                    "details":{},"code":404}),
            ),
            (
                "injected 500",
                ApiStatus::injected(500),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"injected fault: HTTP 500","reason":"InternalError","details":{},"code":500}),
            ),
            (
                "injected code without a reason",
                ApiStatus::injected(502),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"injected fault: HTTP 502","details":{},"code":502}),
            ),
        ];
        for (name, status, want) in rows {
            assert_eq!(status.to_json(), want, "row {name:?}");
        }
    }
}

//! The HTTP front of the S3 API, between hyper and s3s. It answers what AWS decides before reading a request
//! (header size, URI, region), what s3s cannot express (ignored `Range` headers, character references for keys XML
//! cannot carry, 4xx for stalled and oversized XML bodies), times out stalled request bodies, and logs one line per
//! request: client errors at debug, server errors at ERROR under a rate limit.

mod keepalive;
mod precheck;
mod replay;
mod stall;
pub mod throttle;
mod xml_refs;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use s3s::service::S3Service;
use s3s::{Body, HttpError};

pub use stall::{BodyStalled, StallTimer};
pub use throttle::LogThrottle;

pub(crate) use replay::{Replayed, RequestInfo};
pub(crate) use xml_refs::{
    FLAG as CHAR_REFS_FLAG, escape as xml_escape, representable as xml_representable, well_formed as xml_well_formed,
};

use precheck::Refusal;
use stall::{BodyProgress, StallBody};

/// The largest XML request body (CompleteMultipartUpload's limit at AWS; DeleteObjects' is a little lower).
pub const XML_MAX_BODY: usize = 2_621_440;

/// S3's message for a request whose client stopped sending (`RequestTimeout`).
pub(crate) const REQUEST_TIMEOUT: &str = "Your socket connection to the server was not read from or written to within \
     the timeout period. Idle connections will be closed.";

/// Server-side failures logged per second at most; the next line logged says how many were dropped.
pub(crate) static SERVER_ERROR_LOG: LogThrottle = LogThrottle::new(10);

/// Settings of the front.
#[derive(Debug, Clone)]
pub struct FrontOptions {
    /// The region requests must be signed for.
    pub region: String,
    /// How long a request body may send nothing before the request fails with `RequestTimeout`.
    pub stall_timeout: Duration,
}

/// The S3 service behind its HTTP front; what the server hands to hyper.
#[derive(Clone)]
pub struct S3Front {
    service: S3Service,
    options: Arc<FrontOptions>,
}

impl std::fmt::Debug for S3Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Front").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Operations whose request body is streamed to the object (every other body is XML, read whole).
const STREAMING_OPS: [&str; 3] = ["PutObject", "UploadPart", "PostObject"];

/// The XML body of an S3 error: `Code`, `Message`, then `extra` elements in order (text escaped, control
/// characters replaced).
pub fn error_xml(code: &str, message: &str, extra: &[(&str, &str)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    let mut element = |name: &str, text: &str| {
        xml.push_str(&format!("<{name}>"));
        for c in text.chars() {
            match c {
                '&' => xml.push_str("&amp;"),
                '<' => xml.push_str("&lt;"),
                '>' => xml.push_str("&gt;"),
                c if c.is_control() => xml.push('?'),
                c => xml.push(c),
            }
        }
        xml.push_str(&format!("</{name}>"));
    };
    element("Code", code);
    element("Message", message);
    extra.iter().for_each(|(name, value)| element(name, value));
    xml.push_str("</Error>");
    xml
}

/// The response for an S3 error the front answers itself (no body for HEAD).
fn refusal_response(refusal: &Refusal, method: &Method, request_id: &str) -> http::Response<Body> {
    let mut extra: Vec<(&str, &str)> = refusal.extra.iter().map(|(name, value)| (*name, value.as_str())).collect();
    extra.push(("RequestId", request_id));
    let xml = error_xml(refusal.code, &refusal.message, &extra);
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(xml) };
    let mut response = http::Response::new(body);
    *response.status_mut() = refusal.status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

impl S3Front {
    /// The front of `service`.
    pub fn new(service: S3Service, options: FrontOptions) -> Self {
        S3Front { service, options: Arc::new(options) }
    }

    /// Serves one request.
    pub async fn call<B>(&self, req: http::Request<B>) -> Result<http::Response<Body>, HttpError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = format!("{:016X}", rand::random::<u64>());
        let (parts, body) = req.into_parts();
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        let range_ignored = matches!(method, Method::GET | Method::HEAD)
            && parts.headers.get(http::header::RANGE).is_some_and(replay::range_is_ignored);
        let info = Arc::new(RequestInfo { range_ignored, ..RequestInfo::default() });
        let mut response = match precheck::check(&parts, &self.options.region) {
            Some(refusal) => refusal_response(&refusal, &method, &request_id),
            None if keepalive::is_complete(&method, &uri) => {
                let (front, info, request_id) = (self.clone(), Arc::clone(&info), request_id.clone());
                let task = tokio::spawn(async move { front.dispatch(parts, body, &info, &request_id).await });
                keepalive::answer(task).await?
            }
            None => self.dispatch(parts, body, &info, &request_id).await?,
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amz-request-id", value);
        }
        log_request(&method, uri.path(), &info, response.status(), started.elapsed(), &request_id);
        Ok(response)
    }

    async fn dispatch<B>(
        &self,
        mut parts: http::request::Parts,
        body: B,
        info: &Arc<RequestInfo>,
        request_id: &str,
    ) -> Result<http::Response<Body>, HttpError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let replay = info.range_ignored.then(|| replay::replay_parts(&parts)).flatten();
        parts.extensions.insert(Arc::clone(info));
        let method = parts.method.clone();
        let progress = Arc::new(BodyProgress::default());
        let body = Body::http_body(StallBody::new(body, self.options.stall_timeout, Arc::clone(&progress)));
        let mut response = self.service.call(http::Request::from_parts(parts, body)).await?;
        if let (Some(mut parts), Some(user)) = (replay, info.replay_as.get().copied()) {
            parts.extensions.insert(Replayed(user));
            response = self.service.call(http::Request::from_parts(parts, Body::empty())).await?;
        }
        let op = info.op.get().map(String::as_str);
        if response.status().is_server_error() && progress.stalled.load(Ordering::Relaxed) {
            let refusal = Refusal::bad_request("RequestTimeout", REQUEST_TIMEOUT);
            return Ok(refusal_response(&refusal, &method, request_id));
        }
        let oversized_xml =
            progress.received.load(Ordering::Relaxed) > XML_MAX_BODY as u64 && op.is_some_and(reads_xml_body);
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR && oversized_xml {
            return Ok(refusal_response(&too_big(), &method, request_id));
        }
        // s3s answers a HEAD that names a range (or part) 200; AWS answers 206, as for the GET.
        if method == Method::HEAD
            && response.status() == StatusCode::OK
            && response.headers().contains_key(http::header::CONTENT_RANGE)
        {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        if response.headers_mut().remove(CHAR_REFS_FLAG).is_some() {
            response = response.map(|body| Body::http_body(xml_refs::CharRefBody::new(body)));
        }
        Ok(response)
    }
}

/// S3's answer to an XML body over [`XML_MAX_BODY`].
fn too_big() -> Refusal {
    let mut refusal = Refusal::bad_request("MaxMessageLengthExceeded", "Your request was too big.");
    refusal.extra.push(("MaxMessageLengthBytes", XML_MAX_BODY.to_string()));
    refusal
}

/// The S3 error for an XML body whose declared length is over [`XML_MAX_BODY`] (the access check refuses it before
/// a byte is read).
pub(crate) fn xml_too_big() -> s3s::S3Error {
    s3s::S3Error::with_message(s3s::S3ErrorCode::MaxMessageLengthExceeded, "Your request was too big.")
}

/// Whether `op` reads its request body as XML (so [`XML_MAX_BODY`] bounds it).
pub(crate) fn reads_xml_body(op: &str) -> bool {
    !STREAMING_OPS.contains(&op)
}

/// One line per request: debug for successes and client errors (501 included), ERROR (rate-limited) for server
/// errors.
fn log_request(
    method: &Method,
    path: &str,
    info: &RequestInfo,
    status: StatusCode,
    elapsed: Duration,
    request_id: &str,
) {
    // 501 NotImplemented answers a request for something this gateway does not do: the client's doing, not a fault.
    let suppressed = match status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
        true => match SERVER_ERROR_LOG.admit() {
            Some(suppressed) => Some(suppressed),
            None => return,
        },
        false if tracing::enabled!(tracing::Level::DEBUG) => None,
        false => return,
    };
    let path = &path[..path.floor_char_boundary(256)];
    let op = info.op.get().map_or("-", String::as_str);
    let user = info.user.get().map(|u| u.0);
    let ms = elapsed.as_millis() as u64;
    let status = status.as_u16();
    match suppressed {
        Some(suppressed) => {
            tracing::error!(%method, path, op, ?user, status, ms, request_id, suppressed, "request failed")
        }
        None => tracing::debug!(%method, path, op, ?user, status, ms, request_id, "request"),
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for S3Front {
    type Response = http::Response<Body>;
    type Error = HttpError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let front = self.clone();
        Box::pin(async move { front.call(req).await })
    }
}

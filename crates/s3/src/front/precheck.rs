//! What AWS refuses before it looks at a request's signature: an oversized header section, a URI that does not
//! decode, and a credential scope naming another region.

use http::StatusCode;
use http::request::Parts;

/// S3's limit on a request's header section, in bytes.
pub(crate) const MAX_HEADER_SECTION: usize = 8192;

/// An S3 error the front answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The S3 error code.
    pub code: &'static str,
    /// The message, as AWS words it.
    pub message: String,
    /// Elements AWS adds to this error's XML (`<Region>`, `<MaxSizeAllowed>`…).
    pub extra: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A 400 with `code` and `message` and no extra elements.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Refusal { status: StatusCode::BAD_REQUEST, code, message: message.into(), extra: Vec::new() }
    }
}

/// The first check `parts` fails, if any.
pub(crate) fn check(parts: &Parts, region: &str) -> Option<Refusal> {
    let section: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if section > MAX_HEADER_SECTION {
        let mut refusal = Refusal::bad_request(
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.",
        );
        refusal.extra.push(("MaxSizeAllowed", MAX_HEADER_SECTION.to_string()));
        return Some(refusal);
    }
    if percent_decode(parts.uri.path()).is_none() {
        return Some(Refusal::bad_request("InvalidURI", "Couldn't parse the specified URI."));
    }
    if two_auth_mechanisms(parts) {
        return Some(Refusal::bad_request(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified",
        ));
    }
    wrong_region(parts, region)
}

/// `text` with its `%XX` escapes decoded, or `None` if an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a request carries both an `Authorization` header and a presigned URL's signature.
fn two_auth_mechanisms(parts: &Parts) -> bool {
    let presigned = parts.uri.query().unwrap_or_default().split('&').any(|pair| {
        matches!(pair.split('=').next(), Some("X-Amz-Algorithm" | "X-Amz-Signature" | "Signature" | "AWSAccessKeyId"))
    });
    presigned && parts.headers.contains_key(http::header::AUTHORIZATION)
}

/// The region of a SigV4 credential scope (`AKID/date/region/service/aws4_request`), when the scope has one.
fn scope_region(credential: &str) -> Option<&str> {
    credential.split('/').nth(2)
}

/// AWS's answer to a request signed for another region: `AuthorizationHeaderMalformed` for header auth,
/// `AuthorizationQueryParametersError` for a presigned URL, each naming the expected region.
fn wrong_region(parts: &Parts, expected: &str) -> Option<Refusal> {
    let from_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("AWS4-HMAC-SHA256"))
        .and_then(|v| v.split_once("Credential="))
        .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or_default().to_owned());
    let from_query = || {
        parts.uri.query()?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "X-Amz-Credential").then(|| percent_decode(value)).flatten()
        })
    };
    let (credential, presigned) = match from_header {
        Some(credential) => (credential, false),
        None => (from_query()?, true),
    };
    let region = scope_region(&credential)?;
    if region == expected {
        return None;
    }
    // Echoed in the message: bounded (the front's XML writer escapes it).
    let region = &region[..region.floor_char_boundary(64)];
    let mut refusal = if presigned {
        Refusal::bad_request(
            "AuthorizationQueryParametersError",
            format!(
                "Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{expected}'"
            ),
        )
    } else {
        Refusal::bad_request(
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; the region '{region}' is wrong; expecting '{expected}'"),
        )
    };
    refusal.extra.push(("Region", expected.to_owned()));
    Some(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request").into_parts().0
    }

    const SIGNED_EU: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/s3/aws4_request, \
        SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn a_request_signed_for_another_region_names_the_expected_one() {
        let refusal = check(&parts("/b/k", &[("authorization", SIGNED_EU)]), "us-east-1").expect("refused");
        assert_eq!(refusal.code, "AuthorizationHeaderMalformed");
        assert_eq!(
            refusal.message,
            "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
        );
        assert_eq!(refusal.extra, [("Region", "us-east-1".to_owned())]);
        assert_eq!(check(&parts("/b/k", &[("authorization", SIGNED_EU)]), "eu-west-1"), None);
    }

    #[test]
    fn a_presigned_url_for_another_region_is_a_query_parameters_error() {
        let uri =
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Feu-west-1%2Fs3%2Faws4_request";
        let refusal = check(&parts(uri, &[]), "us-east-1").expect("refused");
        assert_eq!(refusal.code, "AuthorizationQueryParametersError");
        assert!(refusal.message.contains("the region 'eu-west-1' is wrong; expecting 'us-east-1'"));
        assert_eq!(check(&parts("/b/k?X-Amz-Credential=garbage", &[]), "us-east-1"), None, "left to s3s");
    }

    #[test]
    fn any_other_region_is_refused_even_an_empty_or_uppercase_one() {
        for region in ["", "US-EAST-1", "us_east_1", &"x".repeat(100)] {
            let auth = format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/s3/aws4_request, Signature=x");
            let refusal = check(&parts("/b/k", &[("authorization", &auth)]), "us-east-1").expect(region);
            assert_eq!(refusal.code, "AuthorizationHeaderMalformed");
        }
    }

    #[test]
    fn malformed_escapes_and_non_utf8_paths_are_invalid_uris() {
        for path in ["/b/a%ZZb", "/b/key%", "/b/%G0", "/b/%AE%8A-", "/b/%4"] {
            let refusal = check(&parts(path, &[]), "us-east-1").expect(path);
            assert_eq!((refusal.code, refusal.message.as_str()), ("InvalidURI", "Couldn't parse the specified URI."));
        }
        assert_eq!(check(&parts("/b/a%20b%2F%C3%A9", &[]), "us-east-1"), None);
    }

    #[test]
    fn a_presigned_url_with_an_authorization_header_is_refused() {
        let refusal =
            check(&parts("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256", &[("authorization", SIGNED_EU)]), "eu-west-1");
        assert_eq!(refusal.map(|r| r.code), Some("InvalidArgument"));
    }

    #[test]
    fn a_header_section_over_8_kib_is_refused() {
        let big = "x".repeat(MAX_HEADER_SECTION);
        let refusal = check(&parts("/b/k", &[("x-amz-meta-big", &big)]), "us-east-1").expect("refused");
        assert_eq!(refusal.code, "RequestHeaderSectionTooLarge");
        assert_eq!(refusal.extra, [("MaxSizeAllowed", "8192".to_owned())]);
    }
}

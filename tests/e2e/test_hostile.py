"""Hostile input against the real binary: each case asserts AWS's status and error code, and that nothing changed.

Covers the input defects of issue 8: the region, malformed URIs, keys XML cannot carry, oversized XML bodies and
metadata, empty digests, MFA delete, list arguments, Range headers AWS ignores, racing conditional writes, the log
level of client errors, and when the root secret is printed.
"""
import base64
import hashlib
import re
import threading
import urllib.error
import urllib.request
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Gateway, error_code_of, signed_request
from test_boto3 import error_code, s3_client


def keys_of(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# --- region ---------------------------------------------------------------------------------------------------


def test_a_request_signed_for_another_region_names_the_expected_one(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="region")
    status, _, body = signed_request(gateway, "PUT", "/region/k", body=b"data", region="eu-west-1")
    assert status == 400 and error_code_of(body) == "AuthorizationHeaderMalformed", body
    assert b"the region 'eu-west-1' is wrong; expecting 'us-east-1'" in body
    assert b"<Region>us-east-1</Region>" in body
    assert_absent(s3, "region", "k")

    s3.put_object(Bucket="region", Key="k", Body=b"data")
    eu = boto3.client("s3", endpoint_url=gateway.endpoint, region_name="eu-west-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, config=Config(signature_version="s3v4"))
    url = eu.generate_presigned_url("get_object", Params={"Bucket": "region", "Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    body = refused.value.read()
    assert refused.value.code == 400 and error_code_of(body) == "AuthorizationQueryParametersError", body
    assert b"<Region>us-east-1</Region>" in body


# --- URIs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/uri/a%ZZb", "/uri/key%", "/uri/%G0", "/uri/%AE%8A-"])
def test_a_path_that_does_not_decode_is_an_invalid_uri_and_stores_nothing(gateway, path):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="uri")
    status, _, body = signed_request(gateway, "PUT", path, body=b"x")
    assert status == 400 and error_code_of(body) == "InvalidURI", body
    assert b"Couldn't parse the specified URI." in body
    assert keys_of(s3, "uri") == []


# --- keys XML cannot carry ------------------------------------------------------------------------------------


CONTROL_KEYS = ["ctl\x01key", "nul\x00key", "unit\x1fsep", "cr\rlf"]


def test_keys_with_characters_xml_cannot_carry_are_listed_as_aws_lists_them(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="ctl")
    for key in CONTROL_KEYS:
        s3.put_object(Bucket="ctl", Key=key, Body=key.encode())
    assert sorted(keys_of(s3, "ctl")) == sorted(CONTROL_KEYS), "boto3 lists with encoding-type=url"
    for key in CONTROL_KEYS:
        assert s3.get_object(Bucket="ctl", Key=key)["Body"].read() == key.encode()

    expected = [b"ctl&#x1;key", b"nul&#x0;key", b"unit&#x1f;sep", b"cr&#xd;lf"]
    for query in ["list-type=2", "", "versions", "uploads"]:
        status, _, body = signed_request(gateway, "GET", f"/ctl?{query}" if query else "/ctl")
        assert status == 200, (query, body)
        if query != "uploads":
            for reference in expected:
                assert reference in body, (query, reference, body)
        assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", body), "no raw control character in XML"
    status, _, body = signed_request(gateway, "GET", "/ctl?list-type=2&prefix=ctl%01")
    assert status == 200 and b"<Prefix>ctl&#x1;</Prefix>" in body and body.count(b"<Key>") == 1


def test_multipart_uploads_of_such_keys_succeed_with_responses_sdks_can_parse(gateway):
    s3 = s3_client(gateway, retries={"max_attempts": 1})
    s3.create_bucket(Bucket="ctlmp")
    status, _, body = signed_request(gateway, "POST", "/ctlmp/raw%01x?uploads")
    assert status == 200 and b"<UploadId>" in body and b"<Key>" not in body, body
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|&#x", body), "nothing a parser chokes on"

    key = "mp\x01x"
    upload = s3.create_multipart_upload(Bucket="ctlmp", Key=key)["UploadId"]
    # botocore asks no encoding-type for this listing, and (as with AWS) cannot parse such a key without it.
    listed = s3.list_multipart_uploads(Bucket="ctlmp", Prefix="mp", EncodingType="url")["Uploads"]
    assert [(unquote_plus(u["Key"]), u["UploadId"]) for u in listed] == [(key, upload)]
    status, _, body = signed_request(gateway, "GET", "/ctlmp?uploads&prefix=mp")
    assert status == 200 and b"<Key>mp&#x1;x</Key>" in body, "a listing names it as AWS does"
    etag = s3.upload_part(Bucket="ctlmp", Key=key, UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    assert [p["ETag"] for p in s3.list_parts(Bucket="ctlmp", Key=key, UploadId=upload)["Parts"]] == [etag]
    done = s3.complete_multipart_upload(Bucket="ctlmp", Key=key, UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket="ctlmp", Key=key)["Body"].read() == b"part"
    remaining = s3.list_multipart_uploads(Bucket="ctlmp", EncodingType="url").get("Uploads", [])
    assert [unquote_plus(u["Key"]) for u in remaining] == ["raw\x01x"]


# --- oversized and malformed input ----------------------------------------------------------------------------


def test_an_oversized_xml_body_is_max_message_length_exceeded_and_deletes_nothing(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="bigxml")
    s3.put_object(Bucket="bigxml", Key="keep", Body=b"x")
    head = b"<Delete><Object><Key>keep</Key></Object>"
    # 50 MB declared: refused from the header, before the body is read.
    status, _, body = signed_request(gateway, "POST", "/bigxml?delete", body=head + b" " * (1 << 20),
                                     declared_length=50 * 1000 * 1000)
    assert status == 400 and error_code_of(body) == "MaxMessageLengthExceeded", body
    # 3 MiB actually sent.
    status, _, body = signed_request(gateway, "POST", "/bigxml?delete", body=head + b" " * (3 << 20) + b"</Delete>")
    assert status == 400 and error_code_of(body) == "MaxMessageLengthExceeded", body
    upload = s3.create_multipart_upload(Bucket="bigxml", Key="mp")["UploadId"]
    status, _, body = signed_request(gateway, "POST", f"/bigxml/mp?uploadId={upload}", body=b" " * (3 << 20))
    assert status == 400 and error_code_of(body) == "MaxMessageLengthExceeded", body
    assert keys_of(s3, "bigxml") == ["keep"]
    assert s3.list_multipart_uploads(Bucket="bigxml")["Uploads"][0]["UploadId"] == upload


def test_user_metadata_over_2_kib_is_metadata_too_large(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="meta")
    fits = {"a": "x" * (2048 - 1)}
    s3.put_object(Bucket="meta", Key="fits", Body=b"x", Metadata=fits)
    assert s3.head_object(Bucket="meta", Key="fits")["Metadata"]["a"] == fits["a"]
    too_big = {"a": "x" * 2048}
    for call in [
        lambda: s3.put_object(Bucket="meta", Key="big", Body=b"x", Metadata=too_big),
        lambda: s3.create_multipart_upload(Bucket="meta", Key="big", Metadata=too_big),
        lambda: s3.copy_object(Bucket="meta", Key="big", CopySource="meta/fits", Metadata=too_big,
                               MetadataDirective="REPLACE"),
    ]:
        with pytest.raises(ClientError) as refused:
            call()
        assert error_code(refused) == "MetadataTooLarge"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert keys_of(s3, "meta") == ["fits"]
    assert not s3.list_multipart_uploads(Bucket="meta").get("Uploads")


@pytest.mark.parametrize("header,value,code", [
    ("Content-MD5", "", "InvalidDigest"),
    ("Content-MD5", "abc", "InvalidDigest"),
    ("Content-MD5", base64.b64encode(b"short").decode(), "InvalidDigest"),
    ("x-amz-checksum-crc32", "", "InvalidRequest"),
    ("x-amz-checksum-sha256", "", "InvalidRequest"),
])
def test_empty_or_malformed_digests_are_refused_and_store_nothing(gateway, header, value, code):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="digest")
    status, _, body = signed_request(gateway, "PUT", "/digest/k", headers={header: value}, body=b"data")
    assert status == 400 and error_code_of(body) == code, body
    assert_absent(s3, "digest", "k")
    upload = s3.create_multipart_upload(Bucket="digest", Key="mp")["UploadId"]
    status, _, body = signed_request(gateway, "PUT", f"/digest/mp?partNumber=1&uploadId={upload}",
                                     headers={header: value}, body=b"data")
    assert status == 400 and error_code_of(body) == code, body
    assert not s3.list_parts(Bucket="digest", Key="mp", UploadId=upload).get("Parts")


def test_mfa_delete_is_refused_as_aws_refuses_it_without_mfa(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="mfa")
    xml = b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>"
    status, _, body = signed_request(gateway, "PUT", "/mfa?versioning", body=xml)
    assert status == 403 and error_code_of(body) == "AccessDenied", body
    assert b"Mfa Authentication must be used for this request" in body
    bogus = b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Maybe</MfaDelete></VersioningConfiguration>"
    status, _, body = signed_request(gateway, "PUT", "/mfa?versioning", body=bogus)
    assert status == 400 and error_code_of(body) == "MalformedXML", body
    assert "Status" not in s3.get_bucket_versioning(Bucket="mfa"), "versioning unchanged"
    disabled = b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>"
    status, _, body = signed_request(gateway, "PUT", "/mfa?versioning", body=disabled)
    assert status == 200, body
    assert s3.get_bucket_versioning(Bucket="mfa")["Status"] == "Enabled"


@pytest.mark.parametrize("query,message", [
    ("uploads&max-uploads=-1", b"Argument max-uploads must be an integer between 0 and 2147483647"),
    ("list-type=2&max-keys=-1", b"Argument maxKeys must be an integer between 0 and 2147483647"),
    ("max-keys=-1", b"Argument maxKeys must be an integer between 0 and 2147483647"),
    ("versions&max-keys=-1", b"Argument maxKeys must be an integer between 0 and 2147483647"),
    ("list-type=3", b"Invalid List Type"),
    ("list-type=2&continuation-token=garbage", b"The continuation token provided is incorrect"),
    ("list-type=2&continuation-token=", b"The continuation token provided is incorrect"),
    # base64 of a plain key: what a token looked like before, or a guess
    ("list-type=2&continuation-token=a2V5", b"The continuation token provided is incorrect"),
])
def test_invalid_list_arguments_are_invalid_argument(gateway, query, message):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="args")
    s3.put_object(Bucket="args", Key="key", Body=b"x")
    status, _, body = signed_request(gateway, "GET", f"/args?{query}")
    assert status == 400 and error_code_of(body) == "InvalidArgument" and message in body, body


def test_invalid_part_list_arguments_are_invalid_argument_and_real_tokens_work(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="parts")
    upload = s3.create_multipart_upload(Bucket="parts", Key="k")["UploadId"]
    for query in ["max-parts=-1", "part-number-marker=-1"]:
        status, _, body = signed_request(gateway, "GET", f"/parts/k?uploadId={upload}&{query}")
        assert status == 400 and error_code_of(body) == "InvalidArgument", (query, body)
    for i in range(5):
        s3.put_object(Bucket="parts", Key=f"k{i}", Body=b"x")
    seen, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket="parts", MaxKeys=2, **({"ContinuationToken": token} if token else {}))
        seen += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            break
    assert seen == [f"k{i}" for i in range(5)]


# --- Range headers AWS ignores --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bytes=abc", "items=0-1", "bytes=5-2", "bytes=-", "bytes=0-1,3-4", "0-1"])
def test_a_range_aws_ignores_returns_the_whole_object(gateway, value):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="ranges")
    data = b"0123456789"
    s3.put_object(Bucket="ranges", Key="k", Body=data)
    for method in ["GET", "HEAD"]:
        status, headers, body = signed_request(gateway, method, "/ranges/k", headers={"Range": value})
        assert status == 200, (method, body)
        assert "content-range" not in headers
        assert headers["content-length"] == str(len(data))
        assert body == (data if method == "GET" else b"")
    # botocore signs the Range header too.
    got = s3.get_object(Bucket="ranges", Key="k", Range=value)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and got["Body"].read() == data
    presigner = s3_client(gateway, signature_version="s3v4")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": "ranges", "Key": "k"})
    request = urllib.request.Request(url, headers={"Range": value})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200 and response.read() == data


def test_unsatisfiable_ranges_are_416_and_valid_ones_206(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="ranges2")
    s3.put_object(Bucket="ranges2", Key="k", Body=b"0123456789")
    for value in ["bytes=-0", "bytes=100-200", "bytes=10-"]:
        status, _, body = signed_request(gateway, "GET", "/ranges2/k", headers={"Range": value})
        assert status == 416 and error_code_of(body) == "InvalidRange", (value, body)
    status, headers, body = signed_request(gateway, "GET", "/ranges2/k", headers={"Range": "bytes=2-4"})
    assert status == 206 and body == b"234" and headers["content-range"] == "bytes 2-4/10"
    s3.put_object(Bucket="ranges2", Key="empty", Body=b"")
    status, headers, body = signed_request(gateway, "GET", "/ranges2/empty", headers={"Range": "bytes=-1"})
    assert status == 200 and body == b"" and "content-range" not in headers


# --- racing conditional writes --------------------------------------------------------------------------------


def race(gateway, bucket, key, headers_of, label, racers=32):
    """`racers` PUTs of distinct bodies (never sent before under another `label`: an equal body has an equal ETag)
    released at once; returns [(status, code, body sent)]."""
    start = threading.Barrier(racers)
    results = [None] * racers

    def one(i):
        data = f"{label} racer {i} ".encode() * 100
        start.wait()
        status, _, body = signed_request(gateway, "PUT", f"/{bucket}/{key}", headers=headers_of(i), body=data)
        results[i] = (status, error_code_of(body), data)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("versioned", [False, True])
def test_racing_conditional_puts_have_exactly_one_winner(gateway, versioned):
    s3 = s3_client(gateway)
    bucket = "race-v" if versioned else "race-u"
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    results = race(gateway, bucket, "new", lambda i: {"If-None-Match": "*"}, "none-match")
    winners = [r for r in results if r[0] == 200]
    assert len(winners) == 1, [r[:2] for r in results]
    assert all(r[:2] == (412, "PreconditionFailed") for r in results if r[0] != 200)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == winners[0][2]
    assert len(s3.list_object_versions(Bucket=bucket, Prefix="new").get("Versions", [])) == 1

    etag = s3.head_object(Bucket=bucket, Key="new")["ETag"]
    results = race(gateway, bucket, "new", lambda i: {"If-Match": etag}, "match")
    winners = [r for r in results if r[0] == 200]
    assert len(winners) == 1, [r[:2] for r in results]
    assert all(r[:2] == (412, "PreconditionFailed") for r in results if r[0] != 200)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == winners[0][2]
    assert len(s3.list_object_versions(Bucket=bucket, Prefix="new").get("Versions", [])) == (2 if versioned else 1)


def test_conditional_headers_aws_does_not_implement_are_501_and_a_missing_key_is_404(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="cond")
    for headers in [{"If-None-Match": '"abc"'}, {"If-Match": "*"}, {"If-Match": '"a"', "If-None-Match": "*"}]:
        status, _, body = signed_request(gateway, "PUT", "/cond/k", headers=headers, body=b"x")
        assert status == 501 and error_code_of(body) == "NotImplemented", (headers, body)
    status, _, body = signed_request(gateway, "PUT", "/cond/k", headers={"If-Match": '"abc"'}, body=b"x")
    assert status == 404 and error_code_of(body) == "NoSuchKey", body
    assert_absent(s3, "cond", "k")


# --- logs and secrets -----------------------------------------------------------------------------------------


def test_a_flood_of_bad_requests_does_not_flood_the_log(tmp_path):
    log = tmp_path / "gateway.log"
    gw = Gateway(tmp_path / "data", env={"RUST_LOG": "info"}, log=log)
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="logs")
        baseline = log.stat().st_size
        for i in range(100):
            for request in [
                urllib.request.Request(f"{gw.endpoint}/logs/k{i}"),  # anonymous
                urllib.request.Request(f"{gw.endpoint}/logs/k{i}", headers={
                    "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, "
                                     "SignedHeaders=host, Signature=00"}),  # bad signature
            ]:
                with pytest.raises(urllib.error.HTTPError):
                    urllib.request.urlopen(request)
            signed_request(gw, "GET", f"/missing-bucket/k{i}")
            signed_request(gw, "GET", f"/logs/a%ZZ{i}")
    finally:
        assert gw.stop() == 0
    text = log.read_text()
    added = log.stat().st_size - baseline
    assert "ERROR" not in text and " WARN " not in text, text[-2000:]
    assert added < 4096, f"400 client errors added {added} bytes of log"


def test_the_root_secret_is_printed_once_and_only_when_generated(tmp_path):
    log = tmp_path / "generated.log"
    gw = Gateway(tmp_path / "generated", env={"S3IPFS_ROOT_ACCESS_KEY": None, "S3IPFS_ROOT_SECRET_KEY": None,
                                               "RUST_LOG": "debug"}, log=log)
    try:
        banner = "".join(gw.banner)
        match = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", banner)
        assert match, banner
        secret = match.group(1)
    finally:
        gw.stop()
    everything = banner + gw.proc.stdout.read() + log.read_text()
    assert everything.count(secret) == 1, "the generated secret is shown exactly once"

    log = tmp_path / "configured.log"
    gw = Gateway(tmp_path / "configured", env={"RUST_LOG": "debug"}, log=log)
    gw.stop()
    everything = "".join(gw.banner) + gw.proc.stdout.read() + log.read_text()
    assert SECRET_KEY not in everything, "a secret the operator supplied is never printed"
    assert "admin@localhost" in everything


# --- options, conditions and requests that must not be ignored -----------------------------------------------


def test_delete_objects_refuses_bodies_that_are_not_well_formed_and_answers_cr_as_a_reference(gateway):
    s3 = s3_client(gateway, retries={"max_attempts": 1})
    s3.create_bucket(Bucket="delctl")
    s3.put_object(Bucket="delctl", Key="del\x01me", Body=b"x")
    s3.put_object(Bucket="delctl", Key="cr\rkey", Body=b"x")
    # A raw control character makes the XML not well-formed: refused, as AWS refuses it, and nothing is deleted.
    status, _, body = signed_request(gateway, "POST", "/delctl?delete",
                                     body=b"<Delete><Object><Key>del\x01me</Key></Object></Delete>")
    assert status == 400 and error_code_of(body) == "MalformedXML", body
    assert sorted(keys_of(s3, "delctl")) == ["cr\rkey", "del\x01me"]
    # A carriage return sent as a reference (as AWS documents) is deleted, and named the same way in the answer.
    status, _, body = signed_request(gateway, "POST", "/delctl?delete",
                                     body=b"<Delete><Object><Key>cr&#13;key</Key></Object></Delete>")
    assert status == 200 and b"<Key>cr&#xd;key</Key>" in body, body
    assert keys_of(s3, "delctl") == ["del\x01me"]


@pytest.mark.parametrize("header,value,code,status", [
    ("x-amz-object-lock-mode", "GOVERNANCE", "InvalidRequest", 400),
    ("x-amz-server-side-encryption", "ROT13", "InvalidArgument", 400),
    ("x-amz-server-side-encryption", "aws:kms", "NotImplemented", 501),
    ("x-amz-server-side-encryption-customer-algorithm", "AES256", "NotImplemented", 501),
    ("x-amz-storage-class", "FOO", "InvalidStorageClass", 400),
    ("x-amz-acl", "evil", "InvalidArgument", 400),
])
def test_object_options_that_cannot_be_honoured_are_refused_not_ignored(gateway, header, value, code, status):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="opts")
    s3.put_object(Bucket="opts", Key="src", Body=b"x")
    for method, path, extra in [("PUT", "/opts/k", {}), ("POST", "/opts/k?uploads", {}),
                                ("PUT", "/opts/copy", {"x-amz-copy-source": "opts/src"})]:
        got, _, body = signed_request(gateway, method, path, headers={header: value, **extra}, body=b"")
        assert (got, error_code_of(body)) == (status, code), (method, path, body)
    assert keys_of(s3, "opts") == ["src"]
    assert not s3.list_multipart_uploads(Bucket="opts").get("Uploads")
    s3.put_object(Bucket="opts", Key="fine", Body=b"x", StorageClass="STANDARD_IA", ServerSideEncryption="AES256",
                  ACL="private")


def test_copy_conditions_on_the_destination_are_decided_like_a_put(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="copycond")
    s3.put_object(Bucket="copycond", Key="src", Body=b"source")
    s3.put_object(Bucket="copycond", Key="dst", Body=b"destination")
    for headers, code in [({"If-None-Match": "*"}, "PreconditionFailed"), ({"If-Match": '"nope"'}, "PreconditionFailed")]:
        status, _, body = signed_request(gateway, "PUT", "/copycond/dst",
                                         headers={"x-amz-copy-source": "copycond/src", **headers})
        assert status == 412 and error_code_of(body) == code, body
    assert s3.get_object(Bucket="copycond", Key="dst")["Body"].read() == b"destination"
    etag = s3.head_object(Bucket="copycond", Key="dst")["ETag"]
    status, _, body = signed_request(gateway, "PUT", "/copycond/dst",
                                     headers={"x-amz-copy-source": "copycond/src", "If-Match": etag})
    assert status == 200, body
    assert s3.get_object(Bucket="copycond", Key="dst")["Body"].read() == b"source"
    status, _, body = signed_request(gateway, "PUT", "/copycond/dst",
                                     headers={"x-amz-copy-source": "copycond/src",
                                              "x-amz-metadata-directive": "EVIL"})
    assert status == 400 and error_code_of(body) == "InvalidArgument", body


def test_conditional_deletes_are_refused_not_ignored(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="delcond")
    s3.put_object(Bucket="delcond", Key="k", Body=b"x")
    for headers in [{"If-Match": '"nope"'}, {"x-amz-if-match-size": "999"}]:
        status, _, body = signed_request(gateway, "DELETE", "/delcond/k", headers=headers)
        assert status == 501 and error_code_of(body) == "NotImplemented", body
    xml = b'<Delete><Object><Key>k</Key><ETag>"nope"</ETag></Object></Delete>'
    status, _, body = signed_request(gateway, "POST", "/delcond?delete", body=xml)
    assert status == 200 and b"<Code>NotImplemented</Code>" in body, body
    assert keys_of(s3, "delcond") == ["k"]


def test_a_trailer_announced_and_not_sent_is_refused(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="trailer")
    data = b"announced a checksum " * 50
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
    body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    from botocore.awsrequest import AWSRequest
    from conftest import sign
    import http.client
    request = sign(AWSRequest(method="PUT", url=f"{gateway.endpoint}/trailer/k", headers=headers),
                   headers["x-amz-content-sha256"])
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("PUT", "/trailer/k", body=body, headers={**dict(request.headers.items()),
                                                          "Content-Length": str(len(body))})
    response = conn.getresponse()
    answer = response.read()
    assert response.status == 400 and error_code_of(answer) == "InvalidRequest", answer
    assert_absent(s3, "trailer", "k")


def test_head_of_a_range_is_206_and_honours_response_overrides(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="headrange")
    s3.put_object(Bucket="headrange", Key="k", Body=b"0123456789", ContentType="text/plain")
    status, headers, _ = signed_request(gateway, "HEAD", "/headrange/k", headers={"Range": "bytes=2-4"})
    assert status == 206 and headers["content-length"] == "3" and headers["content-range"] == "bytes 2-4/10"
    status, headers, _ = signed_request(gateway, "HEAD", "/headrange/k?partNumber=1")
    assert status == 206 and headers["content-length"] == "10"
    status, headers, _ = signed_request(
        gateway, "HEAD", "/headrange/k?response-content-type=image%2Fpng&response-cache-control=no-cache")
    assert status == 200 and headers["content-type"] == "image/png" and headers["cache-control"] == "no-cache"


def test_requests_that_would_be_misread_are_refused(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="misread")
    s3.put_object(Bucket="misread", Key="k", Body=b"original")
    status, _, body = signed_request(gateway, "PUT", "/misread/k?uploadId=abc", body=b"clobber")
    assert status == 400 and error_code_of(body) == "InvalidArgument", "an UploadPart without its part number"
    assert s3.get_object(Bucket="misread", Key="k")["Body"].read() == b"original"

    presigner = s3_client(gateway, signature_version="s3v4")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": "misread", "Key": "k"})
    request = urllib.request.Request(url, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400 and error_code_of(refused.value.read()) == "InvalidArgument"

    many = {f"x-amz-meta-m{i}": "v" for i in range(200)} | {f"x-custom-{i}": "v" * 40 for i in range(100)}
    status, _, body = signed_request(gateway, "PUT", "/misread/many", headers=many, body=b"x")
    assert status == 400 and error_code_of(body) == "RequestHeaderSectionTooLarge", (status, body)
    assert_absent(s3, "misread", "many")


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/subres/k?acl"), ("DELETE", "/subres/k?retention"), ("PUT", "/subres/k?torrent"),
    ("PUT", "/subres/k?restore"), ("PUT", "/subres/k?uploads"), ("DELETE", "/subres?versioning"),
    ("DELETE", "/subres?versions"), ("DELETE", "/subres?location"),
])
def test_a_sub_resource_without_that_method_neither_deletes_nor_overwrites(gateway, method, path):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="subres")
    s3.put_object(Bucket="subres", Key="k", Body=b"original")
    status, _, body = signed_request(gateway, method, path, body=b"replacement" if method == "PUT" else b"")
    assert status == 405 and error_code_of(body) == "MethodNotAllowed", body
    assert s3.get_object(Bucket="subres", Key="k")["Body"].read() == b"original"


def test_writes_asking_for_what_this_gateway_does_not_do_are_refused(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="append")
    s3.put_object(Bucket="append", Key="k", Body=b"ORIGINAL")
    status, _, body = signed_request(gateway, "PUT", "/append/k", headers={"x-amz-write-offset-bytes": "8"},
                                     body=b"MORE")
    assert status == 501 and error_code_of(body) == "NotImplemented", body
    assert s3.get_object(Bucket="append", Key="k")["Body"].read() == b"ORIGINAL"
    for headers, code in [({"x-amz-bucket-object-lock-enabled": "true"}, "NotImplemented"),
                          ({"x-amz-acl": "bogus"}, "InvalidArgument"),
                          ({"x-amz-object-ownership": "Bogus"}, "InvalidArgument")]:
        status, _, body = signed_request(gateway, "PUT", "/newbucket", headers=headers)
        assert error_code_of(body) == code, (headers, body)
        assert "newbucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

"""Bodies are streamed, never buffered whole: a 2 GiB PUT and GET keep the gateway's RSS small."""
import hashlib
import os

from test_boto3 import s3_client

SIZE = 2 * 1024**3
RSS_LIMIT_KIB = 128 * 1024


def test_a_2_gib_put_and_get_stay_under_128_mib_rss(gateway, tmp_path):
    block = os.urandom(1024 * 1024)
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for i in range(SIZE // len(block)):
            chunk = block[i % 7 :] + block[: i % 7]  # vary the content so leaves differ
            out.write(chunk)
            digest.update(chunk)
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="big")
    with open(path, "rb") as body:
        s3.put_object(Bucket="big", Key="big.bin", Body=body)
    path.unlink()
    response = s3.get_object(Bucket="big", Key="big.bin")
    assert response["ContentLength"] == SIZE
    back = hashlib.sha256()
    for chunk in response["Body"].iter_chunks(1024 * 1024):
        back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()
    peak = gateway.peak_rss_kib()
    print(f"gateway peak RSS over a 2 GiB PUT and GET: {peak / 1024:.1f} MiB")
    assert 0 < peak < RSS_LIMIT_KIB
